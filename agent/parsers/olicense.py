"""OLicense: ``olixtool -sv HOST:PORT``.

Quirks:
- module lines ``NAME; TYPE; COUNT; DATE TIME;`` give a feature's total; the same feature
  may appear in several application blocks: the counts add up;
- ``N FloatsLockedBy:`` adds N to the used count of the module line above it;
- ``user@host #N`` below it is a checkout of N licenses.
"""

import re

from agent.parsers.tally import NUMBER, Tallies, Tally, checkout_of
from agent.usage import Report

_MODULE = re.compile(rf"^\s*(?P<name>[^;\s]+);\s*[^;]*;\s*(?P<count>{NUMBER});\s*[^;]*;")
_LOCKED = re.compile(rf"^\s*(?P<used>{NUMBER})\s+FloatsLockedBy:")
_CHECKOUT = re.compile(rf"^\s*(?P<user>[^@\s]+)@(?P<host>\S+)\s+#(?P<quantity>{NUMBER})\s*$")


def parse(text: str) -> Report:
    tallies = Tallies()
    current: Tally | None = None
    for line in text.splitlines():
        if module := _MODULE.match(line):
            current = tallies[module["name"]]
            current.total += int(module["count"])
        elif current is None:
            continue
        elif locked := _LOCKED.match(line):
            current.used += int(locked["used"])
        elif checkout := _CHECKOUT.match(line):
            current.checkouts.append(checkout_of(checkout))
    return tallies.report()
