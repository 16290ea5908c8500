"""``lmrpc call`` (any method, params as JSON) and ``lmrpc methods`` (what the server offers)."""

from typing import Annotated, Any

import typer

from lmrpc.cli import output, values
from lmrpc.cli.resources import METHODS
from lmrpc.cli.session import Session, client_command
from lmrpc.client import RpcFailure

METHOD_NOT_FOUND = -32601


def _complete_method(incomplete: str) -> list[str]:
    return [name for name in [*METHODS, "rpc.discover"] if name.startswith(incomplete)]


@client_command
def call(
    session: Session,
    method: Annotated[
        str, typer.Argument(help="JSON-RPC method name.", autocompletion=_complete_method)
    ],
    params: Annotated[
        str | None,
        typer.Argument(help="Params: a JSON object, or '-' to read JSON or YAML from stdin."),
    ] = None,
) -> None:
    """Call any method and print its result as JSON (the escape hatch for scripts).

    Example: lmrpc call features.list '{"search": "abaqus", "limit": 5}'
    """
    document: Any = {}
    if params == "-":
        document = values.load("-", "PARAMS")
    elif params is not None:
        document = values.parse_json(params, "PARAMS")
    session.output.raw(session.call(method, values.params_object(document, "the params", "PARAMS")))


@client_command
def methods(session: Session) -> None:
    """List the server's methods with their params and permissions (from rpc.discover).

    Example: lmrpc methods
    """
    try:
        document = session.call("rpc.discover")
    except RpcFailure as failure:
        if failure.code != METHOD_NOT_FOUND:
            raise
        session.output.note(
            "the server does not offer rpc.discover: listing the methods this client knows"
        )
        document = {
            "methods": [
                {"name": name, "summary": command.help} for name, command in METHODS.items()
            ]
        }
    session.show(document, output.View(output.methods))


def register(app: typer.Typer) -> None:
    app.command()(call)
    app.command()(methods)
