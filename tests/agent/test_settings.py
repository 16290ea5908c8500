"""The agent's settings: the env file slurmctld's bare environment needs, and bad values."""

from pathlib import Path

import pytest

from agent.settings import SettingsError, from_env, load_env_file


def test_the_env_file_fills_what_the_environment_lacks(tmp_path: Path) -> None:
    path = tmp_path / "lmrpc-agent"
    path.write_text(
        "# comment\n\nexport LMRPC_URL='https://lmrpc.example.org'\n"
        'LMRPC_TOKEN="abc=="\nLMRPC_AGENT_INTERVAL=30\nnot a setting\n'
    )
    path.chmod(0o600)
    environ = {"LMRPC_AGENT_ENV_FILE": str(path), "LMRPC_AGENT_INTERVAL": "15"}
    warnings = load_env_file(environ)
    assert warnings == [f"{path}:6: not KEY=VALUE, ignored"]
    settings = from_env(environ)
    assert (settings.url, settings.token, settings.interval) == (
        "https://lmrpc.example.org",
        "abc==",
        15.0,
    )


def test_a_file_others_can_read_is_used_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "lmrpc-agent"
    path.write_text("LMRPC_TOKEN=secret\n")
    path.chmod(0o644)
    environ = {"LMRPC_AGENT_ENV_FILE": str(path)}
    assert ["readable by others" in w for w in load_env_file(environ)] == [True]
    assert environ["LMRPC_TOKEN"] == "secret"
    assert load_env_file({"LMRPC_AGENT_ENV_FILE": str(tmp_path / "missing")}) == []


@pytest.mark.parametrize(
    "name, value",
    [
        ("LMRPC_AGENT_INTERVAL", "0"),
        ("LMRPC_AGENT_INTERVAL", "soon"),
        ("LMRPC_AGENT_TOOL_TIMEOUT", "inf"),
        ("LMRPC_AGENT_PROLOG_ON_ERROR", "maybe"),
    ],
)
def test_values_the_agent_cannot_use_are_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        from_env({name: value})


def test_tool_paths_come_from_their_variables() -> None:
    settings = from_env({"LMRPC_AGENT_LMUTIL": "/opt/flexlm/lmutil", "LMRPC_AGENT_SQUEUE": "/x"})
    assert settings.tools["flexlm"] == "/opt/flexlm/lmutil" and settings.tools["rlm"] == "rlmutil"
    assert (settings.squeue, settings.scontrol) == ("/x", "scontrol")
