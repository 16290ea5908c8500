"""FlexLM: ``lmutil lmstat -c PORT@HOST -a``.

Quirks:
- a feature starts at ``Users of NAME:  (Total of T licenses issued;  Total of U licenses in
  use)``; the word may be singular (``license``) and NAME may contain ``:``, ``-``, ``_``;
- "Uncounted" features (``Users of NAME:  (Uncounted, node-locked)``) and features in error
  (``(Error: …)``) have no totals and are skipped, together with their checkout lines;
- checkout lines are indented, ``user host display [...](vVER) (server/port handle), start
  Day M/D H:MM[, N licenses]``; N is 1 when the tail is missing;
- error text such as "Cannot connect to license server" yields no feature.
"""

import re

from agent.parsers.tally import NUMBER, Tallies, Tally
from agent.usage import Checkout, Report

_FEATURE = re.compile(
    rf"^Users of (?P<name>.+?):\s+\(Total of (?P<total>{NUMBER}) licenses? issued;"
    rf"\s+Total of (?P<used>{NUMBER}) licenses? in use\)"
)
_CHECKOUT = re.compile(
    r"^\s+(?P<user>\S+)\s+(?P<host>\S+)\s.*\(v[^)]*\)\s*\([^)]*\),\s*start\b(?P<tail>.*)$"
)
_QUANTITY = re.compile(rf",\s*(?P<quantity>{NUMBER})\s+licenses?\b")


def parse(text: str) -> Report:
    tallies = Tallies()
    current: Tally | None = None
    for line in text.splitlines():
        if line.startswith("Users of "):
            current = None
            if feature := _FEATURE.match(line):
                current = tallies[feature["name"]]
                current.add(feature)
        elif current is not None and (checkout := _CHECKOUT.match(line)):
            tail = _QUANTITY.search(checkout["tail"])
            quantity = int(tail["quantity"]) if tail else 1
            current.checkouts.append(Checkout(checkout["user"], checkout["host"], quantity))
    return tallies.report()
