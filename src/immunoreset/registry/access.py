"""Sites, users, roles and the access rule, enforced in the repository layer.

The rule (the same for the CLI and the web app): a user sees only patients of the sites they
belong to; an admin sees every site; a monitor only reads. A patient of another site is
reported as not found, so IDs cannot be enumerated.

| role          | reads            | writes clinical data | manages users/sites |
|---------------|------------------|----------------------|---------------------|
| admin         | all sites        | yes                  | yes                 |
| investigator  | own sites        | yes                  | no                  |
| data_manager  | own sites        | yes (and imports)    | no                  |
| monitor       | own sites        | no                   | no                  |
"""

from __future__ import annotations

from dataclasses import dataclass

from immunoreset import vocab
from immunoreset.errors import PermissionDenied, check_choice

__all__ = ["Actor", "system_actor"]


@dataclass(frozen=True)
class Actor:
    """Who is acting: a registry user (or the local system account of the CLI).

    ``sites`` is None for an admin (every site), otherwise the site codes the user belongs to.
    """

    username: str
    role: str
    sites: frozenset[str] | None = None

    def __post_init__(self) -> None:
        check_choice("role", self.role, vocab.ROLES)
        if self.role != "admin" and self.sites is None:
            object.__setattr__(self, "sites", frozenset())

    @property
    def all_sites(self) -> bool:
        return self.role == "admin"

    def can_see_site(self, site: str) -> bool:
        return self.all_sites or (self.sites is not None and site in self.sites)

    def require_write(self, action: str = "change clinical data") -> None:
        if self.role == "monitor":
            raise PermissionDenied(self.username, action, "monitors have read-only access")

    def require_admin(self, action: str) -> None:
        if self.role != "admin":
            raise PermissionDenied(self.username, action, "only an admin may do this")

    def require_site(self, site: str, action: str = "change clinical data") -> None:
        if not self.can_see_site(site):
            raise PermissionDenied(self.username, action, f"not a member of site {site}")


def system_actor(name: str = "system") -> Actor:
    """The local account of the command line: an admin acting on a file it owns."""
    return Actor(username=name, role="admin", sites=None)
