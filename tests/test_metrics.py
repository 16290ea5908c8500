"""GET /metrics through a real server: per-feature gauges and the service's own metrics,
parsed with prometheus-client's parser; and the auth rules of API.md §1."""

import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.factories import feature_in
from tests.server import HTTP, Server, running_server, server_env
from tests.tokens import TokenFactory

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_after_real_calls(server: Server, tokens: TokenFactory, database_url: str) -> None:
    feature = feature_in(database_url, 10, cluster="cluster-a", product="abaqus", name="cae")
    token = tokens.mint("job:create", "booking:create", "metrics:read")
    job = server.rpc(token, "jobs.create", {"slurm_job_id": "7", "username": "u", "lead_host": "h"})
    job_id = job["result"]["id"]
    for quantity in (4, 4, 4):  # the third is refused
        server.rpc(
            token,
            "bookings.create",
            {"job_id": job_id, "feature_id": feature, "quantity": quantity},
        )
    server.rpc(token, "no.such.method")
    response = HTTP.get(server.url + "/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    values = samples(response.text)
    labels = (("cluster", "cluster-a"), ("feature", "cae"), ("product", "abaqus"))
    assert values[("license_total", labels)] == 10
    assert values[("license_booked", labels)] == 8
    assert values[("license_used", labels)] == 0
    assert values[("license_reserved", labels)] == 0
    assert values[("lmrpc_admissions_total", (("outcome", "admitted"),))] == 2
    assert values[("lmrpc_admissions_total", (("outcome", "refused"),))] == 1
    assert values[("lmrpc_calls_total", (("method", "bookings.create"), ("outcome", "ok")))] == 2
    assert (
        values[("lmrpc_calls_total", (("method", "bookings.create"), ("outcome", "-32010")))] == 1
    )
    assert values[("lmrpc_calls_total", (("method", "unknown"), ("outcome", "-32601")))] == 1
    assert values[("lmrpc_call_duration_seconds_count", (("method", "bookings.create"),))] == 3
    assert values[("lmrpc_live_actors", ())] >= 1
    assert ("lmrpc_storage_errors_total", ()) in values


def test_metrics_auth(shared_server: Server, tokens: TokenFactory) -> None:
    server = shared_server  # the auth rules need only *a* server
    assert HTTP.get(server.url + "/metrics").status_code == 401
    bad = HTTP.get(server.url + "/metrics", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    other = tokens.mint("product:read")
    forbidden = HTTP.get(server.url + "/metrics", headers={"Authorization": f"Bearer {other}"})
    assert forbidden.status_code == 403
    admin = tokens.mint("admin")
    assert (
        HTTP.get(server.url + "/metrics", headers={"Authorization": f"Bearer {admin}"}).status_code
        == 200
    )


def test_public_metrics_and_openrpc_need_no_token(
    database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    env = server_env(database_url, tokens, tmp_path / "data", {"LMRPC_METRICS_PUBLIC": "1"})
    with running_server(env, tmp_path) as server:
        response = HTTP.get(server.url + "/metrics")
        assert response.status_code == 200 and "lmrpc_live_actors" in response.text
        document = HTTP.get(server.url + "/openrpc.json").json()
        assert document["openrpc"].startswith("1.")
        token = tokens.mint("product:read")
        assert server.rpc(token, "rpc.discover")["result"] == document


def test_with_multi_tenancy_a_tenant_sees_only_its_own_metrics(
    database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    """Calls, latency, admissions and storage errors carry ``organization``; a tenant's
    token scrapes its own samples only; public metrics show every tenant's."""
    env = server_env(database_url, tokens, tmp_path / "data", {"LMRPC_MULTI_TENANCY": "1"})
    # names of their own: PostgreSQL tenant schemas outlive a test, as tenants do
    org_a, org_b = f"metrics-a-{uuid.uuid4().hex[:8]}", f"metrics-b-{uuid.uuid4().hex[:8]}"
    a = tokens.mint("admin", organization=org_a)
    b = tokens.mint("product:read", "metrics:read", organization=org_b)
    with running_server(env, tmp_path) as server:
        for name in ("abaqus", "ansys"):
            assert "result" in server.rpc(a, "products.create", {"name": name})
        assert server.rpc(a, "products.get", {"id": 99})["error"]["code"] == -32004
        assert server.rpc(b, "products.list")["result"] == []

        def scrape(token: str) -> Samples:
            headers = {"Authorization": f"Bearer {token}"}
            response = HTTP.get(server.url + "/metrics", headers=headers)
            assert response.status_code == 200
            return samples(response.text)

        def organizations(values: Samples) -> set[str | None]:
            return {dict(labels).get("organization") for (name, labels) in values}

        seen_by_a, seen_by_b = scrape(a), scrape(b)
        assert organizations(seen_by_a) == {org_a}
        assert organizations(seen_by_b) == {org_b}
        calls = "lmrpc_calls_total"
        create = (("method", "products.create"), ("organization", org_a), ("outcome", "ok"))
        assert seen_by_a[(calls, create)] == 2
        missing = (("method", "products.get"), ("organization", org_a), ("outcome", "-32004"))
        assert seen_by_a[(calls, missing)] == 1
        listed = (("method", "products.list"), ("organization", org_b), ("outcome", "ok"))
        assert seen_by_b[(calls, listed)] == 1
        count = "lmrpc_call_duration_seconds_count"
        assert seen_by_b[(count, (("method", "products.list"), ("organization", org_b)))] == 1
        for tenant in (org_a, org_b):
            admitted = (("organization", tenant), ("outcome", "admitted"))
            assert ("lmrpc_admissions_total", admitted) in (seen_by_a | seen_by_b)
        assert ("lmrpc_storage_errors_total", (("organization", org_b),)) in seen_by_b

    public = {**env, "LMRPC_METRICS_PUBLIC": "1"}
    with running_server(public, tmp_path) as server:
        server.rpc(a, "products.list")
        server.rpc(b, "products.list")
        everything = samples(HTTP.get(server.url + "/metrics").text)
        assert {org_a, org_b} <= organizations(everything)
