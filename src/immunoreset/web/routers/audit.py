"""The audit trail: who changed what, when, from which value to which, and why.

A page at a time (newest first), filtered by patient, user, table and UTC day range, and the
same selection as CSV (``/audit.csv``, every matching entry up to :data:`CSV_MAX_ROWS`). Site
scoping is the repository's (:meth:`Registry.page_audit`): a ROME user never sees an entry of
an ERLANGEN patient. Stored values are JSON; the page shows them as "field: value" lines and an
update as old → new. In the CSV, a text cell that a spreadsheet would run as a formula gets a
leading ``'`` (:func:`immunoreset.registry.csvio.neutralise_cell`, as the registry's CSV export).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from immunoreset.errors import InvalidInput
from immunoreset.registry.csvio import neutralise_cell
from immunoreset.web.deps import PageNumber, RegistryDep, SiteScope
from immunoreset.web.rendering import render

__all__ = ["CSV_COLUMNS", "CSV_MAX_ROWS", "readable_value", "router"]

router = APIRouter(tags=["pages"])

PAGE_SIZE = 100
CSV_MAX_ROWS = 100_000
CSV_COLUMNS = (
    "id", "ts_utc", "username", "action", "table_name", "record_key", "study_id", "field",
    "old_value", "new_value", "reason",
)  # fmt: skip


def readable_value(raw: str | None) -> str | list[tuple[str, str]] | None:
    """A stored audit value for people: a record as ``[(field, value), …]``, a scalar as text."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return raw  # older entries and exports store plain text
    if isinstance(value, dict):
        return [(str(k).replace("_", " "), _scalar(v)) for k, v in value.items() if v is not None]
    return _scalar(value)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list | tuple):
        return ", ".join(_scalar(x) for x in v) or "none"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_scalar(x)}" for k, x in v.items())
    if isinstance(v, float):
        return f"{v:g}"
    return "" if v is None else str(v)


def _csv_cell(v: Any) -> Any:
    return neutralise_cell(v) if isinstance(v, str) else ("" if v is None else v)


def _day(name: str, text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(name, text, "a date as YYYY-MM-DD") from None


def _filters(
    study_id: str | None, user: str | None, table: str | None, since: str | None, until: str | None
) -> dict[str, Any]:
    f = {
        "study_id": (study_id or "").strip() or None,
        "username": (user or "").strip() or None,
        "table": (table or "").strip() or None,
        "since": _day("since", since),
        "until": _day("until", until),
    }
    if f["since"] and f["until"] and f["until"] < f["since"]:
        raise InvalidInput("until", f["until"].isoformat(), f"on or after since ({f['since']})")
    return f


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_page(
    request: Request,
    actor: SiteScope,
    registry: RegistryDep,
    page: PageNumber = 1,
    study_id: str | None = None,
    user: str | None = None,
    table: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> HTMLResponse:
    f = _filters(study_id, user, table, since, until)
    page = max(page, 1)
    entries, total = registry.page_audit(actor, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, **f)
    pages = max(1, -(-total // PAGE_SIZE))
    if page > pages:
        page = pages
        entries, total = registry.page_audit(
            actor, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, **f
        )
    users, tables = registry.audit_choices(actor)
    query = {
        k: v
        for k, v in {
            "study_id": f["study_id"],
            "user": f["username"],
            "table": f["table"],
            "since": since or None,
            "until": until or None,
        }.items()
        if v
    }
    shown = [
        {**e, "old": readable_value(e["old_value"]), "new": readable_value(e["new_value"])}
        for e in entries
    ]
    return render(
        request,
        "audit.html",
        {
            "entries": shown,
            "total": total,
            "page": page,
            "pages": pages,
            "first": (page - 1) * PAGE_SIZE + 1 if entries else 0,
            "last": (page - 1) * PAGE_SIZE + len(entries),
            "f": f,
            "since": since or "",
            "until": until or "",
            "users": users,
            "tables": tables,
            "query": urlencode(query),
        },
    )


@router.get("/audit.csv", include_in_schema=False)
def audit_csv(
    actor: SiteScope,
    registry: RegistryDep,
    study_id: str | None = None,
    user: str | None = None,
    table: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = Query(CSV_MAX_ROWS, ge=1, le=CSV_MAX_ROWS),
) -> StreamingResponse:
    """Every matching entry (newest first) as CSV; formula-like text cells neutralised."""
    f = _filters(study_id, user, table, since, until)
    entries, _ = registry.page_audit(actor, offset=0, limit=limit, **f)
    patients = sorted({e["study_id"] for e in entries if e["study_id"]})
    # an export of clinical values is itself audited (who took which patients' history)
    registry.record_export(
        actor, "csv", "web: audit trail CSV", patients, detail={"entries": len(entries)}
    )

    def rows() -> Iterator[str]:
        buf = io.StringIO()
        out = csv.writer(buf)
        out.writerow(CSV_COLUMNS)
        for e in entries:
            ts = e["ts"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            values = [e["id"], ts, *(e[c] for c in CSV_COLUMNS[2:])]
            out.writerow([_csv_cell(v) for v in values])
            if buf.tell() > 65536:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    name = f"audit-{f['study_id']}.csv" if f["study_id"] else "audit.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
