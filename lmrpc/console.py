"""The ``lmrpc`` console script's entry: ``agent prolog|epilog`` go straight to their hook,
without loading the typer CLI (slurmctld pays their start time on every job), and the other
``agent`` commands to the agent's own app, without the service's CLI."""

import sys

HOOKS = ("prolog", "epilog")
UNUSED_BY_HOOKS = ("httpx._main", "trio", "anyio")


def main() -> None:
    arguments = sys.argv[1:]
    if len(arguments) == 2 and arguments[0] == "agent" and arguments[1] in HOOKS:
        # The hooks use httpx's synchronous client only. Installed beside it, httpx's own
        # command line (rich, click, pygments) and the async libraries httpcore probes for
        # (trio, anyio) would triple the start time; a None entry in sys.modules makes their
        # import fail, and httpx and httpcore fall back as they do when these are missing.
        for module in UNUSED_BY_HOOKS:
            sys.modules.setdefault(module, None)  # type: ignore[arg-type]
        from agent.hooks import main as hook

        sys.exit(hook(arguments[1]))
    if arguments[:1] == ["agent"]:  # the agent's commands need none of the service's
        from agent.cli import app

        app(args=arguments[1:], prog_name="lmrpc agent")
    from lmrpc.cli import main as cli

    cli()
