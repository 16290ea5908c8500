"""``lmrpc agent …``: the cluster side's commands (AGENT.md §1).

Commands import what they need inside their bodies: the slurmctld prolog runs this module on
every job start and must start fast.
"""

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from agent.usage import ServerType

app = typer.Typer(
    name="agent",
    help="The cluster side: reads license servers and Slurm, books and releases licenses.",
    no_args_is_help=True,
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
