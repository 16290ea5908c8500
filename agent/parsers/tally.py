"""Counters a parser fills while it reads, turned into a ``Report`` at the end.

Every format can list one feature more than once (versions, vendor pools, module blocks):
the counts of all its entries add up, which is what the license server will hand out.
"""

from dataclasses import dataclass, field

from agent.usage import Checkout, FeatureUsage, Report


@dataclass(slots=True)
class Tally:
    total: int = 0
    used: int = 0
    checkouts: list[Checkout] = field(default_factory=list)


class Tallies(dict[str, Tally]):
    """Feature name → its tally, created on first use."""

    def __missing__(self, name: str) -> Tally:
        tally = self[name] = Tally()
        return tally

    def report(self) -> Report:
        return {
            name: FeatureUsage(tally.total, tally.used, tuple(tally.checkouts))
            for name, tally in self.items()
        }
