"""Search, sort and paging for list queries, shared by every resource."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, func, or_


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What a caller asked a list for (API.md §5); validated by the RPC layer."""

    search: str | None = None
    sort_field: str | None = None
    sort_ascending: bool = True
    limit: int | None = None
    offset: int = 0


def apply(
    query: Select[tuple[object, ...]],
    spec: ListQuery,
    *,
    searchable: Sequence[ColumnElement[str]],
    sortable: Mapping[str, ColumnElement[object]],
    id_column: ColumnElement[int],
) -> Select[tuple[object, ...]]:
    """``query`` narrowed by ``spec``: OR-ed case-insensitive substring terms, one sort
    column with ``id`` as the tie-breaker (stable pages), then limit and offset."""
    terms = spec.search.split() if spec.search else []
    if terms and searchable:
        query = query.where(
            or_(
                *(
                    func.lower(column).contains(term.lower(), autoescape=True)
                    for term in terms
                    for column in searchable
                )
            )
        )
    columns = ([sortable[spec.sort_field]] if spec.sort_field else []) + [id_column]
    query = query.order_by(*(c.asc() if spec.sort_ascending else c.desc() for c in columns))
    if spec.limit is not None:
        query = query.limit(spec.limit)
    if spec.offset:
        query = query.offset(spec.offset)
    return query
