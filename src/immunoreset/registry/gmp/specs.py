"""Release specifications: load a site's file, the current one, versions (``release_specs``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    and_,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from immunoreset.errors import InvalidInput
from immunoreset.manufacturing.spec import ReleaseSpec
from immunoreset.registry.db import write_transaction
from immunoreset.registry.gmp._base import GmpStore, _default_spec, _now, _spec_from_text
from immunoreset.registry.schema import release_specs

if TYPE_CHECKING:
    from immunoreset.registry.access import Actor


class SpecStore(GmpStore):
    """Release specifications: load a site's file, the current one, versions (``release_specs``)."""

    def load_spec_file(self, actor: Actor, path: str | Path) -> ReleaseSpec:
        """Load a site's release specification (YAML or JSON file) and make it current.

        Parameters
        ----------
        actor : Actor
            Needs a writing role.
        path : str | pathlib.Path
            A ``.yaml``, ``.yml`` or ``.json`` file in the layout of
            :mod:`immunoreset.manufacturing.spec`.

        Returns
        -------
        ReleaseSpec

        Raises
        ------
        InvalidInput
            Unreadable or invalid file, or a ``(spec_id, version)`` already loaded with
            different content (a version is immutable: raise the version instead).
        """
        self._write_access(actor, "load a release specification")
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
        return self._store_spec(actor, spec, text, source=p.name)

    def _store_spec(
        self, actor: Actor, spec: ReleaseSpec, text: str, *, source: str
    ) -> ReleaseSpec:
        now = _now()
        t = release_specs
        with write_transaction(self.engine) as conn:
            old = (
                conn.execute(
                    select(t).where(and_(t.c.spec_id == spec.spec_id, t.c.version == spec.version))
                )
                .mappings()
                .first()
            )
            if old is not None:
                if _spec_from_text(old["text"], spec.key) != spec:
                    raise InvalidInput(
                        "version",
                        spec.version,
                        f"a new version: {spec.key} is already loaded with different content",
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
                    spec.key,
                    study_id=None,
                    field="loaded_at",
                    old=old["loaded_at"],
                    new=now,
                    reason=f"release specification {spec.key} loaded again from {source}",
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
                spec.key,
                study_id=None,
                new={"spec_id": spec.spec_id, "version": spec.version, "source": source},
                reason=f"release specification {spec.key} loaded from {source}",
                now=now,
            )
        return spec

    def current_spec(self) -> ReleaseSpec:
        """The specification loaded last, or the shipped ``default-v1`` before any is loaded."""
        with self.engine.connect() as conn:
            return self._current_spec(conn)

    def _current_spec(self, conn: Connection) -> ReleaseSpec:
        t = release_specs
        row = conn.execute(
            select(t.c.text, t.c.spec_id, t.c.version)
            .where(t.c.deleted_at.is_(None))
            .order_by(t.c.loaded_at.desc(), t.c.id.desc())
            .limit(1)
        ).first()
        return _default_spec() if row is None else _spec_from_text(row[0], f"{row[1]}-v{row[2]}")

    def spec(self, key: str) -> ReleaseSpec:
        """A loaded specification by key (``"site-a-v2"``), or a shipped one (``"default-v1"``)."""
        if not isinstance(key, str):
            raise InvalidInput("key", key, "a specification key such as default-v1")
        t = release_specs
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.spec_id, t.c.version, t.c.text).where(t.c.deleted_at.is_(None))
            ).all()
        loaded = {f"{r[0]}-v{r[1]}": r[2] for r in rows}
        if key in loaded:
            return _spec_from_text(loaded[key], key)
        from immunoreset.manufacturing.spec import available_specs, load_spec

        if key in available_specs():
            return load_spec(key)
        raise InvalidInput(
            "key", key, "one of: " + ", ".join(sorted({*loaded, *available_specs()}))
        )

    def list_specs(self) -> list[dict[str, Any]]:
        """Loaded specifications, newest first: key, title, loaded_by, loaded_at, current."""
        t = release_specs
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(t)
                    .where(t.c.deleted_at.is_(None))
                    .order_by(t.c.loaded_at.desc(), t.c.id.desc())
                )
                .mappings()
                .all()
            )
        return [
            {
                "key": f"{r['spec_id']}-v{r['version']}",
                "title": r["title"],
                "loaded_by": r["loaded_by"],
                "loaded_at": r["loaded_at"],
                "current": i == 0,
            }
            for i, r in enumerate(rows)
        ]

    # ------------------------------------------------------------------ QC
