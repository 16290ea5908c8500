"""The OpenRPC document, generated from the method registry (``rpc.discover``,
``GET /openrpc.json``): every method with its params' JSON Schema (from the pydantic
models), its result, its errors and the permission it needs."""

from functools import cache
from importlib.metadata import version
from typing import Any

from lmrpc.errors import (
    CONFLICT,
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    MESSAGES,
    NO_CLUSTER,
    NOT_ENOUGH_LICENSES,
    NOT_FOUND,
    RESPONSE_TOO_LARGE,
    STORAGE_UNAVAILABLE,
    UNAUTHENTICATED,
)
from lmrpc.identity import PREFIX
from lmrpc.registry import METHODS, Method

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": sorted(properties)}


_INT = {"type": "integer"}
_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}

# The objects of API.md §4.
OBJECTS: dict[str, dict[str, Any]] = {
    "LicenseServer": _object({"id": _INT, "config_id": _INT, "host": _STR, "port": _INT}),
    "Product": _object({"id": _INT, "name": _STR}),
    "Feature": _object(
        {
            "id": _INT,
            "name": _STR,
            "product": _ref("Product"),
            "config_id": _INT,
            "reserved": _INT,
            "total": _INT,
            "used": _INT,
            "booked_total": _INT,
        }
    ),
    "Configuration": _object(
        {
            "id": _INT,
            "name": _STR,
            "cluster_client_id": _STR,
            "grace_time": _INT,
            "type": _STR,
            "features": {"type": "array", "items": _ref("Feature")},
            "license_servers": {"type": "array", "items": _ref("LicenseServer")},
        }
    ),
    "Booking": _object(
        {
            "id": _INT,
            "job_id": _INT,
            "feature_id": _INT,
            "quantity": _INT,
            "created_at": _TIME,
        }
    ),
    "Job": _object(
        {
            "id": _INT,
            "slurm_job_id": _STR,
            "cluster_client_id": _STR,
            "username": _STR,
            "lead_host": _STR,
            "created_at": _TIME,
            "bookings": {"type": "array", "items": _ref("Booking")},
        }
    ),
    "ClusterStatus": _object(
        {
            "cluster_client_id": _STR,
            "interval": _INT,
            "last_reported": _TIME,
            "is_healthy": {"type": "boolean"},
        }
    ),
    "Checkout": _object(
        {"username": _STR, "lead_host": _STR, "quantity": _INT, "reported_at": _TIME}
    ),
    "UsagePoint": _object(
        {
            "t": _TIME,
            **{
                name: {"type": ["integer", "null"]}
                for name in ("total", "used", "reserved", "booked", "peak_used")
            },
        }
    ),
    "Refusals": _object(
        {
            "t": _TIME,
            "feature_id": _INT,
            "product_feature": _STR,
            "refused_calls": _INT,
            "refused_licenses": _INT,
        }
    ),
    "UserUsage": _object({"username": _STR, "product_feature": _STR, "quantity": _INT}),
    "Deleted": _object({"deleted": _INT}),
    "Updated": _object({"updated": _INT}),
}

_RESOURCE_OBJECT = {
    "configurations": "Configuration",
    "license_servers": "LicenseServer",
    "products": "Product",
    "features": "Feature",
    "jobs": "Job",
    "bookings": "Booking",
    "clusters": "ClusterStatus",
}
_SPECIAL_RESULTS: dict[str, dict[str, Any]] = {
    "license_servers.types": {"type": "array", "items": _STR},
    "features.bulk_update": _ref("Updated"),
    "features.checkouts": {"type": "array", "items": _ref("Checkout")},
    "usage.history": {"type": "array", "items": _ref("UsagePoint")},
    "usage.refusals": {"type": "array", "items": _ref("Refusals")},
    "usage.by_user": {"type": "array", "items": _ref("UserUsage")},
    "rpc.discover": {"type": "object", "description": "this OpenRPC document"},
}


def result_schema(method: Method) -> dict[str, Any]:
    """What a method returns, from its name: ``*.delete*`` → Deleted, ``*.list``,
    ``*.by_client_id`` and ``*.list_statuses`` → arrays, else the resource's object."""
    if method.name in _SPECIAL_RESULTS:
        return _SPECIAL_RESULTS[method.name]
    resource, _, verb = method.name.partition(".")
    if verb.startswith("delete"):
        return _ref("Deleted")
    item = _ref(_RESOURCE_OBJECT[resource])
    if verb in ("list", "by_client_id", "list_statuses"):
        return {"type": "array", "items": item}
    return item


def _errors(method: Method) -> list[dict[str, Any]]:
    codes = [
        UNAUTHENTICATED,
        INVALID_PARAMS,
        INTERNAL_ERROR,
        RESPONSE_TOO_LARGE,
        STORAGE_UNAVAILABLE,
    ]
    verb = method.name.partition(".")[2]
    if method.permission is not None:
        codes.append(FORBIDDEN)
    if method.cluster or method.name == "usage.history":  # product_feature: the caller's
        codes.append(NO_CLUSTER)
    if verb not in ("list", "types", "by_client_id", "list_statuses", "discover", "by_user"):
        codes.append(NOT_FOUND)
    if verb.startswith(("create", "update", "delete")):
        codes.append(CONFLICT)
    if method.name in ("bookings.create", "jobs.create"):
        codes.append(NOT_ENOUGH_LICENSES)
    return [{"code": code, "message": MESSAGES[code]} for code in sorted(codes, reverse=True)]


def _params(method: Method, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = method.params.model_json_schema(ref_template=_REF)
    schemas.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    return [
        {"name": name, "required": name in required, "schema": property_schema}
        for name, property_schema in schema.get("properties", {}).items()
    ]


@cache
def document() -> dict[str, Any]:
    """The OpenRPC document of every registered method (built once)."""
    schemas: dict[str, Any] = dict(OBJECTS)
    methods = []
    for method in sorted(METHODS.values(), key=lambda m: m.name):
        entry: dict[str, Any] = {
            "name": method.name,
            "summary": method.description,
            "paramStructure": "by-name",
            "params": _params(method, schemas),
            "result": {"name": "result", "schema": result_schema(method)},
            "errors": _errors(method),
            "x-permission": PREFIX + method.permission if method.permission else None,
            "x-cluster": method.cluster,
        }
        methods.append(entry)
    return {
        "openrpc": "1.2.6",
        "info": {
            "title": "lmrpc",
            "version": version("lmrpc"),
            "description": "License Manager for Slurm clusters (JSON-RPC 2.0 over HTTP POST /rpc)",
        },
        "servers": [{"name": "lmrpc", "url": "/rpc"}],
        "methods": methods,
        "components": {"schemas": schemas},
    }
