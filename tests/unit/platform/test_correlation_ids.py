import os
import re

from holdfast.platform.context import correlation_id_from, new_correlation_id


def test_new_ids_are_32_hex_digits_and_do_not_repeat() -> None:
    ids = {new_correlation_id() for _ in range(10_000)}

    assert len(ids) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_a_forked_worker_makes_ids_of_its_own() -> None:
    # Workers are forked from one parent (holdfast.platform.workers): were
    # the generator not reseeded in the child, both would make the same ids.
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, new_correlation_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        childs = pipe.read()

    assert re.fullmatch(r"[0-9a-f]{32}", childs)
    assert childs != new_correlation_id()


def test_a_valid_caller_id_is_kept_and_anything_else_replaced() -> None:
    assert correlation_id_from("order-7") == "order-7"
    assert correlation_id_from("café", None, "x" * 129) not in ("café", "x" * 129)
