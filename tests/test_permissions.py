"""The permission matrix (API.md §2, §3, §5), walked from the method registry.

For every registered method: a token with every permission but the needed one gets
``-32003`` with ``{"required": "license-manager:<perm>"}``; the needed permission alone, and
admin, pass the permission check (the call may then fail on params or not-found, which
come later in the order of checks). A method registered without a permission, or with
another one than the contract's, fails a test. In process, on SQLite and PostgreSQL.
"""

import itertools
import re
from pathlib import Path

import pytest

import lmrpc.methods  # noqa: F401  (registers the methods)
from lmrpc import openrpc
from lmrpc.errors import FORBIDDEN, NO_CLUSTER, RpcError
from lmrpc.identity import ADMIN, PREFIX, Identity
from lmrpc.registry import METHODS
from tests import rpc_objects as make
from tests.conftest import Rpc

RESOURCES = ["config", "license-server", "product", "feature", "job", "booking", "status"]
ACTIONS = ["create", "read", "update", "delete"]
EVERY_PERMISSION = frozenset(
    [f"{PREFIX}{resource}:{action}" for resource, action in itertools.product(RESOURCES, ACTIONS)]
    + [f"{PREFIX}metrics:read", f"{PREFIX}feature:report"]
)

# API.md §5: method → (permission, [cluster]); None: any valid token.
CONTRACT: dict[str, tuple[str | None, bool]] = {
    "configurations.create": ("config:create", False),
    "configurations.get": ("config:read", False),
    "configurations.list": ("config:read", False),
    "configurations.update": ("config:update", False),
    "configurations.delete": ("config:delete", False),
    "configurations.by_client_id": ("config:read", True),
    "license_servers.create": ("license-server:create", False),
    "license_servers.get": ("license-server:read", False),
    "license_servers.list": ("license-server:read", False),
    "license_servers.update": ("license-server:update", False),
    "license_servers.delete": ("license-server:delete", False),
    "license_servers.types": ("license-server:read", False),
    "products.create": ("product:create", False),
    "products.get": ("product:read", False),
    "products.list": ("product:read", False),
    "products.update": ("product:update", False),
    "products.delete": ("product:delete", False),
    "features.create": ("feature:create", False),
    "features.get": ("feature:read", False),
    "features.list": ("feature:read", False),
    "features.update": ("feature:update", False),
    "features.delete": ("feature:delete", False),
    "features.by_client_id": ("feature:read", True),
    "features.bulk_update": ("feature:report", True),
    "jobs.create": ("job:create", True),
    "jobs.get": ("job:read", False),
    "jobs.list": ("job:read", False),
    "jobs.by_client_id": ("job:read", True),
    "jobs.get_by_slurm_id": ("job:read", True),
    "jobs.delete": ("job:delete", False),
    "jobs.delete_by_slurm_id": ("job:delete", True),
    "bookings.create": ("booking:create", False),
    "bookings.get": ("booking:read", False),
    "bookings.list": ("booking:read", False),
    "bookings.delete": ("booking:delete", False),
    "clusters.report_status": ("status:update", True),
    "clusters.list_statuses": ("status:read", False),
    "clusters.get_status": ("status:read", False),
    "features.checkouts": ("feature:read", False),
    "usage.history": ("feature:read", False),
    "usage.refusals": ("feature:read", False),
    "usage.by_user": ("feature:read", False),
    "rpc.discover": (None, False),
}
OPEN_METHODS = {"rpc.discover"}  # need only a valid token


def who(permissions: frozenset[str], cluster: str | None = "cluster-a") -> Identity:
    return Identity("test", permissions, cluster, None, float("inf"))


async def outcome(rpc: Rpc, method: str, identity: Identity) -> RpcError | None:
    """The error of calling ``method`` with empty params (None when it succeeds)."""
    try:
        await rpc(method, {}, as_=identity)
    except RpcError as error:
        return error
    return None


def test_every_registered_method_needs_the_contracts_permission() -> None:
    assert METHODS, "no methods registered"
    problems = []
    for name, method in sorted(METHODS.items()):
        if name not in CONTRACT:
            problems.append(f"{name}: not in API.md §5")
            continue
        if method.permission is None and name not in OPEN_METHODS:
            problems.append(f"{name}: registered without a permission")
        if (method.permission, method.cluster) != CONTRACT[name]:
            problems.append(f"{name}: {(method.permission, method.cluster)} != {CONTRACT[name]}")
        if method.permission is not None:
            assert PREFIX + method.permission in EVERY_PERMISSION, name
    assert not problems, "\n".join(problems)


async def test_each_method_refuses_every_permission_but_its_own(rpc: Rpc) -> None:
    problems = []
    for name, method in sorted(METHODS.items()):
        if method.permission is None:
            continue  # the test above fails for those not allowed to be open
        needed = PREFIX + method.permission
        error = await outcome(rpc, name, who(EVERY_PERMISSION - {needed}))
        expected = (FORBIDDEN, {"required": needed})
        if error is None or (error.code, error.data) != expected:
            got = None if error is None else (error.code, error.data)
            problems.append(f"{name} without {needed}: {got}")
    assert not problems, "\n".join(problems)


async def test_the_needed_permission_alone_or_admin_passes_the_check(rpc: Rpc) -> None:
    problems = []
    for name, method in sorted(METHODS.items()):
        granted: list[frozenset[str]] = [frozenset({ADMIN}), frozenset()]
        if method.permission is not None:
            granted = [frozenset({PREFIX + method.permission}), frozenset({ADMIN})]
        for permissions in granted:
            error = await outcome(rpc, name, who(permissions))
            if error is not None and error.code == FORBIDDEN:
                problems.append(f"{name} with {sorted(permissions)}: {error.to_json()}")
    assert not problems, "\n".join(problems)


async def test_near_misses_of_a_permission_do_not_grant_it(rpc: Rpc) -> None:
    near_misses = [
        "job:delete",  # without the prefix
        "license-manager:JOB:DELETE",
        "license-manager:job:delete ",
        "license-manager:job:*",
        "license-manager:job",
        "license-manager:admin:job:delete",
        "LICENSE-MANAGER:ADMIN",
        "license-manager:admin ",
        "admin",
    ]
    for permission in near_misses:
        error = await outcome(rpc, "jobs.delete", who(frozenset({permission})))
        assert error is not None
        assert (error.code, error.data) == (FORBIDDEN, {"required": "license-manager:job:delete"})


async def test_the_permission_is_checked_before_cluster_identity_and_params(rpc: Rpc) -> None:
    """API.md §3: method, permission (-32003), cluster (-32011), params (-32602)."""
    no_permission = await outcome(rpc, "jobs.create", who(frozenset(), cluster=None))
    assert no_permission is not None and no_permission.code == FORBIDDEN
    no_cluster = await outcome(rpc, "jobs.create", who(frozenset({ADMIN}), cluster=None))
    assert no_cluster is not None and no_cluster.code == NO_CLUSTER
    bad_params = await outcome(rpc, "jobs.create", who(frozenset({ADMIN})))
    assert bad_params is not None and bad_params.code == -32602
    unknown = await outcome(rpc, "jobs.nope", who(frozenset()))
    assert unknown is not None and unknown.code == -32601


@pytest.mark.parametrize("method", sorted(CONTRACT))
def test_every_method_of_the_contract_is_registered(method: str) -> None:
    assert method in METHODS, f"{method} of API.md §5 is not registered"


# AGENT.md §3, §4: every call the agent makes (reconcile cycle, release, prolog, epilog).
AGENT_CALLS = [
    "configurations.by_client_id",
    "jobs.by_client_id",
    "features.list",
    "clusters.report_status",
    "features.bulk_update",
    "jobs.delete",
    "bookings.delete",
    "jobs.create",
    "jobs.delete_by_slurm_id",
]
SECURITY_DOC = Path(__file__).parent.parent / "docs" / "security.md"


def agent_permissions() -> frozenset[str]:
    permissions = {METHODS[name].permission for name in AGENT_CALLS}
    return frozenset(PREFIX + p for p in permissions if p is not None)


def test_docs_grant_an_agent_exactly_what_it_calls() -> None:
    """docs/security.md's agent list is the registry's permissions of the agent's calls:
    nothing missing (the agent would fail) and nothing more (least privilege)."""
    text = SECURITY_DOC.read_text()
    section = text.split("<!-- agent-permissions -->")[1].split("<!-- /agent-permissions -->")[0]
    documented = frozenset(re.findall(r"`(license-manager:[a-z-]+:[a-z]+)`", section))
    assert documented == agent_permissions()
    assert PREFIX + "feature:update" not in documented


async def test_an_agent_reports_counters_but_cannot_change_features(rpc: Rpc) -> None:
    """feature:report lets cluster-a's agent set its own cluster's counters only; it cannot
    zero another cluster's feature through features.update."""
    product = await make.product(rpc, "abaqus")
    config_b = await make.configuration(rpc, cluster="cluster-b")
    feature_b = await make.feature(rpc, config_b["id"], product, "cae")
    await rpc("features.update", {"id": feature_b["id"], "total": 10})
    agent_a = who(agent_permissions(), cluster="cluster-a")
    error = await outcome(rpc, "features.update", agent_a)
    assert error is not None
    assert (error.code, error.data) == (FORBIDDEN, {"required": PREFIX + "feature:update"})
    refused = await rpc.error("features.update", {"id": feature_b["id"], "total": 0}, as_=agent_a)
    assert refused.code == FORBIDDEN
    report = {"product_name": "abaqus", "feature_name": "cae", "total": 0, "used": 0}
    missing = await rpc.error("features.bulk_update", {"features": [report]}, as_=agent_a)
    assert (missing.code, missing.data) == (-32004, {"missing": ["abaqus.cae"]})
    assert (await rpc("features.get", {"id": feature_b["id"]}))["total"] == 10
    agent_b = who(agent_permissions(), cluster="cluster-b")
    assert await rpc("features.bulk_update", {"features": [report]}, as_=agent_b) == {"updated": 1}
    assert (await rpc("features.get", {"id": feature_b["id"]}))["total"] == 0


def test_the_openrpc_document_shows_the_report_permission() -> None:
    methods = {entry["name"]: entry for entry in openrpc.document()["methods"]}
    assert methods["features.bulk_update"]["x-permission"] == PREFIX + "feature:report"
    assert methods["features.update"]["x-permission"] == PREFIX + "feature:update"
