"""features.* methods; counters change here or by the agent's bulk_update (the feature
actors keep no counters: each admission reads the feature's row under lock)."""

from typing import TYPE_CHECKING, Annotated, Any, NotRequired

from pydantic import ConfigDict, Field, model_validator, with_config
from typing_extensions import TypedDict

from actors.usage import seconds
from lmrpc.params import (
    CheckedName,
    Count,
    Id,
    IdParams,
    LicenseName,
    ListParams,
    NoParams,
    Params,
    Positive,
    UpdateParams,
    list_params,
    list_query,
)
from lmrpc.registry import CallContext, method
from storage import checkouts, features, history
from storage.list_fields import ListQuery

if TYPE_CHECKING:
    from sqlalchemy import Connection

MAX_BULK = 10_000


class FeatureCreate(Params):
    name: LicenseName
    product_id: Id
    config_id: Id
    reserved: Count = 0


class FeatureUpdate(UpdateParams):
    name: LicenseName | None = None
    product_id: Id | None = None
    config_id: Id | None = None
    reserved: Count | None = None
    total: Count | None = None
    used: Count | None = None


FeatureList = list_params("features", "FeatureList")


# The entries of a report, and their checkouts, are TypedDicts, not Params models: a
# report's 10,000 entries are checked in one pass of pydantic's core, without a model
# instance and a Python validator call per field (which were most of a report's params
# cost). Comments, not docstrings: a docstring would become their OpenRPC description.
@with_config(ConfigDict(extra="forbid", strict=True))
class CheckoutEntry(TypedDict):
    username: CheckedName
    lead_host: CheckedName
    quantity: Positive


@with_config(ConfigDict(extra="forbid", strict=True))
class Counters(TypedDict):
    product_name: CheckedName
    feature_name: CheckedName
    total: Count
    used: Count
    # The license server's checkouts; absent or null: the stored set stays, []: it is cleared.
    # (The schema's default says so, as it did when this was a model field.)
    checkouts: NotRequired[
        Annotated[
            Annotated[list[CheckoutEntry], Field(max_length=MAX_BULK)] | None,
            Field(json_schema_extra={"default": None}),
        ]
    ]


class BulkUpdate(Params):
    features: Annotated[list[Counters], Field(max_length=MAX_BULK)]

    @model_validator(mode="after")
    def _each_once(self) -> "BulkUpdate":
        pairs = {(entry["product_name"], entry["feature_name"]) for entry in self.features}
        if len(pairs) != len(self.features):
            raise ValueError("each product_name and feature_name pair may be listed once")
        return self


@method("features.create", permission="feature:create", params=FeatureCreate)
async def create(ctx: CallContext, p: FeatureCreate) -> dict[str, Any]:
    """Create a feature in a configuration; product.feature is unique within a cluster."""
    return await ctx.storage.write(
        lambda conn: features.create(
            conn, name=p.name, product_id=p.product_id, config_id=p.config_id, reserved=p.reserved
        )
    )


@method("features.get", permission="feature:read", params=IdParams)
async def get(ctx: CallContext, p: IdParams) -> dict[str, Any]:
    """One feature by id, with its counters."""
    return await ctx.storage.read(lambda conn: features.get(conn, p.id))


@method("features.list", permission="feature:read", params=FeatureList)
async def list_(ctx: CallContext, p: ListParams) -> list[dict[str, Any]]:
    """Features, searchable by name and product name."""
    return await ctx.storage.read(lambda conn: features.list_(conn, list_query(p)))


@method("features.update", permission="feature:update", params=FeatureUpdate)
async def update(ctx: CallContext, p: FeatureUpdate) -> dict[str, Any]:
    """Change a feature's fields or counters (never its bookings)."""
    changes = p.changes()
    return await ctx.storage.write(lambda conn: features.update_(conn, p.id, changes))


@method("features.delete", permission="feature:delete", params=IdParams)
async def delete(ctx: CallContext, p: IdParams) -> dict[str, Any]:
    """Delete a feature and its bookings."""
    return await ctx.storage.write(lambda conn: features.delete_(conn, p.id))


@method("features.by_client_id", permission="feature:read", cluster=True)
async def by_client_id(ctx: CallContext, p: NoParams) -> list[dict[str, Any]]:
    """The features of the caller's cluster."""
    return await ctx.storage.read(lambda conn: features.list_(conn, ListQuery(), ctx.cluster))


@method("features.bulk_update", permission="feature:report", params=BulkUpdate, cluster=True)
async def bulk_update(ctx: CallContext, p: BulkUpdate) -> dict[str, int]:
    """Set total and used of the caller's cluster's features, all or nothing (the agent).

    ``updated`` counts the features named (all now hold the reported counters), whether or
    not their values changed; only changed rows are written.
    The same transaction samples every named feature into the usage history and replaces
    the checkouts of the entries that carry them.
    """
    entries = [(e["product_name"], e["feature_name"], e["total"], e["used"]) for e in p.features]
    given = {
        (e["product_name"], e["feature_name"]): [
            (c["username"], c["lead_host"], c["quantity"]) for c in sets
        ]
        for e in p.features
        if (sets := e.get("checkouts")) is not None
    }
    moment = ctx.actors.clock()
    resolution = ctx.actors.sampler.resolution

    def report(conn: "Connection") -> dict[str, int]:
        reported = features.bulk_update(conn, ctx.cluster, entries)
        history.record(conn, resolution, seconds(moment), reported.counters)
        checkouts.replace(conn, {reported.ids[key]: sets for key, sets in given.items()}, moment)
        return {"updated": len(entries)}

    return await ctx.storage.write(report)


class FeatureRef(Params):
    feature_id: Id


@method("features.checkouts", permission="feature:read", params=FeatureRef)
async def checkouts_of(ctx: CallContext, p: FeatureRef) -> list[dict[str, Any]]:
    """Who holds the feature's licenses, as its cluster's agent last reported."""
    return await ctx.storage.read(lambda conn: checkouts.of_feature(conn, p.feature_id))
