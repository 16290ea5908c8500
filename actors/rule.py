"""The admission rule as a pure function: counters + requests → verdicts. No IO."""

from collections.abc import Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Counters:
    total: int
    used: int
    reserved: int
    booked_total: int

    def available(self) -> int:
        """Licenses left for a new booking."""
        return self.total - self.used - self.reserved - self.booked_total


@dataclass(frozen=True, slots=True)
class Verdict:
    admitted: bool
    available: int  # what was left at this request's turn (never negative)


def admit(counters: Counters, quantities: Sequence[int]) -> tuple[list[Verdict], Counters]:
    """Decide requests in order: each is admitted when
    ``booked_total + used + reserved + quantity <= total`` at its turn.

    Returns the verdicts and the counters after the admitted ones.
    """
    verdicts = []
    for quantity in quantities:
        available = counters.available()
        fits = quantity <= available
        verdicts.append(Verdict(fits, max(available, 0)))
        if fits:
            counters = replace(counters, booked_total=counters.booked_total + quantity)
    return verdicts, counters
