"""bookings.* methods; ``bookings.create`` goes through the feature's actor."""

from typing import Any

from actors import transactions
from lmrpc.params import Id, IdParams, ListParams, Params, Positive, list_params, list_query
from lmrpc.registry import CallContext, batched, method
from storage import bookings


class BookingCreate(Params):
    job_id: Id
    feature_id: Id
    quantity: Positive


BookingList = list_params("bookings", "BookingList")


@method("bookings.create", permission="booking:create", params=BookingCreate)
async def create(ctx: CallContext, p: BookingCreate) -> dict[str, Any]:
    """Book licenses of a feature for a job, or -32010 when not enough are free."""
    request = transactions.BookingRequest(p.job_id, p.quantity, ctx.identity.check_owner)
    return await ctx.actors.book(p.feature_id, request)


@batched("bookings.create")
async def create_many(
    ctx: CallContext, ps: list[BookingCreate]
) -> list[dict[str, Any] | Exception]:
    """The bookings of a batch: one message per feature to its actor, not a task per call."""
    check_owner = ctx.identity.check_owner
    return await ctx.actors.book_many(
        [(p.feature_id, transactions.BookingRequest(p.job_id, p.quantity, check_owner)) for p in ps]
    )


@method("bookings.get", permission="booking:read", params=IdParams)
async def get(ctx: CallContext, p: IdParams) -> dict[str, Any]:
    """One booking by id."""
    return await ctx.storage.read(lambda conn: bookings.get(conn, p.id))


@method("bookings.list", permission="booking:read", params=BookingList)
async def list_(ctx: CallContext, p: ListParams) -> list[dict[str, Any]]:
    """Bookings (not searchable; sortable by job, feature, quantity, time)."""
    return await ctx.storage.read(lambda conn: bookings.list_(conn, list_query(p)))


@method("bookings.delete", permission="booking:delete", params=IdParams)
async def delete(ctx: CallContext, p: IdParams) -> dict[str, Any]:
    """Delete a booking (own cluster or admin); its licenses are free again."""
    return await ctx.storage.write(
        lambda conn: bookings.delete_(conn, p.id, ctx.identity.check_owner)
    )
