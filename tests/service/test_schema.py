"""schemathesis: property-based requests generated from the served /openapi.json find no 500 and
no response that breaks the spec (status documented, content type, body schema). Short enough
for CI: a few examples per operation, writes with the key into a private copy of the store."""

from __future__ import annotations

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


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_every_response_matches_the_spec(case):
    case.call_and_validate(headers=auth(), checks=CHECKS)
