"""The reconcile cycle's I/O around :func:`agent.reconcile.decide`: one batch to read lmrpc,
the license servers (configurations concurrently, each one's servers in order) and Slurm,
then one batch of writes, and the reservation."""

import logging
import math
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from agent import license_tools, slurm
from agent.parsers import parse
from agent.reconcile import Actions, Booking, Configuration, Feature, Inputs, Job, decide
from agent.settings import AgentSettings
from agent.usage import Report
from lmrpc.client import Client, RpcFailure

log = logging.getLogger("lmrpc.agent")

MAX_TOOL_THREADS = 8  # configurations read at once
RESERVATION_INTERVALS = 3  # a dead agent's reservation lapses after this many intervals
NOT_FOUND = -32004


class CycleError(Exception):
    """The cycle could not read what it needs; nothing was written."""


@dataclass
class Cycle:
    """What one cycle read and did (``agent once`` prints it)."""

    actions: Actions
    dry_run: bool
    duration_s: float = 0.0
    problems: list[str] = field(default_factory=list)  # writes that failed (logged)

    def summary(self) -> str:
        """The cycle's one log line (AGENT.md §3 step 7)."""
        releases = self.actions.releases
        return (
            f"cycle duration_s={self.duration_s:.3f} features={len(self.actions.features)}"
            f" fail_closed={len(self.actions.fail_closed)}"
            f" jobs_released={sum(r.kind == 'job' for r in releases)}"
            f" bookings_released={sum(r.kind == 'booking' for r in releases)}"
            f" reserved={sum(self.actions.reservation.values())}"
            f" problems={len(self.problems)}"
        )


Run = Callable[[license_tools.ToolCommand, float], license_tools.ToolResult]


class Runner:
    def __init__(self, settings: AgentSettings, client: Client, run: Run = license_tools.run):
        self.settings = settings
        self.client = client
        self.run = run

    def cycle(self, *, dry_run: bool = False) -> Cycle:
        started = time.monotonic()
        configurations, jobs, booked = self._read_lmrpc(report_status=not dry_run)
        reading = [c for c in configurations if c.features]
        with ThreadPoolExecutor(max_workers=MAX_TOOL_THREADS) as pool:
            reports = dict(
                zip([c.id for c in reading], pool.map(self._read_servers, reading), strict=True)
            )
        # Slurm is read after lmrpc: a job booked by then has a running prolog, so squeue
        # shows it (CONFIGURING) and it is not taken for gone.
        licenses = slurm.parse_licenses(self._slurm(slurm.show_licenses(self.settings.scontrol)))
        slurm_jobs = slurm.parse_jobs(self._slurm(slurm.list_jobs(self.settings.squeue)))
        actions = decide(Inputs(tuple(configurations), jobs, booked, reports, licenses, slurm_jobs))
        cycle = Cycle(actions, dry_run)
        for state in actions.features:
            if state.fail_closed:
                log.warning("fail-closed: %s (no license server lists it)", state.product_feature)
        for release in actions.releases:
            log.info(
                "release %s %d (slurm job %s): %s",
                release.kind,
                release.id,
                release.slurm_job_id,
                release.reason,
            )
        if not dry_run:
            self._write(actions, cycle.problems)
            self._reserve(actions.reservation, cycle.problems)
        cycle.duration_s = time.monotonic() - started
        return cycle

    def _read_lmrpc(
        self, *, report_status: bool
    ) -> tuple[list[Configuration], tuple[Job, ...], dict[str, int]]:
        calls: list[tuple[str, Mapping[str, Any]]] = [
            ("configurations.by_client_id", {}),
            ("jobs.by_client_id", {}),
            ("features.list", {}),
        ]
        if report_status:
            interval = math.ceil(self.settings.interval)  # lmrpc counts whole seconds
            calls.append(("clusters.report_status", {"interval": interval}))
        results = self.client.batch(calls)
        for (method, _), result in zip(calls, results, strict=True):
            if isinstance(result, RpcFailure):
                raise CycleError(f"{method}: {result}")
        booked: dict[str, int] = {}
        for feature in results[2]:
            key = f"{feature['product']['name']}.{feature['name']}".lower()
            booked[key] = booked.get(key, 0) + feature["booked_total"]
        return [_configuration(c) for c in results[0]], tuple(map(_job, results[1])), booked

    def _read_servers(self, configuration: Configuration) -> Report | None:
        """The first server that answers with features, in order; None when none does."""
        for host, port in configuration.servers:
            command = license_tools.command(configuration.type, host, port, self.settings.tools)
            result = self.run(command, self.settings.tool_timeout)
            report = parse(configuration.type, result.text) if result.ok else {}
            if report:
                return report
            problem = result.error if not result.ok else "no feature in its output"
            log.warning("license server %s:%d (%s): %s", host, port, configuration.type, problem)
        return None

    def _scontrol(self, argv: list[str]) -> license_tools.ToolResult:
        return self.run(license_tools.ToolCommand(tuple(argv)), self.settings.tool_timeout)

    def _slurm(self, argv: list[str]) -> str:
        """The output of a Slurm command the cycle cannot do without."""
        result = self._scontrol(argv)
        if not result.ok:
            raise CycleError(f"{' '.join(argv)}: {result.error}")
        return result.text

    def _write(self, actions: Actions, problems: list[str]) -> None:
        """The counters and every release: one request (more only past the batch limit)."""
        calls: list[tuple[str, Mapping[str, Any]]] = []
        if actions.updates:
            calls.append(("features.bulk_update", {"features": list(actions.updates)}))
        for release in actions.releases:
            calls.append((f"{release.kind}s.delete", {"id": release.id}))
        for (method, params), result in zip(calls, self.client.batch(calls), strict=True):
            if isinstance(result, RpcFailure) and not (
                method.endswith(".delete") and result.code == NOT_FOUND
            ):
                problems.append(f"{method} {params.get('id', '')}: {result}".strip())
                log.error("%s", problems[-1])

    def _reserve(self, amounts: Mapping[str, int], problems: list[str]) -> None:
        """Create, update or delete the one license-only reservation; its end moves to
        three intervals from now on every cycle."""
        settings = self.settings
        lifetime = math.ceil(RESERVATION_INTERVALS * settings.interval)
        shown = self._scontrol(slurm.show_reservation(settings.scontrol, settings.reservation))
        exists = shown.ok and slurm.reservation_exists(shown.text, settings.reservation)
        if amounts and exists:
            argv = slurm.update_reservation(
                settings.scontrol, settings.reservation, amounts, lifetime
            )
        elif amounts:
            argv = slurm.create_reservation(
                settings.scontrol,
                settings.reservation,
                settings.reservation_user,
                amounts,
                lifetime,
            )
        elif exists:
            argv = slurm.delete_reservation(settings.scontrol, settings.reservation)
        else:
            return
        result = self._scontrol(argv)
        if not result.ok:
            problems.append(f"reservation: {' '.join(argv[1:3])}: {result.error}")
            log.error("%s", problems[-1])


def _configuration(raw: Mapping[str, Any]) -> Configuration:
    return Configuration(
        id=raw["id"],
        type=raw["type"],
        grace_time=raw["grace_time"],
        features=tuple(
            Feature(f["id"], f["product"]["name"], f["name"]) for f in raw.get("features", ())
        ),
        servers=tuple((s["host"], s["port"]) for s in raw.get("license_servers", ())),
    )


def _job(raw: Mapping[str, Any]) -> Job:
    return Job(
        id=raw["id"],
        slurm_job_id=str(raw["slurm_job_id"]),
        username=raw["username"],
        lead_host=raw["lead_host"],
        bookings=tuple(
            Booking(b["id"], b["feature_id"], b["quantity"]) for b in raw.get("bookings", ())
        ),
    )
