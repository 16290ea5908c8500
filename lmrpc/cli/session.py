"""What every client command shares: the connection and output options, and one mapping of
failures to exit codes, so scripts can tell "the server said no" from "no server".

Exit codes: 0 ok, 1 JSON-RPC error, 2 usage error (typer's own), 3 connection or
authentication failure.
"""

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from lmrpc.cli.output import Output, View, feature_ids
from lmrpc.client import DEFAULT_TIMEOUT_S, DEFAULT_URL, Client, RpcFailure, TransportFailure

EXIT_RPC_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3

_CONNECTION = "Connection"
_OUTPUT = "Output"


@dataclass
class Session:
    """A command's client and output settings."""

    client: Client
    output: Output

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.client.call(method, params)

    def show(self, result: Any, view: View) -> None:
        names = self._feature_names(result) if view.feature_names and not self.output.json else {}
        self.output.result(result, view, names)

    def _feature_names(self, result: Any) -> dict[int, str]:
        """``product.feature`` of the features a table mentions, in batches of features.get;
        a name that cannot be read (permission, deleted meanwhile) stays an id."""
        ids = sorted(set(feature_ids(result)))
        try:
            found = self.client.batch([("features.get", {"id": id_}) for id_ in ids])
        except (RpcFailure, TransportFailure):
            return {}
        return {
            id_: f"{feature['product']['name']}.{feature['name']}"
            for id_, feature in zip(ids, found, strict=True)
            if isinstance(feature, dict)
        }


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


COMMON_OPTIONS = [
    _option(
        "url",
        Annotated[
            str,
            typer.Option(
                envvar="LMRPC_URL", help="Base URL of the service.", rich_help_panel=_CONNECTION
            ),
        ],
        DEFAULT_URL,
    ),
    _option(
        "token",
        Annotated[
            str | None,
            typer.Option(
                envvar="LMRPC_TOKEN",
                show_default=False,
                help="Bearer token; without it, OIDC client credentials from LMRPC_OIDC_ISSUER, "
                "LMRPC_OIDC_CLIENT_ID and LMRPC_OIDC_CLIENT_SECRET.",
                rich_help_panel=_CONNECTION,
            ),
        ],
        None,
    ),
    _option(
        "timeout",
        Annotated[
            float,
            typer.Option(
                envvar="LMRPC_TIMEOUT",
                min=0.1,
                help="Seconds to wait for the server.",
                rich_help_panel=_CONNECTION,
            ),
        ],
        DEFAULT_TIMEOUT_S,
    ),
    _option(
        "json_output",
        Annotated[
            bool,
            typer.Option(
                "--json", help="Print the JSON-RPC result as JSON.", rich_help_panel=_OUTPUT
            ),
        ],
        False,
    ),
    _option(
        "compact",
        Annotated[
            bool,
            typer.Option(
                "--compact", help="JSON on one line (implies --json).", rich_help_panel=_OUTPUT
            ),
        ],
        False,
    ),
]


def client_command(function: Callable[..., None]) -> Callable[..., None]:
    """Give ``function(session, **own)`` the common options and the exit codes.

    The command's signature is its own parameters (all but the first) plus the common ones;
    typer reads it from ``__signature__``.
    """
    own = list(inspect.signature(function).parameters.values())[1:]

    def command(**values: Any) -> None:
        common = {option.name: values.pop(option.name) for option in COMMON_OPTIONS}
        out = Output(json=common["json_output"] or common["compact"], compact=common["compact"])
        try:
            with Client(common["url"], common["token"], common["timeout"]) as client:
                function(Session(client, out), **values)
        except RpcFailure as failure:
            out.rpc_error(failure)
            raise typer.Exit(EXIT_RPC_ERROR) from None
        except TransportFailure as failure:
            out.problem(str(failure))
            raise typer.Exit(EXIT_CONNECTION) from None

    command.__signature__ = inspect.Signature([*own, *COMMON_OPTIONS])  # type: ignore[attr-defined]
    command.__name__ = function.__name__
    command.__doc__ = function.__doc__
    return command
