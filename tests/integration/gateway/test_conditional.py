"""Conditional availability reads over real HTTP: an answer's ETag, sent back
as If-None-Match, gets 304 (and a plain read the same answer again) without
a call to the availability service while nothing changed; any change makes
it stale; it never matches for another tenant, another window, or while the
gateway cannot follow the changes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.server import GatewayApp
from holdfast.tenancy.keys import KeyRepository
from services.availability.server import AvailabilityApp
from services.booking.server import BookingApp
from tests.support.availability import eventually, settled
from tests.support.booking import BookingClient
from tests.support.gateway import key_for, problem_of
from tests.support.redis_server import RedisServer
from tests.support.services import running_gateway
from tests.support.sse import WINDOW, hold


def _path(resource_id: str) -> str:
    return f"/v1/resources/{resource_id}/availability"


async def settled_tag(api: httpx.AsyncClient, resource_id: str, auth: dict[str, str]) -> str:
    """The answer's tag once it holds: the resource's last change has reached
    the gateway's stream reader."""

    async def probe() -> tuple[str, int]:
        first = await api.get(_path(resource_id), params=WINDOW, headers=auth)
        assert first.status_code == 200, first.text
        tag = first.headers.get("ETag", "")
        again = await api.get(
            _path(resource_id), params=WINDOW, headers={**auth, "If-None-Match": tag}
        )
        return tag, again.status_code

    tag, _ = await eventually(probe, lambda seen: seen[0] != "" and seen[1] == 304)
    return tag


def availability_calls(app: AvailabilityApp) -> float:
    """GetAvailability calls the availability service has answered."""
    return sum(
        sample.value
        for metric in app.metrics.registry.collect()
        if metric.name == "holdfast_grpc_requests"
        for sample in metric.samples
        if sample.name.endswith("_total") and "GetAvailability" in sample.labels["method"]
    )


@dataclass(frozen=True)
class Polled:
    """A resource of one slot whose answer's tag has settled on `api`."""

    api: httpx.AsyncClient
    resource_id: str
    slot_id: str
    tag: str
    auth: dict[str, str]  # the key the tag settled for


@pytest.fixture
async def tagged(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
) -> Polled:
    """On the session's gateway."""
    auth = await key_for(keys, tenant)
    resource, [slot] = await client.resource_with_slots(capacity=4)
    await settled(availability_app, db, tenant)
    tag = await settled_tag(api, resource.resource_id, auth)
    return Polled(api, resource.resource_id, slot.slot_id, tag, auth)


async def test_an_unchanged_answer_is_304_without_asking_the_availability_service(
    tagged: Polled, availability_app: AvailabilityApp
) -> None:
    api, auth, tag, path = tagged.api, tagged.auth, tagged.tag, _path(tagged.resource_id)

    calls = availability_calls(availability_app)
    unchanged = await api.get(path, params=WINDOW, headers={**auth, "If-None-Match": tag})
    asked_after = availability_calls(availability_app)
    elsewhere = await api.get(
        path,
        params={**WINDOW, "end": "2031-06-29T00:00:00Z"},
        headers={**auth, "If-None-Match": tag},
    )

    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["ETag"] == tag
    assert asked_after == calls
    # Another window of the same resource is another answer.
    assert elsewhere.status_code == 200
    assert elsewhere.headers["ETag"] != tag
    assert availability_calls(availability_app) == calls + 1


async def test_an_unchanged_answer_is_served_again_without_asking_the_availability_service(
    tagged: Polled, availability_app: AvailabilityApp
) -> None:
    api, auth, tag, path = tagged.api, tagged.auth, tagged.tag, _path(tagged.resource_id)
    first = await api.get(path, params=WINDOW, headers=auth)

    calls = availability_calls(availability_app)
    again = await api.get(path, params=WINDOW, headers=auth)
    asked = availability_calls(availability_app) - calls

    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["ETag"] == first.headers["ETag"] == tag
    assert asked == 0
    # A change makes it stale: the next plain read shows the hold.
    await hold(api, auth, tagged.resource_id, tagged.slot_id)
    changed = await eventually(
        lambda: api.get(path, params=WINDOW, headers=auth),
        lambda answer: answer.headers.get("ETag") not in (None, tag),
    )
    assert changed.json()["slots"][0]["held"] == 1


async def test_a_hold_makes_the_tag_stale_and_the_next_answer_shows_it(tagged: Polled) -> None:
    api, auth, before = tagged.api, tagged.auth, tagged.tag

    await hold(api, auth, tagged.resource_id, tagged.slot_id)

    async def conditional() -> httpx.Response:
        return await api.get(
            _path(tagged.resource_id), params=WINDOW, headers={**auth, "If-None-Match": before}
        )

    # 304 until the gateway reads the hold's change; then the first answer
    # under a new tag already shows the hold.
    changed = await eventually(conditional, lambda answer: answer.status_code != 304)
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] != before
    assert changed.json()["slots"][0]["held"] == 1
    assert changed.json()["slots"][0]["available"] == 3


FreshGateway = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def fresh_gateway(
    migrated_database: str, booking_app: BookingApp, availability_app: AvailabilityApp
) -> FreshGateway:
    """Starts a gateway of the test's own, reading the same stream as the
    services, when the test asks."""

    @asynccontextmanager
    async def start(**settings: object) -> AsyncIterator[httpx.AsyncClient]:
        async with (
            running_gateway(
                migrated_database,
                f"127.0.0.1:{booking_app.port}",
                f"127.0.0.1:{availability_app.port}",
                **settings,
            ) as gateway,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api,
        ):
            yield api

    return start


async def test_a_tag_of_one_tenant_never_matches_for_another(
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
    fresh_gateway: FreshGateway,
) -> None:
    # Made before the gateway starts: for it the resource has no change of
    # its own, the same as an unknown one of another tenant.
    resource, _ = await client.resource_with_slots(capacity=4)
    await settled(availability_app, db, tenant)
    owner = await key_for(keys, tenant)
    stranger = await key_for(keys, f"{tenant}-other")
    async with fresh_gateway() as api:
        tag = await settled_tag(api, resource.resource_id, owner)
        answer = await api.get(
            _path(resource.resource_id),
            params=WINDOW,
            headers={**stranger, "If-None-Match": tag},
        )

    assert answer.status_code == 404, answer.text


async def test_a_tag_of_another_gateway_process_does_not_match(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
    fresh_gateway: FreshGateway,
) -> None:
    # A restarted gateway cannot tell what it missed: its tags are all new.
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots(capacity=4)
    await settled(availability_app, db, tenant)
    tag = await settled_tag(api, resource.resource_id, auth)

    async with fresh_gateway() as restarted:
        answer = await restarted.get(
            _path(resource.resource_id), params=WINDOW, headers={**auth, "If-None-Match": tag}
        )

    assert answer.status_code == 200
    assert answer.headers.get("ETag") != tag


async def test_no_304_and_no_tag_while_the_stream_reader_is_down(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    availability_app: AvailabilityApp,
    gateway_app: GatewayApp,
    db: asyncpg.Pool,
) -> None:
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots(capacity=4)
    await settled(availability_app, db, tenant)
    tag = await settled_tag(api, resource.resource_id, auth)
    assert gateway_app.hub is not None
    await gateway_app.hub.stop()
    try:
        calls = availability_calls(availability_app)
        answer = await api.get(
            _path(resource.resource_id), params=WINDOW, headers={**auth, "If-None-Match": tag}
        )
        asked = availability_calls(availability_app) - calls
    finally:
        gateway_app.hub.start()

    assert answer.status_code == 200
    assert "ETag" not in answer.headers
    assert asked == 1
    # Back, it follows the stream again from a new start: new tags.
    assert await settled_tag(api, resource.resource_id, auth) != tag


async def test_a_browser_page_may_send_if_none_match_and_read_the_tag(
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
    fresh_gateway: FreshGateway,
) -> None:
    auth = await key_for(keys, tenant)
    resource, _ = await client.resource_with_slots(capacity=4)
    await settled(availability_app, db, tenant)
    origin = {"Origin": "https://shop.example"}
    async with fresh_gateway(cors_origins="https://shop.example") as api:
        preflight = await api.options(
            _path(resource.resource_id),
            headers={
                **origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, if-none-match",
            },
        )
        tag = await settled_tag(api, resource.resource_id, auth)
        unchanged = await api.get(
            _path(resource.resource_id),
            params=WINDOW,
            headers={**auth, **origin, "If-None-Match": tag},
        )

    assert preflight.status_code == 200, preflight.text
    assert "if-none-match" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert unchanged.status_code == 304
    assert "etag" in unchanged.headers["Access-Control-Expose-Headers"].lower()


# Reads answered from memory are served in front of FastAPI's routing
# (gateway.quick_reads): they must carry what the route's answers carry,
# count against the rate limits exactly once, and leave every other read to
# the route.


@pytest.fixture
async def polled(
    keys: KeyRepository,
    client: BookingClient,
    tenant: str,
    availability_app: AvailabilityApp,
    db: asyncpg.Pool,
    fresh_gateway: FreshGateway,
    redis_server: RedisServer,
) -> AsyncIterator[Polled]:
    """A resource whose answer's tag has settled, on a gateway of the test's
    own whose limits count per hour: no refill while the test runs. On a
    Redis of its own, because buckets counted per hour would spend those of
    the other tests (all from one address) counted per second; its empty
    stream is all the gateway follows, so nothing changes meanwhile."""
    settler = await key_for(keys, tenant, rate_per_second=10_000)
    resource, [slot] = await client.resource_with_slots(capacity=4)
    await settled(availability_app, db, tenant)
    hourly = {"rate_limit_period_seconds": 3600, "rate_limit_per_address": 100_000}
    async with fresh_gateway(redis_url=redis_server.url, **hourly) as api:
        tag = await settled_tag(api, resource.resource_id, settler)
        yield Polled(api, resource.resource_id, slot.slot_id, tag, settler)


def requests_counted(metrics_text: str, status: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "holdfast_http_requests_total"
        and sample.labels["route"] == "/v1/resources/{resource_id}/availability"
        and sample.labels["status"] == status
    )


async def test_answers_from_memory_carry_what_the_routes_answers_carry(
    polled: Polled, availability_app: AvailabilityApp
) -> None:
    api, tag = polled.api, polled.tag
    before = (await api.get("/metrics")).text
    calls = availability_calls(availability_app)
    read = [
        await api.get(
            _path(polled.resource_id),
            params=WINDOW,
            headers={**polled.auth, "X-Request-Id": f"poll-{i}", **extra},
        )
        for i, extra in enumerate(({}, {"If-None-Match": f'W/"x", {tag}'}, {}))
    ]
    after = (await api.get("/metrics")).text

    assert [r.status_code for r in read] == [200, 304, 200]
    assert availability_calls(availability_app) == calls
    assert read[0].content == read[2].content != b""
    for i, answer in enumerate(read):
        assert answer.headers["ETag"] == tag
        assert answer.headers["Cache-Control"] == "private, no-cache"
        assert answer.headers["X-Request-Id"] == f"poll-{i}"
        assert answer.headers["RateLimit-Limit"] == "10000"
    assert read[0].headers["content-type"] == "application/json"
    # Each read counted once against the key, in order.
    remaining = [int(r.headers["RateLimit-Remaining"]) for r in read]
    assert remaining == [remaining[0], remaining[0] - 1, remaining[0] - 2]
    # And in the metrics, under the route's own name.
    assert requests_counted(after, "304") == requests_counted(before, "304") + 1
    assert requests_counted(after, "200") == requests_counted(before, "200") + 2


async def test_a_read_from_memory_is_refused_once_its_key_is_spent(
    polled: Polled, keys: KeyRepository, tenant: str
) -> None:
    spender = await key_for(keys, tenant, rate_per_second=3)
    conditional = {**spender, "If-None-Match": polled.tag}
    read = [
        await polled.api.get(_path(polled.resource_id), params=WINDOW, headers=conditional)
        for _ in range(4)
    ]

    assert [r.status_code for r in read] == [304, 304, 304, 429]
    assert [r.headers.get("RateLimit-Remaining") for r in read] == ["2", "1", "0", "0"]
    refused = problem_of(read[3], 429, "RATE_LIMITED")
    assert refused["correlation_id"] == read[3].headers["X-Request-Id"]
    assert int(read[3].headers["Retry-After"]) > 0


async def test_a_key_without_the_scope_never_gets_an_answer_from_memory(
    polled: Polled, keys: KeyRepository, tenant: str
) -> None:
    holds_only = await key_for(keys, tenant, scopes=("holds:write",))
    # Twice: the second time the gateway knows the key (cached).
    answers = [
        await polled.api.get(
            _path(polled.resource_id), params=WINDOW, headers={**holds_only, **extra}
        )
        for extra in ({}, {"If-None-Match": polled.tag}) * 2
    ]

    for answer in answers:
        problem_of(answer, 403, "MISSING_SCOPE")


async def test_reads_in_other_forms_get_the_routes_answer(polled: Polled) -> None:
    path = _path(polled.resource_id)
    start, end = f"start={WINDOW['start']}", f"end={WINDOW['end']}"
    forms = {
        # The same read written otherwise: the route answers it, the same.
        "upper-case id": (_path(polled.resource_id.upper()), f"{start}&{end}"),
        "an offset instead of Z": (path, f"start=2031-05-31T02:00:00%2B02:00&{end}"),
        "an extra parameter": (path, f"{start}&{end}&page=2"),
        "start twice": (path, f"start=2031-01-01T00:00:00Z&{start}&{end}"),
        # Not a read at all: the route's refusal.
        "a malformed start": (path, f"start=tomorrow&{end}"),
        "no end": (path, start),
    }
    answers = {
        form: await polled.api.get(
            f"{at}?{query}", headers={**polled.auth, "If-None-Match": polled.tag}
        )
        for form, (at, query) in forms.items()
    }

    assert {form: a.status_code for form, a in answers.items()} == {
        "upper-case id": 304,
        "an offset instead of Z": 304,
        "an extra parameter": 304,
        "start twice": 304,
        "a malformed start": 422,
        "no end": 422,
    }
    problem_of(answers["no end"], 422, "INVALID_ARGUMENT")
    problem_of(answers["a malformed start"], 422, "INVALID_ARGUMENT")
