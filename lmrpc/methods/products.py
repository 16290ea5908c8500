"""products.* methods."""

from typing import Any

from lmrpc.params import (
    IdParams,
    LicenseName,
    ListParams,
    Params,
    UpdateParams,
    list_params,
    list_query,
)
from lmrpc.registry import CallContext, method
from storage import products


class ProductCreate(Params):
    name: LicenseName


ProductList = list_params("products", "ProductList")


class ProductUpdate(UpdateParams):
    name: LicenseName | None = None


@method("products.create", permission="product:create", params=ProductCreate)
async def create(ctx: CallContext, p: ProductCreate) -> dict[str, Any]:
    """Create a product; its name is unique."""
    return await ctx.storage.write(lambda conn: products.create(conn, p.name))


@method("products.get", permission="product:read", params=IdParams)
async def get(ctx: CallContext, p: IdParams) -> dict[str, Any]:
    """One product by id."""
    return await ctx.storage.read(lambda conn: products.get(conn, p.id))


@method("products.list", permission="product:read", params=ProductList)
async def list_(ctx: CallContext, p: ListParams) -> list[dict[str, Any]]:
    """Products, searchable by name."""
    return await ctx.storage.read(lambda conn: products.list_(conn, list_query(p)))


@method("products.update", permission="product:update", params=ProductUpdate)
async def update(ctx: CallContext, p: ProductUpdate) -> dict[str, Any]:
    """Rename a product."""
    assert p.name is not None
    return await ctx.storage.write(lambda conn: products.update_(conn, p.id, p.name))  # type: ignore[arg-type]


@method("products.delete", permission="product:delete", params=IdParams)
async def delete(ctx: CallContext, p: IdParams) -> dict[str, Any]:
    """Delete a product that has no features (else -32009)."""
    return await ctx.storage.write(lambda conn: products.delete_(conn, p.id))
