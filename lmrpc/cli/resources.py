"""``lmrpc <resource> <verb>``: one command per method of API.md §5, generated from a table.

Each row names the method, its params (as options, or an argument for ids), the view that
shows the result, and an example for ``--help``. Options are named after the params;
nested lists are repeatable options with a compact form (``--license-server HOST:PORT``)
or come from ``--file`` (JSON or YAML), which options override.
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import typer

from lmrpc.cli import output, values
from lmrpc.cli.session import Session, client_command
from storage.list_fields import LIST_FIELDS

SERVER_TYPES = ("flexlm", "rlm", "lsdyna", "lmx", "olicense", "dsls")


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

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def parameter(self) -> inspect.Parameter:
        """The typer parameter of this param (its Python name is the param's name)."""
        kind = inspect.Parameter.KEYWORD_ONLY
        if self.argument:
            info: Any = typer.Argument(help=self.help, metavar=self.metavar, show_default=False)
            return inspect.Parameter(self.name, kind, annotation=Annotated[self.type, info])
        info = typer.Option(self.option, help=self.help, metavar=self.metavar, show_default=False)
        value_type: Any = self.type
        if self.parse:
            value_type = list[str]
        elif self.choices:
            value_type = Literal[self.choices]  # typer offers and checks the choices
        return inspect.Parameter(
            self.name, kind, annotation=Annotated[value_type | None, info], default=None
        )


@dataclass(frozen=True)
class Command:
    """``lmrpc <resource> <verb>`` calling ``method``.

    ``file``: accept ``--file`` with the params (options override it); when the file holds
    a list rather than an object, it is the value of ``file_list``.
    """

    verb: str
    method: str
    help: str
    example: str
    view: output.View
    params: tuple[Param, ...] = ()
    file: bool = False
    file_list: str | None = None

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

        def run(session: Session, **given: Any) -> None:
            session.show(session.call(self.method, self.params_from(given)), self.view)

        parameters = [inspect.Parameter("session", inspect.Parameter.POSITIONAL_ONLY)]
        parameters += [param.parameter() for param in self.params]
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
        run.__doc__ = f"{self.help}\n\nExample: {self.example}"
        return client_command(run)


@dataclass(frozen=True)
class Resource:
    name: str  # the command group, e.g. license-servers
    help: str
    commands: list[Command] = field(default_factory=list)


# -- building blocks ---------------------------------------------------------------------


def _id(what: str) -> Param:
    return Param("id", f"Id of the {what}.", int, required=True, argument=True, metavar="ID")


def _names(group: str) -> tuple[str, str, str]:
    """The method prefix, plural and singular of a command group (license-servers →
    license_servers, license servers, license server)."""
    plural = group.replace("-", " ")
    return group.replace("-", "_"), plural, plural.removesuffix("s")


def _listing(group: str, view: output.View, example: str) -> Command:
    """``list`` with the search and sort fields the service declares (LIST_FIELDS)."""
    prefix, plural, _ = _names(group)
    fields = LIST_FIELDS[prefix]
    params = [
        Param("sort_field", "Sort by this field (default: id).", choices=fields.sortable),
        Param(
            "sort_ascending",
            "Sort order (default: ascending).",
            bool,
            flag="--sort-ascending/--sort-descending",
        ),
        Param("limit", "At most this many rows (1-10000; default: all).", int),
        Param("offset", "Skip this many rows first.", int),
    ]
    if fields.searchable:
        searched = ", ".join(fields.searchable)
        search = f"Case-insensitive substring of {searched}; several words match any."
        params.insert(0, Param("search", search, metavar="TEXT"))
    return Command(
        "list", f"{prefix}.list", f"List {plural}.", f"lmrpc {group} list {example}", view,
        tuple(params),
    )  # fmt: skip


def _standard(group: str, view: output.View, list_example: str) -> list[Command]:
    """list, get, delete: the same for every resource."""
    prefix, _, singular = _names(group)
    return [
        _listing(group, view, list_example),
        Command(
            "get", f"{prefix}.get", f"Show one {singular}.", f"lmrpc {group} get 1", view,
            (_id(singular),),
        ),
        Command(
            "delete", f"{prefix}.delete", f"Delete a {singular}.", f"lmrpc {group} delete 1",
            output.deleted(singular), (_id(singular),),
        ),
    ]  # fmt: skip


def _by_client_id(group: str, view: output.View) -> Command:
    prefix, plural, _ = _names(group)
    return Command(
        "by-client-id",
        f"{prefix}.by_client_id",
        f"List the {plural} of the token's own cluster (its azp / client_id).",
        f"lmrpc {group} by-client-id",
        view,
    )


_FEATURES = output.View(output.features)
_CONFIGURATIONS = output.View(output.configurations)
_SERVERS = output.View(output.license_servers)
_PRODUCTS = output.View(output.products)
_JOBS = output.View(output.jobs, feature_names=True)
_BOOKINGS = output.View(output.bookings, feature_names=True)
_STATUSES = output.View(output.statuses)

_SERVER_FORM = "HOST:PORT"
_FEATURE_FORM = "NAME:PRODUCT_ID[:RESERVED]"


def _configuration_fields(required: bool) -> tuple[Param, ...]:
    return (
        Param("name", "Name of the configuration.", required=required),
        Param("cluster_client_id", "The cluster's client id (its token's azp).", required=required),
        Param("type", "License server type.", choices=SERVER_TYPES, required=required),
        Param(
            "grace_time",
            "Grace time in seconds (default 60).",
            int,
        ),
    )


RESOURCES = [
    Resource(
        "configurations",
        "A cluster's license servers and features, edited as one object.",
        [
            *_standard(
                "configurations",
                _CONFIGURATIONS,
                "--search cluster-a",
            ),
            Command(
                "create",
                "configurations.create",
                "Create a configuration with its license servers (at least one) and features.",
                "lmrpc configurations create --name abaqus --cluster-client-id cluster-a "
                "--type flexlm --license-server lic1.example.org:27000 --feature abaqus:1:2",
                _CONFIGURATIONS,
                (
                    *_configuration_fields(True),
                    Param(
                        "license_servers",
                        "A license server; repeat for several.",
                        flag="--license-server",
                        parse=values.host_port,
                        metavar=_SERVER_FORM,
                        required=True,
                    ),
                    Param(
                        "features",
                        "A feature (product id, licenses held back); repeat for several.",
                        flag="--feature",
                        parse=values.feature,
                        metavar=_FEATURE_FORM,
                    ),
                ),
                file=True,
            ),
            Command(
                "update",
                "configurations.update",
                "Change a configuration. Given --license-server or --feature options replace "
                "that list: ID keeps a child, ID=SPEC changes it, SPEC adds one; children not "
                "listed are deleted.",
                "lmrpc configurations update 1 --grace-time 120 --license-server 1 "
                "--license-server lic2.example.org:27000",
                _CONFIGURATIONS,
                (
                    _id("configuration"),
                    *_configuration_fields(False),
                    Param(
                        "license_servers",
                        "ID, ID=HOST:PORT or HOST:PORT; repeat for several.",
                        flag="--license-server",
                        parse=values.child(values.host_port),
                        metavar="[ID=]HOST:PORT",
                    ),
                    Param(
                        "features",
                        "ID, ID=NAME:PRODUCT_ID[:RESERVED] or NAME:PRODUCT_ID[:RESERVED]; "
                        "repeat for several.",
                        flag="--feature",
                        parse=values.child(values.feature),
                        metavar="[ID=]" + _FEATURE_FORM,
                    ),
                ),
                file=True,
            ),
            _by_client_id("configurations", _CONFIGURATIONS),
        ],
    ),
    Resource(
        "license-servers",
        "License servers of configurations.",
        [
            *_standard(
                "license-servers",
                _SERVERS,
                "--sort-field host",
            ),
            Command(
                "create",
                "license_servers.create",
                "Add a license server to a configuration.",
                "lmrpc license-servers create --config-id 1 --host lic2.example.org --port 27000",
                _SERVERS,
                (
                    Param("config_id", "The configuration.", int, required=True),
                    Param("host", "Hostname or IP address.", required=True),
                    Param("port", "Port (1-65535).", int, required=True),
                ),
                file=True,
            ),
            Command(
                "update",
                "license_servers.update",
                "Change a license server.",
                "lmrpc license-servers update 2 --port 27001",
                _SERVERS,
                (
                    _id("license server"),
                    Param("config_id", "Move it to this configuration.", int),
                    Param("host", "Hostname or IP address."),
                    Param("port", "Port (1-65535).", int),
                ),
                file=True,
            ),
            Command(
                "types",
                "license_servers.types",
                "List the license server types.",
                "lmrpc license-servers types",
                output.View(output.lines),
            ),
        ],
    ),
    Resource(
        "products",
        "Products (the first part of product.feature).",
        [
            *_standard(
                "products",
                _PRODUCTS,
                "--search aba --sort-field name",
            ),
            Command(
                "create",
                "products.create",
                "Create a product.",
                "lmrpc products create --name abaqus",
                _PRODUCTS,
                (Param("name", "Unique product name.", required=True),),
                file=True,
            ),
            Command(
                "update",
                "products.update",
                "Rename a product.",
                "lmrpc products update 1 --name abaqus2024",
                _PRODUCTS,
                (_id("product"), Param("name", "New name.", required=True)),
                file=True,
            ),
        ],
    ),
    Resource(
        "features",
        "Features with their counters: total, used, reserved, booked, available.",
        [
            *_standard(
                "features",
                _FEATURES,
                "--search abaqus --sort-field booked_total --sort-descending",
            ),
            Command(
                "create",
                "features.create",
                "Add a feature to a configuration.",
                "lmrpc features create --name standard --product-id 1 --config-id 1 --reserved 2",
                _FEATURES,
                (
                    Param(
                        "name", "Feature name (unique per product within a cluster).", required=True
                    ),
                    Param("product_id", "The product.", int, required=True),
                    Param("config_id", "The configuration.", int, required=True),
                    Param("reserved", "Licenses held back from booking (default 0).", int),
                ),
                file=True,
            ),
            Command(
                "update",
                "features.update",
                "Change a feature's fields or counters.",
                "lmrpc features update 1 --total 50 --used 3",
                _FEATURES,
                (
                    _id("feature"),
                    Param("name", "Feature name."),
                    Param("product_id", "Product.", int),
                    Param("config_id", "Configuration.", int),
                    Param("reserved", "Licenses held back from booking.", int),
                    Param("total", "Licenses the license server has.", int),
                    Param("used", "Licenses in use as the license server reports.", int),
                ),
                file=True,
            ),
            _by_client_id("features", _FEATURES),
            Command(
                "bulk-update",
                "features.bulk_update",
                "Set total and used of the token's cluster's features, all or nothing "
                "(what the agent reports). The file holds a list of {product_name, feature_name, "
                "total, used} or {features: [...]}.",
                "lmrpc features bulk-update --file counters.yaml",
                output.View(output.updated),
                (
                    Param(
                        "features",
                        "Counters of one feature; repeat for several.",
                        flag="--feature",
                        parse=values.counters,
                        metavar="PRODUCT.FEATURE:TOTAL:USED",
                        required=True,
                    ),
                ),
                file=True,
                file_list="features",
            ),
        ],
    ),
    Resource(
        "jobs",
        "Slurm jobs and their bookings.",
        [
            *_standard(
                "jobs",
                _JOBS,
                "--search alice --sort-field created_at --sort-descending",
            ),
            Command(
                "create",
                "jobs.create",
                "Create a job with its bookings, all or nothing (what the slurmctld prolog does).",
                "lmrpc jobs create --slurm-job-id 1234 --username alice --lead-host node01 "
                "--booking abaqus.abaqus:4",
                _JOBS,
                (
                    Param("slurm_job_id", "Slurm's job id.", required=True),
                    Param("username", "Who runs the job.", required=True),
                    Param("lead_host", "The job's first node.", required=True),
                    Param("cluster_client_id", "The job's cluster (default: the token's)."),
                    Param(
                        "bookings",
                        "Licenses to book; repeat for several features.",
                        flag="--booking",
                        parse=values.booking,
                        metavar="PRODUCT.FEATURE:QUANTITY",
                    ),
                ),
                file=True,
            ),
            _by_client_id("jobs", _JOBS),
            Command(
                "get-by-slurm-id",
                "jobs.get_by_slurm_id",
                "Show the token's cluster's job with this Slurm job id.",
                "lmrpc jobs get-by-slurm-id 1234",
                _JOBS,
                (
                    Param(
                        "slurm_job_id",
                        "Slurm's job id.",
                        argument=True,
                        required=True,
                        metavar="SLURM_JOB_ID",
                    ),
                ),
            ),
            Command(
                "delete-by-slurm-id",
                "jobs.delete_by_slurm_id",
                "Delete the token's cluster's job "
                "with this Slurm job id and its bookings (what the epilog does).",
                "lmrpc jobs delete-by-slurm-id 1234",
                output.deleted("job"),
                (
                    Param(
                        "slurm_job_id",
                        "Slurm's job id.",
                        argument=True,
                        required=True,
                        metavar="SLURM_JOB_ID",
                    ),
                ),
            ),
        ],
    ),
    Resource(
        "bookings",
        "Licenses booked for jobs.",
        [
            *_standard(
                "bookings",
                _BOOKINGS,
                "--sort-field quantity --sort-descending --limit 10",
            ),
            Command(
                "create",
                "bookings.create",
                "Book licenses of a feature for a job (refused when not enough are free).",
                "lmrpc bookings create --job-id 1 --feature-id 2 --quantity 3",
                _BOOKINGS,
                (
                    Param("job_id", "The job.", int, required=True),
                    Param("feature_id", "The feature.", int, required=True),
                    Param("quantity", "How many licenses.", int, required=True),
                ),
                file=True,
            ),
        ],
    ),
    Resource(
        "clusters",
        "Cluster agents' health.",
        [
            Command(
                "report-status",
                "clusters.report_status",
                "Report the token's cluster as alive; "
                "it promises to report again within INTERVAL seconds.",
                "lmrpc clusters report-status --interval 60",
                _STATUSES,
                (Param("interval", "Seconds until the next report.", int, required=True),),
            ),
            Command(
                "list-statuses",
                "clusters.list_statuses",
                "List every cluster's status.",
                "lmrpc clusters list-statuses",
                _STATUSES,
            ),
            Command(
                "get-status",
                "clusters.get_status",
                "Show one cluster's status.",
                "lmrpc clusters get-status cluster-a",
                _STATUSES,
                (
                    Param(
                        "cluster_client_id",
                        "The cluster.",
                        argument=True,
                        required=True,
                        metavar="CLUSTER_CLIENT_ID",
                    ),
                ),
            ),
        ],
    ),
]

METHODS = {command.method: command for resource in RESOURCES for command in resource.commands}


def register(app: typer.Typer) -> None:
    for resource in RESOURCES:
        group = typer.Typer(help=resource.help, no_args_is_help=True)
        for command in resource.commands:
            group.command(command.verb)(command.function())
        app.add_typer(group, name=resource.name)
