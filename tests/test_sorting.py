"""Every list method sorts by every field it advertises (API.md §5), in both directions, on
both backends, with ``id`` breaking ties; the advertised fields are read from the OpenRPC
document, and the CLI offers the same ones."""

from typing import Any

from lmrpc.cli.commands import commands
from lmrpc.cli.resources import GROUPS
from tests.server import HTTP, Server
from tests.tokens import TokenFactory

LIST_METHODS = {
    "configurations.list",
    "license_servers.list",
    "products.list",
    "features.list",
    "jobs.list",
    "bookings.list",
}


def _ok(server: Server, token: str, method: str, params: dict[str, Any]) -> Any:
    response = server.rpc(token, method, params)
    assert "result" in response, (method, params, response)
    return response["result"]


def _populate(server: Server, token: str) -> None:
    """A few objects of every resource whose fields tie (so ``id`` must break the ties) and
    whose order by any field differs from their order by id. Strings are lower-case letters
    and digits only, which every collation orders alike."""

    def call(method: str, **params: Any) -> Any:
        return _ok(server, token, method, params)

    products = [call("products.create", name=name)["id"] for name in ("b", "a", "c")]
    configs = [
        call(
            "configurations.create",
            name=name,
            cluster_client_id=cluster,
            type=type_,
            grace_time=grace,
            license_servers=[{"host": host, "port": port}],
        )["id"]
        for name, cluster, type_, grace, host, port in (
            ("b", "y", "rlm", 30, "lic2", 7000),
            ("a", "y", "flexlm", 90, "lic1", 7000),
            ("b", "x", "rlm", 30, "lic2", 6000),
        )
    ]
    call("license_servers.create", config_id=configs[0], host="lic1", port=5000)
    features = []
    for name, product, config, total, used, reserved in (
        ("f", products[1], configs[0], 10, 2, 1),
        ("e", products[0], configs[2], 10, 0, 1),
        ("f", products[2], configs[1], 5, 2, 0),
        ("e", products[1], configs[2], 20, 1, 0),
    ):
        feature = call(
            "features.create", name=name, product_id=product, config_id=config, reserved=reserved
        )["id"]
        call("features.update", id=feature, total=total, used=used)
        features.append(feature)
    jobs = [
        call(
            "jobs.create",
            slurm_job_id=slurm,
            cluster_client_id=cluster,
            username=user,
            lead_host=host,
        )["id"]
        for slurm, cluster, user, host in (
            ("7", "y", "bob", "n2"),
            ("3", "x", "bob", "n1"),
            ("7", "x", "amy", "n2"),
        )
    ]
    for job, feature, quantity in (  # a job books features of its own cluster
        (jobs[1], features[1], 2),
        (jobs[0], features[0], 1),
        (jobs[1], features[3], 2),
        (jobs[2], features[3], 1),
    ):
        call("bookings.create", job_id=job, feature_id=feature, quantity=quantity)


def _value(row: dict[str, Any], field: str) -> Any:
    """A row's value of a sort field (a feature shows its product_id as ``product.id``)."""
    if field == "product_id" and "product" in row:
        return row["product"]["id"]
    return row[field]


def _sort_fields(document: dict[str, Any]) -> dict[str, list[str]]:
    """List method → the ``sort_field`` choices its params schema advertises."""
    advertised = {}
    for method in document["methods"]:
        if method["name"] in LIST_METHODS:
            [param] = [p for p in method["params"] if p["name"] == "sort_field"]
            [choices] = [s["enum"] for s in param["schema"]["anyOf"] if "enum" in s]
            advertised[method["name"]] = choices
    return advertised


def test_every_list_sorts_by_every_advertised_field(server: Server, tokens: TokenFactory) -> None:
    token = tokens.mint("admin")
    _populate(server, token)
    advertised = _sort_fields(HTTP.get(server.url + "/openrpc.json", timeout=30).json())
    assert set(advertised) == LIST_METHODS
    for method, fields in advertised.items():
        assert "id" in fields, method
        for field in fields:
            for ascending in (True, False):
                params = {"sort_field": field, "sort_ascending": ascending}
                rows = _ok(server, token, method, params)
                assert len(rows) >= 3, (method, rows)
                keys = [(_value(row, field), row["id"]) for row in rows]
                assert keys == sorted(keys, reverse=not ascending), (method, params, keys)
        unknown = server.rpc(token, method, {"sort_field": "nope"})
        assert unknown["error"]["code"] == -32602, unknown


def test_the_cli_offers_the_advertised_sort_fields() -> None:
    """``--sort-field`` choices come from the same declaration as the params models."""
    from lmrpc import openrpc

    advertised = _sort_fields(openrpc.document())
    offered = {
        command.method: list(param.choices)
        for group in GROUPS
        for command in commands(group).values()
        for param in command.params
        if param.name == "sort_field"
    }
    assert offered == advertised
