"""jobs.* methods: the slurmctld prolog creates a job with its bookings, the epilog deletes it."""

from typing import Annotated, Any

from pydantic import Field

from actors import job_coordinator, transactions
from lmrpc.params import (
    IdParams,
    ListParams,
    Name,
    NoParams,
    Params,
    Positive,
    SlurmJobId,
    list_params,
    list_query,
)
from lmrpc.registry import CallContext, method
from storage import jobs
from storage.list_fields import ListQuery

ProductFeature = Annotated[str, Field(min_length=3, max_length=511, pattern=r"^[^.]+\..+$")]


class BookingWanted(Params):
    product_feature: ProductFeature
    quantity: Positive


class JobCreate(Params):
    slurm_job_id: SlurmJobId
    username: Name
    lead_host: Name
    cluster_client_id: Name | None = None
    bookings: Annotated[list[BookingWanted], Field(max_length=1000)] = Field(default_factory=list)


JobList = list_params("jobs", "JobList")


class SlurmIdParams(Params):
    slurm_job_id: SlurmJobId


@method("jobs.create", permission="job:create", params=JobCreate, cluster=True)
async def create(ctx: CallContext, p: JobCreate) -> dict[str, Any]:
    """Create a job with its bookings, all or nothing (the slurmctld prolog)."""
    cluster = p.cluster_client_id or ctx.cluster
    ctx.identity.check_owner(cluster)
    spec = transactions.JobSpec(p.slurm_job_id, cluster, p.username, p.lead_host)
    wanted = [(b.product_feature, b.quantity) for b in p.bookings]
    return await job_coordinator.admit_job(ctx.actors, spec, wanted)


@method("jobs.get", permission="job:read", params=IdParams)
async def get(ctx: CallContext, p: IdParams) -> dict[str, Any]:
    """One job with its bookings."""
    return await ctx.storage.read(lambda conn: jobs.get(conn, p.id))


@method("jobs.list", permission="job:read", params=JobList)
async def list_(ctx: CallContext, p: ListParams) -> list[dict[str, Any]]:
    """Jobs with their bookings."""
    return await ctx.storage.read(lambda conn: jobs.list_(conn, list_query(p)))


@method("jobs.by_client_id", permission="job:read", cluster=True)
async def by_client_id(ctx: CallContext, p: NoParams) -> list[dict[str, Any]]:
    """The jobs of the caller's cluster."""
    return await ctx.storage.read(lambda conn: jobs.list_(conn, ListQuery(), ctx.cluster))


@method("jobs.get_by_slurm_id", permission="job:read", params=SlurmIdParams, cluster=True)
async def get_by_slurm_id(ctx: CallContext, p: SlurmIdParams) -> dict[str, Any]:
    """The caller's cluster's job with this Slurm job id."""
    return await ctx.storage.read(
        lambda conn: jobs.get_by_slurm_id(conn, ctx.cluster, p.slurm_job_id)
    )


@method("jobs.delete", permission="job:delete", params=IdParams)
async def delete(ctx: CallContext, p: IdParams) -> dict[str, Any]:
    """Delete a job and its bookings (own cluster or admin)."""
    return await ctx.storage.write(lambda conn: jobs.delete_(conn, p.id, ctx.identity.check_owner))


@method("jobs.delete_by_slurm_id", permission="job:delete", params=SlurmIdParams, cluster=True)
async def delete_by_slurm_id(ctx: CallContext, p: SlurmIdParams) -> dict[str, Any]:
    """Delete the caller's cluster's job with this Slurm job id (the slurmctld epilog)."""
    return await ctx.storage.write(
        lambda conn: jobs.delete_by_slurm_id(conn, ctx.cluster, p.slurm_job_id)
    )
