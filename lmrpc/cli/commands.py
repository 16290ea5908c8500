"""The commands of ``lmrpc <resource> <verb>``, derived from the method registry: one per
method, its options (or an argument for ids) named after the params of its params model,
with their types, choices, limits, defaults and whether they are required. A new or renamed
param reaches the command line without an edit here; lmrpc.cli.presentation adds what a
model cannot say (examples, compact forms of nested entries and timestamps, meanings,
defaults for people, tables).

Importing this module imports the method modules (the params models live there), so
lmrpc.cli.resources imports it only when a resource command is used.
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

import typer
from typer._click import Command as ClickCommand  # typer ships its own click

import lmrpc.methods  # noqa: F401  (importing the method modules registers the methods)
from lmrpc import openrpc
from lmrpc.cli import output, presentation, values
from lmrpc.cli.session import Session, client_command
from lmrpc.params import MAX_INT
from lmrpc.registry import METHODS, Method
from storage.list_fields import LIST_FIELDS

Schema = dict[str, Any]
_TYPES: dict[str, type] = {"integer": int, "number": float, "string": str, "boolean": bool}


@dataclass(frozen=True)
class Param:
    """One JSON-RPC param as a command-line option (or argument)."""

    name: str
    help: str
    type: type = str
    required: bool = False
    argument: bool = False
    flag: str = ""  # default: --name-with-dashes
    choices: tuple[str, ...] = ()
    parse: values.Parse | None = None  # a repeatable option; each value is one list entry
    metavar: str | None = None
    parser: Callable[[str], Any] | None = None  # the value's compact form (e.g. 24h ago)
    default: str | None = None  # sent when the option is not given

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def parameter(self) -> inspect.Parameter:
        """The typer parameter of this param (its Python name is the param's name)."""
        kind = inspect.Parameter.KEYWORD_ONLY
        if self.argument:
            info: Any = typer.Argument(help=self.help, metavar=self.metavar, show_default=False)
            return inspect.Parameter(self.name, kind, annotation=Annotated[self.type, info])
        info = typer.Option(
            self.option,
            help=self.help,
            metavar=self.metavar,
            show_default=False,
            parser=self.parser,
        )
        value_type: Any = self.type
        if self.parse:
            value_type = list[str]
        elif self.choices:
            value_type = Literal[self.choices]  # typer offers and checks the choices
        return inspect.Parameter(
            self.name, kind, annotation=Annotated[value_type | None, info], default=self.default
        )


@dataclass(frozen=True)
class Command:
    """``lmrpc <resource> <verb>`` calling ``method``.

    ``file``: accept ``--file`` with the params (options override it); when the file holds
    a list rather than an object, it is the value of ``file_list``. ``csv_columns``: accept
    ``--csv``, which prints the result's rows with these columns.
    """

    verb: str
    method: str
    help: str
    view: output.View
    params: tuple[Param, ...] = ()
    file: bool = False
    file_list: str | None = None
    csv_columns: tuple[str, ...] = ()

    def params_from(self, given: dict[str, Any]) -> dict[str, Any]:
        """The JSON-RPC params from the command line (and ``--file``)."""
        source = given.pop("file", None)
        params: dict[str, Any] = {}
        if source is not None:
            document = values.load(source)
            if self.file_list and isinstance(document, list):
                document = {self.file_list: document}
            params = values.params_object(document, source)
        for param in self.params:
            value = given.get(param.name)
            if value is None or value == []:
                continue
            params[param.name] = (
                values.entries(param.parse, value, param.option) if param.parse else value
            )
        missing = [p.option for p in self.params if p.required and p.name not in params]
        if missing:
            hint = " (or give it in --file)" if self.file else ""
            raise typer.BadParameter(f"missing option {', '.join(missing)}{hint}")
        return params

    def function(self) -> Callable[..., None]:
        """The typer command: parse, call, show."""

        def run(session: Session, *, as_csv: bool = False, **given: Any) -> None:
            result = session.call(self.method, self.params_from(given))
            if as_csv:
                session.output.csv_rows(result, self.csv_columns)
            else:
                session.show(result, self.view)

        parameters = [inspect.Parameter("session", inspect.Parameter.POSITIONAL_ONLY)]
        parameters += [param.parameter() for param in self.params]
        if self.csv_columns:
            info = typer.Option("--csv", help="Print CSV with a header line.")
            parameters.append(
                inspect.Parameter(
                    "as_csv",
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=Annotated[bool, info],
                    default=False,
                )
            )
        if self.file:
            info = typer.Option(
                "--file",
                "-f",
                metavar="PATH",
                help="JSON or YAML file with the params ('-': stdin); options override it.",
            )
            parameters.append(
                inspect.Parameter(
                    "file",
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=Annotated[str | None, info],
                    default=None,
                )
            )
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__name__ = self.verb.replace("-", "_")
        run.__doc__ = self.help
        return client_command(run)


# -- deriving a command from a method ---------------------------------------------------------


def _singular(plural: str) -> str:
    """One of a list param's or a resource's entries: license_servers → license_server."""
    return plural[:-3] + "y" if plural.endswith("ies") else plural.removesuffix("s")


def _value_schema(schema: Schema) -> Schema | None:
    """An optional param's schema without its ``null``; None when null is all it may be."""
    variants = [
        variant for variant in schema.get("anyOf", [schema]) if variant.get("type") != "null"
    ]
    if not variants:
        return None
    return variants[0] if len(variants) == 1 else {}  # a union: given as text


def _described(meaning: str, value: Schema, default: Any, flag: str, required: bool) -> str:
    """The meaning, with the limits worth reading, the server's default and "required"."""
    notes = []
    low, high = value.get("minimum"), value.get("maximum")
    if high is not None and high < MAX_INT:
        notes.append(f"{low}-{high}" if low is not None else f"at most {high}")
    if isinstance(default, bool):
        notes.append(f"default: {flag.split('/')[0 if default else 1]}")
    elif default not in (None, [], {}):
        notes.append(f"default: {default}")
    if required:
        notes.append("required")
    if not notes:
        return meaning
    return f"{meaning.removesuffix('.')} ({'; '.join(notes)})."


def _shape(items: Schema, definitions: Schema) -> presentation.Shape:
    """The compact form of a nested list's entries, by the entry model's name."""
    name = items.get("$ref", "").rpartition("/")[2]
    title = definitions.get(name, {}).get("title", name)
    return presentation.SHAPES.get(title, presentation.JSON_ENTRY)


def _param(
    name: str,
    schema: Schema,
    required: bool,
    argument: bool,
    meaning: str,
    definitions: Schema,
    default: str | None,
) -> Param | None:
    """The option (or argument) of one property of a params model's JSON Schema;
    ``default``: the value the command sends when the option is not given."""
    value = _value_schema(schema)
    if value is None:
        return None  # e.g. search where nothing is searchable
    dashed = name.replace("_", "-")
    kind = _TYPES.get(value.get("type", ""), str)
    if argument:
        return Param(name, meaning, kind, True, True, metavar=name.upper())
    required = required and default is None
    shown_default = schema.get("default") if default is None else default
    form = presentation.FORMATS.get(value.get("format", ""))
    if form is not None:
        return Param(
            name,
            _described(
                f"{meaning.removesuffix('.')}: {form.help}.", value, shown_default, "", required
            ),
            required=required,
            metavar=form.form,
            parser=form.parse,
            default=default,
        )
    if value.get("type") == "array":
        shape = _shape(value.get("items", {}), definitions)
        return Param(
            name,
            _described(shape.help, value, None, "", required),
            required=required,
            flag="--" + _singular(dashed),
            parse=shape.parse,
            metavar=shape.form,
        )
    flag = presentation.FLAGS.get(name, f"--{dashed}/--no-{dashed}" if kind is bool else "")
    return Param(
        name,
        _described(meaning, value, shown_default, flag, required),
        kind,
        required,
        flag=flag,
        choices=tuple(value.get("enum", ())),
        default=default,
    )


def _argument(properties: Schema, required: set[str]) -> str | None:
    """The param given as an argument: ``id``, or the only param when it names an id."""
    if "id" in properties:
        return "id"
    only = next(iter(properties), "")
    return only if len(properties) == 1 and only.endswith("_id") and only in required else None


def _view(method: Method, singular: str) -> tuple[output.View, tuple[str, ...]]:
    """The table of the method's result (from its OpenRPC result schema), and its columns
    when the table may also be printed as CSV."""
    result = openrpc.result_schema(method)
    item = result.get("items", result)
    name = item.get("$ref", "").rpartition("/")[2]
    if name == "Deleted":
        return output.deleted(singular), ()
    if name in presentation.VIEWS:
        view = presentation.VIEWS[name]
        return view, tuple(openrpc.OBJECTS[name]["properties"]) if view.csv else ()
    return output.View(output.lines if item.get("type") == "string" else output.as_json), ()


def derive(group: str, method: Method) -> Command:
    """The command of ``method`` in ``group`` (e.g. license-servers)."""
    prefix, _, verb = method.name.partition(".")
    schema = method.params.model_json_schema()
    properties: Schema = schema.get("properties", {})
    required = set(schema.get("required", []))
    argument = _argument(properties, required)
    singular = _singular(group.replace("-", " "))
    fields = LIST_FIELDS.get(prefix)
    searchable = ", ".join(fields.searchable) if fields else ""
    params = [
        _param(
            name,
            property_schema,
            name in required,
            name == argument,
            presentation.meaning(method.name, name).format(
                singular=singular, searchable=searchable
            ),
            schema.get("$defs", {}),
            presentation.default(method.name, name),
        )
        for name, property_schema in properties.items()
    ]
    verb_words = verb.replace("_", "-")
    example = presentation.EXAMPLES.get(method.name)
    help_text = method.description
    if example is not None:
        help_text += f"\n\nExample: lmrpc {group} {verb_words} {example}".rstrip()
    only = next(iter(properties), "")
    nested_only = len(properties) == 1 and properties[only].get("type") == "array"
    view, csv_columns = _view(method, singular)
    return Command(
        verb_words,
        method.name,
        help_text,
        view,
        tuple(param for param in params if param is not None),
        file=verb in presentation.FILE_VERBS,
        file_list=only if nested_only else None,
        csv_columns=csv_columns,
    )


@cache
def commands(group: str) -> dict[str, Command]:
    """The commands of ``group`` by verb, in the registry's order (then the methods of other
    resources the group offers too)."""
    prefix = group.replace("-", "_") + "."
    methods = [m for m in METHODS.values() if m.name.startswith(prefix)]
    methods += [METHODS[name] for name in presentation.ALSO.get(group, ())]
    return {command.verb: command for command in (derive(group, m) for m in methods)}


@cache
def click_command(group: str, verb: str) -> ClickCommand | None:
    """The click command typer makes of ``lmrpc <group> <verb>``; None: no such verb."""
    command = commands(group).get(verb)
    if command is None:
        return None
    single = typer.Typer(add_completion=False)
    single.command(verb)(command.function())
    return typer.main.get_command(single)
