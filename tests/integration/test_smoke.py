from holdfast.contracts.booking.v1 import booking_pb2
from tests.support.booking import BookingClient


async def test_hold_takes_capacity(client: BookingClient) -> None:
    resource, slots = await client.resource_with_slots(count=2, capacity=5)
    hold = await client.hold(resource.resource_id, [s.slot_id for s in slots], quantity=2)
    assert hold.status == booking_pb2.HOLD_STATUS_HELD
    assert hold.total.amount_minor == 2 * 2 * 2500
    slot = await client.slot(resource.resource_id, slots[0].slot_id)
    assert (slot.held, slot.available) == (2, 3)
