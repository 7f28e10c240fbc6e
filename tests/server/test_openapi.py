"""The OpenAPI document is the contract: schemathesis drives every operation of the live TLS server with
generated requests and checks there are no server errors and no answers outside the document."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.support import Api, ServerFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 25  # per operation and mode: enough to reach every branch of these small inputs, quick in CI


def test_every_operation_and_error_is_documented(api: Api) -> None:
    doc = api.get("/openapi.json").json()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            # 401 everywhere: besides the signed-in operations, every one refuses a device credential.
            assert {"200", "401", "413", "429", "503"} <= codes, (method, path)
            assert operation["responses"]["200"]["content"]["application/json"]["schema"], (method, path)
            assert "Retry-After" in operation["responses"]["429"]["headers"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_meet_the_contract(make_server: ServerFactory, mode: GenerationMode) -> None:
    # Generous rate limits: this test is about answers matching the document, not about throttling.
    with make_server(requests_per_second=10_000, request_burst=100_000) as server, Api(server) as api:
        manager = api.user("manager", role="risk_manager")
        doc = api.get("/openapi.json").json()
        schema = schemathesis.openapi.from_dict(doc)
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # the document itself must be valid OpenAPI
            operations.append(result.ok())
        assert len(operations) == 16
        for operation in operations:
            raw = doc["paths"][operation.path][operation.method.lower()]
            if mode is GenerationMode.NEGATIVE and not raw.get("parameters") and "requestBody" not in raw:
                continue  # nothing the client sends can be malformed
            # Logout would end the session the other operations run in: it is exercised without a token.
            headers = {} if operation.path.endswith("/logout") else {"Authorization": f"Bearer {manager}"}
            _exercise(operation, mode, server.base_url, api, headers)


def _exercise(operation: Any, mode: GenerationMode, base_url: str, api: Api, headers: dict[str, str]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.call_and_validate(
            base_url=base_url, session=api.session, headers=headers, checks=CHECKS, verify=api.session.verify
        )

    run()
