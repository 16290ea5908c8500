"""A real Slurm for the agent's end-to-end tests: munged, slurmctld and slurmd (Debian's
packages) on free ports with a slurm.conf of the test's own, one node, run as root.

It fails loudly, never skips, when Slurm is missing or does not come up: `.ci/run`
installs the packages.
"""

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.server import free_port, stop_process

START_TIMEOUT_S = 60
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
REQUIRED = ("munged", "slurmctld", "slurmd", "scontrol", "squeue", "sbatch", "sinfo")


class SlurmUnavailable(RuntimeError):
    """Slurm is not installed or did not start: the tests that need it must fail."""


@dataclass
class Slurm:
    conf: Path
    directory: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True, timeout=30, check=check
        )

    def licenses(self) -> dict[str, dict[str, int]]:
        """``scontrol show lic``: license name → Total, Used, Free, Reserved."""
        out = self.run("scontrol", "-o", "show", "lic").stdout
        found: dict[str, dict[str, int]] = {}
        for line in out.splitlines():
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            if "LicenseName" in fields:
                found[fields["LicenseName"]] = {
                    key: int(fields[key]) for key in ("Total", "Used", "Free", "Reserved")
                }
        return found

    def job_state(self, job_id: str) -> str:
        out = self.run("scontrol", "-o", "show", "job", job_id).stdout
        fields = dict(item.split("=", 1) for item in out.split() if "=" in item)
        return fields.get("JobState", "")

    def sbatch(self, *options: str, wrap: str) -> str:
        out = self.run("sbatch", "--parsable", *options, "--wrap", wrap).stdout
        return out.strip().split(";")[0]


def _missing() -> list[str]:
    return [name for name in REQUIRED if shutil.which(name) is None]


def _start_munge() -> None:
    if MUNGE_SOCKET.exists() and (
        subprocess.run(["sh", "-c", "munge -n | unmunge"], capture_output=True).returncode == 0
    ):
        return
    munge = pwd.getpwnam("munge")
    for directory in (Path("/run/munge"), Path("/var/log/munge"), Path("/var/lib/munge")):
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, munge.pw_uid, munge.pw_gid)
    subprocess.run(
        ["runuser", "-u", "munge", "--", "munged", "--force"], check=True, capture_output=True
    )


def write_conf(directory: Path, licenses: Mapping[str, int], prolog: Path, epilog: Path) -> Path:
    host = socket.gethostname().split(".")[0]
    state, spool = directory / "state", directory / "spool"
    state.mkdir(parents=True)
    spool.mkdir()
    cpus = os.cpu_count() or 1
    lines = [
        "ClusterName=lmrpctest",
        f"SlurmctldHost={host}",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"SlurmctldPort={free_port()}",
        f"SlurmdPort={free_port()}",
        f"StateSaveLocation={state}",
        f"SlurmdSpoolDir={spool}",
        f"SlurmctldPidFile={directory / 'slurmctld.pid'}",
        f"SlurmdPidFile={directory / 'slurmd.pid'}",
        f"SlurmctldLogFile={directory / 'slurmctld.log'}",
        f"SlurmdLogFile={directory / 'slurmd.log'}",
        "AuthType=auth/munge",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",
        "SchedulerType=sched/backfill",
        "SchedulerParameters=sched_interval=1",
        "ReturnToService=2",
        "MinJobAge=2",
        "MpiDefault=none",
        f"PrologSlurmctld={prolog}",
        f"EpilogSlurmctld={epilog}",
        "Licenses=" + ",".join(f"{name}:{count}" for name, count in licenses.items()),
        f"NodeName={host} CPUs={cpus} State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
    ]
    conf = directory / "slurm.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


@contextmanager
def running_slurm(
    directory: Path, licenses: Mapping[str, int], prolog: Path, epilog: Path
) -> Iterator[Slurm]:
    """Start slurmctld and slurmd in the foreground, wait until the node is idle, stop them."""
    missing = _missing()
    if missing:
        raise SlurmUnavailable(
            f"Slurm is not installed ({', '.join(missing)} missing): "
            "apt-get install slurmctld slurmd slurm-client munge (.ci/run does)"
        )
    _start_munge()
    conf = write_conf(directory, licenses, prolog, epilog)
    slurm = Slurm(conf, directory)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for daemon in ("slurmctld", "slurmd"):
            processes.append(_start(slurm, [daemon, "-D", "-f", str(conf)], directory / daemon))
        _wait_idle(slurm, processes)
        yield slurm
    finally:
        for process in reversed(processes):
            stop_process(process, timeout=20)


def _start(slurm: Slurm, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    with open(f"{log}.out", "wb") as out:
        return subprocess.Popen(
            list(argv),
            env=slurm.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_idle(slurm: Slurm, processes: Sequence[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise SlurmUnavailable(f"{process.args!r} exited early:\n{_logs(slurm)}")
        result = slurm.run("sinfo", "-h", "-o", "%T", check=False)
        if result.returncode == 0 and result.stdout.strip() == "idle":
            return
        time.sleep(0.5)
    raise SlurmUnavailable(f"the Slurm node did not become idle:\n{_logs(slurm)}")


def _logs(slurm: Slurm) -> str:
    texts = []
    for name in ("slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out"):
        path = slurm.directory / name
        if path.exists():
            texts.append(f"--- {name}\n" + "\n".join(path.read_text().splitlines()[-30:]))
    return "\n".join(texts)
