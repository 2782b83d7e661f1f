"""gRPC handlers: proto requests in, domain calls, proto responses out.

Each handler reads its request completely, checking it against the booking
service's limits (services/booking/limits.py), so that every bad field is
named in one INVALID_ARGUMENT answer before the domain sees it.
"""

from __future__ import annotations

import hashlib
import zoneinfo
from functools import cache

import grpc
from google.protobuf.message import Message

from holdfast.contracts.booking.v1 import (
    booking_pb2,
    booking_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
)
from holdfast.platform import pagination
from holdfast.platform.context import current_actor, current_tenant
from holdfast.platform.proto_time import read_time_range
from holdfast.platform.validation import Violations, parse_id
from services.booking import convert
from services.booking.config import BookingSettings
from services.booking.domain import (
    HoldFilter,
    HoldRequest,
    NewResource,
    NewSlot,
    RefundMode,
    RequestKey,
)
from services.booking.idempotency import IdempotentCall
from services.booking.inventory import Inventory
from services.booking.limits import (
    DEFAULT_REFUND_MODE,
    MAX_CAPACITY,
    MAX_PRICE_MINOR,
    MAX_TEXT,
    BookingLimits,
    check_count,
    check_each_once,
    check_return_url,
)
from services.booking.payments import Payments
from services.booking.reservations import Reservations

MAX_REQUEST_ID = 128
REFUND_MODES = {
    booking_pb2.REFUND_MODE_UNSPECIFIED: DEFAULT_REFUND_MODE,
    booking_pb2.REFUND_MODE_FULL: RefundMode.FULL,
    booking_pb2.REFUND_MODE_NONE: RefundMode.NONE,
}


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def request_key(violations: Violations, method: str, request: Message) -> RequestKey | None:
    """The AIP-155 key of a request: its request_id and a hash of everything else."""
    request_id: str = getattr(request, "request_id", "")
    if not request_id:
        return None
    violations.text("request_id", request_id, max_length=MAX_REQUEST_ID)
    body = type(request)()
    body.CopyFrom(request)
    body.ClearField("request_id")
    digest = hashlib.sha256(body.SerializeToString(deterministic=True)).digest()
    return RequestKey(request_id, method, digest)


class InventoryHandler(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(
        self, inventory: Inventory, settings: BookingSettings, pages: pagination.PageTokens
    ) -> None:
        self._inventory = inventory
        self._limits = BookingLimits.from_settings(settings)
        self._pages = pages

    async def CreateResource(
        self, request: inventory_pb2.CreateResourceRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.CreateResourceResponse:
        tenant = current_tenant()
        v = Violations()
        name = v.text("name", request.name, max_length=MAX_TEXT)
        if request.time_zone not in _time_zones():
            v.add("time_zone", "must be an IANA time zone name, e.g. Europe/Lisbon")
        if not request.HasField("price"):
            v.add("price", "is required")
        currency = v.currency("price.currency_code", request.price.currency_code)
        v.int_range("price.amount_minor", request.price.amount_minor, 0, MAX_PRICE_MINOR)
        v.int_range("default_capacity", request.default_capacity, 0, MAX_CAPACITY)
        key = request_key(v, "CreateResource", request)
        v.raise_if_any()
        new = NewResource(
            name=name.strip(),
            time_zone=request.time_zone,
            price_minor=request.price.amount_minor,
            currency=currency,
            default_capacity=request.default_capacity,
        )
        return await self._inventory.create_resource(
            tenant, new, IdempotentCall(key, convert.CREATE_RESOURCE), current_actor()
        )

    async def GetResource(
        self, request: inventory_pb2.GetResourceRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.GetResourceResponse:
        tenant = current_tenant()
        resource_id = parse_id("resource_id", request.resource_id)
        resource = await self._inventory.get_resource(tenant, resource_id)
        return inventory_pb2.GetResourceResponse(resource=convert.resource(resource))

    async def ListResources(
        self, request: inventory_pb2.ListResourcesRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListResourcesResponse:
        tenant = current_tenant()
        v = Violations()
        size = pagination.page_size(v, request.page_size)
        after = self._pages.decode(v, request.page_token, "ListResources", tenant)
        v.raise_if_any()
        found = await self._inventory.list_resources(tenant, after, size + 1)
        page, token = self._pages.split_page(
            found,
            size,
            lambda r: pagination.Cursor(r.created_at, str(r.id)),
            "ListResources",
            tenant,
        )
        return inventory_pb2.ListResourcesResponse(
            resources=[convert.resource(r) for r in page], next_page_token=token
        )

    async def CreateSlots(
        self, request: inventory_pb2.CreateSlotsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.CreateSlotsResponse:
        tenant = current_tenant()
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        limit = self._limits.max_slots_per_request
        check_count(v, "slots", len(request.slots), limit, "slot")
        new_slots: list[NewSlot] = []
        for i, spec in enumerate(request.slots[:limit]):
            window = v.time_range(f"slots[{i}].time_range", *read_time_range(spec.time_range))
            capacity = spec.capacity if spec.HasField("capacity") else None
            if capacity is not None:
                v.int_range(f"slots[{i}].capacity", capacity, 0, MAX_CAPACITY)
            if window:
                new_slots.append(NewSlot(window[0], window[1], capacity))
        check_each_once(v, "slots", [(s.starts_at, s.ends_at) for s in new_slots], "time range")
        key = request_key(v, "CreateSlots", request)
        v.raise_if_any()
        assert resource_id is not None
        return await self._inventory.create_slots(
            tenant,
            resource_id,
            new_slots,
            IdempotentCall(key, convert.CREATE_SLOTS),
            current_actor(),
        )

    async def ListSlots(
        self, request: inventory_pb2.ListSlotsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListSlotsResponse:
        tenant = current_tenant()
        v = Violations()
        resource_id = v.uuid("resource_id", request.resource_id)
        window = None
        if request.HasField("time_range"):
            window = v.time_range("time_range", *read_time_range(request.time_range))
        size = pagination.page_size(v, request.page_size)
        filters = [tenant, str(resource_id), str(window)]
        after = self._pages.decode(v, request.page_token, "ListSlots", filters)
        v.raise_if_any()
        assert resource_id is not None
        found = await self._inventory.list_slots(tenant, resource_id, window, after, size + 1)
        page, token = self._pages.split_page(
            found, size, lambda s: pagination.Cursor(s.starts_at, str(s.id)), "ListSlots", filters
        )
        return inventory_pb2.ListSlotsResponse(
            slots=[convert.slot(s) for s in page], next_page_token=token
        )

    async def UpdateSlotCapacity(
        self, request: inventory_pb2.UpdateSlotCapacityRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.UpdateSlotCapacityResponse:
        tenant = current_tenant()
        v = Violations()
        slot_id = v.uuid("slot_id", request.slot_id)
        v.int_range("capacity", request.capacity, 0, MAX_CAPACITY)
        v.raise_if_any()
        assert slot_id is not None
        slot = await self._inventory.update_capacity(
            tenant, slot_id, request.capacity, current_actor()
        )
        return inventory_pb2.UpdateSlotCapacityResponse(slot=convert.slot(slot))

    async def CloseSlot(
        self, request: inventory_pb2.CloseSlotRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.CloseSlotResponse:
        tenant = current_tenant()
        slot_id = parse_id("slot_id", request.slot_id)
        slot = await self._inventory.set_closed(tenant, slot_id, True, current_actor())
        return inventory_pb2.CloseSlotResponse(slot=convert.slot(slot))

    async def ReopenSlot(
        self, request: inventory_pb2.ReopenSlotRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ReopenSlotResponse:
        tenant = current_tenant()
        slot_id = parse_id("slot_id", request.slot_id)
        slot = await self._inventory.set_closed(tenant, slot_id, False, current_actor())
        return inventory_pb2.ReopenSlotResponse(slot=convert.slot(slot))


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
        most = limits.max_slots_per_hold
        check_count(v, "slot_ids", len(request.slot_ids), most, "slot")
        slot_ids = [v.uuid(f"slot_ids[{i}]", raw) for i, raw in enumerate(request.slot_ids[:most])]
        check_each_once(v, "slot_ids", slot_ids, "slot")
        v.int_range("quantity", request.quantity, 1, limits.max_quantity)
        v.text("customer_ref", request.customer_ref, max_length=MAX_TEXT, required=False)
        asked_ttl = request.ttl.ToTimedelta() if request.HasField("ttl") else None
        if asked_ttl is not None and (problem := limits.hold_ttl.problem(asked_ttl)):
            v.add("ttl", problem)
        key = request_key(v, "CreateHold", request)
        v.raise_if_any()
        assert resource_id is not None
        ttl = limits.hold_ttl.lifetime(asked_ttl)
        hold_request = HoldRequest(
            resource_id=resource_id,
            slot_ids=tuple(slot_id for slot_id in slot_ids if slot_id is not None),
            quantity=request.quantity,
            customer_ref=request.customer_ref,
            ttl=ttl,
        )
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
