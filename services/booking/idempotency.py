"""Idempotent requests (AIP-155), written once for every RPC that takes a
`request_id`: claim the id in the request's transaction, replay the first
response if the id was seen, else store the response with the change.

The handler (the edge) says once, in a `ResponseCodec`, how a result becomes
its response and how a response is stored; the domain code passes results in
and gets responses back without knowing what they are made of.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from holdfast.platform.errors import DomainError, ErrorKind
from services.booking.domain import FirstRequest, RequestKey
from services.booking.repository import BookingRepository, Transaction

Result = TypeVar("Result")
Response = TypeVar("Response")


@dataclass(frozen=True)
class ResponseCodec(Generic[Result, Response]):
    """How an RPC's result becomes its response, and that response the
    bytes stored for a replay (and back)."""

    respond: Callable[[Result], Response]
    to_bytes: Callable[[Response], bytes]
    from_bytes: Callable[[bytes], Response]


def check_replay(first: FirstRequest, key: RequestKey) -> bytes:
    """The stored first response for `key`, or an error if the id was used otherwise."""
    if first.method != key.method or first.request_hash != key.request_hash:
        raise DomainError(
            ErrorKind.ALREADY_EXISTS,
            "REQUEST_ID_REUSED",
            "request_id was already used for a different request",
            {"request_id": key.request_id},
        )
    if first.response is None:  # pragma: no cover - the claim commits with its response
        raise DomainError(
            ErrorKind.ABORTED, "REQUEST_IN_PROGRESS", "retry shortly", retry_after=0.1
        )
    return first.response


@dataclass(frozen=True)
class IdempotentCall(Generic[Result, Response]):
    """One call of an idempotent RPC: its request id (None when the caller
    sent none: nothing is claimed or stored) and its `ResponseCodec`."""

    key: RequestKey | None
    codec: ResponseCodec[Result, Response]

    async def claim(self, tx: Transaction) -> Response | None:
        """Claims the request id in `tx`: None if this call is the first to
        use it, else the first call's response (a replay)."""
        if self.key is None:
            return None
        first = await tx.claim_request(self.key)
        return None if first is None else self._replay(first, self.key)

    async def seen(self, repository: BookingRepository, tenant_id: str) -> Response | None:
        """The first call's response if the request id was used (and
        committed) before; claims nothing."""
        if self.key is None:
            return None
        first = await repository.find_request(tenant_id, self.key.request_id)
        return None if first is None else self._replay(first, self.key)

    def respond(self, result: Result) -> tuple[Response, bytes | None]:
        """The response to `result`, and the bytes to store for a replay
        (None when there is no request id)."""
        response = self.codec.respond(result)
        return response, self.codec.to_bytes(response) if self.key is not None else None

    async def store(self, tx: Transaction, result: Result) -> Response:
        """The response to `result`, stored under the request id claimed in `tx`."""
        response = self.codec.respond(result)
        if self.key is not None:
            await tx.store_response(self.key, self.codec.to_bytes(response))
        return response

    async def run(
        self,
        repository: BookingRepository,
        tenant_id: str,
        actor: str,
        work: Callable[[Transaction], Awaitable[Result]],
    ) -> Response:
        """Runs `work` in a transaction that claims the request id first and
        stores the response with it; a replay runs nothing."""
        async with repository.transaction(tenant_id, actor) as tx:
            replayed = await self.claim(tx)
            if replayed is not None:
                return replayed
            return await self.store(tx, await work(tx))

    def _replay(self, first: FirstRequest, key: RequestKey) -> Response:
        return self.codec.from_bytes(check_replay(first, key))
