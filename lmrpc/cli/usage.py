"""``lmrpc usage history|refusals|by-user|checkouts``: usage of licenses over time, refused
demand and who holds licenses now. Tables (with a sparkline of use) for people, ``--json``
for scripts, ``--csv`` for spreadsheets (history and refusals)."""

import csv
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from lmrpc.cli import output
from lmrpc.cli.session import Session, client_command

BARS = "▁▂▃▄▅▆▇█"
_AGO = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
HISTORY_COLUMNS = ("t", "total", "used", "reserved", "booked", "peak_used")
REFUSAL_COLUMNS = ("t", "feature_id", "product_feature", "refused_calls", "refused_licenses")
METHODS = ("usage.history", "usage.refusals", "usage.by_user", "features.checkouts")

app = typer.Typer(help="Usage history, refused demand and current checkouts.", no_args_is_help=True)


def moment(text: str, now: datetime | None = None) -> str:
    """An RFC 3339 timestamp from ``now``, an RFC 3339 string, or an age such as ``90m``,
    ``24h``, ``7d`` (that long ago)."""
    now = now or datetime.now(UTC)
    if text == "now":
        return now.isoformat().replace("+00:00", "Z")
    ago = _AGO.match(text)
    if ago:
        then = now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
        return then.isoformat().replace("+00:00", "Z")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise typer.BadParameter(f"{text!r}: give now, an age like 24h or 7d, or RFC 3339 with Z")
    return text


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


def _table(title: str, columns: Sequence[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    for column in columns:
        table.add_column(column, justify="left" if column in ("t", "user", "feature") else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def history_view(result: Any, names: output.FeatureNames) -> RenderableType:
    peaks = [point["peak_used"] for point in result]
    top = max((point["total"] or 0 for point in result), default=0)
    line = Text(f"peak used  {sparkline(peaks, top)}  (of {top} at most)")
    rows = [[point["t"], *(_cell(point[c]) for c in HISTORY_COLUMNS[1:])] for point in result]
    return Group(line, _table("usage history", HISTORY_COLUMNS, rows))


def refusals_view(result: Any, names: output.FeatureNames) -> RenderableType:
    rows = [[_cell(row[c]) for c in REFUSAL_COLUMNS] for row in result]
    return _table("refused demand", ("t", "feature", "product.feature", "calls", "licenses"), rows)


def by_user_view(result: Any, names: output.FeatureNames) -> RenderableType:
    rows = [[r["username"], r["product_feature"], str(r["quantity"])] for r in result]
    return _table("licenses checked out per user", ("user", "feature", "quantity"), rows)


def checkouts_view(result: Any, names: output.FeatureNames) -> RenderableType:
    rows = [[r["username"], r["lead_host"], str(r["quantity"]), r["reported_at"]] for r in result]
    return _table("checkouts", ("user", "lead host", "quantity", "reported"), rows)


def _given(**params: Any) -> dict[str, Any]:
    """The params the command line gave (options left out are not sent)."""
    return {name: value for name, value in params.items() if value is not None}


def _show(
    session: Session, result: Any, view: output.View, csv_columns: Sequence[str] | None
) -> None:
    """A table (or JSON), or CSV when ``csv_columns`` are given."""
    if csv_columns is None:
        session.show(result, view)
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(csv_columns)
    for row in result:
        writer.writerow([_cell(row[column]) for column in csv_columns])


_Since = Annotated[str, typer.Option(help="Start: now, an age (90m, 24h, 7d, 2w) or RFC 3339 UTC.")]
_Until = Annotated[str, typer.Option(help="End (exclusive), in the same forms as --since.")]
_Step = Annotated[
    int | None, typer.Option(min=1, help="Seconds per point (default: chosen by the server).")
]
_Csv = Annotated[bool, typer.Option("--csv", help="Print CSV with a header line.")]


@client_command
def history(
    session: Session,
    feature_id: Annotated[
        int | None, typer.Argument(help="The feature's id.", show_default=False)
    ] = None,
    product_feature: Annotated[
        str | None,
        typer.Option(help="PRODUCT.FEATURE of the token's cluster, instead of an id."),
    ] = None,
    since: _Since = "24h",
    until: _Until = "now",
    step: _Step = None,
    as_csv: _Csv = False,
) -> None:
    """A feature's total, used, reserved, booked and peak used over time.

    Example: lmrpc usage history 3 --since 7d --step 3600
    """
    if (feature_id is None) == (product_feature is None):
        raise typer.BadParameter("give a FEATURE_ID or --product-feature, not both")
    params = _given(
        since=moment(since),
        until=moment(until),
        step=step,
        feature_id=feature_id,
        product_feature=product_feature,
    )
    result = session.call("usage.history", params)
    _show(session, result, output.View(history_view), HISTORY_COLUMNS if as_csv else None)


@client_command
def refusals(
    session: Session,
    feature_id: Annotated[int | None, typer.Option(help="Only this feature.")] = None,
    since: _Since = "7d",
    until: _Until = "now",
    step: Annotated[
        int | None, typer.Option(min=3600, help="Seconds per row, a multiple of 3600.")
    ] = None,
    as_csv: _Csv = False,
) -> None:
    """Calls refused for lack of licenses (-32010) and the licenses they asked for.

    Example: lmrpc usage refusals --since 30d --step 86400
    """
    params = _given(since=moment(since), until=moment(until), step=step, feature_id=feature_id)
    result = session.call("usage.refusals", params)
    _show(session, result, output.View(refusals_view), REFUSAL_COLUMNS if as_csv else None)


@client_command
def by_user(
    session: Session,
    cluster_client_id: Annotated[str | None, typer.Option(help="Only this cluster.")] = None,
) -> None:
    """Licenses checked out now, summed per user and feature.

    Example: lmrpc usage by-user --cluster-client-id cluster-a
    """
    params = _given(cluster_client_id=cluster_client_id)
    session.show(session.call("usage.by_user", params), output.View(by_user_view))


@client_command
def checkouts(
    session: Session,
    feature_id: Annotated[int, typer.Argument(help="The feature's id.", show_default=False)],
) -> None:
    """Who holds a feature's licenses, as its cluster's agent last reported.

    Example: lmrpc usage checkouts 3
    """
    result = session.call("features.checkouts", {"feature_id": feature_id})
    session.show(result, output.View(checkouts_view))


def register(root: typer.Typer) -> None:
    app.command()(history)
    app.command()(refusals)
    app.command("by-user")(by_user)
    app.command()(checkouts)
    root.add_typer(app, name="usage")
