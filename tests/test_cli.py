"""The ``lmrpc`` client commands against a real ``lmrpc serve`` over HTTP, on both backends.

Most commands run in process (typer's CliRunner, real HTTP to the server); the exit codes
are also checked on the real console script in a subprocess. Each test groups a resource's
commands, since a server start costs seconds.
"""

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from lmrpc import registry
from lmrpc.cli import app, values
from lmrpc.cli.commands import commands
from lmrpc.cli.resources import GROUPS
from lmrpc.cli.session import EXIT_CONNECTION, EXIT_RPC_ERROR, EXIT_USAGE
from tests.oidc_issuer import AUDIENCE, Issuer, running_issuer
from tests.server import Server, running_server, server_env
from tests.tokens import TokenFactory

CLUSTER = "cluster-a"


class Cli:
    """Runs ``lmrpc`` in process against ``url`` with ``token`` (or OIDC settings in env)."""

    def __init__(self, url: str, token: str | None, cache: Path, **env: str | None) -> None:
        self.env: dict[str, str | None] = {
            name: None for name in os.environ if name.startswith("LMRPC_")
        }
        self.env.update(LMRPC_URL=url, LMRPC_TOKEN=token, XDG_CACHE_HOME=str(cache), COLUMNS="200")
        self.env.update(env)

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(
            app, list(args), env=self.env, input=input, catch_exceptions=False
        )

    def ok(self, *args: str, input: str | None = None) -> str:
        result = self(*args, input=input)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", input=input))

    def error(self, *args: str) -> dict[str, Any]:
        """The JSON-RPC error object a failing call prints with --json (exit 1)."""
        result = self(*args, "--json")
        assert result.exit_code == EXIT_RPC_ERROR, (args, result.stdout, result.stderr)
        assert result.stdout == ""
        error: dict[str, Any] = json.loads(result.stderr)
        return error


@pytest.fixture
def cli(server: Server, tokens: TokenFactory, tmp_path: Path) -> Cli:
    return Cli(server.url, tokens.mint("admin", client_id=CLUSTER), tmp_path / "cache")


def _product_and_configuration(cli: Cli) -> tuple[int, dict[str, Any]]:
    product = cli.json("products", "create", "--name", "abaqus")
    configuration = cli.json(
        "configurations", "create", "--name", "abaqus-a", "--cluster-client-id", CLUSTER,
        "--type", "flexlm", "--license-server", "lic1.example.org:27000",
        "--feature", f"abaqus:{product['id']}:2", "--feature", f"cae:{product['id']}",
    )  # fmt: skip
    return product["id"], configuration


def _row(table: str, key: str) -> list[str]:
    """The cells of the table row that mentions ``key``."""
    line = next(line for line in table.splitlines() if key in line)
    return [cell.strip() for cell in line.split("│")[1:-1]]


# --- products, license server types, call, methods --------------------------------------------


def test_products_call_and_methods(cli: Cli) -> None:
    created = cli.json("products", "create", "--name", "abaqus")
    assert created == {"id": created["id"], "name": "abaqus"}
    other = cli.json("products", "create", "--name", "ansys", "--compact")
    assert (
        cli.ok("products", "get", str(other["id"]), "--compact")
        == json.dumps(other, separators=(",", ":")) + "\n"
    )
    assert cli.json("products", "list", "--sort-field", "name", "--sort-descending") == [
        other,
        created,
    ]
    assert cli.json("products", "list", "--search", "ABA") == [created]
    assert cli.json("products", "list", "--limit", "1", "--offset", "1") == [other]
    renamed = cli.json("products", "update", str(created["id"]), "--name", "abaqus2024")
    assert renamed["name"] == "abaqus2024"
    table = cli.ok("products", "list")
    assert "abaqus2024" in table and "ansys" in table and "┃ name" in table
    assert cli.json("products", "delete", str(other["id"])) == {"deleted": other["id"]}
    assert f"deleted product {created['id']}" in cli.ok("products", "delete", str(created["id"]))
    assert cli.error("products", "get", str(created["id"]))["code"] == -32004

    assert cli.json("license-servers", "types") == [
        "flexlm", "rlm", "lsdyna", "lmx", "olicense", "dsls",
    ]  # fmt: skip
    assert cli.ok("license-servers", "types").split() == cli.json("license-servers", "types")

    # call: any method, params as JSON (argument or stdin)
    made = json.loads(cli.ok("call", "products.create", '{"name": "starccm"}'))
    assert json.loads(cli.ok("call", "products.get", "-", input=f"id: {made['id']}\n")) == made
    assert json.loads(cli.ok("call", "products.list", "--compact")) == [made]
    assert cli.error("call", "products.nope")["code"] == -32601
    bad = cli.error("call", "products.create", '{"name": "x", "color": "red"}')
    assert bad["code"] == -32602 and bad["data"]["errors"][0]["field"] == "color"

    # methods: from rpc.discover, every method the CLI offers is there
    document = cli.json("methods")
    served = {entry["name"] for entry in document["methods"]}
    assert {command.method for group in GROUPS for command in commands(group).values()} <= served
    assert "rpc.discover" in served
    assert "jobs.get_by_slurm_id" in cli.ok("methods")


# --- configurations, license servers, features -------------------------------------------------


def test_configurations_license_servers_and_features(cli: Cli, tmp_path: Path) -> None:
    product_id, configuration = _product_and_configuration(cli)
    config_id = configuration["id"]
    assert [s["host"] for s in configuration["license_servers"]] == ["lic1.example.org"]
    assert {(f["name"], f["reserved"]) for f in configuration["features"]} == {
        ("abaqus", 2),
        ("cae", 0),
    }
    assert cli.json("configurations", "get", str(config_id)) == configuration
    assert cli.json("configurations", "list", "--search", CLUSTER) == [configuration]
    assert cli.json("configurations", "by-client-id") == [configuration]
    detail = cli.ok("configurations", "get", str(config_id))
    assert "lic1.example.org" in detail and "abaqus.cae" in detail and "available" in detail
    assert "abaqus.abaqus" in cli.ok("configurations", "list")

    # a YAML file gives the params; options override it
    spec = tmp_path / "configuration.yaml"
    spec.write_text(
        "name: from-file\ncluster_client_id: cluster-b\ntype: rlm\ngrace_time: 30\n"
        "license_servers:\n  - {host: '::1', port: 5053}\n"
        f"features:\n  - {{name: solver, product_id: {product_id}, reserved: 1}}\n"
    )
    second = cli.json("configurations", "create", "--file", str(spec), "--grace-time", "45")
    assert (second["name"], second["type"], second["grace_time"]) == ("from-file", "rlm", 45)
    assert second["license_servers"][0]["host"] == "::1"

    # update: ID keeps a child, ID=SPEC changes it, SPEC adds one, the rest go
    server_id = configuration["license_servers"][0]["id"]
    abaqus = next(f for f in configuration["features"] if f["name"] == "abaqus")
    updated = cli.json(
        "configurations", "update", str(config_id), "--grace-time", "120",
        "--license-server", str(server_id), "--license-server", "[fe80::1]:27001",
        "--feature", f"{abaqus['id']}=abaqus:{product_id}:3",
    )  # fmt: skip
    assert updated["grace_time"] == 120
    assert sorted(s["host"] for s in updated["license_servers"]) == ["fe80::1", "lic1.example.org"]
    assert [(f["name"], f["reserved"]) for f in updated["features"]] == [("abaqus", 3)]
    assert cli.error("configurations", "update", str(config_id))["code"] == -32602

    # license servers
    added = cli.json(
        "license-servers", "create", "--config-id", str(config_id), "--host", "lic3", "--port", "1"
    )
    assert cli.json("license-servers", "get", str(added["id"])) == added
    moved = cli.json("license-servers", "update", str(added["id"]), "--port", "2")
    assert moved == {**added, "port": 2}
    hosts = cli.json("license-servers", "list", "--sort-field", "host", "--search", "lic")
    assert [s["host"] for s in hosts] == ["lic1.example.org", "lic3"]
    assert "lic3" in cli.ok("license-servers", "list")
    assert cli.json("license-servers", "delete", str(added["id"])) == {"deleted": added["id"]}

    # features: counters, and available = total - used - reserved - booked
    feature = cli.json(
        "features", "create", "--name", "standard", "--product-id", str(product_id),
        "--config-id", str(config_id), "--reserved", "1",
    )  # fmt: skip
    assert feature["product"]["name"] == "abaqus" and feature["reserved"] == 1
    changed = cli.json("features", "update", str(feature["id"]), "--total", "10", "--used", "4")
    assert (changed["total"], changed["used"], changed["booked_total"]) == (10, 4, 0)
    assert cli.json("features", "get", str(feature["id"])) == changed
    counters = tmp_path / "counters.json"
    counters.write_text(
        json.dumps([{"product_name": "abaqus", "feature_name": "abaqus", "total": 20, "used": 5}])
    )
    assert cli.json("features", "bulk-update", "--file", str(counters)) == {"updated": 1}
    assert "updated 2 features" in cli.ok(
        "features", "bulk-update", "--feature", "abaqus.standard:12:4",
        "--feature", "abaqus.abaqus:20:6",
    )  # fmt: skip
    missing = cli.error("features", "bulk-update", "--feature", "abaqus.nope:1:1")
    assert missing["code"] == -32004 and missing["data"]["missing"] == ["abaqus.nope"]
    mine = cli.json("features", "by-client-id")
    assert {f["name"] for f in mine} == {"abaqus", "standard"}
    ordered = cli.json("features", "list", "--sort-field", "total", "--sort-descending")
    assert [f["total"] for f in ordered] == sorted((f["total"] for f in ordered), reverse=True)
    # total, used, reserved, booked, available = 12 - 4 - 1 - 0
    assert _row(cli.ok("features", "list"), "abaqus.standard")[-5:] == ["12", "4", "1", "0", "7"]
    assert cli.json("features", "delete", str(feature["id"])) == {"deleted": feature["id"]}

    assert cli.json("configurations", "delete", str(second["id"])) == {"deleted": second["id"]}
    assert cli.error("configurations", "get", str(second["id"]))["code"] == -32004


# --- jobs, bookings, clusters ----------------------------------------------------------------


def test_jobs_bookings_and_clusters(cli: Cli) -> None:
    _, configuration = _product_and_configuration(cli)
    feature_ids = {f["name"]: f["id"] for f in configuration["features"]}
    cli.ok("features", "bulk-update", "--feature", "abaqus.abaqus:10:1", "--feature",
           "abaqus.cae:5:0")  # fmt: skip

    job = cli.json(
        "jobs", "create", "--slurm-job-id", "1234", "--username", "alice", "--lead-host",
        "node01", "--booking", "abaqus.abaqus:4", "--booking", "abaqus.cae:1",
    )  # fmt: skip
    assert (job["cluster_client_id"], job["slurm_job_id"]) == (CLUSTER, "1234")
    assert sorted((b["feature_id"], b["quantity"]) for b in job["bookings"]) == sorted(
        [(feature_ids["abaqus"], 4), (feature_ids["cae"], 1)]
    )
    assert cli.json("jobs", "get", str(job["id"])) == job
    assert cli.json("jobs", "get-by-slurm-id", "1234") == job
    assert cli.json("jobs", "by-client-id") == [job]
    assert cli.json("jobs", "list", "--search", "alice", "--sort-field", "created_at") == [job]
    table = cli.ok("jobs", "list")
    assert "abaqus.abaqus: 4" in table and "abaqus.cae: 1" in table and "node01" in table

    # not enough licenses: 10 - 1 - 2 reserved - 4 booked = 3 left; nothing stored
    short = cli.error(
        "jobs", "create", "--slurm-job-id", "1235", "--username", "bob", "--lead-host", "n2",
        "--booking", "abaqus.abaqus:4",
    )  # fmt: skip
    assert short["code"] == -32010 and short["data"]["product_feature"] == "abaqus.abaqus"
    assert short["data"]["available"] == 3
    features = {f["name"]: f for f in cli.json("features", "list")}
    assert features["abaqus"]["booked_total"] == 4
    assert _row(cli.ok("features", "list"), "abaqus.abaqus")[-5:] == ["10", "1", "2", "4", "3"]

    booking = cli.json(
        "bookings", "create", "--job-id", str(job["id"]), "--feature-id",
        str(feature_ids["abaqus"]), "--quantity", "3",
    )  # fmt: skip
    assert cli.json("bookings", "get", str(booking["id"])) == booking
    listed = cli.json("bookings", "list", "--sort-field", "quantity", "--sort-descending")
    assert [b["quantity"] for b in listed] == [4, 3, 1]
    assert "abaqus.abaqus" in cli.ok("bookings", "list")
    refused = cli.error(
        "bookings", "create", "--job-id", str(job["id"]), "--feature-id",
        str(feature_ids["abaqus"]), "--quantity", "1",
    )  # fmt: skip
    assert refused["code"] == -32010
    assert cli.json("bookings", "delete", str(booking["id"])) == {"deleted": booking["id"]}

    assert cli.json("jobs", "delete-by-slurm-id", "1234") == {"deleted": job["id"]}
    assert cli.error("jobs", "get-by-slurm-id", "1234")["code"] == -32004
    other = cli.json(
        "jobs", "create", "--slurm-job-id", "77", "--username", "carol", "--lead-host", "n3"
    )
    assert "deleted job" in cli.ok("jobs", "delete", str(other["id"]))
    assert cli.json("features", "get", str(feature_ids["abaqus"]))["booked_total"] == 0

    status = cli.json("clusters", "report-status", "--interval", "60")
    assert (status["cluster_client_id"], status["interval"], status["is_healthy"]) == (
        CLUSTER,
        60,
        True,
    )
    assert cli.json("clusters", "list-statuses") == [status]
    assert cli.json("clusters", "get-status", CLUSTER) == status
    assert "yes" in cli.ok("clusters", "list-statuses")
    assert cli.error("clusters", "get-status", "nobody")["code"] == -32004


# --- exit codes, on the real console script --------------------------------------------------


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lmrpc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _client_env(url: str, token: str | None, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMRPC_")}
    env.update(LMRPC_URL=url, XDG_CACHE_HOME=str(cache))
    if token:
        env["LMRPC_TOKEN"] = token
    return env


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the client's matter
def test_exit_codes(server: Server, cli: Cli, tokens: TokenFactory, tmp_path: Path) -> None:
    """One of each code from the console script itself; the other cases in process."""
    env = _client_env(server.url, tokens.mint("admin", client_id=CLUSTER), tmp_path)
    done = _run(env, "products", "create", "--name", "abaqus", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["name"] == "abaqus"

    # 1: a JSON-RPC error, message and data on stderr
    conflict = _run(env, "products", "create", "--name", "abaqus")
    assert conflict.returncode == EXIT_RPC_ERROR and conflict.stdout == ""
    assert "(-32009)" in conflict.stderr and '"reason"' in conflict.stderr
    forbidden = Cli(server.url, tokens.mint("product:read"), tmp_path)("products", "delete", "1")
    assert forbidden.exit_code == EXIT_RPC_ERROR
    assert "license-manager:product:delete" in forbidden.stderr

    # 2: usage errors, before anything is sent
    usage = _run(env, "products", "get", "one")
    assert usage.returncode == EXIT_USAGE and "Try 'lmrpc products get --help'" in usage.stderr
    for args in (
        ["products", "frobnicate"],
        ["products", "create"],
        ["jobs", "create", "--slurm-job-id", "1", "--username", "u", "--lead-host", "h",
         "--booking", "abaqus-without-feature:1"],
        ["products", "list", "--sort-field", "color"],
        ["call", "products.list", "{not json"],
        ["call", "products.list", "[1, 2]"],
        ["configurations", "create", "--file", str(tmp_path / "missing.yaml")],
    ):  # fmt: skip
        assert cli(*args).exit_code == EXIT_USAGE, args

    # 3: authentication refused, no token, nothing listening, no answer in time
    expired = _run({**env, "LMRPC_TOKEN": tokens.mint("admin", ttl=-120)}, "products", "list")
    assert expired.returncode == EXIT_CONNECTION
    assert expired.stderr.startswith("error: authentication failed")
    malformed = Cli(server.url, "not-a-jwt", tmp_path)("products", "list")
    assert malformed.exit_code == EXIT_CONNECTION and "authentication failed" in malformed.stderr
    anonymous = Cli(server.url, None, tmp_path)("products", "list")
    assert anonymous.exit_code == EXIT_CONNECTION and "no token" in anonymous.stderr
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connection refused
        refused = _run({**env, "LMRPC_URL": f"http://127.0.0.1:{port}"}, "products", "list")
    assert refused.returncode == EXIT_CONNECTION and "cannot connect" in refused.stderr
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections (backlog) but never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        hung = Cli(url, "x", tmp_path)("products", "list", "--timeout", "0.5")
    assert hung.exit_code == EXIT_CONNECTION and "timed out" in hung.stderr


# --- OIDC client credentials and the token cache ---------------------------------------------

AGENT, SECRET = "cluster-a", "agent-secret"
TOKEN_REQUEST = "POST /token"


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as running:
        running.add_client(AGENT, SECRET, ["license-manager:admin"])
        yield running


def test_client_credentials_and_the_token_cache(
    issuer: Issuer, tokens: TokenFactory, tmp_path: Path
) -> None:
    env = server_env(
        f"sqlite:///{tmp_path / 'lmrpc.sqlite3'}",
        tokens,
        tmp_path / "data",
        {
            "LMRPC_OIDC_ISSUER": issuer.url,
            "LMRPC_OIDC_AUDIENCE": AUDIENCE,
            "LMRPC_OIDC_JWKS_FILE": None,
        },
    )
    cache = tmp_path / "cache"
    oidc = {
        "LMRPC_OIDC_ISSUER": issuer.url,
        "LMRPC_OIDC_CLIENT_ID": AGENT,
        "LMRPC_OIDC_CLIENT_SECRET": SECRET,
        "LMRPC_OIDC_AUDIENCE": AUDIENCE,
    }
    with running_server(env, tmp_path) as server:
        cli = Cli(server.url, None, cache, **oidc)
        assert cli.json("products", "create", "--name", "abaqus")["name"] == "abaqus"
        assert (
            cli.json("clusters", "report-status", "--interval", "30")["cluster_client_id"] == AGENT
        )
        for _ in range(3):
            assert len(cli.json("products", "list")) == 1
        assert issuer.requests().count(TOKEN_REQUEST) == 1  # cached after the first

        [entry] = list((cache / "lmrpc").glob("token-*.json"))
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600
        cached = json.loads(entry.read_text())
        assert cached["expires_at"] > time.time() + 200  # the issuer's tokens live 300 s

        # shortly before expiry the token is renewed
        entry.write_text(json.dumps({**cached, "expires_at": time.time() + 10}))
        cli.ok("products", "list")
        assert issuer.requests().count(TOKEN_REQUEST) == 2
        renewed = json.loads(entry.read_text())
        assert renewed["access_token"] != cached["access_token"]

        # a cached token the server refuses is renewed once, and the call goes through
        entry.write_text(json.dumps({**renewed, "access_token": "revoked"}))
        cli.ok("products", "list")
        assert issuer.requests().count(TOKEN_REQUEST) == 3

        # a cache file others could read is not trusted
        entry.chmod(0o644)
        cli.ok("products", "list")
        assert issuer.requests().count(TOKEN_REQUEST) == 4
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600

        # an explicit token wins over client credentials
        explicit = Cli(server.url, "not-a-jwt", cache, **oidc)("products", "list")
        assert explicit.exit_code == EXIT_CONNECTION

        # wrong secret, or an issuer that is down: exit 3, no token cached
        entry.unlink()
        wrong = Cli(server.url, None, cache, **{**oidc, "LMRPC_OIDC_CLIENT_SECRET": "nope"})
        denied = wrong("products", "list")
        assert denied.exit_code == EXIT_CONNECTION and "token endpoint" in denied.stderr
        assert not list((cache / "lmrpc").glob("token-*.json"))
        gone = Cli(server.url, None, cache, **{**oidc, "LMRPC_OIDC_ISSUER": "http://127.0.0.1:1"})
        down = gone("products", "list")
        assert down.exit_code == EXIT_CONNECTION and "OIDC discovery" in down.stderr
        remote = Cli(server.url, None, cache, **{**oidc, "LMRPC_OIDC_ISSUER": "http://idp.test"})
        plain = remote("products", "list")
        assert plain.exit_code == EXIT_CONNECTION and "https" in plain.stderr


# --- without a server: help, value forms ------------------------------------------------------


def test_every_method_has_a_command_with_help_and_an_example() -> None:
    offered = {command.method for group in GROUPS for command in commands(group).values()}
    assert offered == set(registry.METHODS) - {"rpc.discover"}
    runner = CliRunner()
    for group in GROUPS:
        for verb in commands(group):
            result = runner.invoke(app, [group, verb, "--help"])
            assert result.exit_code == 0, (group, verb)
            assert f"Example: lmrpc {group} {verb}" in " ".join(result.stdout.split())
    for name in ("call", "methods"):
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0 and "Example: lmrpc " + name in result.stdout


@pytest.mark.parametrize(
    ("parse", "text", "entry"),
    [
        (values.host_port, "lic1.example.org:27000", {"host": "lic1.example.org", "port": 27000}),
        (values.host_port, "[::1]:5053", {"host": "::1", "port": 5053}),
        (values.feature, "abaqus:3", {"name": "abaqus", "product_id": 3}),
        (values.feature, "abaqus:3:2", {"name": "abaqus", "product_id": 3, "reserved": 2}),
        (values.booking, "abaqus.cae:4", {"product_feature": "abaqus.cae", "quantity": 4}),
        (
            values.counters,
            "abaqus.cae:10:2",
            {"product_name": "abaqus", "feature_name": "cae", "total": 10, "used": 2},
        ),
        (values.child(values.host_port), "7", {"id": 7}),
        (values.child(values.host_port), "7=h:1", {"id": 7, "host": "h", "port": 1}),
        (values.child(values.feature), "f:1", {"name": "f", "product_id": 1}),
    ],
)
def test_value_forms(parse: values.Parse, text: str, entry: dict[str, Any]) -> None:
    assert parse(text) == entry


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (values.host_port, "no-port"),
        (values.host_port, "host:http"),
        (values.feature, "abaqus"),
        (values.feature, "abaqus:x"),
        (values.booking, "abaqus:4"),
        (values.booking, "abaqus.cae"),
        (values.counters, "abaqus.cae:10"),
        (values.child(values.feature), "x=f:1"),
    ],
)
def test_malformed_values(parse: values.Parse, text: str) -> None:
    with pytest.raises(values.Malformed):
        parse(text)
