"""Products: a name shared by the features of every cluster."""

from typing import Any

from sqlalchemy import Connection, delete, exists, insert, select, update

from storage.errors import Conflict
from storage.list_fields import ListQuery
from storage.listing import apply
from storage.rows import require, unique
from storage.schema import features, products


def create(conn: Connection, name: str) -> dict[str, Any]:
    with unique("a product with this name exists", name=name):
        id_ = conn.execute(insert(products).values(name=name)).inserted_primary_key[0]  # type: ignore[index]
    return {"id": id_, "name": name}


def get(conn: Connection, id_: int) -> dict[str, Any]:
    return require(conn, products, id_, "product")


def list_(conn: Connection, spec: ListQuery) -> list[dict[str, Any]]:
    query = apply(select(products), spec, "products")
    return [dict(row) for row in conn.execute(query).mappings()]


def update_(conn: Connection, id_: int, name: str) -> dict[str, Any]:
    require(conn, products, id_, "product")
    with unique("a product with this name exists", name=name):
        conn.execute(update(products).where(products.c.id == id_).values(name=name))
    return {"id": id_, "name": name}


def delete_(conn: Connection, id_: int) -> dict[str, Any]:
    require(conn, products, id_, "product")
    if conn.execute(select(exists().where(features.c.product_id == id_))).scalar():
        raise Conflict("the product still has features", product_id=id_)
    conn.execute(delete(products).where(products.c.id == id_))
    return {"deleted": id_}
