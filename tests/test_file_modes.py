"""File modes of the embedded mode (API.md §6): the data dir 0700, the signing key and the
SQLite database (with its ``-wal`` and ``-shm``) 0600, and a key that cannot be diverted to
a file someone planted. Real ``lmrpc token`` and ``lmrpc serve`` processes, umask 022 (the
usual one, under which files would be world-readable by default)."""

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from lmrpc.keys import PRIVATE_KEY_FILE
from tests.server import running_server, server_env
from tests.tokens import TokenFactory

OLD_TEMPORARY = "signing-key.tmp"  # the fixed name the key used to be written to first
EMBEDDED = {
    "LMRPC_OIDC_JWKS_FILE": None,
    "LMRPC_OIDC_ISSUER": None,
    "LMRPC_OIDC_AUDIENCE": None,
}


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def lmrpc_token(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMRPC_")}
    env["LMRPC_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "lmrpc", "token", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def signed_with_the_key(token: str, data_dir: Path) -> bool:
    key = RSAKey.import_key(json.loads((data_dir / PRIVATE_KEY_FILE).read_text()))
    issuer: object = jwt.decode(token, key).claims["iss"]
    return issuer == "lmrpc-local"


def test_token_creates_a_private_data_dir_and_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    result = lmrpc_token(data_dir)
    assert result.returncode == 0, result.stderr
    assert mode(data_dir) == 0o700
    assert mode(data_dir / PRIVATE_KEY_FILE) == 0o600
    assert signed_with_the_key(result.stdout.strip(), data_dir)
    assert sorted(p.name for p in data_dir.iterdir()) == [PRIVATE_KEY_FILE]  # no temporary left


def test_a_loose_data_dir_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    result = lmrpc_token(data_dir)
    assert result.returncode == 0, result.stderr
    assert mode(data_dir) == 0o700
    assert "tightened" in result.stderr


def test_a_planted_symlink_at_the_old_temporary_name_does_not_get_the_key(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    stolen = tmp_path / "stolen.jwk"  # where an attacker would read the key from
    (data_dir / OLD_TEMPORARY).symlink_to(stolen)
    result = lmrpc_token(data_dir)
    assert result.returncode == 0, result.stderr
    assert not stolen.exists()
    assert (data_dir / OLD_TEMPORARY).is_symlink()  # left alone
    assert mode(data_dir / PRIVATE_KEY_FILE) == 0o600
    assert not (data_dir / PRIVATE_KEY_FILE).is_symlink()


def test_a_planted_file_at_the_old_temporary_name_does_not_get_the_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    planted = data_dir / OLD_TEMPORARY
    planted.write_text("planted")
    planted.chmod(0o644)  # an open file handle on it would read whatever is written
    result = lmrpc_token(data_dir)
    assert result.returncode == 0, result.stderr
    assert planted.read_text() == "planted" and mode(planted) == 0o644
    assert mode(data_dir / PRIVATE_KEY_FILE) == 0o600
    assert signed_with_the_key(result.stdout.strip(), data_dir)


def test_a_key_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere.jwk"
    elsewhere.write_text(json.dumps(TokenFactory(tmp_path).key.as_dict(private=True)))
    (data_dir / PRIVATE_KEY_FILE).symlink_to(elsewhere)
    result = lmrpc_token(data_dir)
    assert result.returncode == 2
    assert "cannot open the signing key" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_readable_key_file_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert lmrpc_token(data_dir).returncode == 0
    (data_dir / PRIVATE_KEY_FILE).chmod(0o644)
    result = lmrpc_token(data_dir)
    assert result.returncode == 0, result.stderr
    assert mode(data_dir / PRIVATE_KEY_FILE) == 0o600


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_serve_keeps_the_data_dir_key_and_database_private(
    backend: str,
    tokens: TokenFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    unique_name: str,
) -> None:
    """``lmrpc serve`` in embedded mode: on SQLite the database lives in the data dir (the
    default URL); on PostgreSQL only the data dir and the key are files of ours."""
    data_dir = tmp_path / "data"
    database = {"LMRPC_DATABASE_URL": None}
    if backend == "postgresql":
        database = {"LMRPC_DATABASE_URL": request.getfixturevalue("pg_database")}
    env = server_env("", tokens, data_dir, {**EMBEDDED, **database})
    with running_server(env, tmp_path) as server:
        token = lmrpc_token(data_dir).stdout.strip()
        # pg_database is not emptied for this test: a name of its own
        created = server.rpc(token, "products.create", {"name": unique_name})
        assert created["result"]["name"] == unique_name  # the embedded key verifies
        assert mode(data_dir) == 0o700
        assert mode(data_dir / PRIVATE_KEY_FILE) == 0o600
        if backend == "sqlite":
            files = ["lmrpc.sqlite3", "lmrpc.sqlite3-wal", "lmrpc.sqlite3-shm"]
            assert {name: mode(data_dir / name) for name in files} == dict.fromkeys(files, 0o600)
        others = [p.name for p in data_dir.iterdir() if mode(p) & 0o077]
        assert not others


def test_an_existing_readable_database_is_tightened(tmp_path: Path) -> None:
    from storage import migrate

    database = tmp_path / "shared" / "lmrpc.sqlite3"
    database.parent.mkdir()
    database.touch(mode=0o644)
    migrate.upgrade(f"sqlite:///{database}")
    assert mode(database) == 0o600


def test_racing_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    """Several processes creating the key at once (``--workers``, a token minted during
    start): one key wins, every process signs with it, no temporary file is left."""
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMRPC_")}
    env["LMRPC_DATA_DIR"] = str(data_dir)
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "lmrpc", "token"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [racer.communicate(timeout=60) for racer in racers]
    assert [racer.returncode for racer in racers] == [0] * 4, outputs
    assert all(signed_with_the_key(out.strip(), data_dir) for out, _ in outputs)
    assert sorted(p.name for p in data_dir.iterdir()) == [PRIVATE_KEY_FILE]
    assert mode(data_dir / PRIVATE_KEY_FILE) == 0o600
