"""The admission rule as a pure function: counters + requests → verdicts. No IO."""

from collections.abc import Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Counters:
    total: int
    used: int
    reserved: int
    booked_total: int

    def available(self, held: int = 0) -> int:
        """Licenses left for a new booking; ``held`` are promised to pending jobs."""
        return self.total - self.used - self.reserved - self.booked_total - held


@dataclass(frozen=True, slots=True)
class Verdict:
    admitted: bool
    available: int  # what was left at this request's turn (never negative)


def admit(
    counters: Counters, quantities: Sequence[int], held: int = 0
) -> tuple[list[Verdict], Counters]:
    """Decide requests in order: each is admitted when
    ``booked_total + used + reserved + held + quantity <= total`` at its turn.

    Returns the verdicts and the counters after the admitted ones.
    """
    verdicts = []
    for quantity in quantities:
        available = counters.available(held)
        fits = quantity <= available
        verdicts.append(Verdict(fits, max(available, 0)))
        if fits:
            counters = replace(counters, booked_total=counters.booked_total + quantity)
    return verdicts, counters
