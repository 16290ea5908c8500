"""What the CLI prints: rich tables for people, the exact JSON-RPC result for scripts.

Results go to stdout, errors to stderr, so ``lmrpc … --json | jq`` sees only the result.
Whatever the server sends is shown as written, never as instructions to the terminal:
control characters are escaped (``\\x1b`` in tables, ``\\u001b`` in JSON), and text is
never read as rich markup.

Each view takes the result and a map of feature ids to ``product.feature`` names (jobs and
bookings name features by id; the names are looked up once, for tables only).
"""

import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from lmrpc.client import RpcFailure
from lmrpc.text import escape_control, has_control

FeatureNames = Mapping[int, str]
Render = Callable[[Any, FeatureNames], RenderableType]


@dataclass(frozen=True)
class View:
    """How to show one kind of result; ``feature_names``: it shows bookings' features;
    ``csv``: ``--csv`` prints its rows, one column per field of the result object."""

    render: Render
    feature_names: bool = False
    csv: bool = False


def _rows(result: Any) -> list[dict[str, Any]]:
    return result if isinstance(result, list) else [result]


def titled_table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", show_lines=False)
    for column in columns:
        numeric = column in _NUMERIC
        table.add_column(column, justify="right" if numeric else "left", no_wrap=numeric)
    return table


_NUMERIC = {"id", "config", "port", "grace", "total", "used", "reserved", "booked", "available"}
_NUMERIC |= {"job", "quantity", "interval", "peak_used", "calls", "licenses"}
PIPE_WIDTH = 200  # a table piped to a file or grep is not squeezed into 80 columns


def _time(value: Any) -> str:
    """RFC 3339 shortened to the second, for reading."""
    text = str(value or "")
    return text[:19].replace("T", " ") + "Z" if len(text) >= 19 else text


def available(feature: Mapping[str, Any]) -> int:
    """Licenses free to book: total - used - reserved - booked (negative when overused)."""
    return int(feature["total"] - feature["used"] - feature["reserved"] - feature["booked_total"])


def _product_feature(feature: Mapping[str, Any]) -> str:
    return f"{feature['product']['name']}.{feature['name']}"


def _available_text(feature: Mapping[str, Any]) -> Text:
    free = available(feature)
    return Text(str(free), style="green" if free > 0 else "bold red")


def _booking_line(booking: Mapping[str, Any], names: FeatureNames) -> str:
    feature = names.get(booking["feature_id"], f"feature {booking['feature_id']}")
    return f"{feature}: {booking['quantity']}"


def products(result: Any, names: FeatureNames) -> RenderableType:
    table = titled_table("products", "id", "name")
    for row in _rows(result):
        table.add_row(str(row["id"]), row["name"])
    return table


def license_servers(result: Any, names: FeatureNames) -> RenderableType:
    table = titled_table("license servers", "id", "config", "host", "port")
    for row in _rows(result):
        table.add_row(str(row["id"]), str(row["config_id"]), row["host"], str(row["port"]))
    return table


def features(result: Any, names: FeatureNames) -> RenderableType:
    table = titled_table(
        "features", "id", "product.feature", "config", "total", "used", "reserved", "booked"
    )
    table.add_column("available", justify="right", no_wrap=True)
    for row in _rows(result):
        table.add_row(
            str(row["id"]),
            _product_feature(row),
            str(row["config_id"]),
            *(str(row[field]) for field in ("total", "used", "reserved", "booked_total")),
            _available_text(row),
        )
    return table


def configurations(result: Any, names: FeatureNames) -> RenderableType:
    """One configuration: its fields, servers and features in full; several: one row each."""
    if isinstance(result, dict):
        head = Table.grid(padding=(0, 2))
        for field in ("id", "name", "cluster_client_id", "type", "grace_time"):
            head.add_row(Text(field, style="bold"), str(result[field]))
        return Group(
            head,
            license_servers(result["license_servers"], names),
            features(result["features"], names),
        )
    table = titled_table("configurations", "id", "name", "cluster", "type", "grace")
    table.add_column("license servers")
    table.add_column("features (available/total)")
    for row in result:
        table.add_row(
            str(row["id"]),
            row["name"],
            row["cluster_client_id"],
            row["type"],
            str(row["grace_time"]),
            "\n".join(f"{s['host']}:{s['port']}" for s in row["license_servers"]),
            "\n".join(
                f"{_product_feature(f)} {available(f)}/{f['total']}" for f in row["features"]
            ),
        )
    return table


def jobs(result: Any, names: FeatureNames) -> RenderableType:
    table = titled_table("jobs", "id", "slurm job", "cluster", "user", "lead host", "created")
    table.add_column("bookings")
    for row in _rows(result):
        table.add_row(
            str(row["id"]),
            row["slurm_job_id"],
            row["cluster_client_id"],
            row["username"],
            row["lead_host"],
            _time(row["created_at"]),
            "\n".join(_booking_line(b, names) for b in row["bookings"]),
        )
    return table


def bookings(result: Any, names: FeatureNames) -> RenderableType:
    table = titled_table("bookings", "id", "job", "feature", "quantity", "created")
    for row in _rows(result):
        feature_id = row["feature_id"]
        feature = f"{names[feature_id]} ({feature_id})" if feature_id in names else str(feature_id)
        table.add_row(
            str(row["id"]),
            str(row["job_id"]),
            feature,
            str(row["quantity"]),
            _time(row["created_at"]),
        )
    return table


def statuses(result: Any, names: FeatureNames) -> RenderableType:
    table = titled_table("cluster statuses", "cluster", "interval", "last reported", "healthy")
    for row in _rows(result):
        healthy = Text("yes", style="green") if row["is_healthy"] else Text("NO", style="bold red")
        table.add_row(
            row["cluster_client_id"], str(row["interval"]), _time(row["last_reported"]), healthy
        )
    return table


def deleted(what: str) -> View:
    return View(lambda result, names: Text(f"deleted {what} {result['deleted']}"))


def lines(result: Any, names: FeatureNames) -> RenderableType:
    return Text("\n".join(str(item) for item in result))


def as_json(result: Any, names: FeatureNames) -> RenderableType:
    """A result no table is made for."""
    return Text(_json(result, indent=2))


def updated(result: Any, names: FeatureNames) -> RenderableType:
    count = result["updated"]
    return Text(f"updated {count} feature{'' if count == 1 else 's'}")


def methods(result: Any, names: FeatureNames) -> RenderableType:
    """The methods of an OpenRPC document (``?``: an optional param)."""
    table = titled_table("methods", "method", "params", "permission", "cluster", "summary")
    for entry in result["methods"]:
        table.add_row(
            entry["name"],
            " ".join(
                p["name"] + ("" if p.get("required") else "?") for p in entry.get("params", [])
            ),
            str(entry.get("x-permission") or "").removeprefix("license-manager:"),
            "yes" if entry.get("x-cluster") else "",
            entry.get("summary", ""),
        )
    return table


def _escaped(value: Any) -> Any:
    """``value`` with every string in it escaped (lmrpc.text), keys included."""
    if isinstance(value, str):
        return escape_control(value)
    if isinstance(value, Mapping):
        return {_escaped(key): _escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    return value


def _json(value: Any, **layout: Any) -> str:
    """JSON that keeps readable non-ASCII text but writes every control, format or surrogate
    character as ``\\uXXXX`` (``json`` alone leaves C1 controls and bidi overrides raw)."""
    text = json.dumps(value, ensure_ascii=False, **layout)
    if not has_control(text.replace("\n", "")):
        return text
    return "".join(
        json.dumps(char)[1:-1] if char != "\n" and has_control(char) else char for char in text
    )


@dataclass(frozen=True)
class Output:
    """``json``: print the result as JSON (``compact``: on one line) instead of a table."""

    json: bool = False
    compact: bool = False

    def dumps(self, value: Any) -> str:
        if self.compact:
            return _json(value, separators=(",", ":"))
        return _json(value, indent=2)

    def raw(self, value: Any) -> None:
        """JSON on stdout, whatever the output mode (``lmrpc call``)."""
        sys.stdout.write(self.dumps(value) + "\n")

    def result(self, result: Any, view: View, names: FeatureNames | None = None) -> None:
        if self.json:
            self.raw(result)
        else:
            console = Console(markup=False)
            if not console.is_terminal and "COLUMNS" not in os.environ:
                console.width = PIPE_WIDTH
            console.print(view.render(_escaped(result), _escaped(names or {})))

    def csv_rows(self, result: Any, columns: Sequence[str]) -> None:
        """A list of objects as CSV with a header line (``--csv``); null is empty."""
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in _escaped(result):
            writer.writerow(["" if row[column] is None else row[column] for column in columns])

    def rpc_error(self, failure: RpcFailure) -> None:
        """The JSON-RPC error, as JSON with ``--json``, else message, code and data."""
        if self.json:
            sys.stderr.write(self.dumps(failure.error) + "\n")
            return
        text = f"error: {escape_control(str(failure.message))} ({failure.code})"
        if failure.data is not None:
            text += "\n" + _json(failure.data, indent=2)
        sys.stderr.write(text + "\n")

    def problem(self, message: str) -> None:
        sys.stderr.write(f"error: {escape_control(message)}\n")

    def note(self, message: str) -> None:
        """A remark for people (stderr, so scripts reading stdout are not disturbed)."""
        sys.stderr.write(f"note: {message}\n")


def feature_ids(result: Any) -> Iterable[int]:
    """The feature ids a jobs or bookings result refers to."""
    for row in _rows(result):
        for booking in row.get("bookings", [row]):
            if "feature_id" in booking:
                yield booking["feature_id"]
