"""JSON log lines carrying the trace, span and correlation ids of the request:
the same ids an operator searches for in Jaeger."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace

from holdfast.platform.context import current_correlation_id

# One line per request served (gRPC call or HTTP request), at INFO.
access_log = logging.getLogger("holdfast.access")

# Attributes every LogRecord has; anything else passed via `extra=` is logged.
# Also left out: uvicorn's terminal-coloured copy of each message.
_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# For what orjson refuses (an integer past 64 bits): made once, as
# json.dumps(..., default=str) builds a new encoder for every line.
_FALLBACK_ENCODER = json.JSONEncoder(default=str)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        correlation_id = current_correlation_id()
        if correlation_id:
            entry["correlation_id"] = correlation_id
        fields = record.__dict__
        for key in fields.keys() - _STANDARD_ATTRS:
            if not key.startswith("_"):
                entry[key] = fields[key]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # orjson: a third of a log line's cost with the standard encoder,
        # and a line is logged for every request served.
        try:
            return orjson.dumps(entry, default=str).decode()
        except orjson.JSONEncodeError:
            return _FALLBACK_ENCODER.encode(entry)


class TurnBatchedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes the lines logged in one turn of the event loop together, at the
    start of the next turn: one write instead of one per line (a system
    call per request served was a twentieth of a cached read's CPU). A
    warning or worse, a line logged outside the loop's thread, or a pending
    batch past 64 kB is written at once, after the lines before it. A
    process killed outright loses at most the lines of its last turn."""

    _MAX_PENDING = 64 * 1024

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        # Called with self.lock held (Handler.handle).
        try:
            self._pending.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        self._pending_bytes += len(self._pending[-1])
        loop = _running_loop()
        if (
            loop is None
            or record.levelno >= logging.WARNING
            or self._pending_bytes > self._MAX_PENDING
        ):
            self._write_pending()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._scheduled = False
            self._write_pending()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        try:
            self.stream.write("\n".join(self._pending) + "\n")
            self.stream.flush()
        except Exception:
            # As StreamHandler does: report it, never raise into the caller.
            sys.stderr.write("--- logging error: lines could not be written\n")
        finally:
            self._pending.clear()
            self._pending_bytes = 0

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()
        super().flush()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any (none in a library's
    helper thread: its lines are written at once)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def configure_logging(service: str, level: str = "INFO", access: bool = True) -> None:
    """Sends JSON lines to stderr; replaces any handlers set before. `access`
    False keeps the per-request lines out (errors are logged regardless)."""
    # The lines name no thread, process or source line, so records need not
    # look them up: the logging documentation's "Optimization" settings. The
    # source line alone (a frame walk) was a tenth of a logged call's cost.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = TurnBatchedHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access_log.setLevel(logging.NOTSET if access else logging.WARNING)
