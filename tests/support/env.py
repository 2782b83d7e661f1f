"""Where the test run's Redis is, and the key prefix that keeps this run's
keys apart from any other run (or a `make up`) on the same Redis."""

from __future__ import annotations

import os
import uuid

import pytest

REDIS_PREFIX = f"hftest-{uuid.uuid4().hex[:10]}"


def redis_url() -> str:
    url = os.environ.get("HOLDFAST_TEST_REDIS_URL")
    if not url:
        pytest.exit(
            "HOLDFAST_TEST_REDIS_URL is not set: run the tests with `make test`"
            " or `holdfast testenv -- pytest`",
            returncode=2,
        )
    return url
