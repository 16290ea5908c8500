"""The Slurm side: pure parsers of what ``scontrol`` and ``squeue`` print and of the job's
license list, and the argument lists of the commands the agent runs (never a shell)."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_args

from agent.usage import ServerType

LICENSE_TYPES = get_args(ServerType)
# Slurm states in which a job holds its licenses: its booking must stay.
ACTIVE_STATES = frozenset({"RUNNING", "CONFIGURING", "SUSPENDED", "STOPPED"})
SQUEUE_FORMAT = "%A|%T|%M"  # unique job id (array tasks too), state, elapsed time

_NAME = r"[A-Za-z0-9_+-]+"
_TRACKED = re.compile(rf"({_NAME})\.({_NAME})@({'|'.join(LICENSE_TYPES)})", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SlurmLicense:
    total: int
    used: int
    reserved: int


@dataclass(frozen=True, slots=True)
class SlurmJob:
    job_id: str
    state: str
    elapsed_s: int

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def product_feature(license_name: str) -> str | None:
    """``product.feature`` of a tracked Slurm license ``product.feature@type``, else None."""
    match = _TRACKED.fullmatch(license_name.strip())
    return f"{match[1]}.{match[2]}" if match else None


def parse_licenses(text: str) -> dict[str, SlurmLicense]:
    """``scontrol show lic`` (one or several lines per license) → name → counts."""
    found: dict[str, SlurmLicense] = {}
    name: str | None = None
    fields: dict[str, str] = {}

    def close() -> None:
        if name is not None:
            counts = [_int(fields.get(key)) for key in ("Total", "Used", "Reserved")]
            if counts[0] is not None:
                found[name] = SlurmLicense(*(count or 0 for count in counts))

    for token in text.split():
        key, equals, value = token.partition("=")
        if not equals:
            continue
        if key == "LicenseName":
            close()
            name, fields = value, {}
        else:
            fields[key] = value
    close()
    return found


def parse_jobs(text: str) -> dict[str, SlurmJob]:
    """``squeue -h -o SQUEUE_FORMAT`` → job id → job; unreadable lines are skipped."""
    jobs: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3 or not parts[0]:
            continue
        elapsed = parse_elapsed(parts[2])
        jobs[parts[0]] = SlurmJob(parts[0], parts[1].upper(), elapsed if elapsed is not None else 0)
    return jobs


def parse_elapsed(text: str) -> int | None:
    """Slurm's ``[days-][hours:]minutes:seconds`` in seconds."""
    days, _, clock = text.strip().rpartition("-")
    parts = clock.split(":")
    if not 1 <= len(parts) <= 3 or not all(part.isdigit() for part in parts):
        return None
    if days and not days.isdigit():
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds + int(days or 0) * 86400


def parse_job_licenses(value: str | None) -> dict[str, int]:
    """``SLURM_JOB_LICENSES`` (``name[:count],…``) → tracked product.feature → count.

    Slurm-local licenses (not ``product.feature@type``) are left out; the same
    product.feature named twice is summed.
    """
    wanted: dict[str, int] = {}
    if not value or value.strip() == "(null)":
        return wanted
    for item in value.split(","):
        name, _, count = item.strip().partition(":")
        feature = product_feature(name)
        if feature is None or not (count.isdigit() or not count):
            continue
        quantity = int(count) if count else 1
        if quantity > 0:
            wanted[feature] = wanted.get(feature, 0) + quantity
    return wanted


def short_host(host: str) -> str:
    """Host names are compared up to the first ``.``, case-insensitively."""
    return host.split(".", 1)[0].lower()


def needs_expansion(nodelist: str) -> bool:
    """A plain ``host[,host…]`` list names its first host; ``node[01-04]`` needs scontrol."""
    return "[" in nodelist


def first_host(nodelist: str) -> str:
    return nodelist.split(",", 1)[0].strip()


# Commands ----------------------------------------------------------------------------------


def show_licenses(scontrol: str) -> list[str]:
    return [scontrol, "-o", "show", "licenses"]


def list_jobs(squeue: str) -> list[str]:
    return [squeue, "-h", "-a", "-o", SQUEUE_FORMAT]


def show_hostnames(scontrol: str, nodelist: str) -> list[str]:
    return [scontrol, "show", "hostnames", nodelist]


def show_reservation(scontrol: str, name: str) -> list[str]:
    return [scontrol, "-o", "show", "reservation", name]


def reservation_exists(output: str, name: str) -> bool:
    return any(token == f"ReservationName={name}" for token in output.split())


def _licenses(amounts: Mapping[str, int]) -> str:
    return ",".join(f"{name}:{amount}" for name, amount in sorted(amounts.items()))


def create_reservation(
    scontrol: str, name: str, user: str, amounts: Mapping[str, int], lifetime_s: int
) -> list[str]:
    return [
        scontrol,
        "create",
        "reservation",
        f"ReservationName={name}",
        "StartTime=now",
        f"EndTime=now+{lifetime_s}",
        f"Users={user}",
        "Flags=LICENSE_ONLY",
        f"Licenses={_licenses(amounts)}",
    ]


def update_reservation(
    scontrol: str, name: str, amounts: Mapping[str, int], lifetime_s: int
) -> list[str]:
    return [
        scontrol,
        "update",
        f"ReservationName={name}",
        f"EndTime=now+{lifetime_s}",
        f"Licenses={_licenses(amounts)}",
    ]


def delete_reservation(scontrol: str, name: str) -> list[str]:
    return [scontrol, "delete", f"ReservationName={name}"]


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None
