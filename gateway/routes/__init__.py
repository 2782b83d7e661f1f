"""The `/v1` routes: authenticate, limit, translate, call, translate back.

No booking logic lives here: every decision is the gRPC services'. Each route
names the scope it needs; the tenant comes from the API key only. One module
a resource; a new route goes in its resource's module (or a new module
included below).
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.routes import availability_stream, bookings, holds, inventory, resources, windowed

router = APIRouter()
# In this order the OpenAPI document lists them.
for _part in (resources, availability_stream, holds, bookings, inventory, windowed):
    router.include_router(_part.router)
