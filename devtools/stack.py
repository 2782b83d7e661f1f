"""The local stack: `python -m devtools up` (`make up`) and `... testenv` (`make test`).

Both need a Postgres and a Redis, which devtools.engines provides, configured
or embedded; `up` then migrates, runs the services of holdfast.registry (and,
without a Stripe key, the local fake Stripe) as child processes, seeds the
demo tenant and gives it an API key (devtools.demo). What runs where is
planned in devtools.plan, the children are started and watched by
devtools.processes, and the env file and banner are written by
devtools.banner.

This module supervises processes rather than serving requests, so it is plain
blocking code that reads top to bottom; Ctrl-C and SIGTERM both raise
KeyboardInterrupt, and on the way out (`finally`, an ExitStack) the children
are stopped in reverse order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

import grpc

from devtools.banner import ENV_FILE, print_banner, write_env_file
from devtools.demo import DEMO_KEY_FILE, ensure_demo_key, example_ids, seed_demo
from devtools.engines import TESTENV, UP, Engines, StackError, engines, stop_child, tail
from devtools.plan import (
    STRIPE_KEY_ENV,
    Service,
    Stack,
    add_port_arguments,
    check_ports,
    plan_stack,
)
from devtools.processes import start_service, wait_for_an_exit, wait_until_ready
from holdfast.migrate import migrate

READY_LINE = "holdfast is up"


# ---------------------------------------------------------------------------
# `python -m devtools testenv -- CMD ARGS...`


def testenv_main(argv: list[str]) -> int:
    if "--" in argv:
        split = argv.index("--")
        options, command = argv[:split], argv[split + 1 :]
    else:
        options, command = [], argv
    parser = argparse.ArgumentParser(
        prog="python -m devtools testenv",
        usage="python -m devtools testenv [--state-dir DIR] -- CMD [ARGS...]",
        description="Runs CMD with HOLDFAST_TEST_DATABASE_URL and HOLDFAST_TEST_REDIS_URL set,"
        " starting embedded engines for whichever is not set already.",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".state"))
    args = parser.parse_args(options)
    if not command:
        parser.error("give the command to run after --")

    try:
        with engines(TESTENV, args.state_dir.resolve()) as found:
            env = {
                **os.environ,
                TESTENV.database_url_env: found.database_url,
                TESTENV.redis_url_env: found.redis_url,
            }
            return _run_command(command, env)
    except KeyboardInterrupt:
        return 130
    except StackError as exc:
        print(f"python -m devtools testenv: {exc}", file=sys.stderr)
        return 1


def _run_command(command: list[str], env: dict[str, str]) -> int:
    try:
        child = subprocess.Popen(command, env=env)  # noqa: S603 - the caller's own command
    except OSError as exc:
        raise StackError(f"cannot run {command[0]}: {exc}") from exc
    # The terminal sends Ctrl-C to CMD too (it stays in our process group so
    # that `pytest --pdb` keeps the terminal), so we just wait for CMD to
    # finish before stopping the engines. A handler rather than SIG_IGN,
    # because an ignored SIGINT would be inherited by CMD's own children.
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    # SIGTERM is sent to us alone: pass it on.
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    try:
        return _exit_code(child.wait())
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exit_code(returncode: int) -> int:
    # Popen reports death by signal N as -N; shells report it as 128 + N.
    return 128 - returncode if returncode < 0 else returncode


# ---------------------------------------------------------------------------
# `python -m devtools up`


def up_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools up",
        description="Runs the local stack in the foreground: engines, migrations, the booking,"
        " availability and webhook services, the local fake Stripe (unless"
        f" {STRIPE_KEY_ENV} is set), the HTTP gateway, and a demo tenant with an API key."
        " Ctrl-C stops everything.",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".state"))
    add_port_arguments(parser)
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()

    # SIGTERM (docker stop, a supervisor) stops us exactly like Ctrl-C does.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        stack = plan_stack(args, os.environ)
        check_ports(stack)
        # The services' logs and the env file go here, engines embedded or not.
        state_dir.mkdir(parents=True, exist_ok=True)
        with engines(UP, state_dir) as found:
            print("migrating ...", flush=True)
            asyncio.run(migrate(found.database_url))
            return _run_services(found, state_dir, stack)
    except KeyboardInterrupt:
        print("holdfast stopped", flush=True)
        return 0
    except StackError as exc:
        print(f"python -m devtools up: {exc}", file=sys.stderr)
        return 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Stopping takes a few seconds; a second Ctrl-C must not cut it short and
    # leave Postgres or Redis running, so further signals are ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # os.write: print() is not safe here if the signal interrupted a print.
    os.write(sys.stdout.fileno(), b"\nstopping ...\n")
    raise KeyboardInterrupt


def _run_services(found: Engines, state_dir: Path, stack: Stack) -> int:
    """Starts the services, seeds the demo tenant and its API key, waits for a signal.

    All start at once (each needs only Postgres and Redis to start; they find
    each other when called) and are waited for in order, the gateway last (its
    readiness needs the others); however this ends, they are stopped in
    reverse order: the gateway, webhooks, availability, booking, the fake Stripe.
    """
    with contextlib.ExitStack() as cleanup:
        running: list[tuple[Service, subprocess.Popen[bytes]]] = []
        for service in stack.services():
            process = start_service(service, found, state_dir)
            cleanup.callback(stop_child, process)
            running.append((service, process))
        for service, process in running:
            wait_until_ready(service, process, state_dir)
        with grpc.insecure_channel(stack.booking.target) as channel:
            seeded = seed_demo(channel)
            example = example_ids(channel)
        demo_key = ensure_demo_key(found.database_url, state_dir / DEMO_KEY_FILE)
        cleanup.callback((state_dir / ENV_FILE).unlink, missing_ok=True)
        write_env_file(state_dir, found, stack, demo_key.token)
        print_banner(found, state_dir, stack, seeded, example, demo_key.created)
        print(READY_LINE, flush=True)
        service, returncode = wait_for_an_exit(running)
        raise StackError(
            f"the {service.name} service exited with code {returncode}:\n"
            f"{tail(state_dir / service.log_name)}"
        )
