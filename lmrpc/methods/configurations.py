"""configurations.* methods: a cluster's license servers and features, edited as one object."""

from collections.abc import Sequence
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, model_validator

from lmrpc.params import (
    Count,
    Host,
    Id,
    IdParams,
    LicenseName,
    ListParams,
    Name,
    NoNulls,
    NoParams,
    Params,
    Port,
    Positive,
    UpdateParams,
    list_params,
    list_query,
)
from lmrpc.registry import CallContext, method
from storage import configurations
from storage.list_fields import ListQuery

ServerType = Literal["flexlm", "rlm", "lsdyna", "lmx", "olicense", "dsls"]
SERVER_TYPES: list[str] = list(get_args(ServerType))
DEFAULT_GRACE_TIME = 60
MAX_CHILDREN = 10_000


class ServerNew(Params):
    host: Host
    port: Port


class FeatureNew(Params):
    name: LicenseName
    product_id: Id
    reserved: Count = 0


class ConfigurationCreate(Params):
    name: Name
    cluster_client_id: Name
    type: ServerType
    grace_time: Positive = DEFAULT_GRACE_TIME
    license_servers: Annotated[list[ServerNew], Field(min_length=1, max_length=MAX_CHILDREN)]
    features: Annotated[list[FeatureNew], Field(max_length=MAX_CHILDREN)] = Field(
        default_factory=list
    )


class _Child(NoNulls):
    """A child entry of configurations.update: with ``id`` it changes that child (only the
    fields given), without ``id`` it is a new child and needs every required field."""

    id: Id | None = None

    def entry(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class ServerEntry(_Child):
    host: Host | None = None
    port: Port | None = None

    @model_validator(mode="after")
    def _complete_when_new(self) -> "ServerEntry":
        if self.id is None and (self.host is None or self.port is None):
            raise ValueError("a new license server (no id) needs host and port")
        return self


class FeatureEntry(_Child):
    name: LicenseName | None = None
    product_id: Id | None = None
    reserved: Count | None = None

    @model_validator(mode="after")
    def _complete_when_new(self) -> "FeatureEntry":
        if self.id is None and (self.name is None or self.product_id is None):
            raise ValueError("a new feature (no id) needs name and product_id")
        return self


def _distinct_ids(entries: Sequence[_Child] | None, what: str) -> None:
    ids = [entry.id for entry in entries or () if entry.id is not None]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{what}: each id may be listed once")


class ConfigurationUpdate(UpdateParams):
    name: Name | None = None
    cluster_client_id: Name | None = None
    type: ServerType | None = None
    grace_time: Positive | None = None
    license_servers: Annotated[list[ServerEntry], Field(max_length=MAX_CHILDREN)] | None = None
    features: Annotated[list[FeatureEntry], Field(max_length=MAX_CHILDREN)] | None = None

    @model_validator(mode="after")
    def _children_once(self) -> "ConfigurationUpdate":
        _distinct_ids(self.license_servers, "license_servers")
        _distinct_ids(self.features, "features")
        return self


ConfigurationList = list_params("configurations", "ConfigurationList")


@method("configurations.create", permission="config:create", params=ConfigurationCreate)
async def create(ctx: CallContext, p: ConfigurationCreate) -> dict[str, Any]:
    """Create a configuration with its license servers (at least one) and features."""
    return await ctx.storage.write(
        lambda conn: configurations.create(
            conn,
            name=p.name,
            cluster_client_id=p.cluster_client_id,
            type_=p.type,
            grace_time=p.grace_time,
            servers=[server.model_dump() for server in p.license_servers],
            feature_entries=[feature.model_dump() for feature in p.features],
        )
    )


@method("configurations.get", permission="config:read", params=IdParams)
async def get(ctx: CallContext, p: IdParams) -> dict[str, Any]:
    """One configuration with its features and license servers."""
    return await ctx.storage.read(lambda conn: configurations.get(conn, p.id))


@method("configurations.list", permission="config:read", params=ConfigurationList)
async def list_(ctx: CallContext, p: ListParams) -> list[dict[str, Any]]:
    """Configurations with their children, searchable by name and cluster_client_id."""
    return await ctx.storage.read(lambda conn: configurations.list_(conn, list_query(p)))


@method("configurations.update", permission="config:update", params=ConfigurationUpdate)
async def update(ctx: CallContext, p: ConfigurationUpdate) -> dict[str, Any]:
    """Change fields; a given child list replaces the children (entries with id update)."""
    changes = p.changes()
    servers = changes.pop("license_servers", None)
    features = changes.pop("features", None)
    return await ctx.storage.write(
        lambda conn: configurations.update_(
            conn,
            p.id,
            changes,
            None if servers is None else [server.entry() for server in servers],
            None if features is None else [feature.entry() for feature in features],
        )
    )


@method("configurations.delete", permission="config:delete", params=IdParams)
async def delete(ctx: CallContext, p: IdParams) -> dict[str, Any]:
    """Delete a configuration with its servers, features and their bookings."""
    return await ctx.storage.write(lambda conn: configurations.delete_(conn, p.id))


@method("configurations.by_client_id", permission="config:read", cluster=True)
async def by_client_id(ctx: CallContext, p: NoParams) -> list[dict[str, Any]]:
    """The configurations of the caller's cluster (the agent reads its servers here)."""
    return await ctx.storage.read(lambda conn: configurations.list_(conn, ListQuery(), ctx.cluster))
