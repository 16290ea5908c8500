"""A set of rows bound to one statement as a few parameters, whatever their number.

PostgreSQL gets one array per column, unnested; SQLite one JSON text of the rows, read by
``json_each``. The statement's text is the same for 1 row or 1,000, so it is parsed,
prepared and planned once, and SQLAlchemy processes a few parameters instead of one set
per row (row by row, that processing was most of a group commit's storage time, measured).
Statements join the set like a table: ``set.statements(build)`` builds one per dialect,
``set.table(dialect)`` is the table for a statement of one dialect (writes that SQLite
takes faster as the driver's executemany of plain tuples use the set on PostgreSQL only).

Lookups by a set of keys select, for each key, a correlated subquery on a unique index.
PostgreSQL keeps a generic plan for a statement psycopg has prepared; one made while a
table was small and had no statistics answered ``IN (…)`` by walking the table (or all of a
cluster's rows) and kept doing so as it grew: 2 ms a job start at 8,000 jobs, measured. A
subquery per key can only be planned as an index lookup.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, bindparam, cast, func, select, type_coerce
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.types import TypeEngine

S = TypeVar("S")


@dataclass(frozen=True)
class RowSet:
    name: str
    columns: tuple[tuple[str, TypeEngine[Any]], ...]
    ordinality: str | None = None  # a column of each row's position, to keep their order

    def table(self, dialect: str) -> FromClause:
        """The set as a table in statements of ``dialect``."""
        names = [column for column, _ in self.columns]
        if dialect == "postgresql":
            arrays = (
                cast(bindparam(f"{self.name}_{column}"), ARRAY(type_))
                for column, type_ in self.columns
            )
            return (
                func.unnest(*arrays)
                .table_valued(*names, with_ordinality=self.ordinality)
                .render_derived(name=self.name)
            )
        rows = func.json_each(bindparam(self.name)).table_valued("value", "key")
        fields = [
            type_coerce(func.json_extract(rows.c.value, f"$[{i}]"), type_).label(column)
            for i, (column, type_) in enumerate(self.columns)
        ]
        if self.ordinality is not None:
            fields.append(rows.c.key.label(self.ordinality))
        return select(*fields).subquery(self.name)

    def statements(self, build: Callable[[FromClause], S]) -> dict[str, S]:
        """``build``'s statement for each dialect, given the set as a table."""
        return {dialect: build(self.table(dialect)) for dialect in ("postgresql", "sqlite")}

    def params(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
        """The parameters that bind ``rows`` (tuples in the order of ``columns``)."""
        if conn.dialect.name == "postgresql":
            return {
                f"{self.name}_{column}": [row[i] for row in rows]
                for i, (column, _) in enumerate(self.columns)
            }
        return {self.name: orjson.dumps(rows).decode()}
