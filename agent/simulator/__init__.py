"""A license-server simulator for tests and demos (AGENT.md §5).

Six executables named like the real tools (``lmutil``, ``rlmutil``, ``lstc_qrun``,
``lmxendutil``, ``olixtool``, ``DSLicSrv``) read the server they are asked about from their
arguments (or, for DSLS, from the ``connect`` line on stdin) and print its features from the
state file ``LMRPC_SIM_STATE`` (see ``state``) with the printers the parsers are tested
against. ``python -m agent.simulator install-bin DIR`` writes the six wrapper scripts.
"""

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from agent.license_tools import DEFAULT_EXECUTABLES
from agent.simulator import printers, state

TOOL_TYPES = {tool: type_ for type_, tool in DEFAULT_EXECUTABLES.items()}
HUNG_SECONDS = 3600
EXIT_DOWN = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """The tool was called in a way the agent never calls it."""


def _after(argv: Sequence[str], flag: str) -> str:
    try:
        return argv[list(argv).index(flag) + 1]
    except (ValueError, IndexError):
        raise UsageError(f"missing {flag} VALUE") from None


def _split(address: str, separator: str, port_first: bool) -> tuple[str, int]:
    if port_first:
        port, found, host = address.partition(separator)
    else:  # an IPv6 host holds ":" too: the port is after the last one
        host, found, port = address.rpartition(separator)
    if not found or not host or not port.isdecimal():
        raise UsageError(f"not a server address: {address!r}")
    return host, int(port)


def server_address(type_: str, argv: Sequence[str], stdin: str) -> tuple[str, int]:
    """The ``(host, port)`` a tool of server type ``type_`` is asked about."""
    match type_:
        case "flexlm" | "rlm":
            return _split(_after(argv, "-c"), "@", port_first=True)
        case "lsdyna":
            return _split(_after(argv, "-s"), "@", port_first=True)
        case "lmx":
            return _split(f"{_after(argv, '-host')}:{_after(argv, '-port')}", ":", False)
        case "olicense":
            return _split(_after(argv, "-sv"), ":", port_first=False)
        case _:  # dsls
            for line in stdin.splitlines():
                words = line.split()
                if len(words) == 3 and words[0] == "connect":
                    return _split(f"{words[1]}:{words[2]}", ":", port_first=False)
            raise UsageError("no 'connect HOST PORT' on stdin")


def _one_line(error: OSError | ValidationError) -> str:
    """The runner reports a tool's last line of stderr: the whole reason must fit in it."""
    if isinstance(error, OSError):
        return str(error)
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'state'}: {e['msg']}"
        for e in error.errors(include_url=False)
    )


def simulate(tool: str, argv: Sequence[str], stdin: str, state_file: Path) -> int:
    """Print what ``tool argv`` prints against the simulated servers; the exit status."""
    type_ = TOOL_TYPES[tool]
    try:
        host, port = server_address(type_, argv, stdin)
    except UsageError as error:
        print(f"{tool}: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        server = state.load(state_file).server(host, port)
    except (OSError, ValidationError) as error:
        print(f"{tool}: bad simulator state {state_file}: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    if server is not None and server.hung:
        time.sleep(HUNG_SECONDS)
    if server is None or server.down:
        print(printers.DOWN_MESSAGES[type_].format(host=host, port=port), file=sys.stderr)
        return EXIT_DOWN
    if type_ == "lsdyna":
        print(printers.lsdyna(host, port, server.report(), server.shared_pool), end="")
    else:
        print(printers.PRINTERS[type_](host, port, server.report()), end="")
    return 0


def main(tool: str) -> None:
    """Entry point of a wrapper script named like the real ``tool``."""
    state_file = os.environ.get("LMRPC_SIM_STATE")
    if not state_file:
        sys.exit(f"{tool}: LMRPC_SIM_STATE names no state file (simulated license tool)")
    stdin = "" if tool != DEFAULT_EXECUTABLES["dsls"] else sys.stdin.read()
    sys.exit(simulate(tool, sys.argv[1:], stdin, Path(state_file)))


def install_bin(directory: Path) -> list[Path]:
    """Write the six wrapper scripts into ``directory``, run by this Python interpreter."""
    directory.mkdir(parents=True, exist_ok=True)
    scripts = []
    for tool in TOOL_TYPES:
        script = directory / tool
        script.write_text(f"#!{sys.executable}\nfrom agent.simulator import main\nmain({tool!r})\n")
        script.chmod(0o755)
        scripts.append(script)
    return scripts
