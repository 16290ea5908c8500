"""The tables of the usage results (``lmrpc usage history|refusals|by-user|checkouts``):
counters over time with a sparkline of peak use, refused demand, and who holds licenses
now. lmrpc.cli.presentation declares them as the views of those results; the commands
themselves are derived from the registry like every other."""

from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from lmrpc.cli.output import FeatureNames, titled_table

BARS = "▁▂▃▄▅▆▇█"
_COUNTERS = ("total", "used", "reserved", "booked", "peak_used")


def sparkline(values: Sequence[int | None], top: int) -> str:
    """One character per value, its height relative to ``top``; a space where unknown."""
    line = []
    for value in values:
        if value is None:
            line.append(" ")
        else:
            share = value / top if top > 0 else 0
            line.append(BARS[min(int(share * len(BARS)), len(BARS) - 1)])
    return "".join(line)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def history(result: Any, names: FeatureNames) -> RenderableType:
    peaks = [point["peak_used"] for point in result]
    top = max((point["total"] or 0 for point in result), default=0)
    line = Text(f"peak used  {sparkline(peaks, top)}  (of {top} at most)")
    table = titled_table("usage history", "t", *_COUNTERS)
    for point in result:
        table.add_row(point["t"], *(_cell(point[column]) for column in _COUNTERS))
    return Group(line, table)


def refusals(result: Any, names: FeatureNames) -> RenderableType:
    table = titled_table("refused demand", "t", "feature", "product.feature", "calls", "licenses")
    for row in result:
        table.add_row(
            row["t"],
            str(row["feature_id"]),
            row["product_feature"],
            str(row["refused_calls"]),
            str(row["refused_licenses"]),
        )
    return table


def by_user(result: Any, names: FeatureNames) -> RenderableType:
    table = titled_table("licenses checked out per user", "user", "feature", "quantity")
    for row in result:
        table.add_row(row["username"], row["product_feature"], str(row["quantity"]))
    return table


def checkouts(result: Any, names: FeatureNames) -> RenderableType:
    table = titled_table("checkouts", "user", "lead host", "quantity", "reported")
    for row in result:
        table.add_row(row["username"], row["lead_host"], str(row["quantity"]), row["reported_at"])
    return table
