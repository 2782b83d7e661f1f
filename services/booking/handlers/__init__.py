"""gRPC handlers: proto requests in, domain calls, proto responses out.

Each handler reads its request completely, checking it against the booking
service's limits (services/booking/limits.py), so that every bad field is
named in one INVALID_ARGUMENT answer before the domain sees it. One module a
service: `inventory` (InventoryService, whose windowed-resource calls are in
`windowed_inventory`), `booking` (BookingService).
"""

from services.booking.handlers.booking import BookingHandler
from services.booking.handlers.inventory import InventoryHandler

__all__ = ["BookingHandler", "InventoryHandler"]
