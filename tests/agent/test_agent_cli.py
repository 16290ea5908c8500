"""``lmrpc agent parse TYPE [FILE]`` through the real console script."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.agent.fixtures import DATA

LMRPC = str(Path(sys.executable).parent / "lmrpc")


def _lmrpc(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    # wide enough that a usage error's panel never wraps a long temporary path
    env = {**os.environ, "COLUMNS": "1000"}
    return subprocess.run([LMRPC, *args], input=stdin, capture_output=True, timeout=120, env=env)


def _json(process: subprocess.CompletedProcess[bytes]) -> Any:
    return json.loads(process.stdout)


def test_parse_a_file_prints_features_as_json() -> None:
    done = _lmrpc("agent", "parse", "olicense", str(DATA / "olicense_status.txt"))
    assert done.returncode == 0, done.stderr
    assert _json(done) == {
        "ftire_adams": {
            "total": 10,
            "used": 4,
            "checkouts": [
                {"username": "jdoe", "lead_host": "node01.cluster", "quantity": 2},
                {"username": "asmith", "lead_host": "node02", "quantity": 1},
                {"username": "ckent", "lead_host": "gpu-01.hpc", "quantity": 1},
            ],
        },
        "ftire_sim": {"total": 2, "used": 0, "checkouts": []},
    }


def test_parse_reads_stdin_and_replaces_undecodable_bytes() -> None:
    done = _lmrpc("agent", "parse", "flexlm", stdin=(DATA / "flexlm_status.txt").read_bytes())
    assert done.returncode == 0, done.stderr
    assert _json(done)["abaqus"]["used"] == 8


def test_nothing_parsed_exits_1() -> None:
    done = _lmrpc("agent", "parse", "dsls", str(DATA / "dsls_down.txt"))
    assert done.returncode == 1
    assert _json(done) == {}
    assert b"nothing could be parsed as dsls output" in done.stderr


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    unknown_type = _lmrpc("agent", "parse", "lmgrd", str(DATA / "empty.txt"))
    missing_file = _lmrpc("agent", "parse", "flexlm", str(tmp_path / "missing.txt"))
    assert (unknown_type.returncode, missing_file.returncode) == (2, 2)
    assert b"lmgrd" in unknown_type.stderr
    assert b"does not exist" in missing_file.stderr
