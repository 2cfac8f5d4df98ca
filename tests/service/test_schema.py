"""schemathesis: property-based requests generated from the served /openapi.json find no 500 and
no response that breaks the spec (status documented, content type, body schema). Short enough
for CI: a few examples per operation, writes with the key into a private copy of the store."""

from __future__ import annotations

import json

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service.conftest import WRITE_KEY, auth  # noqa: E402

pytestmark = pytest.mark.slow
EXAMPLES = 12  # per operation: ~15 operations in well under a minute
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_schema(served_home, monkeypatch_module):
    from bookvec.service.app import create_app
    from bookvec.service.config import ServeConfig

    monkeypatch_module.setenv("BOOKVEC_HOME", str(served_home))
    app = create_app(ServeConfig(home=str(served_home), api_key=WRITE_KEY, max_pairs=1000))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def real_values(case, titles: list[str], pages: list[str], n: int) -> None:
    """Every other case asks about books and pages that exist, so answers with data (200s)
    are checked against their schemas too, not only the 404s random titles get."""
    if n % 2 or not case.query:
        return
    for i, name in enumerate(("title", "a", "b", "book", "like", "unlike")):
        if name in case.query:
            value = titles[(n + i) % len(titles)]
            case.query[name] = [value] if isinstance(case.query[name], list) else value
    for name in ("page", "link"):
        if name in case.query:
            case.query[name] = pages[n % len(pages)]


def checker(operation, calls: dict[str, int], titles: list[str], pages: list[str]):
    from hypothesis import given

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case) -> None:
        real_values(case, titles, pages, sum(calls.values()))
        response = case.call_and_validate(headers=auth(), checks=CHECKS)
        key = f"{operation.label} {response.status_code}"
        calls[key] = calls.get(key, 0) + 1

    return check


def test_no_server_error_and_every_response_matches_the_spec(api_schema, titles, link_names):
    # Each operation in turn through hypothesis (schemathesis's pytest plugin does not load
    # under this pytest); the failures of every operation are reported together.
    failures: list[str] = []
    calls: dict[str, int] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        try:
            checker(operation, calls, titles, link_names)()
        except Exception as exc:  # noqa: BLE001 - collected, then reported together
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert sum(calls.values()) >= 5 * len(operations), calls
    assert any(key.endswith(" 200") for key in calls), calls  # not only errors
    print(json.dumps(calls, indent=1))
