"""clusters.* through the dispatcher, on both backends."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from storage.clusters import is_healthy, tolerance
from storage.facade import Storage
from storage.schema import cluster_statuses
from tests import rpc_objects as make
from tests.conftest import Rpc, identity

AGENT_A = identity("status:update", cluster="cluster-a")
AGENT_B = identity("status:update", cluster="cluster-b")
READER = identity("status:read", cluster=None)


async def _reported_ago(storage: Storage, cluster: str, seconds: float) -> None:
    """Move a cluster's last report ``seconds`` into the past."""
    when = datetime.now(UTC) - timedelta(seconds=seconds)
    await storage.write(
        lambda conn: conn.execute(
            update(cluster_statuses)
            .where(cluster_statuses.c.cluster_client_id == cluster)
            .values(last_reported=when)
        )
    )


def _parse(stamp: str) -> datetime:
    assert stamp.endswith("Z")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def test_report_get_list(rpc: Rpc) -> None:
    before = datetime.now(UTC)
    reported = await rpc("clusters.report_status", {"interval": 30}, as_=AGENT_B)
    assert reported["cluster_client_id"] == "cluster-b"
    assert reported["interval"] == 30
    assert reported["is_healthy"] is True
    assert before <= _parse(reported["last_reported"]) <= datetime.now(UTC)
    assert await rpc("clusters.get_status", {"cluster_client_id": "cluster-b"}, as_=READER) == (
        reported
    )
    other = await rpc("clusters.report_status", {"interval": 60}, as_=AGENT_A)
    listed = await rpc("clusters.list_statuses", as_=READER)
    assert listed == [other, reported]  # ordered by cluster_client_id


async def test_report_again_updates(rpc: Rpc) -> None:
    first = await rpc("clusters.report_status", {"interval": 30}, as_=AGENT_A)
    await _reported_ago(rpc.storage, "cluster-a", 3600)
    second = await rpc("clusters.report_status", {"interval": 120}, as_=AGENT_A)
    assert second["interval"] == 120
    assert _parse(second["last_reported"]) >= _parse(first["last_reported"])
    assert await rpc("clusters.list_statuses") == [second]


async def test_health_follows_interval_and_tolerance(rpc: Rpc) -> None:
    await rpc("clusters.report_status", {"interval": 100}, as_=AGENT_A)
    await rpc("clusters.report_status", {"interval": 100}, as_=AGENT_B)
    await _reported_ago(rpc.storage, "cluster-a", 100 + 5)  # within 10 % of 100 s
    await _reported_ago(rpc.storage, "cluster-b", 100 + 15)  # past it
    a = await rpc("clusters.get_status", {"cluster_client_id": "cluster-a"})
    b = await rpc("clusters.get_status", {"cluster_client_id": "cluster-b"})
    assert (a["is_healthy"], b["is_healthy"]) == (True, False)
    assert [s["is_healthy"] for s in await rpc("clusters.list_statuses")] == [True, False]
    # A fresh report makes it healthy again.
    assert (await rpc("clusters.report_status", {"interval": 100}, as_=AGENT_B))["is_healthy"]
    assert (await rpc("clusters.get_status", {"cluster_client_id": "cluster-b"}))["is_healthy"]


def test_tolerance() -> None:
    assert tolerance(1) == 5.0
    assert tolerance(50) == 5.0
    assert tolerance(600) == 60.0
    reported = datetime(2025, 1, 1, tzinfo=UTC)
    assert is_healthy(10, reported, reported + timedelta(seconds=15))
    assert not is_healthy(10, reported, reported + timedelta(seconds=15.001))
    naive = reported.replace(tzinfo=None)  # as SQLite returns it
    assert is_healthy(600, naive, reported + timedelta(seconds=660))
    assert not is_healthy(600, naive, reported + timedelta(seconds=661))


async def test_unknown_cluster(rpc: Rpc) -> None:
    error = await rpc.error("clusters.get_status", {"cluster_client_id": "nowhere"})
    assert (error.code, error.data) == (-32004, {"resource": "cluster", "id": "nowhere"})
    assert await rpc("clusters.list_statuses") == []


@pytest.mark.parametrize(
    "params", [{}, {"interval": 0}, {"interval": -5}, {"interval": "30"}, {"interval": 2**31}]
)
async def test_report_bad_params(rpc: Rpc, params: dict[str, object]) -> None:
    assert make.invalid_fields(await rpc.error("clusters.report_status", params, as_=AGENT_A)) == [
        "interval"
    ]
    assert await rpc("clusters.list_statuses") == []


async def test_other_bad_params(rpc: Rpc) -> None:
    error = await rpc.error("clusters.report_status", {"interval": 5, "cluster_client_id": "x"})
    assert make.invalid_fields(error) == ["cluster_client_id"]
    assert make.invalid_fields(await rpc.error("clusters.get_status", {})) == ["cluster_client_id"]
    error = await rpc.error("clusters.get_status", {"cluster_client_id": ""})
    assert make.invalid_fields(error) == ["cluster_client_id"]
    error = await rpc.error("clusters.list_statuses", {"limit": 1})
    assert make.invalid_fields(error) == ["limit"]


async def test_identity_and_permissions(rpc: Rpc) -> None:
    no_cluster = identity("status:update", cluster=None)
    assert (await rpc.error("clusters.report_status", {"interval": 5}, as_=no_cluster)).code == (
        -32011
    )
    error = await rpc.error("clusters.report_status", {"interval": 5}, as_=READER)
    assert (error.code, error.data) == (-32003, {"required": "license-manager:status:update"})
    error = await rpc.error("clusters.list_statuses", as_=AGENT_A)
    assert (error.code, error.data) == (-32003, {"required": "license-manager:status:read"})
    assert await rpc("clusters.list_statuses", as_=READER) == []
