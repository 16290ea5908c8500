"""What callers send to a feature actor, and the one-shot reply slot they wait on."""

from dataclasses import dataclass, field
from typing import Any

import outcome
import trio

from actors.transactions import BookingRequest


class Reply:
    """Filled once by the actor; the caller awaits it."""

    __slots__ = ("_event", "_outcome")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._outcome: outcome.Outcome[Any] | None = None

    def succeed(self, value: Any) -> None:
        if self._outcome is None:
            self._outcome = outcome.Value(value)
            self._event.set()

    def fail(self, error: BaseException) -> None:
        if self._outcome is None:
            self._outcome = outcome.Error(error)
            self._event.set()

    async def wait(self) -> Any:
        await self._event.wait()
        assert self._outcome is not None
        return self._outcome.unwrap()


@dataclass(slots=True)
class Book:
    """Bookings of one feature from one caller (one call, or the calls of a batch), answered
    together with their outcomes in order: a booking, or the DomainError refusing it."""

    requests: list[BookingRequest]
    reply: Reply = field(default_factory=Reply)
