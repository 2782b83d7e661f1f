"""Windowed resources set up over HTTP: rules in minutes, units, hours and
exceptions, read back from the window setup; bad fields named as sent;
scopes and other tenants refused."""

from __future__ import annotations

import uuid

import httpx
import pytest

from holdfast.tenancy import SCOPES
from holdfast.tenancy.keys import KeyRepository
from tests.support.gateway import RESOURCE, Call, key_for, problem_of

RULES = {
    "min_duration_minutes": 60,
    "max_duration_minutes": 180,
    "granularity_minutes": 15,
    "buffer_after_minutes": 15,
}
RULES_READ = {
    **RULES,
    "buffer_before_minutes": 0,
    "lead_time_minutes": 0,
    "price_period_minutes": 0,
}
SOME_ID = "9f0c5a52-3b7e-4a43-8a57-0c1d8f6e2b10"


async def restaurant(api: httpx.AsyncClient, auth: dict[str, str]) -> str:
    made = await api.post(
        "/v1/resources",
        json={**RESOURCE, "kind": "windowed", "window_rules": RULES},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    assert made.json()["kind"] == "windowed"
    resource_id: str = made.json()["id"]
    return resource_id


async def test_a_restaurant_is_set_up_and_read_back(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)
    rid = await restaurant(api, auth)
    slotted = await api.post("/v1/resources", json=RESOURCE, headers=auth)

    t4 = await api.post(f"/v1/resources/{rid}/units", json={"name": "T4", "size": 4}, headers=auth)
    t2 = await api.post(
        f"/v1/resources/{rid}/units",
        json={"name": "T2", "size": 2},
        headers={**auth, "Idempotency-Key": "unit-t2"},
    )
    t2_again = await api.post(
        f"/v1/resources/{rid}/units",
        json={"name": "T2", "size": 2},
        headers={**auth, "Idempotency-Key": "unit-t2"},
    )
    taken = await api.post(
        f"/v1/resources/{rid}/units", json={"name": "T4", "size": 6}, headers=auth
    )
    renamed = await api.patch(
        f"/v1/units/{t4.json()['id']}", json={"name": "Window", "size": 5}, headers=auth
    )
    retired = await api.post(f"/v1/units/{t2.json()['id']}/retire", headers=auth)
    rules = await api.put(
        f"/v1/resources/{rid}/window-rules", json={**RULES, "lead_time_minutes": 60}, headers=auth
    )
    weekly = {
        "weekly": [
            {"weekday": "friday", "ranges": [{"opens": "18:00", "closes": "01:00"}]},
            {"weekday": "monday", "ranges": [{"opens": "12:00", "closes": "15:00"}]},
        ]
    }
    hours = await api.put(f"/v1/resources/{rid}/hours", json=weekly, headers=auth)
    closed = await api.put(
        f"/v1/resources/{rid}/hours/exceptions/2030-12-24", json={"ranges": []}, headers=auth
    )
    special = await api.put(
        f"/v1/resources/{rid}/hours/exceptions/2030-12-31",
        json={"ranges": [{"opens": "19:00", "closes": "03:00"}]},
        headers=auth,
    )
    cleared = await api.delete(f"/v1/resources/{rid}/hours/exceptions/2030-12-24", headers=auth)
    read = await api.get(f"/v1/resources/{rid}/window-setup", headers=auth)

    assert slotted.json()["kind"] == "slotted"
    assert (t4.status_code, t4.json()["name"], t4.json()["active"]) == (201, "T4", True)
    assert (t2_again.status_code, t2_again.json()) == (201, t2.json())
    problem_of(taken, 409, "UNIT_EXISTS")
    assert (renamed.json()["name"], renamed.json()["size"]) == ("Window", 5)
    assert retired.json()["active"] is False
    assert rules.json() == {**RULES_READ, "lead_time_minutes": 60}
    assert [d["weekday"] for d in hours.json()["weekly"]] == ["monday", "friday"]
    assert closed.json()["exceptions"] == [{"date": "2030-12-24", "ranges": []}]
    assert len(special.json()["exceptions"]) == 2
    assert cleared.json()["exceptions"] == [
        {"date": "2030-12-31", "ranges": [{"opens": "19:00", "closes": "03:00"}]}
    ]
    body = read.json()
    assert body["resource"]["id"] == rid
    assert body["rules"] == {**RULES_READ, "lead_time_minutes": 60}
    assert [(u["name"], u["size"], u["active"]) for u in body["units"]] == [
        ("T2", 2, False),
        ("Window", 5, True),
    ]
    assert body["hours"] == cleared.json()


@pytest.mark.parametrize(
    ("method", "path", "body", "fields"),
    [
        (
            "PUT",
            "/window-rules",
            {**RULES, "min_duration_minutes": 240, "granularity_minutes": 7},
            ["granularity_minutes"],
        ),
        (
            "PUT",
            "/window-rules",
            {**RULES, "min_duration_minutes": 240},
            ["max_duration_minutes"],
        ),
        (
            "PUT",
            "/hours",
            {
                "weekly": [
                    {"weekday": "monday", "ranges": []},
                    {
                        "weekday": "monday",
                        "ranges": [
                            {"opens": "12:00", "closes": "15:00"},
                            {"opens": "14:00", "closes": "16:00"},
                        ],
                    },
                ]
            },
            ["weekly[1].ranges[1]", "weekly[1].weekday"],
        ),
        ("PUT", "/hours/exceptions/2030-02-30", {"ranges": []}, ["path.date"]),
        (
            "PUT",
            "/hours/exceptions/2030-12-24",
            {
                "ranges": [
                    {"opens": "10:00", "closes": "12:00"},
                    {"opens": "11:00", "closes": "13:00"},
                ]
            },
            ["ranges[1]"],
        ),
        ("DELETE", "/hours/exceptions/2030-02-30", None, ["path.date"]),
        ("POST", "/units", {"name": "T\n1", "size": 0}, ["name", "size"]),
    ],
)
async def test_bad_fields_are_named_as_sent(
    api: httpx.AsyncClient,
    keys: KeyRepository,
    tenant: str,
    method: str,
    path: str,
    body: dict[str, object] | None,
    fields: list[str],
) -> None:
    auth = await key_for(keys, tenant)
    rid = await restaurant(api, auth)

    answer = await api.request(method, f"/v1/resources/{rid}{path}", json=body, headers=auth)

    problem = problem_of(answer, 422, "INVALID_ARGUMENT")
    assert sorted(e["field"] for e in problem["errors"]) == sorted(fields), problem


async def test_windowed_rules_missing_are_named_in_the_body(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    auth = await key_for(keys, tenant)

    answer = await api.post("/v1/resources", json={**RESOURCE, "kind": "windowed"}, headers=auth)
    bad_rules = await api.post(
        "/v1/resources",
        json={
            **RESOURCE,
            "kind": "windowed",
            "window_rules": {**RULES, "max_duration_minutes": 30},
        },
        headers=auth,
    )

    assert problem_of(answer, 422)["errors"][0]["field"] == "window_rules"
    assert problem_of(bad_rules, 422)["errors"][0]["field"] == "window_rules.max_duration_minutes"


def routes(rid: str, uid: str) -> dict[str, list[Call]]:
    return {
        "availability:read": [Call("GET", f"/v1/resources/{rid}/window-setup")],
        "inventory:admin": [
            Call("PUT", f"/v1/resources/{rid}/window-rules", body=RULES),
            Call("POST", f"/v1/resources/{rid}/units", body={"name": "T9", "size": 2}),
            Call("PATCH", f"/v1/units/{uid}", body={"size": 3}),
            Call("POST", f"/v1/units/{uid}/retire"),
            Call("POST", f"/v1/units/{uid}/restore"),
            Call("PUT", f"/v1/resources/{rid}/hours", body={"weekly": []}),
            Call("PUT", f"/v1/resources/{rid}/hours/exceptions/2030-12-24", body={"ranges": []}),
            Call("DELETE", f"/v1/resources/{rid}/hours/exceptions/2030-12-24"),
        ],
    }


@pytest.mark.parametrize("scope", ["availability:read", "inventory:admin"])
async def test_a_key_without_the_scope_is_refused(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str, scope: str
) -> None:
    lacking = await key_for(keys, tenant, tuple(s for s in SCOPES if s != scope))

    for route in routes(SOME_ID, SOME_ID)[scope]:
        body = problem_of(await route.send(api, lacking), 403, "MISSING_SCOPE")
        assert scope in body["detail"], route


async def test_another_tenants_resource_and_units_are_not_found(
    api: httpx.AsyncClient, keys: KeyRepository, tenant: str
) -> None:
    owner = await key_for(keys, tenant)
    rid = await restaurant(api, owner)
    made = await api.post(
        f"/v1/resources/{rid}/units", json={"name": "T1", "size": 2}, headers=owner
    )
    intruder = await key_for(keys, f"t-{uuid.uuid4().hex[:12]}")

    answers = [
        (route, await route.send(api, intruder))
        for calls in routes(rid, made.json()["id"]).values()
        for route in calls
    ]
    after = await api.get(f"/v1/resources/{rid}/window-setup", headers=owner)

    wrong = [(r, a.status_code) for r, a in answers if a.status_code != 404]
    assert not wrong, wrong
    assert [u["name"] for u in after.json()["units"]] == ["T1"]
    assert after.json()["hours"] == {"weekly": [], "exceptions": []}
