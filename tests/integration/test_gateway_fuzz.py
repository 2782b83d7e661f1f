"""Fuzzing the gateway from its own OpenAPI document (schemathesis): for every
operation, requests that fit the schema and requests that do not, with a key
that has every scope. No answer may be a 5xx, and every answer must be one
the document promises: a documented status, content type and body.

The gateway serves from the test's event loop, so schemathesis (synchronous,
over `requests`) runs in a thread against it. Examples are bounded and
derandomized: the same cases every run, in a few seconds. The SSE stream
never ends, so it is left to test_gateway_stream.

Schemathesis's check that schema-valid data is accepted is left out: much
of what the services refuse cannot be said in a schema (a cursor this
service did not issue, a time zone that does not exist, a window longer than
62 days, start after end), and those are rightly 422s.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateway.keys import SCOPES, KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.integration.conftest import running_gateway
from tests.support.gateway import key_for

EXAMPLES_PER_OPERATION = 20
FUZZ = hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def fuzz(base_url: str, headers: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The operations fuzzed, and what went wrong, by operation and mode."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=10)
    fuzzed: list[str] = []
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures[str(result.err())] = "the document does not describe it well enough to test"
            continue
        operation = result.ok()
        if operation.path.endswith("/stream"):
            continue
        fuzzed.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case[Any]) -> None:
                case.call_and_validate(
                    base_url=base_url,
                    headers=headers,
                    excluded_checks=[positive_data_acceptance],
                    timeout=10,
                )

            try:
                check()
            except (Exception, BaseExceptionGroup) as error:  # all are reported, not the first
                failures[f"{operation.label} ({mode.value})"] = _shortened(str(error))
    return fuzzed, failures


def _shortened(report: str, width: int = 300) -> str:
    """A failure report with its long lines (generated strings) cut."""
    return "\n".join(
        line if len(line) <= width else f"{line[:width]}..." for line in report.splitlines()
    )


async def test_every_answer_is_one_the_openapi_document_promises(
    migrated_database: str,
    booking_app: BookingApp,
    availability_app: AvailabilityApp,
    keys: KeyRepository,
    tenant: str,
) -> None:
    auth = await key_for(keys, tenant)
    # Limits high enough that the fuzzer tests the API, not the rate limiter.
    async with running_gateway(
        migrated_database,
        f"127.0.0.1:{booking_app.port}",
        f"127.0.0.1:{availability_app.port}",
        rate_limit_per_key=100_000,
        rate_limit_per_address=100_000,
    ) as gateway:
        fuzzed, failures = await asyncio.to_thread(fuzz, f"http://127.0.0.1:{gateway.port}", auth)

    assert "POST /v1/holds" in fuzzed
    assert len(fuzzed) >= 13, fuzzed
    assert not failures, "\n\n".join(f"== {name}\n{text}" for name, text in failures.items())


async def test_the_document_says_how_to_authenticate_and_what_errors_look_like(
    api: httpx.AsyncClient,
) -> None:
    document = (await api.get("/openapi.json")).json()

    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "http", "scheme": "bearer"}
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert operations
    for path, method, operation in operations:
        [requirement] = operation["security"]
        assert list(requirement) == ["ApiKey"], (path, method)
        assert [s for s in requirement["ApiKey"] if s in SCOPES] == requirement["ApiKey"]
        assert len(requirement["ApiKey"]) == 1, (path, method)
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == ["application/problem+json"], (path, status)
    hold = document["paths"]["/v1/holds"]["post"]
    assert hold["security"] == [{"ApiKey": ["holds:write"]}]
    [idempotency] = [p for p in hold["parameters"] if p["name"].lower() == "idempotency-key"]
    assert (idempotency["in"], idempotency["required"]) == ("header", True)
