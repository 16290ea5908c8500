"""Search, sort and paging for list queries, shared by every resource.

``LIST_FIELDS`` is the one declaration of what each list may be searched and sorted by
(API.md §5): the params models, the queries here and the CLI's choices all derive from it,
so a field cannot be advertised in one place and missing in another.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Select, func, or_


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


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What a caller asked a list for (API.md §5); validated by the RPC layer."""

    search: str | None = None
    sort_field: str | None = None
    sort_ascending: bool = True
    limit: int | None = None
    offset: int = 0


def apply(
    query: Select[tuple[object, ...]], spec: ListQuery, resource: str
) -> Select[tuple[object, ...]]:
    """``query`` narrowed by ``spec``: OR-ed case-insensitive substring terms over the
    resource's searchable columns, one sort column with ``id`` as the tie-breaker (stable
    pages), then limit and offset. Columns are looked up by name among ``query``'s own."""
    fields = LIST_FIELDS[resource]
    columns = query.selected_columns
    terms = spec.search.split() if spec.search else []
    if terms and fields.searchable:
        query = query.where(
            or_(
                *(
                    func.lower(columns[name]).contains(term.lower(), autoescape=True)
                    for term in terms
                    for name in fields.searchable
                )
            )
        )
    order = [columns[spec.sort_field]] if spec.sort_field else []
    order.append(columns["id"])
    query = query.order_by(*(c.asc() if spec.sort_ascending else c.desc() for c in order))
    if spec.limit is not None:
        query = query.limit(spec.limit)
    if spec.offset:
        query = query.offset(spec.offset)
    return query
