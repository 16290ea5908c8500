"""What the method registry cannot say about a command: an example per method, the compact
forms of nested entries (``HOST:PORT``) and of timestamps (``24h`` ago), a sentence per
param name, defaults and option spellings that read better on a command line, and the
table that shows each kind of result.

Keyed by method, item model, JSON Schema format, param or result object name, never
restating a method's params: lmrpc.cli.commands derives those from the params models.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lmrpc.cli import output, usage, values


@dataclass(frozen=True)
class Shape:
    """The compact command-line form of a value: one entry of a nested list, or a param of
    a JSON Schema format."""

    form: str  # the metavar, e.g. HOST:PORT
    parse: Callable[[str], Any]
    help: str


def _child(what: str, form: str, parse: values.Parse) -> Shape:
    """An entry of a list that configurations.update replaces: keep, change or add one."""
    return Shape(
        f"[ID=]{form}",
        values.child(parse),
        f"{what}: ID keeps it, ID={form} changes it, {form} adds one; those not listed are "
        "deleted. Repeat for several.",
    )


# By the item model's name (its JSON Schema title).
SHAPES: dict[str, Shape] = {
    "ServerNew": Shape("HOST:PORT", values.host_port, "A license server; repeat for several."),
    "FeatureNew": Shape(
        "NAME:PRODUCT_ID[:RESERVED]",
        values.feature,
        "A feature (product id, licenses held back); repeat for several.",
    ),
    "ServerEntry": _child("A license server", "HOST:PORT", values.host_port),
    "FeatureEntry": _child("A feature", "NAME:PRODUCT_ID[:RESERVED]", values.feature),
    "BookingWanted": Shape(
        "PRODUCT.FEATURE:QUANTITY",
        values.booking,
        "Licenses to book of one feature; repeat for several features.",
    ),
    "Counters": Shape(
        "PRODUCT.FEATURE:TOTAL:USED",
        values.counters,
        "Total and used licenses of one feature; repeat for several.",
    ),
}
# A nested entry without a compact form is given as JSON.
JSON_ENTRY = Shape("JSON", values.json_entry, "One entry as JSON; repeat for several.")

# By the param's JSON Schema format.
FORMATS: dict[str, Shape] = {
    "date-time": Shape("TIME", values.moment, "now, an age (90m, 24h, 7d, 2w) or RFC 3339 UTC"),
}

# The verbs whose params may also come from --file (JSON or YAML).
FILE_VERBS = ("create", "update", "bulk_update")

# By param name, or method and param name where a method gives it its own sense: what the
# param means ({singular}: the resource, e.g. "license server"; {searchable}: the fields a
# search looks at). Limits, defaults and "required" come from the model.
MEANINGS: dict[str, str] = {
    "id": "Id of the {singular}.",
    "name": "Name of the {singular}.",
    "cluster_client_id": "The cluster's client id (its token's azp).",
    "type": "License server type.",
    "grace_time": "Grace time in seconds.",
    "config_id": "The configuration.",
    "product_id": "The product.",
    "host": "Hostname or IP address.",
    "port": "Port.",
    "reserved": "Licenses held back from booking.",
    "total": "Licenses the license server has.",
    "used": "Licenses in use as the license server reports.",
    "slurm_job_id": "Slurm's job id.",
    "username": "Who runs the job.",
    "lead_host": "The job's first node.",
    "job_id": "The job.",
    "feature_id": "The feature.",
    "quantity": "How many licenses.",
    "interval": "Seconds until the next report.",
    "search": "Case-insensitive substring of {searchable}; several words match any.",
    "sort_field": "Sort by this field, id when not given.",
    "sort_ascending": "Sort order.",
    "limit": "At most this many rows, all when not given.",
    "offset": "Skip this many rows first.",
    "jobs.create.cluster_client_id": "The job's cluster, the token's when not given.",
    "since": "Start.",
    "until": "End (exclusive).",
    "step": "Seconds per point, chosen by the server when not given.",
    "usage.refusals.step": "Seconds per row, a multiple of 3600; 3600 when not given.",
    "usage.history.feature_id": "The feature (or --product-feature).",
    "product_feature": "PRODUCT.FEATURE of the token's cluster, instead of --feature-id.",
    "usage.by_user.cluster_client_id": "Only this cluster.",
    "usage.refusals.feature_id": "Only this feature.",
}

# By param name, or method and param name: a value the command sends when the option is
# not given (the server requires the param, but a person would give the same each time).
DEFAULTS: dict[str, str] = {
    "until": "now",
    "usage.history.since": "24h",
    "usage.refusals.since": "7d",
}


def _by_param(table: dict[str, str], method: str, param: str) -> str | None:
    return table.get(f"{method}.{param}") or table.get(param)


def meaning(method: str, param: str) -> str:
    return _by_param(MEANINGS, method, param) or ""


def default(method: str, param: str) -> str | None:
    return _by_param(DEFAULTS, method, param)


# By param name: a boolean's two spellings, where ``--x/--no-x`` reads badly.
FLAGS: dict[str, str] = {"sort_ascending": "--sort-ascending/--sort-descending"}

# By method: the arguments of an example for --help (a test runs each through its command).
EXAMPLES: dict[str, str] = {
    "configurations.list": "--search cluster-a",
    "configurations.get": "1",
    "configurations.create": "--name abaqus --cluster-client-id cluster-a --type flexlm "
    "--license-server lic1.example.org:27000 --feature abaqus:1:2",
    "configurations.update": "1 --grace-time 120 --license-server 1 "
    "--license-server lic2.example.org:27000",
    "configurations.delete": "1",
    "configurations.by_client_id": "",
    "license_servers.list": "--sort-field host",
    "license_servers.get": "1",
    "license_servers.create": "--config-id 1 --host lic2.example.org --port 27000",
    "license_servers.update": "2 --port 27001",
    "license_servers.delete": "1",
    "license_servers.types": "",
    "products.list": "--search aba --sort-field name",
    "products.get": "1",
    "products.create": "--name abaqus",
    "products.update": "1 --name abaqus2024",
    "products.delete": "1",
    "features.list": "--search abaqus --sort-field booked_total --sort-descending",
    "features.get": "1",
    "features.create": "--name standard --product-id 1 --config-id 1 --reserved 2",
    "features.update": "1 --total 50 --used 3",
    "features.delete": "1",
    "features.by_client_id": "",
    "features.bulk_update": "--file counters.yaml",
    "features.checkouts": "3",
    "jobs.list": "--search alice --sort-field created_at --sort-descending",
    "jobs.get": "1",
    "jobs.create": "--slurm-job-id 1234 --username alice --lead-host node01 "
    "--booking abaqus.abaqus:4",
    "jobs.delete": "1",
    "jobs.by_client_id": "",
    "jobs.get_by_slurm_id": "1234",
    "jobs.delete_by_slurm_id": "1234",
    "bookings.list": "--sort-field quantity --sort-descending --limit 10",
    "bookings.get": "1",
    "bookings.create": "--job-id 1 --feature-id 2 --quantity 3",
    "bookings.delete": "1",
    "clusters.report_status": "--interval 60",
    "clusters.list_statuses": "",
    "clusters.get_status": "cluster-a",
    "usage.history": "--feature-id 3 --since 7d --step 3600",
    "usage.refusals": "--since 30d --step 86400",
    "usage.by_user": "--cluster-client-id cluster-a",
}

# By command group: methods of other resources it offers too.
ALSO: dict[str, tuple[str, ...]] = {"usage": ("features.checkouts",)}

# By the result's object (its OpenRPC schema name); a list shows its items' table.
VIEWS: dict[str, output.View] = {
    "Configuration": output.View(output.configurations),
    "LicenseServer": output.View(output.license_servers),
    "Product": output.View(output.products),
    "Feature": output.View(output.features),
    "Job": output.View(output.jobs, feature_names=True),
    "Booking": output.View(output.bookings, feature_names=True),
    "ClusterStatus": output.View(output.statuses),
    "Updated": output.View(output.updated),
    "Checkout": output.View(usage.checkouts),
    "UsagePoint": output.View(usage.history, csv=True),
    "Refusals": output.View(usage.refusals, csv=True),
    "UserUsage": output.View(usage.by_user),
}
