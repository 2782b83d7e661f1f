"""The scheduling engine for windowed resources (tables, rooms, rentals): pure
arithmetic on time, no database, no protobuf, no I/O.

- `intervals`: half-open UTC intervals and their set arithmetic;
- `localtime`: how a local wall-clock time becomes an instant (the
  daylight-saving rules) and the start-time grid counted from local midnight;
- `hours`: a resource's weekly opening hours and dated exceptions, as open
  UTC intervals;
- `rules`: a resource's window rules, the buffered window a booking guards and
  why a requested window is not bookable;
- `starts`: the answers availability and holds need: bookable start times,
  each unit's free intervals, and the best free unit for a window.
"""
