"""The ``lmrpc`` console script.

Command groups are imported only when the command line names them: ``lmrpc serve`` then
starts without loading the client's modules (its resource table, output, agent), which
roughly halves the CLI's import time on every server start.
"""

import sys
from typing import Any

import typer


def build(command: str | None = None) -> typer.Typer:
    """The command tree; only the server's commands when ``command`` is one of them."""
    from lmrpc.cli import server

    app = typer.Typer(
        name="lmrpc",
        help="License Manager for Slurm clusters: JSON-RPC service and its command line client.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    server.register(app)
    if command not in server.COMMANDS:
        import agent.cli
        from lmrpc.cli import raw, resources, ui

        resources.register(app)
        raw.register(app)
        app.add_typer(agent.cli.app, name="agent")
        ui.register(app)
    return app


def __getattr__(name: str) -> Any:
    """``lmrpc.cli.app``: the whole command tree (tests, shell completion)."""
    if name == "app":
        return build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """The console script (also python -m lmrpc); the client's commands load storage and
    actors lazily (lmrpc.cli.lazy_imports), the server's as they always do."""
    from lmrpc.cli import lazy_imports, server

    command = sys.argv[1] if len(sys.argv) > 1 else None
    if command not in server.COMMANDS:
        lazy_imports.install()
    build(command)(prog_name="lmrpc")
