"""Multi-tenancy through a real server on both backends: tenants share nothing."""

from pathlib import Path
from typing import Any

import pytest

from lmrpc.registry import METHODS
from tests.server import HTTP, Server, running_server, server_env
from tests.tokens import TokenFactory


@pytest.fixture
def tenant_server(database_url: str, tokens: TokenFactory, tmp_path: Path) -> Any:
    env = server_env(database_url, tokens, tmp_path / "data", {"LMRPC_MULTI_TENANCY": "1"})
    with running_server(env, tmp_path) as server:
        yield server


def ok(server: Server, token: str, method: str, params: Any = None) -> Any:
    answer = server.rpc(token, method, params)
    assert "result" in answer, (method, answer)
    return answer["result"]


def code(server: Server, token: str, method: str, params: Any = None) -> int:
    answer = server.rpc(token, method, params)
    assert "error" in answer, (method, answer)
    return int(answer["error"]["code"])


def test_tenants_share_nothing(tenant_server: Server, tokens: TokenFactory) -> None:
    server = tenant_server
    a = tokens.mint("admin", client_id="cluster-a", organization="org-a")
    # the object form of the claim: {"name": {"id": ...}}
    b = tokens.mint("admin", client_id="cluster-a", organization={"Org B": {"id": "org-b"}})
    product = ok(server, a, "products.create", {"name": "abaqus"})
    config = ok(
        server,
        a,
        "configurations.create",
        {
            "name": "hpc",
            "cluster_client_id": "cluster-a",
            "type": "flexlm",
            "license_servers": [{"host": "lic1", "port": 27000}],
            "features": [{"name": "cae", "product_id": product["id"]}],
        },
    )
    feature = config["features"][0]
    server_id = config["license_servers"][0]["id"]
    ok(server, a, "features.update", {"id": feature["id"], "total": 10})
    job = ok(
        server,
        a,
        "jobs.create",
        {
            "slurm_job_id": "1",
            "username": "u",
            "lead_host": "h",
            "bookings": [{"product_feature": "abaqus.cae", "quantity": 2}],
        },
    )
    booking = job["bookings"][0]
    ok(server, a, "clusters.report_status", {"interval": 60})
    checkout = {"username": "alice", "lead_host": "n1", "quantity": 1}
    report = {"product_name": "abaqus", "feature_name": "cae", "total": 10, "used": 1}
    ok(server, a, "features.bulk_update", {"features": [{**report, "checkouts": [checkout]}]})
    refused = {"slurm_job_id": "9", "username": "u", "lead_host": "h",
               "bookings": [{"product_feature": "abaqus.cae", "quantity": 99}]}  # fmt: skip
    assert code(server, a, "jobs.create", refused) == -32010
    day = {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
    assert ok(server, a, "usage.refusals", day)[0]["refused_calls"] == 1
    assert ok(server, a, "usage.by_user") != []
    before = {
        m: ok(server, a, m)
        for m in (
            "products.list",
            "configurations.list",
            "license_servers.list",
            "features.list",
            "jobs.list",
            "bookings.list",
            "clusters.list_statuses",
        )
    }

    # Tenant B sees none of it ...
    for method in before:
        assert ok(server, b, method) == [], method
    for method, id_ in (
        ("products.get", product["id"]),
        ("configurations.get", config["id"]),
        ("license_servers.get", server_id),
        ("features.get", feature["id"]),
        ("jobs.get", job["id"]),
        ("bookings.get", booking["id"]),
    ):
        assert code(server, b, method, {"id": id_}) == -32004, method
    assert code(server, b, "clusters.get_status", {"cluster_client_id": "cluster-a"}) == -32004
    assert code(server, b, "jobs.get_by_slurm_id", {"slurm_job_id": "1"}) == -32004
    for method in ("configurations.by_client_id", "features.by_client_id", "jobs.by_client_id"):
        assert ok(server, b, method) == [], method
    assert ok(server, b, "usage.by_user") == []
    assert ok(server, b, "usage.refusals", day) == []
    assert code(server, b, "features.checkouts", {"feature_id": feature["id"]}) == -32004
    history = {**day, "step": 30 * 86400 * 12}
    assert code(server, b, "usage.history", {**history, "feature_id": feature["id"]}) == -32004
    assert code(server, b, "usage.history", {**history, "product_feature": "abaqus.cae"}) == -32004
    # ... and can change none of it.
    assert (
        code(
            server,
            b,
            "features.create",
            {"name": "x", "product_id": product["id"], "config_id": config["id"]},
        )
        == -32004
    )
    assert (
        code(
            server, b, "license_servers.create", {"config_id": config["id"], "host": "h", "port": 1}
        )
        == -32004
    )
    assert code(server, b, "products.update", {"id": product["id"], "name": "x"}) == -32004
    assert code(server, b, "features.update", {"id": feature["id"], "total": 0}) == -32004
    assert code(server, b, "configurations.update", {"id": config["id"], "name": "x"}) == -32004
    assert code(server, b, "license_servers.update", {"id": server_id, "port": 1}) == -32004
    assert (
        code(
            server,
            b,
            "bookings.create",
            {"job_id": job["id"], "feature_id": feature["id"], "quantity": 1},
        )
        == -32004
    )
    assert (
        code(
            server,
            b,
            "features.bulk_update",
            {
                "features": [
                    {"product_name": "abaqus", "feature_name": "cae", "total": 0, "used": 0}
                ]
            },
        )
        == -32004
    )
    assert (
        code(
            server,
            b,
            "jobs.create",
            {
                "slurm_job_id": "2",
                "username": "u",
                "lead_host": "h",
                "bookings": [{"product_feature": "abaqus.cae", "quantity": 1}],
            },
        )
        == -32004
    )
    for method, id_ in (
        ("bookings.delete", booking["id"]),
        ("jobs.delete", job["id"]),
        ("features.delete", feature["id"]),
        ("license_servers.delete", server_id),
        ("configurations.delete", config["id"]),
        ("products.delete", product["id"]),
    ):
        assert code(server, b, method, {"id": id_}) == -32004, method
    assert code(server, b, "jobs.delete_by_slurm_id", {"slurm_job_id": "1"}) == -32004
    # The same names are free in tenant B: its own product does not collide with A's.
    assert ok(server, b, "products.create", {"name": "abaqus"})["id"] == product["id"]
    after = {m: ok(server, a, m) for m in before}
    assert after == before

    # Metrics are per tenant: a tenant's token sees its own features only.
    def metrics(token: str) -> str:
        headers = {"Authorization": f"Bearer {token}"}
        return HTTP.get(server.url + "/metrics", headers=headers).text

    sample = 'license_booked{cluster="cluster-a",feature="cae",organization="org-a",'
    assert sample + 'product="abaqus"} 2.0' in metrics(a)
    assert "license_booked{" not in metrics(b)


def test_every_method_is_covered_by_the_isolation_test() -> None:
    """A new method must be added to the isolation test above (or here, if harmless)."""
    text = Path(__file__).read_text()
    harmless = {"license_servers.types", "rpc.discover"}
    missing = [m for m in METHODS if m not in harmless and f'"{m}"' not in text]
    assert missing == []


def test_token_without_organization_is_refused(tenant_server: Server, tokens: TokenFactory) -> None:
    response = HTTP.post(
        tenant_server.url + "/rpc",
        json={"jsonrpc": "2.0", "method": "products.list", "id": 1},
        headers={"Authorization": f"Bearer {tokens.mint('admin')}"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == -32001
