"""LM-X: ``lmxendutil -licstat -host HOST -port PORT``.

Quirks:
- ``Feature: NAME Version: X Vendor: V`` starts a feature; one feature may appear in several
  blocks (versions, key types): their counts add up;
- ``U of T license(s) used`` gives its counts;
- ``N license(s) used by user@host[_suffix] [ip]`` is a checkout; LM-X appends ``_suffix``
  to the host name (host names have no ``_``), which is dropped.
"""

import re

from agent.parsers.tally import Tallies, Tally
from agent.usage import Checkout, Report

_FEATURE = re.compile(r"^\s*Feature:\s+(?P<name>\S+)\s+Version:")
_COUNTS = re.compile(r"^\s*(?P<used>\d+) of (?P<total>\d+) license\(s\) used")
_CHECKOUT = re.compile(
    r"^\s*(?P<quantity>\d+) license\(s\) used by (?P<user>[^@\s]+)@(?P<host>[^_\s]+)"
)


def parse(text: str) -> Report:
    tallies = Tallies()
    current: Tally | None = None
    for line in text.splitlines():
        if feature := _FEATURE.match(line):
            current = tallies[feature["name"]]
        elif current is None:
            continue
        elif counts := _COUNTS.match(line):
            current.total += int(counts["total"])
            current.used += int(counts["used"])
        elif checkout := _CHECKOUT.match(line):
            current.checkouts.append(
                Checkout(checkout["user"], checkout["host"], int(checkout["quantity"]))
            )
    return tallies.report()
