"""The API contracts in Python: generated from protos/ by `make protos`.

Never edited by hand (`make test` fails when they are stale). The wire names
stay the protos' own: `holdfast.booking.v1.BookingService` is served from
`holdfast.contracts.booking.v1.booking_pb2_grpc`.
"""
