"""DSLS: ``DSLicSrv -admin`` with ``connect HOST PORT`` and ``getLicenseUsage -csv`` on stdin.

Quirks:
- a banner comes first, longer when the tool prints a warning; the CSV header row may be
  prefixed by the admin prompt (``admin >``);
- the header names its columns (``Feature``, ``Count``, ``Inuse``, ``User``, ``Host``,
  ``Tokens`` among others, in any case and order); the rows end at the next prompt or a
  row that does not fit the header;
- a feature has one row per user: the rows merge; its count and inuse repeat on each row;
  a feature nobody uses has one row with empty user and host;
- the host column may read ``node (pid)/ip``: the first word is the host; a checkout holds
  ``Tokens`` licenses (1 when the column is empty).
"""

import contextlib
import csv
import re

from agent.parsers.tally import NUMBER, Tallies
from agent.usage import Checkout, Report

_NUMBER = re.compile(NUMBER)
_PROMPT = re.compile(r"^\s*\w*\s*>\s*")
_REQUIRED = ("feature", "count", "inuse", "user", "host", "tokens")


def _columns(line: str) -> dict[str, int] | None:
    """The column index of each required name when ``line`` is the CSV header."""
    names = [name.strip().lower() for name in _PROMPT.sub("", line).split(",")]
    if not all(name in names for name in _REQUIRED):
        return None
    return {name: names.index(name) for name in _REQUIRED}


def parse(text: str) -> Report:
    lines = iter(text.splitlines())
    columns = next(filter(None, map(_columns, lines)), None)
    if columns is None:
        return {}
    tallies = Tallies()
    with contextlib.suppress(csv.Error):  # a garbled row ends the table like a short one
        for row in csv.reader(lines):  # the lines after the header
            if len(row) <= max(columns.values()):
                break
            cell = {name: row[index].strip() for name, index in columns.items()}
            if not (_NUMBER.fullmatch(cell["count"]) and _NUMBER.fullmatch(cell["inuse"])):
                break  # not a row of the table: never guess a count
            _add(tallies, cell)
    return tallies.report()


def _add(tallies: Tallies, cell: dict[str, str]) -> None:
    name = cell["feature"]
    if not name:
        return
    if name not in tallies:
        tallies[name].total = int(cell["count"])
        tallies[name].used = int(cell["inuse"])
    host = cell["host"].split()
    if cell["user"] and host:
        tokens = int(cell["tokens"]) if _NUMBER.fullmatch(cell["tokens"]) else 1
        tallies[name].checkouts.append(Checkout(cell["user"], host[0], tokens))
