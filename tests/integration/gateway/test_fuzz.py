"""Fuzzing the gateway from its own OpenAPI document with schemathesis, as
its command line runs it: every phase (the document's examples, coverage of
each parameter's edges, random requests that fit the schema and that do not,
and stateful sequences that follow the document's links: make a resource,
its slots, hold one, read, pay for or release the hold...) and every check.
Every answer must be one the document promises (status, headers, content
type, body, SSE events), schema-valid requests must be taken and invalid
ones refused, unsupported methods answered 405 with `Allow`, OPTIONS with
`Allow`, a missing key 401, and a deleted thing gone.

The one exception is in tests/support/schemathesis_hooks.py: requests
refused for a rule the document states in words because JSON Schema cannot
(start before end, a cursor the service issued...), each checked narrowly.

The gateway serves from the test's event loop; schemathesis runs beside it
as three processes at once (see PARTS), with a fixed seed (the same cases every run) and a bounded
number of examples, small enough for every `make test` (the coverage phase,
every case the document defines, is always whole):
HOLDFAST_FUZZ_EXAMPLES (default 5 per operation),
HOLDFAST_FUZZ_STATEFUL_SCENARIOS (default 20) and HOLDFAST_FUZZ_STATEFUL_STEPS
(default 10) raise them for a longer hunt, e.g.

    HOLDFAST_FUZZ_EXAMPLES=300 HOLDFAST_FUZZ_STATEFUL_SCENARIOS=200 \
    HOLDFAST_FUZZ_STATEFUL_STEPS=200 \
        python -m devtools testenv -- pytest tests/integration/gateway/test_fuzz.py
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import httpx

from holdfast.tenancy import SCOPES
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.gateway import key_for
from tests.support.services import running_gateway

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = int(os.environ.get("HOLDFAST_FUZZ_EXAMPLES", "5"))
STATEFUL_STEPS = int(os.environ.get("HOLDFAST_FUZZ_STATEFUL_STEPS", "10"))
STATEFUL_SCENARIOS = int(os.environ.get("HOLDFAST_FUZZ_STATEFUL_SCENARIOS", "20"))

CONFIG = """
base-url = "{base_url}"
seed = 20311
# One at a time: hypothesis's lambda descriptions are not thread-safe (a
# worker thread once failed in its AST cache).
workers = 1
request-timeout = 10
# An availability stream never ends: its first event is read, then it is left.
max-stream-events = 1
hooks = "tests.support.schemathesis_hooks"
headers = {{ Authorization = "{authorization}" }}

[generation]
max-examples = {examples}

# No crash store in the working tree: the seed makes every run the same.
[cache]
enabled = false

[checks]
# 413: a body past the gateway's size limit is refused before it is read,
# as surely as a 422 (the document lists it).
negative_data_rejection.expected-statuses = [
    400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429
]

# A resumed stream with nothing new sends heartbeats only (comments, not
# events): it is read for a second, then left.
[[operations]]
include-name = "GET /v1/resources/{{resource_id}}/availability/stream"
request-timeout = 1.0

[phases.stateful]
max-steps = {stateful_steps}

[phases.stateful.generation]
max-examples = {scenarios}
"""


# The run in three processes at once, each one schemathesis (its threads
# are not safe to use, see `workers`): the largest operations' cases, the
# other operations' cases, and the stateful sequences over every operation.
# Together: every phase over every operation, in half the time of one.
LARGEST = "^/v1/resources$"
PARTS = {
    "largest": ("examples,coverage,fuzzing", ["--include-path-regex", LARGEST]),
    "others": ("examples,coverage,fuzzing", ["--exclude-path-regex", LARGEST]),
    "stateful": ("stateful", []),
}


async def schemathesis_run(
    base_url: str, authorization: str, workdir: Path, part: str
) -> tuple[int, str]:
    phases, selection = PARTS[part]
    config = workdir / f"schemathesis-{part}.toml"
    config.write_text(
        CONFIG.format(
            base_url=base_url,
            authorization=authorization,
            examples=EXAMPLES,
            stateful_steps=STATEFUL_STEPS,
            scenarios=STATEFUL_SCENARIOS,
        )
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        # Replaced by the hooks' version, which knows the rules stated in words.
        "--exclude-checks",
        "positive_data_acceptance",
        "--phases",
        phases,
        *selection,
        "--report-dir",
        str(workdir / "report" / part),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def selected(report: str) -> tuple[int, int]:
    """`Selected: n/m` of a report: operations tested, of all."""
    match = re.search(r"Selected: (\d+)/(\d+)", report)
    assert match, report
    return int(match.group(1)), int(match.group(2))


async def test_every_answer_is_one_the_openapi_document_promises(
    migrated_database: str,
    booking_app: BookingApp,
    availability_app: AvailabilityApp,
    keys: KeyRepository,
    tenant: str,
    tmp_path: Path,
) -> None:
    auth = await key_for(keys, tenant)
    # Limits high enough that the fuzzer tests the API, not the rate limiter.
    async with running_gateway(
        migrated_database,
        f"127.0.0.1:{booking_app.port}",
        f"127.0.0.1:{availability_app.port}",
        rate_limit_per_key=100_000,
        rate_limit_per_address=100_000,
        sse_max_streams_per_key=1000,
    ) as gateway:
        runs = await asyncio.gather(
            *(
                schemathesis_run(
                    f"http://127.0.0.1:{gateway.port}", auth["Authorization"], tmp_path, part
                )
                for part in PARTS
            )
        )

    reports = dict(zip(PARTS, runs, strict=True))
    for code, report in reports.values():
        assert code == 0, report
    largest, others, stateful = (reports[name][1] for name in PARTS)
    assert "Stateful" in stateful, stateful
    assert selected(stateful) == (25, 25), stateful
    # Every operation's cases, each in one part.
    assert selected(largest)[0] + selected(others)[0] == 25, (largest, others)
    assert selected(largest)[0] >= 1, largest


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
