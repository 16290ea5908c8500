"""Counters a parser fills while it reads, turned into a ``Report`` at the end.

Every format can list one feature more than once (versions, vendor pools, module blocks):
the counts of all its entries add up, which is what the license server will hand out.
"""

import re
from dataclasses import dataclass, field

from agent.usage import Checkout, FeatureUsage, Report

# A count in a tool's output. Longer digit runs are garbage (beyond any license count and the
# API's 2**31 - 1; int() even refuses 4301 digits): their lines are not read.
NUMBER = r"\d{1,9}(?!\d)"


@dataclass(slots=True)
class Tally:
    total: int = 0
    used: int = 0
    checkouts: list[Checkout] = field(default_factory=list)

    def add(self, counts: re.Match[str]) -> None:
        """Add the counts a parser's regex matched, with groups ``total`` and ``used``."""
        self.total += int(counts["total"])
        self.used += int(counts["used"])


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


def checkout_of(match: re.Match[str]) -> Checkout:
    """The checkout a parser's regex matched, with groups ``user``, ``host``, ``quantity``."""
    return Checkout(match["user"], match["host"], int(match["quantity"]))
