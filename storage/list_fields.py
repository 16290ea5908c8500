"""``LIST_FIELDS`` is the one declaration of what each list may be searched and sorted by
(API.md §5): the params models, the queries of ``storage.listing`` and the CLI's choices all
derive from it, so a field cannot be advertised in one place and missing in another.
``ListQuery`` is what a caller asked a list for, as the RPC layer hands it to storage.

A module of its own, without SQLAlchemy, so the CLI starts without loading it.
"""

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What a caller asked a list for (API.md §5); validated by the RPC layer."""

    search: str | None = None
    sort_field: str | None = None
    sort_ascending: bool = True
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True, slots=True)
class ListFields:
    """Names of columns of a resource's list query: searched, and sortable (``id`` first)."""

    searchable: tuple[str, ...]
    sortable: tuple[str, ...]


def _fields(searchable: tuple[str, ...], sortable: tuple[str, ...]) -> ListFields:
    return ListFields(searchable, ("id", *sortable))


LIST_FIELDS: Mapping[str, ListFields] = {
    "configurations": _fields(
        ("name", "cluster_client_id"), ("name", "cluster_client_id", "type", "grace_time")
    ),
    "license_servers": _fields(("host",), ("config_id", "host", "port")),
    "products": _fields(("name",), ("name",)),
    "features": _fields(
        ("name", "product_name"),
        ("name", "product_id", "config_id", "total", "used", "reserved", "booked_total"),
    ),
    "jobs": _fields(
        ("slurm_job_id", "username", "lead_host", "cluster_client_id"),
        ("slurm_job_id", "cluster_client_id", "username", "lead_host", "created_at"),
    ),
    "bookings": _fields((), ("job_id", "feature_id", "quantity", "created_at")),
}
