"""Search, sort and paging for list queries, shared by every resource, over the fields
``storage.list_fields.LIST_FIELDS`` declares."""

from sqlalchemy import Select, func, or_

from storage.list_fields import LIST_FIELDS, ListQuery


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
