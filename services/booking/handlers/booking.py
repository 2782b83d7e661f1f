"""BookingService: holds, checkout, payments and bookings, proto in and out."""

from __future__ import annotations

import grpc

from holdfast.contracts.booking.v1 import (
    booking_pb2,
    booking_pb2_grpc,
)
from holdfast.platform import pagination
from holdfast.platform.context import current_actor, current_tenant
from holdfast.platform.validation import Violations, parse_id
from services.booking import convert
from services.booking.config import BookingSettings
from services.booking.domain import (
    HoldFilter,
    HoldRequest,
    RefundMode,
    WindowHoldRequest,
)
from services.booking.handlers.hold_requests import (
    asks_for_window,
    slots_request,
    window_request,
)
from services.booking.handlers.request_keys import request_key
from services.booking.idempotency import IdempotentCall
from services.booking.limits import (
    DEFAULT_REFUND_MODE,
    MAX_TEXT,
    BookingLimits,
    check_return_url,
)
from services.booking.payments.service import Payments
from services.booking.reservations import Reservations

REFUND_MODES = {
    booking_pb2.REFUND_MODE_UNSPECIFIED: DEFAULT_REFUND_MODE,
    booking_pb2.REFUND_MODE_FULL: RefundMode.FULL,
    booking_pb2.REFUND_MODE_NONE: RefundMode.NONE,
}


class BookingHandler(booking_pb2_grpc.BookingServiceServicer):
    def __init__(
        self,
        reservations: Reservations,
        payments: Payments,
        settings: BookingSettings,
        pages: pagination.PageTokens,
    ) -> None:
        self._reservations = reservations
        self._payments = payments
        self._limits = BookingLimits.from_settings(settings)
        self._pages = pages

    async def CreateHold(
        self, request: booking_pb2.CreateHoldRequest, context: grpc.aio.ServicerContext
    ) -> booking_pb2.CreateHoldResponse:
        tenant = current_tenant()
        limits = self._limits
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        v.text("customer_ref", request.customer_ref, max_length=MAX_TEXT, required=False)
        asked_ttl = request.ttl.ToTimedelta() if request.HasField("ttl") else None
        if asked_ttl is not None and (problem := limits.hold_ttl.problem(asked_ttl)):
            v.add("ttl", problem)
        ttl = limits.hold_ttl.lifetime(asked_ttl)
        hold_request: HoldRequest | WindowHoldRequest | None
        if asks_for_window(request):
            hold_request = window_request(v, request, limits, resource_id, ttl)
        else:
            hold_request = slots_request(v, request, limits, resource_id, ttl)
        key = request_key(v, "CreateHold", request)
        v.raise_if_any()
        assert hold_request is not None
        return await self._reservations.create_hold(
            tenant,
            hold_request,
            IdempotentCall(key, convert.CREATE_HOLD),
            current_actor(),
        )

    async def GetHold(
        self, request: booking_pb2.GetHoldRequest, context: grpc.aio.ServicerContext
    ) -> booking_pb2.GetHoldResponse:
        tenant = current_tenant()
        hold_id = parse_id("hold_id", request.hold_id)
        hold = await self._reservations.get_hold(tenant, hold_id)
        return booking_pb2.GetHoldResponse(hold=convert.hold(hold))

    async def ReleaseHold(
        self, request: booking_pb2.ReleaseHoldRequest, context: grpc.aio.ServicerContext
    ) -> booking_pb2.ReleaseHoldResponse:
        tenant = current_tenant()
        v = Violations()
        hold_id = v.uuid("hold_id", request.hold_id)
        v.text("reason", request.reason, max_length=MAX_TEXT, required=False)
        v.raise_if_any()
        assert hold_id is not None
        hold = await self._reservations.release_hold(
            tenant, hold_id, request.reason, current_actor()
        )
        return booking_pb2.ReleaseHoldResponse(hold=convert.hold(hold))

    async def ConfirmHold(
        self, request: booking_pb2.ConfirmHoldRequest, context: grpc.aio.ServicerContext
    ) -> booking_pb2.ConfirmHoldResponse:
        tenant = current_tenant()
        v = Violations()
        hold_id = v.uuid("hold_id", request.hold_id)
        v.text("payment_ref", request.payment_ref, max_length=MAX_TEXT)
        v.raise_if_any()
        assert hold_id is not None
        hold = await self._reservations.confirm_hold(
            tenant, hold_id, request.payment_ref, current_actor()
        )
        return booking_pb2.ConfirmHoldResponse(hold=convert.hold(hold))

    async def StartCheckout(
        self, request: booking_pb2.StartCheckoutRequest, context: grpc.aio.ServicerContext
    ) -> booking_pb2.StartCheckoutResponse:
        tenant = current_tenant()
        v = Violations()
        hold_id = v.uuid("hold_id", request.hold_id)
        check_return_url(v, "success_url", request.success_url)
        check_return_url(v, "cancel_url", request.cancel_url)
        v.raise_if_any()
        assert hold_id is not None
        checkout = await self._payments.start_checkout(
            tenant, hold_id, request.success_url, request.cancel_url, current_actor()
        )
        return booking_pb2.StartCheckoutResponse(checkout=convert.checkout(checkout))

    async def ApplyPayment(
        self, request: booking_pb2.ApplyPaymentRequest, context: grpc.aio.ServicerContext
    ) -> booking_pb2.ApplyPaymentResponse:
        tenant = current_tenant()
        v = Violations()
        hold_id = v.uuid("hold_id", request.hold_id)
        v.text("payment_ref", request.payment_ref, max_length=MAX_TEXT)
        v.raise_if_any()
        assert hold_id is not None
        hold, refund = await self._payments.apply_payment(
            tenant, hold_id, request.payment_ref, current_actor()
        )
        if refund is None:
            return booking_pb2.ApplyPaymentResponse(
                hold=convert.hold(hold), outcome=booking_pb2.PAYMENT_OUTCOME_CONFIRMED
            )
        return booking_pb2.ApplyPaymentResponse(
            hold=convert.hold(hold),
            outcome=booking_pb2.PAYMENT_OUTCOME_REFUNDED,
            refund_id=refund.refund_id or "",
        )

    async def MarkBookingRefunded(
        self, request: booking_pb2.MarkBookingRefundedRequest, context: grpc.aio.ServicerContext
    ) -> booking_pb2.MarkBookingRefundedResponse:
        tenant = current_tenant()
        v = Violations()
        booking_id = v.uuid("booking_id", request.booking_id)
        v.text("payment_ref", request.payment_ref, max_length=MAX_TEXT)
        v.text("reason", request.reason, max_length=MAX_TEXT, required=False)
        v.text("refund_id", request.refund_id, max_length=MAX_TEXT, required=False)
        v.raise_if_any()
        assert booking_id is not None
        booking = await self._reservations.mark_refunded(
            tenant,
            booking_id,
            request.payment_ref,
            request.refund_id,
            request.reason,
            current_actor(),
        )
        return booking_pb2.MarkBookingRefundedResponse(booking=convert.hold(booking))

    async def CancelBooking(
        self, request: booking_pb2.CancelBookingRequest, context: grpc.aio.ServicerContext
    ) -> booking_pb2.CancelBookingResponse:
        tenant = current_tenant()
        v = Violations()
        booking_id = v.uuid("booking_id", request.booking_id)
        v.text("reason", request.reason, max_length=MAX_TEXT, required=False)
        mode = REFUND_MODES.get(request.refund)
        if mode is None:
            v.add("refund", "must be REFUND_MODE_FULL or REFUND_MODE_NONE")
        v.raise_if_any()
        assert booking_id is not None
        assert mode is not None
        booking, refund = await self._payments.cancel_booking(
            tenant, booking_id, request.reason, mode, current_actor()
        )
        return booking_pb2.CancelBookingResponse(
            booking=convert.hold(booking), refund=convert.refund(refund) if refund else None
        )

    async def GetBooking(
        self, request: booking_pb2.GetBookingRequest, context: grpc.aio.ServicerContext
    ) -> booking_pb2.GetBookingResponse:
        tenant = current_tenant()
        booking_id = parse_id("booking_id", request.booking_id)
        booking = await self._reservations.get_hold(tenant, booking_id, "booking")
        return booking_pb2.GetBookingResponse(booking=convert.hold(booking))

    async def ListBookings(
        self, request: booking_pb2.ListBookingsRequest, context: grpc.aio.ServicerContext
    ) -> booking_pb2.ListBookingsResponse:
        tenant = current_tenant()
        v = Violations()
        size = pagination.page_size(v, request.page_size)
        statuses = []
        for i, raw in enumerate(request.statuses):
            status = convert.read_hold_status(raw)
            if status is None:
                v.add(f"statuses[{i}]", "must be a known status other than UNSPECIFIED")
            else:
                statuses.append(status)
        resource_id = v.uuid("resource_id", request.resource_id, required=False)
        filters = HoldFilter(tuple(sorted(set(statuses))), resource_id)
        fingerprint = [tenant, [s.value for s in filters.statuses], str(resource_id)]
        after = self._pages.decode(v, request.page_token, "ListBookings", fingerprint)
        v.raise_if_any()
        found = await self._reservations.list_holds(tenant, filters, after, size + 1)
        page, token = self._pages.split_page(
            found,
            size,
            lambda h: pagination.Cursor(h.created_at, str(h.id)),
            "ListBookings",
            fingerprint,
        )
        return booking_pb2.ListBookingsResponse(
            bookings=[convert.hold(h) for h in page], next_page_token=token
        )
