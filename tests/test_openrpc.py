"""The OpenRPC document: exactly the registered methods, valid against the meta-schema."""

import json
from pathlib import Path

import jsonschema
from referencing import Registry, Resource

from lmrpc import openrpc
from lmrpc.registry import METHODS
from tests.conftest import Rpc, identity

META_SCHEMA = json.loads((Path(__file__).parent / "data" / "openrpc-meta-schema.json").read_text())


def test_document_lists_exactly_the_registered_methods() -> None:
    document = openrpc.document()
    assert sorted(m["name"] for m in document["methods"]) == sorted(METHODS)


def test_document_is_valid_openrpc() -> None:
    # The meta-schema describes embedded JSON Schemas by "https://meta.json-schema.tools",
    # the JSON Schema draft-07 meta-schema under another name.
    draft7 = Resource.from_contents(jsonschema.Draft7Validator.META_SCHEMA)
    registry = Registry().with_resource("https://meta.json-schema.tools", draft7)
    jsonschema.Draft7Validator(META_SCHEMA, registry=registry).validate(openrpc.document())


def test_params_and_permissions_come_from_the_registry() -> None:
    methods = {m["name"]: m for m in openrpc.document()["methods"]}
    create = methods["bookings.create"]
    assert [(p["name"], p["required"]) for p in create["params"]] == [
        ("job_id", True),
        ("feature_id", True),
        ("quantity", True),
    ]
    assert create["x-permission"] == "license-manager:booking:create"
    assert -32010 in {e["code"] for e in create["errors"]}
    assert methods["jobs.create"]["x-cluster"] is True
    assert methods["products.list"]["result"]["schema"]["type"] == "array"
    # Every $ref points at a schema the document carries.
    text = json.dumps(openrpc.document())
    schemas = openrpc.document()["components"]["schemas"]
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in schemas, ref


async def test_rpc_discover_needs_only_a_valid_token(rpc: Rpc) -> None:
    document = await rpc("rpc.discover", as_=identity("product:read"))
    assert document == openrpc.document()
    error = await rpc.error("rpc.discover", {"extra": 1}, as_=identity())
    assert error.code == -32602
