"""Logging: plain lines or JSON lines (``LMRPC_LOG_FORMAT``), one line per call.

Call lines carry the request id, call id, method, cluster, outcome and duration; tokens and
params are never logged, and neither are SQL parameters or rows: storage errors reach the
log without them (storage/engine.py, storage/runner.py).
"""

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # annotations only: the agent configures logging without server modules
    from lmrpc import jsonrpc
    from lmrpc.identity import Identity

calls = logging.getLogger("lmrpc.calls")

_CALL_FIELDS = ("request_id", "call_id", "method", "cluster", "outcome", "duration_ms")
_NEEDS_QUOTES = re.compile(r'[\s="]')


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: getattr(record, k) for k in _CALL_FIELDS if hasattr(record, k)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


# The call lines of the request being answered, written together when it is answered.
_held: ContextVar[list[str] | None] = ContextVar("lmrpc_held_call_lines", default=None)


class _Lines(logging.StreamHandler[TextIO]):
    """stderr, where the call lines of one request are written together: a batch of 100
    calls makes one write instead of 100 (a write per line cost ≈ 10 % of its CPU)."""

    def emit(self, record: logging.LogRecord) -> None:
        held = _held.get()
        if held is None or record.name != calls.name:
            super().emit(record)
            return
        try:
            held.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)

    def write(self, lines: list[str]) -> None:
        self.acquire()
        try:
            self.stream.write("".join(lines))
            self.flush()
        finally:
            self.release()


@contextmanager
def call_lines() -> Iterator[None]:
    """Hold the call lines logged within (by this task and the tasks it starts) and write
    them together at the end."""
    lines: list[str] = []
    token = _held.set(lines)
    try:
        yield
    finally:
        _held.reset(token)
        if lines:
            for handler in logging.getLogger().handlers:
                if isinstance(handler, _Lines):
                    handler.write(lines)


def configure(log_format: str, level: str) -> None:
    handler = _Lines(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _plain(value: Any) -> Any:
    """A value as it goes into a plain line: a string a client chose (method, call id) is
    quoted and escaped when it holds a line break, a control character, a space, ``=`` or a
    quote, so no input can forge a line or a field."""
    if isinstance(value, str) and (not value.isprintable() or _NEEDS_QUOTES.search(value)):
        return json.dumps(value)
    return value


def log_call(
    request_id: str, identity: "Identity", call: "jsonrpc.Call", code: int | None, seconds: float
) -> None:
    """One line for one call. The record is made and handed to the handlers directly:
    ``Logger.info`` would also look up the caller's frame, which a call line never shows."""
    if not calls.isEnabledFor(logging.INFO):
        return
    fields = {
        "request_id": request_id,
        "call_id": None if call.is_notification else call.id,
        "method": call.method[:100],
        "cluster": identity.cluster_client_id,
        "outcome": "ok" if code is None else code,
        "duration_ms": round(seconds * 1000, 3),
    }
    message = " ".join(f"{k}={_plain(v)}" for k, v in fields.items())
    calls.handle(
        calls.makeRecord(calls.name, logging.INFO, __file__, 0, message, (), None, extra=fields)
    )
