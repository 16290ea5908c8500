"""The ``lmrpc`` console script."""

import typer

import agent.cli
from lmrpc.cli import raw, resources, server, ui, usage

app = typer.Typer(
    name="lmrpc",
    help="License Manager for Slurm clusters: JSON-RPC service and its command line client.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
server.register(app)
resources.register(app)
raw.register(app)
usage.register(app)
app.add_typer(agent.cli.app, name="agent")
ui.register(app)


def main() -> None:
    app(prog_name="lmrpc")  # also under python -m lmrpc
