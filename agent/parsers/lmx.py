"""LM-X: ``lmxendutil -licstat -host HOST -port PORT``.

Quirks:
- ``Feature: NAME Version: X Vendor: V`` starts a feature; one feature may appear in several
  blocks (versions, key types): their counts add up;
- ``U of T license(s) used`` gives its counts;
- ``N license(s) used by user@host[_suffix] [ip]`` is a checkout; LM-X appends ``_suffix``
  to the host name (host names have no ``_``), which is dropped.
"""

import re

from agent.parsers.tally import NUMBER, Tallies, checkout_of
from agent.usage import Report

_FEATURE = re.compile(r"^\s*Feature:\s+(?P<name>\S+)\s+Version:")
_COUNTS = re.compile(rf"^\s*(?P<used>{NUMBER}) of (?P<total>{NUMBER}) license\(s\) used")
_CHECKOUT = re.compile(
    rf"^\s*(?P<quantity>{NUMBER}) license\(s\) used by (?P<user>[^@\s]+)@(?P<host>[^_\s]+)"
)


def parse(text: str) -> Report:
    tallies = Tallies()
    name: str | None = None  # of the feature block being read
    for line in text.splitlines():
        if feature := _FEATURE.match(line):
            name = feature["name"]
        elif name is None:
            continue
        elif counts := _COUNTS.match(line):
            tallies[name].add(counts)
        elif (checkout := _CHECKOUT.match(line)) and name in tallies:
            tallies[name].checkouts.append(checkout_of(checkout))
    return tallies.report()
