"""Names and control characters (API.md §4): product and feature names are Slurm license
name parts, every other string param refuses control characters with -32602 on both
backends (PostgreSQL used to answer -32603 to a NUL), names stored before the rule still
read, the CLI prints control characters escaped, and the log never holds SQL parameters."""

import json
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typing_extensions
from pydantic import BaseModel, ValidationError
from sqlalchemy import insert
from sqlalchemy.engine import make_url

import lmrpc.methods  # noqa: F401  (registers the methods)
from lmrpc.cli.output import Output
from lmrpc.client import RpcFailure
from lmrpc.registry import METHODS
from storage import engine as engines
from storage.schema import products
from tests.conftest import Rpc
from tests.factories import make_feature
from tests.rpc_objects import configuration, invalid_fields, product
from tests.server import running_server, server_env
from tests.test_cli import Cli
from tests.tokens import TokenFactory

NUL = "a\x00b"
CONTROLS = ["\x00", "\x1b[2J", "line\nbreak", "tab\there", "\x7f", "\x9b", "\u202e", "\u200b"]

# -- every string field of every registered params model ----------------------------------


def _accepts_text(annotation: Any) -> bool:
    if annotation is str:
        return True
    if typing.get_origin(annotation) is typing.Literal:
        return any(isinstance(arg, str) for arg in typing.get_args(annotation))
    return any(_accepts_text(arg) for arg in typing.get_args(annotation))


def _is_model(annotation: Any) -> bool:
    """A params model or a TypedDict (the entries of long lists are typed so)."""
    return typing_extensions.is_typeddict(annotation) or (
        isinstance(annotation, type) and issubclass(annotation, BaseModel)
    )


def _fields(model: Any) -> dict[str, Any]:
    """Field name → annotation of a params model or a TypedDict."""
    if typing_extensions.is_typeddict(model):
        return typing.get_type_hints(model, include_extras=True)
    return {name: field.annotation for name, field in model.model_fields.items()}


def _models(annotation: Any) -> Iterator[tuple[Any, bool]]:
    """Params models (and TypedDicts) inside ``annotation``, and whether each comes in a
    list."""
    if _is_model(annotation):
        yield annotation, False
    origin = typing.get_origin(annotation)
    for arg in typing.get_args(annotation):
        for model, listed in _models(arg):
            yield model, listed or origin is list


def _string_fields(model: Any) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(error location, params) for each string field of ``model`` and of the models nested
    in it, the params holding ``NUL`` in that field."""
    for name, annotation in _fields(model).items():
        if _accepts_text(annotation):
            yield (name,), {name: NUL}
        for inner, listed in _models(annotation):
            for location, params in _string_fields(inner):
                if listed:
                    yield (name, 0, *location), {name: [params]}
                else:
                    yield (name, *location), {name: params}


def test_every_string_field_of_every_method_refuses_a_nul() -> None:
    """Walk the registry: no string param, however it is typed or nested, takes a NUL."""
    checked = []
    for method in METHODS.values():
        for location, params in _string_fields(method.params):
            with pytest.raises(ValidationError) as refused:
                method.params.model_validate(params)
            locations = [error["loc"] for error in refused.value.errors()]
            assert location in locations, (method.name, location, refused.value.errors())
            checked.append((method.name, location))
    # the walk found the fields the issue names (and so did not silently find nothing)
    for expected in [
        ("products.create", ("name",)),
        ("configurations.update", ("features", 0, "name")),
        ("license_servers.create", ("host",)),
        ("jobs.create", ("username",)),
        ("jobs.create", ("slurm_job_id",)),
        ("jobs.create", ("bookings", 0, "product_feature")),
        ("jobs.get_by_slurm_id", ("slurm_job_id",)),
        ("features.list", ("search",)),
        ("features.bulk_update", ("features", 0, "product_name")),
        ("clusters.get_status", ("cluster_client_id",)),
    ]:
        assert expected in checked, expected


# -- through the dispatcher, on both backends ---------------------------------------------


@pytest.mark.parametrize("text", CONTROLS)
async def test_control_characters_are_invalid_params_on_every_backend(rpc: Rpc, text: str) -> None:
    await product(rpc, "abaqus")
    servers = [{"host": "h", "port": 1}]
    calls: list[tuple[str, dict[str, Any]]] = [
        ("configurations.create", {"name": f"c{text}", "cluster_client_id": "cluster-a",
                                   "type": "flexlm", "license_servers": servers}),
        ("configurations.create", {"name": "c", "cluster_client_id": f"a{text}",
                                   "type": "flexlm", "license_servers": servers}),
        ("jobs.create", {"slurm_job_id": f"1{text}", "username": "u", "lead_host": "h"}),
        ("jobs.create", {"slurm_job_id": "1", "username": f"u{text}", "lead_host": "h"}),
        ("jobs.create", {"slurm_job_id": "1", "username": "u", "lead_host": f"h{text}"}),
        ("jobs.create", {"slurm_job_id": "1", "username": "u", "lead_host": "h",
                         "bookings": [{"product_feature": f"abaqus.x{text}", "quantity": 1}]}),
        ("jobs.get_by_slurm_id", {"slurm_job_id": f"1{text}"}),
        ("products.list", {"search": f"aba{text}"}),
        ("features.list", {"search": text}),
        ("clusters.get_status", {"cluster_client_id": f"a{text}"}),
        ("features.bulk_update", {"features": [{"product_name": "abaqus",
                                                "feature_name": f"x{text}",
                                                "total": 1, "used": 0}]}),
    ]  # fmt: skip
    for method, params in calls:
        error = await rpc.error(method, params)
        assert error.code == -32602, (method, params, error.to_json())
    assert await rpc("jobs.list") == []
    assert [c["name"] for c in await rpc("configurations.list")] == []


@pytest.mark.parametrize(
    "name", ["", "a.b", "a b", "a@b", "a,b", "a:b", "a/b", "ä", "x" * 256, "a\x00", "[bold]"]
)
async def test_product_and_feature_names_are_slurm_license_name_parts(rpc: Rpc, name: str) -> None:
    product_id = await product(rpc, "abaqus")
    config = await configuration(rpc)
    refused: list[tuple[str, dict[str, Any], list[str]]] = [
        ("products.create", {"name": name}, ["name"]),
        ("products.update", {"id": product_id, "name": name}, ["name"]),
        ("features.create", {"name": name, "product_id": product_id, "config_id": config["id"]},
         ["name"]),
        ("configurations.update", {"id": config["id"],
                                   "features": [{"name": name, "product_id": product_id}]},
         ["features.0.name"]),
    ]  # fmt: skip
    for method, params, fields in refused:
        assert invalid_fields(await rpc.error(method, params)) == fields, method


async def test_valid_license_names(rpc: Rpc) -> None:
    names = ["Abaqus_2024-x+1", "a", "A" * 255, "0"]
    for n, name in enumerate(names):
        product_id = await product(rpc, name)
        config = await configuration(rpc, name=f"c{n}")
        feature = await rpc(
            "features.create", {"name": name, "product_id": product_id, "config_id": config["id"]}
        )
        assert feature["product"]["name"] == feature["name"] == name


async def test_names_stored_before_the_rule_still_read_and_update_needs_a_valid_one(
    rpc: Rpc,
) -> None:
    """The migration does not rewrite old names: they read, list, search and report as
    before; a rename must give a valid name."""
    feature_id = await make_feature(rpc.storage, 5, product="old product", name="cfd.v1")
    feature = await rpc("features.get", {"id": feature_id})
    assert (feature["product"]["name"], feature["name"]) == ("old product", "cfd.v1")
    assert [f["id"] for f in await rpc("features.list", {"search": "old"})] == [feature_id]
    updated = await rpc(
        "features.bulk_update",
        {"features": [{"product_name": "old product", "feature_name": "cfd.v1", "total": 7,
                       "used": 1}]},
    )  # fmt: skip
    assert updated == {"updated": 1}
    error = await rpc.error("features.update", {"id": feature_id, "name": "cfd.v1"})
    assert invalid_fields(error) == ["name"]
    renamed = await rpc("features.update", {"id": feature_id, "name": "cfd-v1"})
    assert (renamed["name"], renamed["total"]) == ("cfd-v1", 7)
    product_id = feature["product"]["id"]
    assert (await rpc("products.get", {"id": product_id}))["name"] == "old product"
    assert invalid_fields(
        await rpc.error("products.update", {"id": product_id, "name": "old product"})
    ) == ["name"]


# -- what the CLI prints ----------------------------------------------------------------


def _insert_product(url: str, name: str) -> None:
    """A product stored with any name, as an old database or another writer may hold it."""
    engine = engines.create(url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(insert(products).values(name=name))
    finally:
        engine.dispose()


def test_the_cli_prints_control_characters_escaped(
    database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    hostile = "evil\x1b[2J\x1b[31m\n│ 9 │ fake row [bold]│\u202e\x9b"
    _insert_product(database_url, hostile)
    with running_server(server_env(database_url, tokens, tmp_path / "data"), tmp_path) as server:
        cli = Cli(server.url, tokens.mint("admin"), tmp_path / "cache")
        table = cli.ok("products", "list")
        as_json = cli.ok("products", "list", "--json")
        compact = cli.ok("products", "list", "--compact")
    for printed in (table, as_json, compact):
        assert not any(char in printed for char in "\x1b\x9b\u202e"), printed
    assert "evil\\x1b[2J\\x1b[31m\\n│ 9 │ fake row [bold]│\\u202e\\x9b" in table
    assert len([line for line in table.splitlines() if "fake row" in line]) == 1
    assert [row["name"] for row in json.loads(as_json)] == [hostile]
    assert [row["name"] for row in json.loads(compact)] == [hostile]


# -- the log ------------------------------------------------------------------------------

SECRET = "s3cretPassw0rd"


@pytest.fixture
def refusing_database(database_url: str) -> Iterator[str]:
    """The database refuses a product named like a secret: a storage error the service does
    not expect (-32603), reported by each backend with the value (PostgreSQL's DETAIL quotes
    the failing row)."""
    if make_url(database_url).get_backend_name() == "sqlite":
        engine = engines.create(database_url, pool_size=1)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_secret BEFORE INSERT ON products "
                f"WHEN NEW.name LIKE '%{SECRET}%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        engine.dispose()
        yield database_url
        return
    check = f"CHECK (name NOT LIKE '%{SECRET}%')"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE products ADD CONSTRAINT refuse_secret {check}")
    try:
        yield database_url
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE products DROP CONSTRAINT refuse_secret")


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_a_storage_error_logs_no_sql_parameters(
    refusing_database: str, tokens: TokenFactory, tmp_path: Path, log_format: str
) -> None:
    env = server_env(refusing_database, tokens, tmp_path / "data", {"LMRPC_LOG_FORMAT": log_format})
    with running_server(env, tmp_path) as server:
        response = server.rpc(tokens.mint("admin"), "products.create", {"name": f"x{SECRET}"})
        assert response["error"]["code"] == -32603, response
        assert SECRET not in json.dumps(response)
    log = server.log.read_text()
    assert "internal error in products.create" in log  # the error was logged, with its kind
    assert "INSERT INTO products" in log
    assert SECRET not in log


@pytest.mark.parametrize("as_json", [False, True])
def test_the_cli_prints_an_error_from_any_server_escaped(
    as_json: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server (ours or another at the configured URL) chooses the error's message and
    data: neither reaches the terminal raw."""
    error = {"code": -32004, "message": "not\x1b[2J found", "data": {"missing": ["a.b\u202e\x9b"]}}
    Output(json=as_json).rpc_error(RpcFailure(error))
    printed = capsys.readouterr().err
    assert not any(char in printed for char in "\x1b\x9b\u202e"), printed
    if as_json:
        assert json.loads(printed) == error
    else:
        assert printed.startswith("error: not\\x1b[2J found (-32004)\n")
        assert json.loads(printed.partition("\n")[2]) == error["data"]
