"""Schemathesis over the API's own OpenAPI schema, against a live uvicorn, dev server and worker.

Valid and invalid inputs for every operation (a bounded number of examples, a fixed
seed so CI is repeatable), sent with an admin token so requests reach Temporal.
Whatever comes in, no answer is a 5xx, and every answer matches the documented
status codes, content type and response schemas.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from starter.http.app import create_app
from starter.runtime.settings import Settings
from starter.security.auth import TokenStore
from tests.support.api import live_api, make_tokens

MAX_EXAMPLES = 12
TOKENS = make_tokens()
AUTH = TOKENS.header("admin")


@pytest.fixture(scope="module")
def api_base(temporal_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var = tmp_path_factory.mktemp("schemathesis")
    tokens_file = var / "tokens.yaml"
    tokens_file.write_text(TOKENS.yaml(), encoding="utf-8")
    with live_api(temporal_stack, tokens_file, log_file=var / "api.log") as base:
        yield base


# The schema comes from the app itself at collection time (building the app connects to nothing);
# the requests go to the live server. (schemathesis.pytest.from_fixture does not work with pytest 9.)
schema = schemathesis.openapi.from_dict(create_app(Settings(), tokens=TokenStore()).openapi())
schema.config.generation.update(max_examples=MAX_EXAMPLES)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_responses_match_the_schema(case: Any, api_base: str) -> None:
    case.call_and_validate(
        base_url=api_base, headers=AUTH, timeout=30,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance])
