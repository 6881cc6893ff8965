"""Electronic signatures (``signatures``): a qa user re-enters their password to sign a record.

What a signature is here, in the terms of the regulations it answers to:

* **21 CFR Part 11 §11.50 (signature manifestations)** — a signed record shows the signer's
  name, the date and time of signing and the meaning of the signature (``approved`` for a
  deviation, ``released`` for a batch). :class:`Signature` holds them; the batch page and the
  CLI print them.
* **§11.70 (signature/record linking)** — the signature row holds the SHA-256 of a canonical
  JSON of the signed record's content (the release decision with its specification and QC
  snapshots, or the deviation), so it cannot be moved to another record or survive a change of
  the record without ``Gmp.verify_signature`` saying so.
* **§11.100 / §11.200(a)** — the signature is unique to one registry user and made of two
  components: the user (the authenticated actor) and their password, re-entered for every
  signing (never taken from the session or an API token). Wrong passwords count against the
  same login throttle as the web's logins (``registry/logins.py``), so signing is no password
  oracle.
* **EU GMP Annex 11 §14 (electronic signature)** — same effect as a handwritten signature
  within the company, permanently linked to its record, with time and date; **Annex 11 §9**
  — each signature is also a row of the append-only audit trail.

A signature carried by a CSV import (:mod:`immunoreset.registry.csvextra`) is the historic
one made on the source registry — signer, meaning, time and hash as they were, linked only to
the imported record whose content has that hash — marked ``imported_by``/``imported_at`` so it
never passes for one signed here; :attr:`Signature.manifestation` says so.

A refused signature (wrong password, not ``qa``, not the site's, the raiser approving their own
deviation) stores nothing but the audited refusal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from immunoreset.errors import InvalidInput, PermissionDenied
from immunoreset.registry.gmp._base import GmpStore, _dumps
from immunoreset.registry.schema import signatures

if TYPE_CHECKING:
    from immunoreset.registry.access import Actor

__all__ = ["MEANINGS", "Signature", "SignatureStore", "content_sha256"]

#: What a signature means (21 CFR Part 11 §11.50(a)(3)).
MEANINGS: tuple[str, ...] = ("approved", "released")


def content_sha256(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a record's content as canonical JSON (sorted keys, UTF-8)."""
    return hashlib.sha256(_dumps(dict(content)).encode("utf-8")).hexdigest()


def utc_text(value: dt.datetime | None) -> str | None:
    """A stored timestamp as UTC ISO text (SQLite returns it naive, PostgreSQL aware)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


@dataclass(frozen=True, slots=True)
class Signature:
    """A stored electronic signature: who, when, what it means, which record, the hash."""

    id: int
    username: str
    meaning: str
    table_name: str
    record_key: str
    content_sha256: str
    signed_at: dt.datetime
    #: who carried it here by a CSV import, and when (None: made on this registry)
    imported_by: str | None = None
    imported_at: dt.datetime | None = None

    @property
    def imported(self) -> bool:
        """Whether this is a historic signature carried by a CSV import (not signed here)."""
        return self.imported_by is not None

    @property
    def manifestation(self) -> str:
        """``"released by qa.rome on 2026-12-01 14:03 UTC"`` (§11.50); an imported one adds
        ``" (signed on the source registry; imported by admin on 2026-12-02 09:00 UTC)"``."""
        text = f"{self.meaning} by {self.username} on {_minute(self.signed_at)} UTC"
        if self.imported_by is not None:
            when = "" if self.imported_at is None else f" on {_minute(self.imported_at)} UTC"
            text += f" (signed on the source registry; imported by {self.imported_by}{when})"
        return text


def _minute(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return f"{when.astimezone(dt.UTC):%Y-%m-%d %H:%M}"


class SignatureStore(GmpStore):
    """Password-verified electronic signatures bound to a hash of the signed record."""

    def _check_signer(
        self,
        actor: Actor,
        password: Any,
        *,
        site: str,
        action: str,
        table: str,
        key: str,
        study_id: str | None,
        not_by: str | None = None,
    ) -> None:
        """Refuse (audited) unless ``actor`` is a ``qa`` user of ``site`` (not ``not_by``)
        whose re-entered ``password`` is right. Call before the write transaction."""
        from immunoreset.registry.logins import authenticate

        why = None
        if actor.role != "qa":
            why = "only a user with the qa role may sign"
        elif not actor.can_see_site(site):
            why = f"not a member of site {site}"
        elif not_by is not None and actor.username == not_by:
            why = f"{not_by} raised it: approval needs a different user (four eyes)"
        if why is None:
            if not isinstance(password, str) or not password:
                raise InvalidInput("password", "***", "your password, re-entered to sign")
            result = authenticate(
                self.registry, actor.username, password, client=f"e-signature:{actor.username}"
            )
            if not (result.ok and result.username == actor.username):
                why = "signature refused: " + (result.message or "wrong password")
        if why is not None:
            self.registry.record_refusal(actor, table, key, f"{action}: {why}", study_id=study_id)
            raise PermissionDenied(actor.username, action, why)

    def _sign(
        self,
        conn: Connection,
        actor: Actor,
        *,
        meaning: str,
        table: str,
        key: str,
        content: Mapping[str, Any],
        study_id: str | None,
        now: dt.datetime,
    ) -> int:
        """Store the signature row (and its audit row) in ``conn``'s transaction; its id."""
        if meaning not in MEANINGS:
            raise InvalidInput("meaning", meaning, "one of " + ", ".join(MEANINGS))
        digest = content_sha256(content)
        sig_id = conn.execute(
            insert(signatures).values(
                username=actor.username,
                meaning=meaning,
                table_name=table,
                record_key=key,
                content_sha256=digest,
                signed_at=now,
            )
        ).inserted_primary_key[0]
        self._audit(
            conn,
            actor,
            "insert",
            signatures.name,
            f"{key}/signature/{sig_id}",
            study_id=study_id,
            new={"meaning": meaning, "table": table, "record": key, "sha256": digest},
            reason=f"electronic signature ({meaning}) of {table} {key}: password re-entered",
            now=now,
        )
        return int(sig_id)

    def _signature(self, conn: Connection, sig_id: int | None) -> Signature | None:
        if sig_id is None:
            return None
        row = conn.execute(select(signatures).where(signatures.c.id == sig_id)).mappings().first()
        if row is None:
            return None
        return Signature(
            id=row["id"],
            username=row["username"],
            meaning=row["meaning"],
            table_name=row["table_name"],
            record_key=row["record_key"],
            content_sha256=row["content_sha256"],
            signed_at=row["signed_at"],
            imported_by=row["imported_by"],
            imported_at=row["imported_at"],
        )
