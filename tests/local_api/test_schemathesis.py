"""schemathesis, a client we did not write, against the served platform API and its document.

Every operation of `build/payment-platform-<suffix>.openapi.json` (built here by the same
code generate.py runs) is called with requests generated from the document, with the API
key, and each answer is checked: its status is one the document declares
(status_code_conformance, so no undocumented 5xx), its body matches the declared schema,
its content type and required headers are the declared ones; and no answer is a 500, 502 or
504 (a function that crashed, returned an invalid answer or timed out).

Settings (the budget): 12 generated examples per operation, derandomized so CI runs the
same cases every time, no deadline (each example is a real HTTP request through a local
Lambda), positive data only (values the document allows; the handlers' own fuzzing, in
tests/handlers/test_fuzz.py, covers hostile bodies).
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from templates.openapi import build_openapi
from tests.local_api.conftest import PLATFORM, SERVED

pytestmark = SERVED

EXAMPLES_PER_OPERATION = 12
CHECKS = [
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def platform_schema(served):
    """The platform's OpenAPI document, loaded by schemathesis."""
    document = build_openapi(served.templates[PLATFORM], PLATFORM)
    schema = schemathesis.openapi.from_dict(document)
    schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])
    return schema


schema = schemathesis.pytest.from_fixture("platform_schema")


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_every_answer_is_declared_by_the_document(case, served):
    endpoint = served.endpoint_of(PLATFORM)
    base_url = f"{served.serve.apis[PLATFORM].base_url}/{endpoint.stage}"
    response = case.call(base_url=base_url, headers={"x-api-key": endpoint.api_key_value})
    case.validate_response(response, checks=CHECKS)
    assert response.status_code not in (500, 502, 504), response.text
