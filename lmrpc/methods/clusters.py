"""clusters.* methods: agents report in, anyone with status:read sees who is alive."""

from typing import Any

from lmrpc.params import Name, NoParams, Params, Positive
from lmrpc.registry import CallContext, method
from storage import clusters


class ReportStatus(Params):
    interval: Positive


class GetStatus(Params):
    cluster_client_id: Name


@method("clusters.report_status", permission="status:update", params=ReportStatus, cluster=True)
async def report_status(ctx: CallContext, p: ReportStatus) -> dict[str, Any]:
    """Record that the caller's cluster is alive and will report again within interval s."""
    return await ctx.storage.write(lambda conn: clusters.report(conn, ctx.cluster, p.interval))


@method("clusters.list_statuses", permission="status:read")
async def list_statuses(ctx: CallContext, p: NoParams) -> list[dict[str, Any]]:
    """Every cluster's status, ordered by cluster_client_id."""
    return await ctx.storage.read(clusters.list_)


@method("clusters.get_status", permission="status:read", params=GetStatus)
async def get_status(ctx: CallContext, p: GetStatus) -> dict[str, Any]:
    """One cluster's status (healthy: reported within interval plus a small tolerance)."""
    return await ctx.storage.read(lambda conn: clusters.get(conn, p.cluster_client_id))
