"""Command-line values → JSON-RPC params: compact specs of nested list entries
(``host:port``, ``name:product_id[:reserved]``, ``product.feature:qty``), moments (``24h``
ago, ``now``) and params files.

A value that does not parse is a usage error (exit 2), reported against its option.
"""

import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
import yaml

Entry = dict[str, Any]
Parse = Callable[[str], Entry]


class Malformed(ValueError):
    """The value does not have the option's form (the message says which form)."""


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise Malformed(f"{what} must be a whole number, not {text!r}") from None


def host_port(text: str) -> Entry:
    """``HOST:PORT``; an IPv6 address in brackets: ``[::1]:27000``."""
    host, colon, port = text.rpartition(":")
    if not colon or not host:
        raise Malformed("expected HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return {"host": host, "port": _int(port, "PORT")}


def feature(text: str) -> Entry:
    """``NAME:PRODUCT_ID[:RESERVED]``."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise Malformed("expected NAME:PRODUCT_ID[:RESERVED]")
    entry: Entry = {"name": parts[0], "product_id": _int(parts[1], "PRODUCT_ID")}
    if len(parts) == 3:
        entry["reserved"] = _int(parts[2], "RESERVED")
    return entry


def _product_feature(text: str, form: str) -> str:
    product, dot, name = text.partition(".")
    if not (product and dot and name):
        raise Malformed(f"expected {form}")
    return text


def booking(text: str) -> Entry:
    """``PRODUCT.FEATURE:QUANTITY``."""
    form = "PRODUCT.FEATURE:QUANTITY"
    name, colon, quantity = text.rpartition(":")
    if not colon:
        raise Malformed(f"expected {form}")
    return {"product_feature": _product_feature(name, form), "quantity": _int(quantity, "QUANTITY")}


def counters(text: str) -> Entry:
    """``PRODUCT.FEATURE:TOTAL:USED`` (an entry of features.bulk_update)."""
    form = "PRODUCT.FEATURE:TOTAL:USED"
    parts = text.rsplit(":", 2)
    if len(parts) != 3:
        raise Malformed(f"expected {form}")
    name, total, used = parts
    product, _, feature_name = _product_feature(name, form).partition(".")
    return {
        "product_name": product,
        "feature_name": feature_name,
        "total": _int(total, "TOTAL"),
        "used": _int(used, "USED"),
    }


_AGO = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def moment(text: str, now: datetime | None = None) -> str:
    """An RFC 3339 timestamp from ``now``, an RFC 3339 string, or an age such as ``90m``,
    ``24h``, ``7d`` (that long ago)."""
    now = now or datetime.now(UTC)
    ago = _AGO.match(text)
    if text == "now":
        then = now
    elif ago:
        then = now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    else:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise typer.BadParameter(
                f"{text!r}: give now, an age like 24h or 7d, or RFC 3339 with Z"
            )
        return text
    return then.isoformat().replace("+00:00", "Z")


def json_entry(text: str) -> Any:
    """An entry as JSON (a nested list whose entries have no compact form)."""
    try:
        return json.loads(text)
    except ValueError:
        raise Malformed("expected one entry as JSON") from None


def child(parse: Parse) -> Parse:
    """A child entry of configurations.update: ``ID`` keeps that child as it is,
    ``ID=SPEC`` changes it, ``SPEC`` adds a new one."""

    def parse_child(text: str) -> Entry:
        head, equals, spec = text.partition("=")
        if not equals:
            return {"id": int(text)} if text.isdigit() else parse(text)
        return {"id": _int(head, "ID"), **parse(spec)}

    return parse_child


def entries(parse: Parse, values: list[str], option: str) -> list[Entry]:
    """Parse each value of a repeatable option."""
    try:
        return [parse(value) for value in values]
    except Malformed as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


def load(source: str, option: str = "--file") -> Any:
    """A JSON or YAML document from a file, or from stdin for ``-``."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as error:
        raise typer.BadParameter(
            f"cannot read {source}: {error.strerror}", param_hint=option
        ) from None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise typer.BadParameter(
            f"{source} is neither JSON nor YAML: {error}", param_hint=option
        ) from None


def parse_json(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint=option) from None


def params_object(document: Any, source: str, option: str = "--file") -> dict[str, Any]:
    """A params document must be an object (JSON-RPC params are by name)."""
    if not isinstance(document, dict):
        raise typer.BadParameter(
            f"{source}: params must be an object (they are passed by name)", param_hint=option
        )
    return document
