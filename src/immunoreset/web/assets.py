"""The bundled ``plotly.min.js`` (≈ 4.8 MB), served gzip-compressed and cached for a year.

The pages link it as ``/static/plotly.min.js?v=<plotly version>`` (:data:`PLOTLY_URL`): the
version in the address changes whenever the installed plotly changes, so the file may be cached
as ``immutable`` for a year; an unversioned request still works and is cached for a day.
The gzip body (level 9, ≈ 1.4 MB) is compressed once per process, on the first request that
accepts gzip, and kept in memory; clients that do not accept gzip get the file as it is.
Responses carry a strong ``ETag`` (``If-None-Match`` → 304) and ``Vary: Accept-Encoding``.

Only this file is compressed here, not the pages: compressing HTML that carries a CSRF token
next to reflected input would open the BREACH side channel.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import threading
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response

__all__ = ["PLOTLY_JS", "PLOTLY_URL", "plotly_response"]

#: Cache lifetime of the versioned address (one year, as for fingerprinted assets).
IMMUTABLE = "public, max-age=31536000, immutable"
#: Cache lifetime of the unversioned address (one day).
DAILY = "public, max-age=86400"


def _plotly_js() -> Path:
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:  # pragma: no cover - plotly is a dependency
        raise RuntimeError("plotly is not installed")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


PLOTLY_JS = _plotly_js()
PLOTLY_VERSION = importlib.metadata.version("plotly")
PLOTLY_URL = f"/static/plotly.min.js?v={PLOTLY_VERSION}"

_lock = threading.Lock()
_built: tuple[bytes, bytes, str] | None = None


def _bodies() -> tuple[bytes, bytes, str]:
    """(raw, gzip, etag) of the bundle, built once per process (threads wait for the first)."""
    global _built
    if _built is None:
        with _lock:
            if _built is None:
                raw = PLOTLY_JS.read_bytes()
                packed = gzip.compress(raw, compresslevel=9, mtime=0)
                _built = (raw, packed, hashlib.sha256(raw).hexdigest()[:32])
    return _built


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else ""
            try:
                return float(q) > 0 if q else True
            except ValueError:
                return True
    return False


def plotly_response(request: Request) -> Response:
    """The bundle for ``request``: gzip when accepted, 304 when the client's copy is current."""
    raw, packed, etag = _bodies()
    gz = _accepts_gzip(request.headers.get("accept-encoding", ""))
    tag = f'"{etag}-gz"' if gz else f'"{etag}"'
    headers = {
        "Cache-Control": IMMUTABLE if request.query_params.get("v") else DAILY,
        "ETag": tag,
        "Vary": "Accept-Encoding",
    }
    if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
    return Response(packed if gz else raw, media_type="text/javascript", headers=headers)
