"""The simulated license tools, run as real executables through ``license_tools``: what
they print parses back to the state file's servers; down and hung servers fail."""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.license_tools import DEFAULT_EXECUTABLES, ToolCommand, command, run
from agent.parsers import PARSERS, parse
from agent.simulator.printers import DOWN_MESSAGES
from agent.simulator.state import SimState
from agent.usage import Checkout, FeatureUsage

DOES_NOT_HANG = 60  # seconds: a generous bound; the Python tools start slowly under load

FEATURES: dict[str, Any] = {
    "abaqus": {
        "total": 10,
        "checkouts": [
            {"username": "jdoe", "lead_host": "node01.cluster", "quantity": 3},
            {"username": "asmith", "lead_host": "node02"},
        ],
    },
    "cae": {"total": 5, "used": 2},
}
EXPECTED = {
    "abaqus": FeatureUsage(
        10, 4, (Checkout("jdoe", "node01.cluster", 3), Checkout("asmith", "node02", 1))
    ),
    "cae": FeatureUsage(5, 2, ()),
}
STATE = {
    "lic1.example.org:27000": {"features": FEATURES},
    "lic2:27000": {"features": FEATURES, "down": True},
    "lic3:27000": {"features": FEATURES, "hung": True},
    "dyna:31010": {
        "shared_pool": True,
        "features": {
            "MPPDYNA": {"total": 100, "used": 7, "checkouts": [{"username": "jdoe",
                        "lead_host": "node01", "quantity": 4}]},
            "LS-DYNA": {"total": 100, "used": 7},
        },
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def executables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The six tools, written by ``python -m agent.simulator install-bin DIR``."""
    directory = tmp_path_factory.mktemp("bin")
    listed = subprocess.run(
        [sys.executable, "-m", "agent.simulator", "install-bin", str(directory)],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert sorted(Path(p).name for p in listed) == sorted(DEFAULT_EXECUTABLES.values())
    return {type_: str(directory / tool) for type_, tool in DEFAULT_EXECUTABLES.items()}


@pytest.fixture(autouse=True)
def state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(STATE))
    monkeypatch.setenv("LMRPC_SIM_STATE", str(path))
    return path


@pytest.mark.parametrize("type_", PARSERS)
def test_each_tool_prints_the_servers_state(type_: str, executables: dict[str, str]) -> None:
    result = run(command(type_, "lic1.example.org", 27000, executables), DOES_NOT_HANG)
    assert result.ok, result.error
    assert parse(type_, result.text) == EXPECTED


@pytest.mark.parametrize("type_", PARSERS)
def test_a_down_server_fails_with_the_tools_error(type_: str, executables: dict[str, str]) -> None:
    result = run(command(type_, "lic2", 27000, executables), DOES_NOT_HANG)
    message = DOWN_MESSAGES[type_].format(host="lic2", port=27000)
    assert not result.ok
    assert result.error == f"{DEFAULT_EXECUTABLES[type_]} exited with status 1: {message}"


def test_a_server_missing_from_the_state_is_down(executables: dict[str, str]) -> None:
    result = run(command("flexlm", "lic9", 1, executables), DOES_NOT_HANG)
    assert not result.ok
    assert result.error is not None and "Cannot connect to license server" in result.error


@pytest.mark.parametrize("type_", ["flexlm", "dsls"])
def test_a_hung_server_times_out(type_: str, executables: dict[str, str]) -> None:
    started = time.monotonic()
    result = run(command(type_, "lic3", 27000, executables), timeout=2)
    assert time.monotonic() - started < DOES_NOT_HANG
    assert not result.ok
    assert result.error == f"{DEFAULT_EXECUTABLES[type_]} timed out after 2 s"


def test_lsdyna_shared_pool(executables: dict[str, str]) -> None:
    result = run(command("lsdyna", "dyna", 31010, executables), DOES_NOT_HANG)
    assert result.ok, result.error
    assert "LICENSE GROUP" in result.text
    assert (
        parse("lsdyna", result.text) == SimState.model_validate(STATE).root["dyna:31010"].report()
    )


def test_the_state_is_read_on_every_call(executables: dict[str, str], state_file: Path) -> None:
    """Tests change the state between cycles: a server going down shows at once."""
    flexlm = command("flexlm", "lic1.example.org", 27000, executables)
    assert run(flexlm, DOES_NOT_HANG).ok
    state_file.write_text(json.dumps({**STATE, "lic1.example.org:27000": {"down": True}}))
    assert not run(flexlm, DOES_NOT_HANG).ok


def test_a_call_the_agent_never_makes_is_a_usage_error(executables: dict[str, str]) -> None:
    result = run(ToolCommand((executables["flexlm"], "lmstat", "-a")), DOES_NOT_HANG)
    assert not result.ok
    assert result.error == "lmutil exited with status 2: lmutil: missing -c VALUE"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "LMRPC_SIM_STATE names no state file"),
        ("{not json", "bad simulator state"),
        ('{"lic1.example.org:27000": {"features": {"x": {"total": -1}}}}', "bad simulator state"),
    ],
)
def test_a_bad_state_file_is_a_clear_error(
    executables: dict[str, str],
    state_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str | None,
    message: str,
) -> None:
    if content is None:
        monkeypatch.delenv("LMRPC_SIM_STATE")
    else:
        state_file.write_text(content)
    result = run(command("flexlm", "lic1.example.org", 27000, executables), DOES_NOT_HANG)
    assert not result.ok
    assert result.error is not None and message in result.error
    assert "Traceback" not in result.error


@pytest.mark.parametrize("type_", PARSERS)
def test_an_ipv6_server_is_found(type_: str, executables: dict[str, str], state_file: Path) -> None:
    state_file.write_text(json.dumps({"fd00::17:27000": {"features": FEATURES}}))
    result = run(command(type_, "fd00::17", 27000, executables), DOES_NOT_HANG)
    assert result.ok, result.error
    assert parse(type_, result.text) == EXPECTED
