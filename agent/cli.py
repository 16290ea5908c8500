"""``lmrpc agent …``: the cluster side's commands (AGENT.md §1).

Commands import what they need inside their bodies: the slurmctld prolog runs this module on
every job start and must start fast.
"""

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent.usage import ServerType

if TYPE_CHECKING:
    from agent.settings import AgentSettings

app = typer.Typer(
    name="agent",
    help="The cluster side: reads license servers and Slurm, books and releases licenses.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command()
def parse(
    type_: Annotated[ServerType, typer.Argument(metavar="TYPE", help="License server type.")],
    file: Annotated[
        Path | None,
        typer.Argument(
            help="A saved output of the license tool (stdin when missing).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
) -> None:
    """Parse a saved license-tool output and print its features as JSON.

    Exit status 1 when nothing could be read (for checking a new license server version).
    """
    from dataclasses import asdict

    from agent import parsers

    data = file.read_bytes() if file is not None else sys.stdin.buffer.read()
    report = parsers.parse(type_, data.decode(errors="replace"))
    document = {name: asdict(usage) for name, usage in report.items()}  # the API's field names
    print(json.dumps(document, indent=2, ensure_ascii=False))
    if not report:
        print(f"nothing could be parsed as {type_} output", file=sys.stderr)
        raise typer.Exit(1)


EXIT_CYCLE_ERROR = 1
EXIT_CONNECTION = 3

Url = Annotated[str | None, typer.Option(show_default=False, help="Base URL of lmrpc [LMRPC_URL].")]
Token = Annotated[
    str | None,
    typer.Option(show_default=False, help="Bearer token [LMRPC_TOKEN]; else OIDC credentials."),
]


@app.command()
def run(url: Url = None, token: Token = None) -> None:
    """The daemon: a reconcile cycle every LMRPC_AGENT_INTERVAL seconds.

    SIGTERM ends it after the cycle in flight.
    """
    import signal
    import threading
    import time

    from agent.runner import Runner
    from lmrpc.client import Client

    settings = _settings(url, token)
    log = logging.getLogger("lmrpc.agent")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("agent started: %s every %g s", settings.url, settings.interval)
    with Client(settings.url, settings.token) as client:
        runner = Runner(settings, client)
        while not stop.is_set():
            started = time.monotonic()
            try:
                log.info("%s", runner.cycle().summary())
            except Exception as error:  # the daemon outlives any one cycle
                log.error("cycle failed: %s", error, exc_info=not _expected(error))
            stop.wait(max(settings.interval - (time.monotonic() - started), 0))
    log.info("agent stopped")


@app.command()
def once(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and decide; change nothing.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the cycle as JSON.")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """One reconcile cycle; prints what it read and did.

    Exit status 1 on a cycle error, 3 on a connection or authentication failure.
    """
    from agent.report import render, to_json
    from agent.runner import CycleError, Runner
    from lmrpc.client import Client, RpcFailure, TransportFailure

    settings = _settings(url, token)
    try:
        with Client(settings.url, settings.token) as client:
            cycle = Runner(settings, client).cycle(dry_run=dry_run)
    except TransportFailure as failure:
        print(f"lmrpc agent: {failure}", file=sys.stderr)
        raise typer.Exit(EXIT_CONNECTION) from None
    except (CycleError, RpcFailure) as error:
        print(f"lmrpc agent: cycle failed: {error}", file=sys.stderr)
        raise typer.Exit(EXIT_CYCLE_ERROR) from None
    print(json.dumps(to_json(cycle), indent=2) if json_output else render(cycle))
    if cycle.problems:
        raise typer.Exit(EXIT_CYCLE_ERROR)


@app.command()
def prolog() -> None:
    """For PrologSlurmctld: book the job's licenses (exit 0 admit, 1 refuse)."""
    from agent.hooks import main

    raise typer.Exit(main("prolog"))


@app.command()
def epilog() -> None:
    """For EpilogSlurmctld: release the job's licenses (exit 0)."""
    from agent.hooks import main

    raise typer.Exit(main("epilog"))


def _settings(url: str | None, token: str | None) -> "AgentSettings":
    """Environment and env file, flags over both; logging as the service's variables say."""
    import dataclasses
    import os

    from agent import settings
    from lmrpc import logs

    logs.configure(
        os.environ.get("LMRPC_LOG_FORMAT", "plain"), os.environ.get("LMRPC_LOG_LEVEL", "INFO")
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is noise
    for warning in settings.load_env_file():
        logging.getLogger("lmrpc.agent").warning("%s", warning)
    try:
        loaded = settings.from_env()
    except settings.SettingsError as error:
        print(f"lmrpc agent: {error}", file=sys.stderr)
        raise typer.Exit(2) from None
    return dataclasses.replace(loaded, url=url or loaded.url, token=token or loaded.token)


def _expected(error: Exception) -> bool:
    """Failures worth a line, not a traceback."""
    from agent.runner import CycleError
    from lmrpc.client import RpcFailure, TransportFailure

    return isinstance(error, CycleError | RpcFailure | TransportFailure)
