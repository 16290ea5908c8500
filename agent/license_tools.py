"""How the agent calls each license tool for one server, and runs it.

Tools get argument lists, never a shell, so host names are never interpreted. The caller
runs ``run`` in a thread; ``run`` itself bounds the time and kills the whole process group
on a timeout, since site wrappers around the tools often start the real binary as a child
that would otherwise keep the pipes open.
"""

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

# Server type → the tool's name on PATH, and the variable that configures another path.
DEFAULT_EXECUTABLES: dict[str, str] = {
    "flexlm": "lmutil",
    "rlm": "rlmutil",
    "lsdyna": "lstc_qrun",
    "lmx": "lmxendutil",
    "olicense": "olixtool",
    "dsls": "DSLicSrv",
}
ENV_VARIABLES: dict[str, str] = {
    "flexlm": "LMRPC_AGENT_LMUTIL",
    "rlm": "LMRPC_AGENT_RLMUTIL",
    "lsdyna": "LMRPC_AGENT_LSTC_QRUN",
    "lmx": "LMRPC_AGENT_LMXENDUTIL",
    "olicense": "LMRPC_AGENT_OLIXTOOL",
    "dsls": "LMRPC_AGENT_DSLICSRV",
}
# After a timeout's kill, how long to wait for the pipes to close before giving up on them.
_DRAIN_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class ToolCommand:
    argv: tuple[str, ...]
    stdin: str | None = None


@dataclass(frozen=True, slots=True)
class ToolResult:
    ok: bool
    text: str
    error: str | None = None


def configured_executables(environ: Mapping[str, str]) -> dict[str, str]:
    """Server type → executable: the ``LMRPC_AGENT_*`` variable when set, else the default."""
    return {
        type_: environ.get(ENV_VARIABLES[type_]) or default
        for type_, default in DEFAULT_EXECUTABLES.items()
    }


def command(type_: str, host: str, port: int, executables: Mapping[str, str]) -> ToolCommand:
    """The command that prints every feature of the server ``host:port`` of type ``type_``."""
    if type_ not in DEFAULT_EXECUTABLES:
        raise ValueError(f"unknown license server type {type_!r}")
    if not host or host.startswith("-") or any(c.isspace() or not c.isprintable() for c in host):
        raise ValueError(f"not a host name: {host!r}")  # it would reach DSLS's stdin as is
    if not 1 <= port <= 65535:
        raise ValueError(f"not a port: {port}")
    tool = executables.get(type_) or DEFAULT_EXECUTABLES[type_]
    match type_:
        case "flexlm":
            return ToolCommand((tool, "lmstat", "-c", f"{port}@{host}", "-a"))
        case "rlm":
            return ToolCommand((tool, "rlmstat", "-c", f"{port}@{host}", "-a", "-p"))
        case "lsdyna":
            return ToolCommand((tool, "-s", f"{port}@{host}", "-R"))
        case "lmx":
            return ToolCommand((tool, "-licstat", "-host", host, "-port", str(port)))
        case "olicense":
            return ToolCommand((tool, "-sv", f"{host}:{port}"))
        case _:  # dsls
            script = f"connect {host} {port}\ngetLicenseUsage -csv\nquit\n"
            return ToolCommand((tool, "-admin"), stdin=script)


def run(cmd: ToolCommand, timeout: float) -> ToolResult:
    """Run ``cmd``; not ok when it cannot start, exits non-zero or outlives ``timeout``."""
    name = os.path.basename(cmd.argv[0])
    try:
        process = subprocess.Popen(
            cmd.argv,
            stdin=subprocess.DEVNULL if cmd.stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, killed as a whole on timeout
        )
    except OSError as error:
        return ToolResult(False, "", f"{name} could not start: {error.strerror or error}")
    with process:
        try:
            stdout, stderr = process.communicate(
                None if cmd.stdin is None else cmd.stdin.encode(), timeout=timeout
            )
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # the group is gone already
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):  # a process that left the
                process.communicate(timeout=_DRAIN_SECONDS)  # group may hold the pipes: let go
            return ToolResult(False, "", f"{name} timed out after {timeout:g} s")
    text = stdout.decode(errors="replace")
    if process.returncode != 0:
        why = _last_line(stderr.decode(errors="replace")) or _last_line(text)
        status = f"{name} exited with status {process.returncode}"
        return ToolResult(False, text, f"{status}: {why}" if why else status)
    return ToolResult(True, text)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
