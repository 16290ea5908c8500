"""license_servers.* methods; a configuration always keeps at least one server."""

from typing import Any

from lmrpc.methods.configurations import SERVER_TYPES
from lmrpc.params import (
    Host,
    Id,
    IdParams,
    ListParams,
    NoParams,
    Params,
    Port,
    UpdateParams,
    list_params,
    list_query,
)
from lmrpc.registry import CallContext, method
from storage import license_servers


class ServerCreate(Params):
    config_id: Id
    host: Host
    port: Port


class ServerUpdate(UpdateParams):
    config_id: Id | None = None
    host: Host | None = None
    port: Port | None = None


ServerList = list_params("license_servers", "ServerList")


@method("license_servers.create", permission="license-server:create", params=ServerCreate)
async def create(ctx: CallContext, p: ServerCreate) -> dict[str, Any]:
    """Add a license server to a configuration."""
    return await ctx.storage.write(
        lambda conn: license_servers.create(conn, config_id=p.config_id, host=p.host, port=p.port)
    )


@method("license_servers.get", permission="license-server:read", params=IdParams)
async def get(ctx: CallContext, p: IdParams) -> dict[str, Any]:
    """One license server by id."""
    return await ctx.storage.read(lambda conn: license_servers.get(conn, p.id))


@method("license_servers.list", permission="license-server:read", params=ServerList)
async def list_(ctx: CallContext, p: ListParams) -> list[dict[str, Any]]:
    """License servers, searchable by host."""
    return await ctx.storage.read(lambda conn: license_servers.list_(conn, list_query(p)))


@method("license_servers.update", permission="license-server:update", params=ServerUpdate)
async def update(ctx: CallContext, p: ServerUpdate) -> dict[str, Any]:
    """Change host, port or configuration (moving a configuration's last server is -32009)."""
    changes = p.changes()
    return await ctx.storage.write(lambda conn: license_servers.update_(conn, p.id, changes))


@method("license_servers.delete", permission="license-server:delete", params=IdParams)
async def delete(ctx: CallContext, p: IdParams) -> dict[str, Any]:
    """Delete a license server, unless it is its configuration's last one (-32009)."""
    return await ctx.storage.write(lambda conn: license_servers.delete_(conn, p.id))


@method("license_servers.types", permission="license-server:read", params=NoParams)
async def types(ctx: CallContext, p: NoParams) -> list[str]:
    """The license server types a configuration may have."""
    return list(SERVER_TYPES)
