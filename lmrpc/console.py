"""The ``lmrpc`` console script's entry: ``agent prolog|epilog`` go straight to their hook,
without loading the typer CLI (slurmctld pays their start time on every job)."""

import sys

HOOKS = ("prolog", "epilog")


def main() -> None:
    arguments = sys.argv[1:]
    if len(arguments) == 2 and arguments[0] == "agent" and arguments[1] in HOOKS:
        # httpx imports its own command line (rich, click, pygments: two thirds of its
        # import time) when they are installed; a None entry makes it fall back to a stub.
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
        from agent.hooks import main as hook

        sys.exit(hook(arguments[1]))
    from lmrpc.cli import main as cli

    cli()
