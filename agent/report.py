"""What ``lmrpc agent once`` prints about a cycle: a table for people, JSON for scripts."""

import dataclasses
from typing import Any

from agent.runner import Cycle

COLUMNS = (
    ("feature", "product_feature"),
    ("server total", "server_total"),
    ("server used", "server_used"),
    ("slurm license", "slurm_license"),
    ("slurm total", "slurm_total"),
    ("slurm used", "slurm_used"),
    ("booked", "booked"),
    ("reserved", "reservation"),
)


def to_json(cycle: Cycle) -> dict[str, Any]:
    actions = cycle.actions
    return {
        "dry_run": cycle.dry_run,
        "duration_s": round(cycle.duration_s, 3),
        "features": [dataclasses.asdict(state) for state in actions.features],
        "fail_closed": actions.fail_closed,
        "reservation": actions.reservation,
        "released": [dataclasses.asdict(release) for release in actions.releases],
        "problems": cycle.problems,
    }


def render(cycle: Cycle) -> str:
    rows = [[title for title, _ in COLUMNS]]
    for state in cycle.actions.features:
        row = ["-" if getattr(state, f) is None else str(getattr(state, f)) for _, f in COLUMNS]
        if state.fail_closed:
            row[1:3] = ["FAIL-CLOSED", "-"]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    verb = "would release" if cycle.dry_run else "released"
    for release in cycle.actions.releases:
        lines.append(
            f"{verb} {release.kind} {release.id} (slurm job {release.slurm_job_id}): "
            f"{release.reason}"
        )
    if not cycle.actions.releases:
        lines.append(f"{verb} nothing")
    reserved = ", ".join(f"{n}:{a}" for n, a in sorted(cycle.actions.reservation.items()))
    lines.append(f"reservation: {reserved or 'none'}" + (" (dry run)" if cycle.dry_run else ""))
    lines.extend(f"problem: {problem}" for problem in cycle.problems)
    return "\n".join(lines)
