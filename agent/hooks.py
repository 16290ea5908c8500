"""slurmctld's PrologSlurmctld and EpilogSlurmctld (AGENT.md §4): book the job's tracked
licenses before it starts, release them when it ends.

This module is the hot path of every job start, so it imports only what it needs (no
typer, rich, pydantic or server modules); ``lmrpc.console`` reaches it without the CLI.
"""

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from agent import settings as agent_settings
from agent import slurm
from agent.license_tools import ToolCommand, run

if TYPE_CHECKING:
    from lmrpc.client import RpcFailure

HOOK_TIMEOUT_S = 5.0  # slurmctld waits for the prolog: it must finish within seconds
ADMIT, REFUSE = 0, 1
NOT_FOUND, CONFLICT, NOT_ENOUGH = -32004, -32009, -32010


def prolog(environ: Mapping[str, str] = os.environ) -> int:
    """Book the job's tracked licenses in one ``jobs.create`` (all or nothing)."""
    wanted = slurm.parse_job_licenses(environ.get("SLURM_JOB_LICENSES"))
    if not wanted:
        return ADMIT
    from lmrpc.client import Client, RpcFailure, TransportFailure  # only jobs that book

    settings = _settings()
    job_id = environ.get("SLURM_JOB_ID", "")
    params = {
        "slurm_job_id": job_id,
        "username": environ.get("SLURM_JOB_USER", ""),
        "lead_host": _lead_host(environ.get("SLURM_JOB_NODELIST", ""), settings),
    }
    try:
        with Client(settings.url, settings.token, HOOK_TIMEOUT_S) as client:
            while wanted:
                bookings = [{"product_feature": f, "quantity": q} for f, q in wanted.items()]
                try:
                    client.call("jobs.create", {**params, "bookings": bookings})
                    return ADMIT
                except RpcFailure as failure:
                    unknown = _unknown_features(failure, wanted)
                    if not unknown:
                        raise
                    print(f"lmrpc: job {job_id}: not tracked: {sorted(unknown)}", file=sys.stderr)
                    wanted = {f: q for f, q in wanted.items() if f not in unknown}
            return ADMIT
    except RpcFailure as failure:
        if failure.code == CONFLICT:
            return ADMIT  # booked by an earlier try of this prolog
        if failure.code == NOT_ENOUGH:
            print(f"lmrpc: job {job_id}: {failure.message}: {failure.data}", file=sys.stderr)
            return REFUSE
        problem = str(failure)
    except TransportFailure as failure:
        problem = str(failure)
    verdict = ADMIT if settings.prolog_on_error == "admit" else REFUSE
    print(
        f"lmrpc: job {job_id}: {problem}; LMRPC_AGENT_PROLOG_ON_ERROR={settings.prolog_on_error}",
        file=sys.stderr,
    )
    return verdict


def epilog(environ: Mapping[str, str] = os.environ) -> int:
    """Release the job's bookings; always 0 (a failing epilog would requeue the job, and a
    booking left behind is released by the next reconcile cycle)."""
    if not slurm.parse_job_licenses(environ.get("SLURM_JOB_LICENSES")):
        return 0
    from lmrpc.client import Client, RpcFailure, TransportFailure  # only jobs that booked

    settings = _settings()
    job_id = environ.get("SLURM_JOB_ID", "")
    try:
        with Client(settings.url, settings.token, HOOK_TIMEOUT_S) as client:
            client.call("jobs.delete_by_slurm_id", {"slurm_job_id": job_id})
    except RpcFailure as failure:
        if failure.code != NOT_FOUND:
            print(f"lmrpc: job {job_id}: {failure}", file=sys.stderr)
    except TransportFailure as failure:
        print(f"lmrpc: job {job_id}: {failure}", file=sys.stderr)
    return 0


def _settings() -> agent_settings.AgentSettings:
    for warning in agent_settings.load_env_file():
        print(f"lmrpc: {warning}", file=sys.stderr)
    return agent_settings.from_env()


def _unknown_features(failure: "RpcFailure", wanted: Mapping[str, int]) -> set[str]:
    """The product.features a -32004 names as missing (those lmrpc does not track)."""
    if failure.code != NOT_FOUND or not isinstance(failure.data, dict):
        return set()
    missing = {str(name).lower() for name in failure.data.get("missing") or ()}
    return {feature for feature in wanted if feature.lower() in missing}


def _lead_host(nodelist: str, settings: agent_settings.AgentSettings) -> str:
    """The first host of the job's node list; ``node[01-04]`` is expanded by scontrol."""
    if not slurm.needs_expansion(nodelist):
        return slurm.first_host(nodelist)
    expanded = run(
        ToolCommand(tuple(slurm.show_hostnames(settings.scontrol, nodelist))),
        settings.tool_timeout,
    )
    hosts = expanded.text.split()
    return hosts[0] if expanded.ok and hosts else nodelist


def main(hook: str) -> int:
    """Entry of ``lmrpc agent prolog|epilog``."""
    try:
        return prolog() if hook == "prolog" else epilog()
    except agent_settings.SettingsError as error:
        print(f"lmrpc: {error}", file=sys.stderr)
        return REFUSE if hook == "prolog" else 0
