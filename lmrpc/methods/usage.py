"""usage.* methods: a feature's usage history, refused demand, and current checkouts per
user (docs/usage.md)."""

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, model_validator

from actors.usage import HOUR, seconds
from lmrpc.errors import NO_CLUSTER, RpcError
from lmrpc.params import Id, Name, Params, Positive
from lmrpc.registry import CallContext, method
from storage import admission, checkouts, history, refusals, rows, schema
from storage.errors import NotFound

MAX_POINTS = 10_000
# Default steps, finest first: the first one giving at most DEFAULT_POINTS points is used.
STEPS = (60, 300, 900, HOUR, 6 * HOUR, 24 * HOUR, 7 * 24 * HOUR)
DEFAULT_POINTS = 500


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string")
    return value


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    """In UTC, and within the Unix era up to 2200 (no history lies outside)."""
    value = value.astimezone(UTC)
    if not EARLIEST <= value <= LATEST:
        raise ValueError("must lie between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z")
    return value


Timestamp = Annotated[
    AwareDatetime, Field(strict=False), BeforeValidator(_text), AfterValidator(_utc)
]


class Interval(Params):
    since: Timestamp
    until: Timestamp
    step: Positive | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Interval":
        if self.until <= self.since:
            raise ValueError("until must be later than since")
        if self.step is not None and self.span / self.step > MAX_POINTS:
            raise ValueError(f"step gives more than {MAX_POINTS} points: choose a larger one")
        return self

    @property
    def span(self) -> int:
        return seconds(self.until) - seconds(self.since)


class HistoryParams(Interval):
    feature_id: Id | None = None
    product_feature: Name | None = None

    @model_validator(mode="after")
    def _one_feature(self) -> "HistoryParams":
        if (self.feature_id is None) == (self.product_feature is None):
            raise ValueError("give exactly one of feature_id and product_feature")
        return self


class RefusalParams(Interval):
    feature_id: Id | None = None

    @model_validator(mode="after")
    def _hours(self) -> "RefusalParams":
        if self.step is not None and self.step % HOUR:
            raise ValueError("step must be a multiple of 3600 (refusals are kept per hour)")
        return self


class ByUserParams(Params):
    cluster_client_id: Name | None = None


def _stamped(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unix seconds → RFC 3339 UTC."""
    return [
        {**point, "t": rows.timestamp(datetime.fromtimestamp(point["t"], UTC))} for point in points
    ]


def default_step(span: int, finest: int) -> int:
    """The finest step not below ``finest`` that gives at most DEFAULT_POINTS points."""
    for step in STEPS:
        if step >= finest and span / step <= DEFAULT_POINTS:
            return step
    return STEPS[-1]


@method("usage.history", permission="feature:read", params=HistoryParams)
async def history_of(ctx: CallContext, p: HistoryParams) -> list[dict[str, Any]]:
    """A feature's counters over time: last total, used, reserved, booked and the peak used
    per step."""
    product_feature = p.product_feature
    if product_feature is not None and ctx.identity.cluster_client_id is None:
        raise RpcError(NO_CLUSTER)  # product.feature names a feature of the caller's cluster
    tiers = ctx.actors.usage_tiers
    step = p.step or default_step(p.span, tiers[0].step)
    since, until = seconds(p.since), seconds(p.until)

    def read(conn: Any) -> list[dict[str, Any]]:
        if product_feature is None:
            assert p.feature_id is not None
            feature_id = p.feature_id
            rows.require(conn, schema.features, feature_id, "feature")
        else:
            found = admission.resolve_features(conn, ctx.cluster, [product_feature])
            if product_feature not in found:
                raise NotFound("feature", missing=[product_feature])
            feature_id = found[product_feature]
        return history.series(conn, feature_id, since, until, step, tiers)

    return _stamped(await ctx.storage.read(read))


@method("usage.refusals", permission="feature:read", params=RefusalParams)
async def refusals_of(ctx: CallContext, p: RefusalParams) -> list[dict[str, Any]]:
    """Calls refused with -32010 and the licenses they asked for, per feature and step."""
    await ctx.actors.flush_refusals()  # this process's latest counts are included
    step = p.step or HOUR
    feature_id = p.feature_id
    since, until = seconds(p.since), seconds(p.until)

    def read(conn: Any) -> list[dict[str, Any]]:
        if feature_id is not None:
            rows.require(conn, schema.features, feature_id, "feature")
        return refusals.read(conn, feature_id, since, until, step)

    return _stamped(await ctx.storage.read(read))


@method("usage.by_user", permission="feature:read", params=ByUserParams)
async def by_user(ctx: CallContext, p: ByUserParams) -> list[dict[str, Any]]:
    """Licenses checked out per user and feature, summed over the current checkouts."""
    return await ctx.storage.read(lambda conn: checkouts.by_user(conn, p.cluster_client_id))
