"""How the agent calls the license tools, and runs them: argument lists, exit status,
timeouts that kill the whole process group, undecodable bytes."""

import os
import signal
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.license_tools import (
    DEFAULT_EXECUTABLES,
    ENV_VARIABLES,
    ToolCommand,
    command,
    configured_executables,
    run,
)

_OPTIONS = {"-c", "-a", "-p", "-s", "-R", "-licstat", "-host", "-port", "-sv", "-admin"}
DOES_NOT_HANG = 30  # seconds: a generous bound, far above any timeout used here


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_each_type_has_its_command() -> None:
    executables = configured_executables({})
    expected = {
        "flexlm": ToolCommand(("lmutil", "lmstat", "-c", "27000@lic1", "-a")),
        "rlm": ToolCommand(("rlmutil", "rlmstat", "-c", "27000@lic1", "-a", "-p")),
        "lsdyna": ToolCommand(("lstc_qrun", "-s", "27000@lic1", "-R")),
        "lmx": ToolCommand(("lmxendutil", "-licstat", "-host", "lic1", "-port", "27000")),
        "olicense": ToolCommand(("olixtool", "-sv", "lic1:27000")),
        "dsls": ToolCommand(
            ("DSLicSrv", "-admin"), stdin="connect lic1 27000\ngetLicenseUsage -csv\nquit\n"
        ),
    }
    assert {type_: command(type_, "lic1", 27000, executables) for type_ in expected} == expected


def test_configured_executables_come_from_the_environment() -> None:
    environ = {"LMRPC_AGENT_LMUTIL": "/opt/flexlm/lmutil", "LMRPC_AGENT_DSLICSRV": ""}
    executables = configured_executables(environ)
    assert executables == {**DEFAULT_EXECUTABLES, "flexlm": "/opt/flexlm/lmutil"}
    assert command("flexlm", "lic1", 1, executables).argv[0] == "/opt/flexlm/lmutil"
    assert set(ENV_VARIABLES) == set(DEFAULT_EXECUTABLES)


@pytest.mark.parametrize(
    ("type_", "host", "port", "message"),
    [
        ("lmgrd", "lic1", 1, "unknown license server type"),
        ("dsls", "lic1\nquit", 1, "not a host name"),  # would inject an admin command
        ("lmx", "-port", 1, "not a host name"),  # would read as an option
        ("flexlm", "", 1, "not a host name"),
        ("flexlm", "lic1", 0, "not a port"),
        ("flexlm", "lic1", 65536, "not a port"),
    ],
)
def test_bad_servers_are_refused(type_: str, host: str, port: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        command(type_, host, port, {})


@given(
    type_=st.sampled_from(sorted(DEFAULT_EXECUTABLES)),
    host=st.text(),
    port=st.integers(min_value=1, max_value=65535),
)
def test_a_host_never_becomes_an_option_or_a_command(type_: str, host: str, port: int) -> None:
    """Whatever the host, it is refused or lands exactly where a plain host name does."""
    try:
        cmd = command(type_, host, port, {})
    except ValueError:
        return
    plain = command(type_, "plain.invalid", port, {})
    assert cmd.argv == tuple(arg.replace("plain.invalid", host) for arg in plain.argv)
    assert all(not arg.startswith("-") or arg in _OPTIONS for arg in cmd.argv[1:])
    if cmd.stdin is not None:
        assert cmd.stdin.splitlines() == [f"connect {host} {port}", "getLicenseUsage -csv", "quit"]


def test_run_captures_stdout_and_feeds_stdin(tmp_path: Path) -> None:
    tool = _script(tmp_path / "tool", 'echo "args: $*"; cat; echo "noise" >&2\n')
    result = run(ToolCommand((tool, "-a", "b c"), stdin="from stdin\n"), timeout=DOES_NOT_HANG)
    assert result.ok and result.error is None
    assert result.text == "args: -a b c\nfrom stdin\n"


def test_undecodable_bytes_are_replaced(tmp_path: Path) -> None:
    tool = _script(tmp_path / "tool", r"printf 'M\374nchen\n'")
    result = run(ToolCommand((tool,)), timeout=DOES_NOT_HANG)
    assert result.ok and result.text == "M\ufffdnchen\n"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("echo partial; echo 'No server' >&2; exit 3", "tool exited with status 3: No server"),
        ("echo 'Server down'; echo; exit 1", "tool exited with status 1: Server down"),
        ("exit 7", "tool exited with status 7"),
    ],
)  # fmt: skip
def test_a_non_zero_exit_is_not_ok_and_says_why(tmp_path: Path, body: str, error: str) -> None:
    """The last line of stderr, else of stdout, tells the operator why."""
    result = run(ToolCommand((_script(tmp_path / "tool", body),)), timeout=DOES_NOT_HANG)
    assert not result.ok
    assert result.error == error


def test_a_missing_tool_is_not_ok(tmp_path: Path) -> None:
    result = run(ToolCommand((str(tmp_path / "lmutil"), "lmstat")), timeout=DOES_NOT_HANG)
    assert not result.ok
    assert result.error is not None and result.error.startswith("lmutil could not start")


def _gone(pid: int) -> bool:
    """The process no longer runs (a zombie counts: nobody may reap it in a container)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_a_timeout_kills_the_tool_and_its_children(tmp_path: Path) -> None:
    """A wrapper script that runs the real tool as a child (no exec) keeps the pipes open:
    killing only the wrapper would leave ``run`` waiting for the child."""
    pid_file = tmp_path / "child.pid"
    tool = _script(tmp_path / "tool", f"sleep 600 &\necho $! > {pid_file}\nwait\n")
    started = time.monotonic()
    result = run(ToolCommand((tool,)), timeout=1)
    assert time.monotonic() - started < DOES_NOT_HANG
    assert not result.ok and result.error == "tool timed out after 1 s"
    child = int(pid_file.read_text())
    deadline = time.monotonic() + DOES_NOT_HANG
    while not _gone(child):  # SIGKILL is asynchronous: wait for it to land
        assert time.monotonic() < deadline, "the tool's child survived the timeout"
        time.sleep(0.05)


def test_a_child_left_behind_by_a_finished_tool_is_killed_at_the_timeout(
    tmp_path: Path,
) -> None:
    """The tool exits at once but its background child holds stdout: bounded all the same."""
    tool = _script(tmp_path / "tool", "echo started; sleep 600 &\nexit 0\n")
    started = time.monotonic()
    result = run(ToolCommand((tool,)), timeout=1)
    assert time.monotonic() - started < DOES_NOT_HANG
    assert not result.ok and result.error == "tool timed out after 1 s"


def test_a_child_that_left_the_process_group_cannot_hang_the_run(tmp_path: Path) -> None:
    """A daemonizing child (own session) survives the group kill and holds stdout open:
    ``run`` lets go of the pipes instead of waiting for it."""
    pid_file = tmp_path / "escaped.pid"
    tool = _script(tmp_path / "tool", f"setsid sleep 600 &\necho $! > {pid_file}\nsleep 600\n")
    started = time.monotonic()
    try:
        result = run(ToolCommand((tool,)), timeout=1)
        assert time.monotonic() - started < DOES_NOT_HANG
        assert not result.ok and result.error == "tool timed out after 1 s"
    finally:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)  # the test's own leftover
