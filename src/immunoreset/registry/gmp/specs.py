"""Release specifications (``release_specs``): owned by a site, or program-wide.

A site's GMP unit validates its own process, so a specification belongs to a site: its
quality assurance (``qa`` role, a member of the site) loads it, and it applies to that site's
batches only; an administrator may load a **program-wide** specification, which applies to
every site that has none of its own. The specification that applies to a batch is the one its
patient's site loaded last, else the program-wide one loaded last, else the shipped
``default-v1``. A ``(spec_id, version)`` is immutable within its scope (site or program).

Nobody sees, reloads or supersedes another site's specification: a ROME qa user asking for an
Erlangen key is told it does not exist. Every load is audited with a record key naming its
scope (``ERLANGEN/site-er-v2``, or ``*/default-v2`` for a program-wide one), which
:meth:`~immunoreset.registry.repository.Registry.audit_trail` shows to that site's users.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection

from immunoreset.errors import InvalidInput
from immunoreset.manufacturing.spec import ReleaseSpec
from immunoreset.registry.db import write_transaction
from immunoreset.registry.gmp._base import GmpStore, _default_spec, _now, _spec_from_text
from immunoreset.registry.schema import release_specs

if TYPE_CHECKING:
    from immunoreset.registry.access import Actor

#: Record-key prefix of program-wide specifications in the audit trail (a site code starts
#: with a letter or digit, so it cannot clash with one).
PROGRAM_WIDE = "*"


def spec_audit_key(site: str | None, key: str) -> str:
    """Audit record key of a specification: ``<SITE>/<key>`` or ``*/<key>`` (program-wide)."""
    return f"{site or PROGRAM_WIDE}/{key}"


class SpecStore(GmpStore):
    """Release specifications of a site or of the whole program (``release_specs``)."""

    def load_spec_file(
        self,
        actor: Actor,
        path: str | Path,
        *,
        site: str | None = None,
        program_wide: bool = False,
    ) -> ReleaseSpec:
        """Load a release specification (YAML or JSON file) and make it current for its scope.

        Parameters
        ----------
        actor : Actor
            A ``qa`` user of ``site`` for a site's specification; an ``admin`` for a
            program-wide one.
        path : str | pathlib.Path
            A ``.yaml``, ``.yml`` or ``.json`` file in the layout of
            :mod:`immunoreset.manufacturing.spec`.
        site : str, optional
            The site it belongs to (default: the qa user's site when they have exactly one).
        program_wide : bool
            Load it for every site without its own (admins only; then no ``site``).

        Returns
        -------
        ReleaseSpec

        Raises
        ------
        PermissionDenied
            Not ``qa`` (site) / ``admin`` (program-wide), or not a member of ``site``.
        InvalidInput
            Unreadable or invalid file, both or neither scope, or a ``(spec_id, version)``
            already loaded in that scope with different content (raise the version instead).
        """
        scope = self._load_scope(actor, site, program_wide)
        if not isinstance(path, str | Path):
            raise InvalidInput("path", path, "a path to a YAML or JSON file")
        p = Path(path)
        if p.suffix.lower() not in (".yaml", ".yml", ".json"):
            raise InvalidInput("path", str(p), "a .yaml, .yml or .json file")
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput("path", str(p), f"a readable file ({exc.strerror})") from None
        spec = _spec_from_text(text, str(p))
        return self._store_spec(actor, spec, text, source=p.name, site=scope)

    def _load_scope(self, actor: Actor, site: str | None, program_wide: bool) -> str | None:
        """The site a load goes to (None: program-wide), after the role and site checks."""
        if program_wide:
            actor.require_admin("load a program-wide release specification")
            if site is not None:
                raise InvalidInput("site", site, "no site with a program-wide specification")
            return None
        actor.require_qa("load a site's release specification")
        if site is None:
            mine = sorted(actor.sites or ())
            if len(mine) != 1:
                raise InvalidInput(
                    "site", None, "the site the specification belongs to: one of " + ", ".join(mine)
                )
            site = mine[0]
        if not isinstance(site, str):
            raise InvalidInput("site", site, "a site code")
        actor.require_site(site, "load a release specification")
        with self.engine.connect() as conn:
            from immunoreset.registry import schema as s

            known = conn.execute(select(s.sites.c.code).where(s.sites.c.code == site)).first()
        if known is None:
            raise InvalidInput("site", site, "a site of the registry")
        return site

    def _store_spec(
        self, actor: Actor, spec: ReleaseSpec, text: str, *, source: str, site: str | None
    ) -> ReleaseSpec:
        now = _now()
        t = release_specs
        where = "program-wide" if site is None else f"site {site}"
        key = spec_audit_key(site, spec.key)
        in_scope = t.c.site.is_(None) if site is None else t.c.site == site
        with write_transaction(self.engine) as conn:
            old = (
                conn.execute(
                    select(t).where(
                        and_(in_scope, t.c.spec_id == spec.spec_id, t.c.version == spec.version)
                    )
                )
                .mappings()
                .first()
            )
            if old is not None:
                if _spec_from_text(old["text"], spec.key) != spec:
                    raise InvalidInput(
                        "version",
                        spec.version,
                        f"a new version: {spec.key} is already loaded ({where}) with "
                        "different content",
                    )
                # identical content: make it current again by touching loaded_at
                conn.execute(
                    update(t)
                    .where(t.c.id == old["id"])
                    .values(loaded_at=now, updated_at=now, loaded_by=actor.username)
                )
                self._audit(
                    conn,
                    actor,
                    "update",
                    t.name,
                    key,
                    study_id=None,
                    field="loaded_at",
                    old=old["loaded_at"],
                    new=now,
                    reason=f"release specification {spec.key} ({where}) loaded again from {source}",
                    now=now,
                )
                return spec
            conn.execute(
                insert(t).values(
                    spec_id=spec.spec_id,
                    version=spec.version,
                    title=spec.title,
                    text=text,
                    source=source[:500],
                    site=site,
                    loaded_by=actor.username,
                    loaded_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            self._audit(
                conn,
                actor,
                "insert",
                t.name,
                key,
                study_id=None,
                new={
                    "spec_id": spec.spec_id,
                    "version": spec.version,
                    "site": site,
                    "source": source,
                },
                reason=f"release specification {spec.key} ({where}) loaded from {source}",
                now=now,
            )
        return spec

    # ------------------------------------------------------------------ reading
    def _visible(self, actor: Actor) -> Any:
        """Rows ``actor`` may see: program-wide ones and those of their sites (admin: all)."""
        t = release_specs
        if actor.all_sites:
            return t.c.deleted_at.is_(None)
        return and_(
            t.c.deleted_at.is_(None),
            or_(t.c.site.is_(None), t.c.site.in_(sorted(actor.sites or ()))),
        )

    def current_spec(self, actor: Actor, site: str | None = None) -> ReleaseSpec:
        """The specification that applies at ``site`` (default: the program-wide one).

        That is the site's specification loaded last, else the program-wide one loaded last,
        else the shipped ``default-v1``. ``site`` must be one of the actor's.
        """
        if site is not None:
            if not isinstance(site, str):
                raise InvalidInput("site", site, "a site code")
            actor.require_site(site, "read the site's release specification")
        with self.engine.connect() as conn:
            return self._current_spec(conn, site)

    def _current_spec(self, conn: Connection, site: str | None) -> ReleaseSpec:
        t = release_specs
        for scope in ((t.c.site == site) if site is not None else None, t.c.site.is_(None)):
            if scope is None:
                continue
            row = conn.execute(
                select(t.c.text, t.c.spec_id, t.c.version)
                .where(and_(t.c.deleted_at.is_(None), scope))
                .order_by(t.c.loaded_at.desc(), t.c.id.desc())
                .limit(1)
            ).first()
            if row is not None:
                return _spec_from_text(row[0], f"{row[1]}-v{row[2]}")
        return _default_spec()

    def spec(self, actor: Actor, key: str, site: str | None = None) -> ReleaseSpec:
        """A specification by key (``"site-a-v2"``) that the actor may see, or a shipped one
        (``"default-v1"``). With ``site``, that site's (or the program-wide) one; without, the
        actor's own site's first, then the program-wide one."""
        if not isinstance(key, str):
            raise InvalidInput("key", key, "a specification key such as default-v1")
        if site is not None:
            actor.require_site(site, "read a release specification")
        t = release_specs
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.spec_id, t.c.version, t.c.text, t.c.site)
                .where(self._visible(actor))
                .order_by(t.c.site.is_(None), t.c.site)
            ).all()
        loaded: dict[str, str] = {}
        for r in rows:
            if site is None or r[3] in (site, None):
                loaded.setdefault(f"{r[0]}-v{r[1]}", r[2])
        if key in loaded:
            return _spec_from_text(loaded[key], key)
        from immunoreset.manufacturing.spec import available_specs, load_spec

        if key in available_specs():
            return load_spec(key)
        raise InvalidInput(
            "key", key, "one of: " + ", ".join(sorted({*loaded, *available_specs()}))
        )

    def list_specs(self, actor: Actor) -> list[dict[str, Any]]:
        """Specifications the actor may see, newest first: key, site (None: program-wide),
        title, loaded_by, loaded_at, current (the newest of its scope)."""
        t = release_specs
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(t)
                    .where(self._visible(actor))
                    .order_by(t.c.loaded_at.desc(), t.c.id.desc())
                )
                .mappings()
                .all()
            )
        seen: set[str | None] = set()
        out = []
        for r in rows:
            out.append(_listed(r, current=r["site"] not in seen))
            seen.add(r["site"])
        return out


def _listed(r: Mapping[str, Any], *, current: bool) -> dict[str, Any]:
    return {
        "key": f"{r['spec_id']}-v{r['version']}",
        "site": r["site"],
        "title": r["title"],
        "loaded_by": r["loaded_by"],
        "loaded_at": r["loaded_at"],
        "current": current,
    }
