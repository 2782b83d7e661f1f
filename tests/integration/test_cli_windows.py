"""`holdfast resources create --windowed`, `units`, `hours` and `setup`
against a real booking service: what an operator types sets up a
restaurant, and a bad value is named on stderr."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any

import pytest

from holdfast.cli import main
from services.booking.server import BookingApp


async def holdfast(
    booking_app: BookingApp, tenant: str, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """Runs `holdfast argv` (in a thread: it runs its own event loop) against the service."""
    command = [*argv, "--target", f"127.0.0.1:{booking_app.port}", "--tenant", tenant]
    code = await asyncio.to_thread(main, command)
    out, err = capsys.readouterr()
    return code, out, err


async def test_a_restaurant_is_set_up_from_the_command_line(
    booking_app: BookingApp, tenant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*argv: str) -> Coroutine[Any, Any, tuple[int, str, str]]:
        return holdfast(booking_app, tenant, capsys, *argv)

    code, out, _ = await run(
        "resources", "create", "--name", "Bistro", "--time-zone", "Europe/Paris",
        "--price-minor", "1000", "--windowed", "--min-minutes", "60", "--max-minutes", "120",
        "--buffer-after", "15",
    )  # fmt: skip
    assert code == 0
    resource = json.loads(out)["resource"]
    assert resource["kind"] == "RESOURCE_KIND_WINDOWED"
    rid = resource["resourceId"]

    added = [
        await run("units", "add", rid, "--name", n, "--size", s)
        for n, s in (("T4", "4"), ("T2", "2"))
    ]
    t4 = json.loads(added[0][1])["unit"]["unitId"]
    changed = await run("units", "change", t4, "--name", "Window", "--size", "5")
    retired = await run("units", "retire", t4)
    listed = await run("units", "list", rid)
    hours = await run(
        "hours", "set", rid, "--day", "mon=12:00-15:00,18:00-23:00", "--day", "sat=18:00-01:00"
    )
    closed = await run("hours", "except", rid, "2030-12-24")
    special = await run("hours", "except", rid, "2030-12-31", "--ranges", "19:00-03:00")
    cleared = await run("hours", "clear", rid, "2030-12-24")
    shown = await run("setup", "show", rid)

    assert all(
        code == 0
        for code, _, _ in (*added, changed, retired, listed, hours, closed, special, cleared, shown)
    )
    assert json.loads(changed[1])["unit"]["name"] == "Window"
    assert listed[1].splitlines()[0].endswith("T2  size 2")
    assert listed[1].splitlines()[1].endswith("Window  size 5  (retired)")
    setup = json.loads(shown[1])
    assert setup["rules"]["maxDuration"] == "7200s"
    assert setup["rules"]["bufferAfter"] == "900s"
    assert setup["hours"]["weekly"] == [
        {
            "weekday": "WEEKDAY_MONDAY",
            "ranges": [
                {"opens": "12:00", "closes": "15:00"},
                {"opens": "18:00", "closes": "23:00"},
            ],
        },
        {"weekday": "WEEKDAY_SATURDAY", "ranges": [{"opens": "18:00", "closes": "01:00"}]},
    ]
    assert setup["hours"]["exceptions"] == [
        {"date": "2030-12-31", "ranges": [{"opens": "19:00", "closes": "03:00"}]}
    ]


async def test_bad_values_are_named(
    booking_app: BookingApp, tenant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await holdfast(
        booking_app, tenant, capsys,
        "resources", "create", "--name", "Bistro", "--price-minor", "1000", "--windowed",
        "--min-minutes", "90", "--max-minutes", "60", "--every-minutes", "7",
    )  # fmt: skip

    assert code == 1
    assert "INVALID_ARGUMENT" in err
    assert "window_rules.granularity: must divide a day" in err
    assert "window_rules.max_duration: must not be shorter than min_duration" in err
    with pytest.raises(SystemExit):
        main(["hours", "set", "x", "--day", "someday=12:00-13:00"])
    assert "is not DAY=HH:MM-HH:MM" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["holds", "create", "--resource", "x", "--window", "2030-05-03T19:30"])
    assert "is not START/END" in capsys.readouterr().err
