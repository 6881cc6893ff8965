"""Schemathesis against the app's own OpenAPI schema: no request answers 500, and every status
the API answers is documented for that operation (404, 403, 401, 422 …).

Runs as an admin (every site) and as a monitor (read-only, one site) with bearer tokens, on a
throwaway copy of the web tests' registry; writes the fuzzer makes stay there. Seeded and
bounded (``derandomize``, a few dozen examples per operation) to keep the suite fast.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from immunoreset.web import WebSettings, create_app
from immunoreset.web.security import issue_api_token
from tests.web.conftest import TODAY, build_registry


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    registry = build_registry(str(Path(tmp_path_factory.mktemp("fuzz")) / "registry.db"))
    app = create_app(
        registry,
        WebSettings(
            environment="production", secret_key="k" * 40, secure_cookies=False, today=TODAY
        ),
    )
    app.state.fuzz_tokens = {
        name: issue_api_token(registry, name, "schemathesis") for name in ("admin", "mona")
    }
    yield app
    registry.close()


@pytest.fixture(scope="module")
def fuzz_client(fuzz_app: Any) -> Iterator[TestClient]:
    with TestClient(fuzz_app, base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c


_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _check(case: Any, user: str, app: Any, client: TestClient) -> None:
    token = app.state.fuzz_tokens[user]
    headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    kwargs: dict[str, Any] = {"headers": headers, "params": case.query}
    if case.body is not None and not isinstance(case.body, schemathesis.core.NotSet):
        kwargs["json"] = case.body
    response = client.request(case.method, case.formatted_path, **kwargs)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    documented = set(case.operation.definition.raw.get("responses", {}))
    assert str(response.status_code) in documented or "default" in documented, (
        f"{case.method} {case.path} answered {response.status_code}, documented: "
        f"{sorted(documented)}; {response.text[:200]}"
    )


def _fuzz(user: str, app: Any, client: TestClient) -> int:
    """Run every operation of the schema; returns how many operations were fuzzed."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    n = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(operation.as_strategy())
        @_SETTINGS
        def run(case: Any) -> None:
            _check(case, user, app, client)

        run()
        n += 1
    return n


@pytest.mark.parametrize("user", ["admin", "mona"])
def test_api_never_answers_500_and_documents_every_status(
    user: str, fuzz_app: Any, fuzz_client: TestClient
) -> None:
    """Admin: every site visible (404 only for a study ID nobody has); monitor: read-only at
    one site (writes 403, other sites' patients 404)."""
    assert _fuzz(user, fuzz_app, fuzz_client) == len(
        [m for ms in fuzz_app.openapi()["paths"].values() for m in ms]
    )
