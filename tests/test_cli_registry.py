"""The resource commands (``lmrpc usage …`` too) are derived from the method registry: every
method's params are the command's options (an argument for ids) with the model's required
flags and choices, a param the registry gains reaches the command line with no edit to the
CLI, the examples in ``--help`` parse, ``lmrpc --help`` does not load the params models, and
the resource commands load them without their handlers' storage and actors (no SQLAlchemy,
no Trio).

No server is needed: argv is parsed by the real command and turned into the params it would
send; tests/test_cli.py sends them to a real server on both backends.
"""

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field
from typer.testing import CliRunner

from lmrpc import openrpc, registry
from lmrpc.cli import app, commands, presentation
from lmrpc.cli.resources import GROUPS
from lmrpc.cli.session import COMMON_OPTIONS, EXIT_USAGE
from lmrpc.methods.configurations import ServerNew
from lmrpc.methods.usage import Interval
from lmrpc.params import MAX_INT, Id, Name, Params
from lmrpc.ui import lifetimes

NOT_COMMANDS = {"rpc"}  # rpc.discover is lmrpc methods
COMMON = {option.name for option in COMMON_OPTIONS} | {"file", "as_csv"}


def _all() -> Iterator[tuple[str, commands.Command]]:
    for group in GROUPS:
        for command in commands.commands(group).values():
            yield group, command


def _parse(group: str, verb: str, argv: list[str]) -> dict[str, Any]:
    """The params ``lmrpc group verb *argv`` sends, through the real command's parser."""
    click_command = commands.click_command(group, verb)
    assert click_command is not None
    context = click_command.make_context(verb, argv)
    given = {name: value for name, value in context.params.items() if name not in COMMON}
    given["file"] = context.params.get("file")
    return commands.commands(group)[verb].params_from(given)


def _choices(annotation: Any) -> tuple[Any, ...]:
    """The choices of a ``Literal`` param (also inside ``X | None``)."""
    for candidate in (annotation, *get_args(annotation)):
        if get_origin(candidate) is Literal:
            return get_args(candidate)
    return ()


def test_every_registry_resource_is_a_command_group() -> None:
    resources = {name.partition(".")[0].replace("_", "-") for name in registry.METHODS}
    assert resources - NOT_COMMANDS == set(GROUPS)


@pytest.mark.parametrize(
    ("group", "verb"), [pytest.param(g, c.verb, id=f"{g} {c.verb}") for g, c in _all()]
)
def test_a_commands_params_are_its_methods_params(group: str, verb: str) -> None:
    command = commands.commands(group)[verb]
    model = registry.METHODS[command.method].params
    click_command = commands.click_command(group, verb)
    assert click_command is not None
    offered = {param.name: param for param in click_command.params if param.name not in COMMON}
    settable = {  # not search where nothing is searchable: it may only be null
        name for name, field in model.model_fields.items() if field.annotation is not type(None)
    }
    assert set(offered) == settable
    derived = {param.name: param for param in command.params}
    for name in settable:
        field = model.model_fields[name]
        sent_anyway = presentation.default(command.method, name) is not None
        assert derived[name].required == (field.is_required() and not sent_anyway), name
        if name == "id":
            assert offered[name].opts == ["id"] and offered[name].required
        choices = _choices(field.annotation)
        assert derived[name].choices == choices, (command.method, name)
        if choices:
            flag = offered[name].opts[0]
            argv = ["1"] if "id" in settable else []
            for choice in choices:
                context = click_command.make_context(verb, [*argv, flag, choice])
                assert context.params[name] == choice
            refused = CliRunner().invoke(app, [group, verb, *argv, flag, "nope"])
            assert refused.exit_code == EXIT_USAGE and "nope" in refused.stderr


@pytest.mark.parametrize(
    ("group", "verb"), [pytest.param(g, c.verb, id=f"{g} {c.verb}") for g, c in _all()]
)
def test_the_example_in_help_parses(group: str, verb: str) -> None:
    command = commands.commands(group)[verb]
    example = presentation.EXAMPLES[command.method]
    assert f"Example: lmrpc {group} {verb} {example}".rstrip() in command.help
    click_command = commands.click_command(group, verb)
    assert click_command is not None
    context = click_command.make_context(verb, shlex.split(example))
    if context.params.get("file") is None:  # the params an example sends are complete
        assert set(_parse(group, verb, shlex.split(example))) >= {
            p.name for p in command.params if p.required
        }


def test_every_example_belongs_to_a_method() -> None:
    assert set(presentation.EXAMPLES) <= set(registry.METHODS)


def test_every_meaning_and_shape_is_used() -> None:
    """No stale entry: each meaning names a param, each shape an entry model, of a method."""
    schemas = [method.params.model_json_schema() for method in registry.METHODS.values()]
    params = {
        (method.name, name)
        for method, schema in zip(registry.METHODS.values(), schemas, strict=True)
        for name in schema.get("properties", {})
    }
    for key in presentation.MEANINGS:
        method, _, param = key.rpartition(".")
        assert any(param == p and method in ("", m) for m, p in params), key
    titles = {d["title"] for schema in schemas for d in schema.get("$defs", {}).values()}
    assert set(presentation.SHAPES) <= titles


# -- a param the registry gains reaches the command line ------------------------------------------


class Entry(Params):
    """A nested entry no compact form is declared for."""

    label: Name
    weight: int = 1


class Relabel(Params):
    """Params of a method the CLI has never heard of, in a group it has."""

    id: Id
    label: Name
    colour: Literal["red", "green"] = "red"
    weight: Annotated[int, Field(ge=1, le=10)] | None = None
    license_servers: list[ServerNew] = Field(default_factory=list)
    entries: list[Entry] = Field(default_factory=list)


class Peaks(Interval):
    """Params of a usage method the CLI has never heard of."""

    order: Literal["peak", "mean"] = "peak"


async def _never_called(ctx: registry.CallContext, p: Any) -> Any:
    raise AssertionError("never called: nothing is sent")


def _register(
    monkeypatch: pytest.MonkeyPatch, name: str, params: type[Params], description: str
) -> Iterator[str]:
    """Register a method for one test; its verb."""
    method = registry.Method(name, None, params, _never_called, False, description)
    monkeypatch.setitem(registry.METHODS, method.name, method)
    commands.commands.cache_clear()
    commands.click_command.cache_clear()
    yield name.partition(".")[2]
    commands.commands.cache_clear()
    commands.click_command.cache_clear()


@pytest.fixture
def relabel(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from _register(monkeypatch, "products.relabel", Relabel, "Relabel a product.")


@pytest.fixture
def peaks(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    points = openrpc.result_schema(registry.METHODS["usage.history"])  # its result: a series
    monkeypatch.setitem(openrpc._SPECIAL_RESULTS, "usage.peaks", points)
    yield from _register(monkeypatch, "usage.peaks", Peaks, "Peaks per step.")


def test_a_new_method_and_its_params_reach_the_command_line(relabel: str) -> None:
    help_text = CliRunner().invoke(app, ["products", relabel, "--help"], env={"COLUMNS": "200"})
    assert help_text.exit_code == 0
    words = " ".join(help_text.stdout.split())
    assert "Relabel a product." in words
    for option in ("--label", "--colour", "--weight", "--license-server", "--entry"):
        assert option in words
    assert "<red|green>" in words and "(1-10)" in words and "HOST:PORT" in words
    assert relabel in CliRunner().invoke(app, ["products", "--help"]).stdout

    argv = ["7", "--label", "x", "--colour", "green", "--weight", "3"]
    argv += ["--license-server", "[::1]:27000", "--entry", '{"label": "a", "weight": 2}']
    assert _parse("products", relabel, argv) == {
        "id": 7,
        "label": "x",
        "colour": "green",
        "weight": 3,
        "license_servers": [{"host": "::1", "port": 27000}],
        "entries": [{"label": "a", "weight": 2}],
    }
    # usage errors, refused before anything is sent (no server listens at this URL)
    nowhere = ["--url", "http://127.0.0.1:9"]
    for bad, complaint in (
        (["7", "--colour", "red"], "missing option --label"),
        (["7", "--label", "x", "--entry", "{not json"], "expected one entry as JSON"),
        (["7", "--label", "x", "--colour", "blue"], "blue"),
        (["7", "--label", "x", "--weight", "heavy"], "--weight"),
    ):
        result = CliRunner().invoke(
            app, ["products", relabel, *bad, *nowhere], env={"COLUMNS": "200"}
        )
        assert result.exit_code == EXIT_USAGE, (bad, result.stderr)
        assert complaint in " ".join(result.stderr.split()), (bad, result.stderr)


def test_a_new_usage_method_reaches_the_command_line_with_ages_and_defaults(peaks: str) -> None:
    help_text = CliRunner().invoke(app, ["usage", peaks, "--help"], env={"COLUMNS": "200"})
    assert help_text.exit_code == 0
    words = " ".join(help_text.stdout.split())
    assert "Peaks per step." in words and "<peak|mean>" in words
    assert "--since TIME" in words and "--until TIME" in words and "(default: now)" in words
    assert "--csv" in words  # the view of its result (usage points) may be CSV

    params = _parse("usage", peaks, ["--since", "2026-12-01T00:00:00Z", "--order", "mean"])
    assert params["since"] == "2026-12-01T00:00:00Z" and params["order"] == "mean"
    until = datetime.fromisoformat(params["until"])  # not given: now
    assert until.tzinfo is not None and until > datetime(2026, 1, 1, tzinfo=UTC)
    params = _parse("usage", peaks, ["--since", "90m", "--until", "30m"])
    span = datetime.fromisoformat(params["until"]) - datetime.fromisoformat(params["since"])
    assert timedelta(hours=1) <= span < timedelta(hours=1, minutes=1)

    nowhere = ["--url", "http://127.0.0.1:9"]
    for bad in (["--since", "yesterday"], ["--until", "2026-12-01T00:00:00"], ["--step", "x"]):
        result = CliRunner().invoke(app, ["usage", peaks, *bad, *nowhere], env={"COLUMNS": "200"})
        assert result.exit_code == EXIT_USAGE, (bad, result.stderr)
        assert bad[0] in result.stderr, (bad, result.stderr)


def test_the_usage_commands_are_its_methods_and_the_features_checkouts() -> None:
    usage = commands.commands("usage")
    assert [command.method for command in usage.values()] == [
        *(name for name in registry.METHODS if name.startswith("usage.")),
        "features.checkouts",
    ]
    assert list(usage) == ["history", "refusals", "by-user", "checkouts"]
    assert usage["history"].csv_columns == ("t", "total", "used", "reserved", "booked", "peak_used")
    assert usage["refusals"].csv_columns[-2:] == ("refused_calls", "refused_licenses")
    assert not usage["by-user"].csv_columns and not usage["checkouts"].csv_columns


# -- search, sort and paging: what is given is what is sent ---------------------------------------


def _sortable(group: str) -> tuple[str, ...]:
    return next(
        p.choices for p in commands.commands(group)["list"].params if p.name == "sort_field"
    )


LIST_GROUPS = [group for group in GROUPS if "list" in commands.commands(group)]


@st.composite
def list_argv(draw: st.DrawFn) -> tuple[str, list[str], dict[str, Any]]:
    """A list command's options in any order, and the params they stand for."""
    group = draw(st.sampled_from(LIST_GROUPS))
    params: dict[str, Any] = {}
    options: list[list[str]] = []
    searchable = any(p.name == "search" for p in commands.commands(group)["list"].params)
    if searchable and draw(st.booleans()):
        params["search"] = draw(st.text(st.characters(categories=["L", "N", "Zs"]), min_size=1))
        options.append(["--search", params["search"]])
    if draw(st.booleans()):
        params["sort_field"] = draw(st.sampled_from(_sortable(group)))
        options.append(["--sort-field", params["sort_field"]])
    if draw(st.booleans()):
        params["sort_ascending"] = draw(st.booleans())
        options.append(["--sort-ascending" if params["sort_ascending"] else "--sort-descending"])
    for name in ("limit", "offset"):
        if draw(st.booleans()):
            params[name] = draw(st.integers(1 if name == "limit" else 0, MAX_INT))
            options.append([f"--{name}", str(params[name])])
    argv = [word for option in draw(st.permutations(options)) for word in option]
    return group, argv, params


@settings(max_examples=200, deadline=None)
@given(list_argv())
def test_list_options_send_exactly_what_was_given(case: tuple[str, list[str], Any]) -> None:
    group, argv, params = case
    assert _parse(group, "list", argv) == params


# -- start time ----------------------------------------------------------------------------------


def _modules_after(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules ``lmrpc *argv`` ran, in a fresh interpreter (not those imported lazily
    and never used), with ``env`` added to the environment."""
    script = (
        "import importlib.util, json, sys\n"
        f"sys.argv = ['lmrpc', *{list(argv)!r}]\n"
        "from lmrpc.console import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "ran = [name for name, module in sys.modules.items()\n"
        "       if not isinstance(module, importlib.util._LazyModule)]\n"
        "sys.stdout.write('\\n' + json.dumps(sorted(ran)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_only_resource_commands_load_the_params_models() -> None:
    models = {"lmrpc.methods", "lmrpc.registry", "lmrpc.params", "actors", "storage"}
    for argv in (["--help"], ["call", "--help"], ["agent", "--help"], ["db", "--help"]):
        assert not models & _modules_after(*argv), argv
    assert models <= _modules_after("products", "list", "--help")


# What the params models may use when they are defined; the rest is for handlers.
LIGHT = {"storage", "storage.list_fields", "storage.errors", "actors", "actors.usage"}


@pytest.mark.parametrize("argv", [["jobs", "--help"], ["usage", "history", "--help"]])
def test_resource_commands_load_no_storage_or_actors(argv: list[str]) -> None:
    ran = _modules_after(*argv)
    assert "lmrpc.methods.jobs" in ran and "lmrpc.methods.usage" in ran
    assert not {name for name in ran if name.partition(".")[0] in ("sqlalchemy", "trio")}
    assert {name for name in ran if name.partition(".")[0] in ("storage", "actors")} <= LIGHT


def test_a_token_is_minted_without_loading_sqlalchemy(tmp_path: Path) -> None:
    """``lmrpc token`` reads the settings (the data directory's key), not the storage."""
    ran = _modules_after("token", "--client-id", "a", env={"LMRPC_DATA_DIR": str(tmp_path)})
    assert "lmrpc.settings" in ran and "lmrpc.keys" in ran
    assert not {name for name in ran if name.partition(".")[0] == "sqlalchemy"}


def test_lmrpc_ui_help_shows_the_lifetimes_without_loading_the_sign_in_store() -> None:
    help_text = CliRunner().invoke(app, ["ui", "--help"], env={"COLUMNS": "200"})
    words = " ".join(help_text.stdout.split())
    assert f"[default: {lifetimes.SESSION_TTL_S}]" in words
    assert f"within {lifetimes.CODE_TTL_S // 60} minutes" in words
    assert "lmrpc.ui.signin" not in _modules_after("ui", "--help")
