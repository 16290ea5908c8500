"""LS-DYNA: ``lstc_qrun -s PORT@HOST -R``.

Quirks:
- program lines ``PROGRAM MM/DD/YYYY USED FREE MAX | QUEUE``; USED reads ``-`` for zero;
  the total is MAX;
- checkouts are listed below their program as ``user pid@host N``;
- a ``LICENSE GROUP USED FREE MAX | QUEUE`` line closes programs that share one pool: its
  USED and MAX apply to each program listed since the previous group line (each program
  line then shows only its own share).
"""

import re

from agent.parsers.tally import NUMBER, Tallies, Tally, checkout_of
from agent.usage import Report

_COUNTS = rf"(?P<used>-|{NUMBER})\s+(?P<free>{NUMBER})\s+(?P<max>{NUMBER})\s*\|"
_PROGRAM = re.compile(r"^(?P<name>\S+)\s+\d{1,2}/\d{1,2}/\d{4}\s+" + _COUNTS)
_GROUP = re.compile(r"^\s*LICENSE GROUP\s+" + _COUNTS)
_CHECKOUT = re.compile(rf"^\s+(?P<user>\S+)\s+\d+@(?P<host>\S+)\s+(?P<quantity>{NUMBER})\s*$")


def _used(value: str) -> int:
    return 0 if value == "-" else int(value)


def parse(text: str) -> Report:
    tallies = Tallies()
    grouped: list[Tally] = []  # programs since the last LICENSE GROUP line
    current: Tally | None = None
    for line in text.splitlines():
        if program := _PROGRAM.match(line):
            current = tallies[program["name"]]
            current.total += int(program["max"])
            current.used += _used(program["used"])
            grouped.append(current)
        elif group := _GROUP.match(line):
            for tally in grouped:
                tally.total, tally.used = int(group["max"]), _used(group["used"])
            grouped, current = [], None
        elif current is not None and (checkout := _CHECKOUT.match(line)):
            current.checkouts.append(checkout_of(checkout))
    return tallies.report()
