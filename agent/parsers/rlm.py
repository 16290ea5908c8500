"""RLM: ``rlmutil rlmstat -c PORT@HOST -a -p``.

Quirks:
- the pool status lists a feature as a line ``NAME vX.Y`` followed by ``count: T,
  # reservations: R, inuse: U, exp: ...``; one server may serve several vendor pools, and
  one feature may be listed once per version: their counts add up;
- checkouts are in the usage status below: ``NAME vX.Y: user@host N/M at MM/DD HH:MM
  (handle: ...)`` with N the licenses held; checkouts of a feature the pool status did not
  list are ignored.
"""

import re

from agent.parsers.tally import NUMBER, Tallies, checkout_of
from agent.usage import Report

_FEATURE = re.compile(r"^(?P<name>\S+)\s+v\S+\s*$")
_COUNTS = re.compile(rf"^\s+count:\s*(?P<total>{NUMBER}),.*\binuse:\s*(?P<used>{NUMBER})")
_CHECKOUT = re.compile(
    rf"^(?P<name>\S+)\s+v\S+:\s+(?P<user>[^@\s]+)@(?P<host>\S+)\s+(?P<quantity>{NUMBER})/\d+\s+at\b"
)


def parse(text: str) -> Report:
    tallies = Tallies()
    listed: str | None = None
    for line in text.splitlines():
        if feature := _FEATURE.match(line):
            listed = feature["name"]
        elif listed is not None and (counts := _COUNTS.match(line)):
            tallies[listed].add(counts)
            listed = None
        elif (checkout := _CHECKOUT.match(line)) and checkout["name"] in tallies:
            tallies[checkout["name"]].checkouts.append(checkout_of(checkout))
        else:
            listed = None
    return tallies.report()
