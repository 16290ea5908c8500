"""A PostgreSQL server of the test's own (initdb in a temporary directory, a free port), for
tests that stop and start the server: the machine's shared one stays up for every other test,
so the suite can run in parallel.

Uses the binaries of the installed PostgreSQL (Debian's ``/usr/lib/postgresql/<version>/bin``);
as root the server runs as the ``postgres`` user, since PostgreSQL refuses to run as root.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.server import free_port

START_TIMEOUT_S = 30


def _bin_dir() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not versions:
        raise RuntimeError("PostgreSQL's server binaries are not installed (/usr/lib/postgresql)")
    return versions[-1].parent


@dataclass
class PrivatePostgres:
    data: Path
    port: int
    bin_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60)

    def ready(self) -> bool:
        return (
            self._run(
                "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port), check=False
            ).returncode
            == 0
        )

    def start(self) -> None:
        if self.ready():
            return
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.data / "log"), "-o", options, "start"
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"private PostgreSQL did not start: {self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "stop", check=False)

    def log(self) -> str:
        path = self.data / "log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh PostgreSQL server, trust auth on 127.0.0.1, removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="lmrpc-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    server = PrivatePostgres(data, free_port(), _bin_dir())
    try:
        server._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
