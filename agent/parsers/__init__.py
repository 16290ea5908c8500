"""Parsers of the license tools' outputs (AGENT.md §5), keyed by the API's server types.

Each is a pure function from the tool's text to a ``Report``: tolerant of lines it does not
know and never raising on garbage (it returns what it could read, or ``{}``).
"""

from collections.abc import Callable

from agent.parsers import dsls, flexlm, lmx, lsdyna, olicense, rlm
from agent.usage import Report

PARSERS: dict[str, Callable[[str], Report]] = {
    "flexlm": flexlm.parse,
    "rlm": rlm.parse,
    "lsdyna": lsdyna.parse,
    "lmx": lmx.parse,
    "olicense": olicense.parse,
    "dsls": dsls.parse,
}


def parse(type_: str, text: str) -> Report:
    """The report in ``text`` printed by the tool of server type ``type_``."""
    try:
        parser = PARSERS[type_]
    except KeyError:
        raise ValueError(f"unknown license server type {type_!r}") from None
    return parser(text)
