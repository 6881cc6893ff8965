"""plotly.min.js: gzip when accepted, a year of caching at the versioned address, ETag/304."""

from __future__ import annotations

import gzip

from immunoreset.web.assets import PLOTLY_JS, PLOTLY_URL, _accepts_gzip

RAW = PLOTLY_JS.read_bytes()


def test_patient_page_links_the_versioned_bundle(client, as_user) -> None:
    as_user("rosa")
    assert f'<script src="{PLOTLY_URL}"></script>' in client.get("/patients/RM-001").text
    assert "?v=" in PLOTLY_URL


def test_gzip_body_is_the_file_and_far_smaller(client) -> None:
    resp = client.get(PLOTLY_URL, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert resp.status_code == 200
    assert resp.headers["content-encoding"] == "gzip"
    assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert resp.headers["vary"] == "Accept-Encoding"
    assert resp.headers["content-type"].startswith("text/javascript")
    wire = int(resp.headers["content-length"])
    assert wire < len(RAW) / 3  # ≈ 4.8 MB → ≈ 1.4 MB
    assert resp.content == RAW  # httpx decoded the gzip body: byte for byte the bundle
    assert resp.headers.get_list("cache-control") == ["public, max-age=31536000, immutable"]


def test_identity_when_gzip_not_accepted(client) -> None:
    resp = client.get(PLOTLY_URL, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in resp.headers
    assert int(resp.headers["content-length"]) == len(RAW) and resp.content == RAW
    resp = client.get(PLOTLY_URL, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in resp.headers


def test_unversioned_address_is_cached_a_day(client) -> None:
    resp = client.get("/static/plotly.min.js")
    assert resp.headers.get_list("cache-control") == ["public, max-age=86400"]


def test_etag_gives_304(client) -> None:
    first = client.get(PLOTLY_URL, headers={"Accept-Encoding": "gzip"})
    again = client.get(
        PLOTLY_URL, headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    # the gzip and identity variants have different tags
    plain = client.get(PLOTLY_URL, headers={"Accept-Encoding": "identity"})
    assert plain.headers["etag"] != first.headers["etag"]


def test_gzip_stream_is_valid() -> None:
    from immunoreset.web.assets import _bodies

    raw, packed, _ = _bodies()
    assert gzip.decompress(packed) == raw == RAW


def test_accept_encoding_parsing() -> None:
    assert _accepts_gzip("gzip")
    assert _accepts_gzip("br, GZIP;q=0.5")
    assert _accepts_gzip("*")
    assert not _accepts_gzip("")
    assert not _accepts_gzip("br, deflate")
    assert not _accepts_gzip("gzip;q=0")
