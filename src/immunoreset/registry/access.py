"""Sites, users, roles and the access rule, enforced in the repository layer.

The rule (the same for the CLI and the web app): a user sees only patients of the sites they
belong to; an admin sees every site; a monitor only reads. A patient of another site is
reported as not found, so IDs cannot be enumerated.

| role         | reads     | clinical data     | GMP records                               | users |
|--------------|-----------|-------------------|-------------------------------------------|-------|
| admin        | all sites | yes               | QC entry, program-wide specifications     | yes   |
| investigator | own sites | yes               | QC entry, post-release results, deviation | no    |
| data_manager | own sites | yes (and imports) | QC entry, post-release results, deviation | no    |
| qa           | own sites | no                | as above; site specs, signed approve/release | no |
| monitor      | own sites | no                | no                                        | no    |

``qa`` is the GMP unit's quality assurance / qualified person: it enters GMP records but no
clinical data, loads its site's release specifications, and signs deviation approvals and
batch releases with its password (:mod:`immunoreset.registry.gmp.signatures`).
"""

from __future__ import annotations

from dataclasses import dataclass

from immunoreset import vocab
from immunoreset.errors import InvalidInput, PermissionDenied, check_choice

__all__ = ["MAX_REASON", "Actor", "check_reason", "system_actor"]

#: Longest audit reason accepted (characters); reasons are free text in every audit row.
MAX_REASON = 1000


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
        """Clinical data: every role but ``monitor`` (read-only) and ``qa`` (GMP records)."""
        if self.role == "monitor":
            raise PermissionDenied(self.username, action, "monitors have read-only access")
        if self.role == "qa":
            raise PermissionDenied(self.username, action, "the qa role writes GMP records only")

    def require_gmp_write(self, action: str = "change GMP records") -> None:
        """GMP records (QC results, raising deviations): every role but ``monitor``."""
        if self.role == "monitor":
            raise PermissionDenied(self.username, action, "monitors have read-only access")

    def require_qa(self, action: str) -> None:
        """The ``qa`` role only (release, deviation approval, a site's specifications)."""
        if self.role != "qa":
            raise PermissionDenied(self.username, action, "only a user with the qa role may")

    def require_admin(self, action: str) -> None:
        if self.role != "admin":
            raise PermissionDenied(self.username, action, "only an admin may do this")

    def require_site(self, site: str, action: str = "change clinical data") -> None:
        if not self.can_see_site(site):
            raise PermissionDenied(self.username, action, f"not a member of site {site}")


def system_actor(name: str = "system") -> Actor:
    """The local account of the command line: an admin acting on a file it owns."""
    return Actor(username=name, role="admin", sites=None)


def check_reason(reason: object, field: str = "reason") -> str:
    """An audit reason: non-empty text of at most :data:`MAX_REASON` characters, no NUL or
    other control characters but tab and newline (they hide text in viewers and exports)."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(field, reason, "a non-empty reason for the change")
    if len(reason) > MAX_REASON:
        raise InvalidInput(field, f"{len(reason)} characters", f"at most {MAX_REASON} characters")
    if any(ord(ch) < 32 and ch not in "\t\n" for ch in reason) or "\x7f" in reason:
        raise InvalidInput(field, repr(reason[:40]), "text without NUL or control characters")
    return reason
