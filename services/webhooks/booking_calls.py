"""The booking service's RPCs as the Stripe event handlers call them: in the
event's tenant, as the webhook service's actor, waiting for the booking
service to be reachable, within the configured timeout."""

from __future__ import annotations

from holdfast.contracts.booking.v1 import booking_pb2, booking_pb2_grpc
from holdfast.platform.caller import ACTOR_KEY
from holdfast.platform.context import TENANT_ID_KEY

ACTOR = "system:stripe-webhooks"


class BookingCalls:
    def __init__(self, booking: booking_pb2_grpc.BookingServiceAsyncStub, timeout: float) -> None:
        self._booking = booking
        self._timeout = timeout

    async def apply_payment(
        self, tenant: str, hold_id: str, payment_ref: str
    ) -> booking_pb2.ApplyPaymentResponse:
        response: booking_pb2.ApplyPaymentResponse = await self._booking.ApplyPayment(
            booking_pb2.ApplyPaymentRequest(hold_id=hold_id, payment_ref=payment_ref),
            metadata=_metadata(tenant),
            timeout=self._timeout,
            wait_for_ready=True,
        )
        return response

    async def release_hold(
        self, tenant: str, hold_id: str, reason: str
    ) -> booking_pb2.ReleaseHoldResponse:
        response: booking_pb2.ReleaseHoldResponse = await self._booking.ReleaseHold(
            booking_pb2.ReleaseHoldRequest(hold_id=hold_id, reason=reason),
            metadata=_metadata(tenant),
            timeout=self._timeout,
            wait_for_ready=True,
        )
        return response

    async def mark_booking_refunded(
        self, tenant: str, request: booking_pb2.MarkBookingRefundedRequest
    ) -> booking_pb2.MarkBookingRefundedResponse:
        response: booking_pb2.MarkBookingRefundedResponse = await self._booking.MarkBookingRefunded(
            request,
            metadata=_metadata(tenant),
            timeout=self._timeout,
            wait_for_ready=True,
        )
        return response


def _metadata(tenant: str) -> tuple[tuple[str, str], ...]:
    return ((TENANT_ID_KEY, tenant), (ACTOR_KEY, ACTOR))
