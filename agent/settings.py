"""The agent's configuration (AGENT.md §2): the environment, completed by an env file.

slurmctld runs the prolog and epilog with a bare environment, so the agent also reads
``KEY=VALUE`` lines from ``LMRPC_AGENT_ENV_FILE``; a variable already in the environment wins.
Plain ``os.environ`` and no pydantic: the prolog's start time is paid by every job.
"""

import os
import stat
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agent.license_tools import DEFAULT_EXECUTABLES, configured_executables

DEFAULT_ENV_FILE = "/etc/default/lmrpc-agent"
DEFAULT_URL = "http://127.0.0.1:8000"


class SettingsError(ValueError):
    """A variable has a value the agent cannot use."""


@dataclass(frozen=True)
class AgentSettings:
    url: str = DEFAULT_URL
    token: str | None = None
    interval: float = 60.0
    tool_timeout: float = 10.0
    tools: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_EXECUTABLES))
    scontrol: str = "scontrol"
    squeue: str = "squeue"
    reservation: str = "lmrpc-licenses"
    reservation_user: str = "root"
    prolog_on_error: Literal["refuse", "admit"] = "refuse"


def load_env_file(environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Add the env file's variables that the environment lacks; return warnings to log."""
    path = Path(environ.get("LMRPC_AGENT_ENV_FILE", DEFAULT_ENV_FILE))
    try:
        text = path.read_text()
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return []
    except OSError as error:
        return [f"cannot read {path}: {error}"]
    warnings = []
    if mode & 0o077:
        warnings.append(f"{path} is readable by others (mode {mode:o}): make it 0600")
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not equals or not key.isidentifier():
            warnings.append(f"{path}:{number}: not KEY=VALUE, ignored")
            continue
        environ.setdefault(key, _unquote(value.strip()))
    return warnings


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def from_env(environ: Mapping[str, str] = os.environ) -> AgentSettings:
    """The settings from the environment (after :func:`load_env_file`)."""
    on_error = environ.get("LMRPC_AGENT_PROLOG_ON_ERROR", "refuse")
    if on_error not in ("refuse", "admit"):
        raise SettingsError(
            f"LMRPC_AGENT_PROLOG_ON_ERROR must be refuse or admit, not {on_error!r}"
        )
    return AgentSettings(
        url=environ.get("LMRPC_URL", DEFAULT_URL),
        token=environ.get("LMRPC_TOKEN") or None,
        interval=_seconds(environ, "LMRPC_AGENT_INTERVAL", 60.0),
        tool_timeout=_seconds(environ, "LMRPC_AGENT_TOOL_TIMEOUT", 10.0),
        tools=configured_executables(environ),
        scontrol=environ.get("LMRPC_AGENT_SCONTROL") or "scontrol",
        squeue=environ.get("LMRPC_AGENT_SQUEUE") or "squeue",
        reservation=environ.get("LMRPC_AGENT_RESERVATION") or "lmrpc-licenses",
        reservation_user=environ.get("LMRPC_AGENT_RESERVATION_USER") or "root",
        prolog_on_error=on_error,  # type: ignore[arg-type]  # checked above
    )


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise SettingsError(f"{name} must be a positive number of seconds, not {raw!r}")
    return value
