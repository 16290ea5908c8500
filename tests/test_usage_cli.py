"""End to end on both backends: an agent's report and a refused booking through a real
``lmrpc serve``, read back with ``lmrpc usage …`` and ``/metrics``."""

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer

from lmrpc.cli.usage import BARS, sparkline
from lmrpc.cli.values import moment
from tests.factories import feature_in
from tests.server import HTTP, Server
from tests.test_cli import Cli
from tests.test_metrics import samples
from tests.tokens import TokenFactory


def test_usage_commands_against_a_real_server(
    server: Server, tokens: TokenFactory, database_url: str, tmp_path: Path
) -> None:
    feature = feature_in(database_url, 10, cluster="cluster-a", product="abaqus", name="cae")
    agent = tokens.mint("feature:report", "job:create", "booking:create", client_id="cluster-a")
    checkouts = [
        {"username": "alice", "lead_host": "n1", "quantity": 3},
        {"username": "bob", "lead_host": "n2", "quantity": 1},
    ]
    report = {"product_name": "abaqus", "feature_name": "cae", "total": 10, "used": 4}
    answer = server.rpc(
        agent, "features.bulk_update", {"features": [{**report, "checkouts": checkouts}]}
    )
    assert answer["result"] == {"updated": 1}
    job = server.rpc(agent, "jobs.create", {"slurm_job_id": "1", "username": "a", "lead_host": "n"})
    refused = server.rpc(
        agent,
        "bookings.create",
        {"job_id": job["result"]["id"], "feature_id": feature, "quantity": 9},
    )
    assert refused["error"]["code"] == -32010

    cli = Cli(server.url, tokens.mint("feature:read", client_id="cluster-a"), tmp_path / "cache")
    points = cli.json("usage", "history", "--product-feature", "abaqus.cae", "--since", "1h")
    assert points[-1] == {
        "t": points[-1]["t"], "total": 10, "used": 4, "reserved": 0, "booked": 0, "peak_used": 4,
    }  # fmt: skip
    assert points[0]["used"] is None  # an hour ago nothing was known yet
    table = cli.ok(
        "usage", "history", "--feature-id", str(feature), "--since", "1h", "--step", "600"
    )
    assert "peak used" in table and BARS[3] in table  # 4 of 10
    csv_text = cli.ok("usage", "history", "--feature-id", str(feature), "--csv")
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert rows[-1]["used"] == "4" and rows[0]["used"] == ""

    assert cli.json("usage", "checkouts", str(feature)) == [
        {**entry, "reported_at": cli.json("usage", "checkouts", str(feature))[0]["reported_at"]}
        for entry in checkouts
    ]
    assert "alice" in cli.ok("usage", "by-user")
    assert cli.json("usage", "by-user", "--cluster-client-id", "cluster-a") == [
        {"username": "alice", "product_feature": "abaqus.cae", "quantity": 3},
        {"username": "bob", "product_feature": "abaqus.cae", "quantity": 1},
    ]
    [row] = cli.json("usage", "refusals", "--since", "2h")
    assert (row["feature_id"], row["refused_calls"], row["refused_licenses"]) == (feature, 1, 9)
    assert "refused_licenses" in cli.ok("usage", "refusals", "--csv").splitlines()[0]
    assert cli.error("usage", "history", "--feature-id", "999", "--since", "1h")["code"] == -32004

    metrics = tokens.mint("metrics:read")
    text = HTTP.get(server.url + "/metrics", headers={"Authorization": f"Bearer {metrics}"}).text
    labels = (("cluster", "cluster-a"), ("feature", "cae"), ("product", "abaqus"))
    assert samples(text)[("lmrpc_refused_licenses_total", labels)] == 9


def test_moment_and_sparkline() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert moment("now", now) == "2026-12-02T12:00:00Z"
    assert moment("90m", now) == "2026-12-02T10:30:00Z"
    assert moment("7d", now) == "2026-11-25T12:00:00Z"
    assert moment("2026-12-01T00:00:00Z", now) == "2026-12-01T00:00:00Z"
    for bad in ("yesterday", "2026-12-01T00:00:00", "5x"):
        with pytest.raises(typer.BadParameter):
            moment(bad, now)
    assert sparkline([0, 5, 10, None], 10) == BARS[0] + BARS[4] + BARS[7] + " "
    assert sparkline([3], 0) == BARS[0]
