"""Multi-tenancy (``LMRPC_MULTI_TENANCY=1``): every organization gets its own database —
a schema of its own in PostgreSQL, a file of its own beside the embedded SQLite database —
and its own actors. No query can reach another tenant's rows, because no connection of a
tenant can name them (see docs/tenancy.md for the why)."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import trio
from sqlalchemy.engine import make_url

from actors.supervisor import Supervisor
from storage import migrate
from storage.engine import is_sqlite
from storage.errors import StorageUnavailable
from storage.facade import Storage

TENANT_THREADS = 2  # PostgreSQL storage threads per tenant


@dataclass(frozen=True, slots=True)
class Tenant:
    organization: str | None
    storage: Storage
    actors: Supervisor


def _slug(organization: str) -> str:
    """A name safe as a schema or file name, unique per organization."""
    readable = re.sub(r"[^a-z0-9]+", "_", organization.lower()).strip("_")[:40]
    digest = hashlib.sha256(organization.encode()).hexdigest()[:12]
    return f"tenant_{readable}_{digest}"


def location(url: str, organization: str) -> tuple[str, str | None]:
    """(database URL, PostgreSQL schema) of an organization's data."""
    if is_sqlite(url):
        main = Path(make_url(url).database or "lmrpc.sqlite3")
        return f"sqlite:///{main.parent / 'tenants' / (_slug(organization) + '.sqlite3')}", None
    return url, _slug(organization)


class Tenants:
    """The default tenant, and the organizations' tenants opened on first use."""

    def __init__(
        self, url: str, nursery: trio.Nursery, *, db_timeout: float, usage_resolution: int = 60
    ) -> None:
        self._url = url
        self._db_timeout = db_timeout
        self._usage_resolution = usage_resolution
        self._nursery = nursery
        self._open: dict[str, Tenant] = {}
        self._lock = trio.Lock()
        self.default: Tenant | None = None

    async def start(self) -> None:
        self.default = await self._start(None, self._url, None)

    async def get(self, organization: str) -> Tenant:
        tenant = self._open.get(organization)
        if tenant is not None:
            return tenant
        async with self._lock:
            if organization not in self._open:
                url, schema = location(self._url, organization)
                try:
                    await trio.to_thread.run_sync(migrate.upgrade, url, schema)
                except Exception as error:  # the database is down or refuses the schema
                    raise StorageUnavailable(f"cannot open the tenant's storage: {error}") from None
                self._open[organization] = await self._start(organization, url, schema)
        return self._open[organization]

    async def _start(self, organization: str | None, url: str, schema: str | None) -> Tenant:
        threads = TENANT_THREADS if organization is not None else 4
        storage = Storage(url, threads=threads, schema=schema, timeout=self._db_timeout)
        actors = Supervisor(storage, usage_resolution=self._usage_resolution)
        await self._nursery.start(actors.run)
        return Tenant(organization, storage, actors)

    def all(self) -> list[Tenant]:
        return ([self.default] if self.default else []) + list(self._open.values())

    async def close(self) -> None:
        for tenant in self.all():
            await tenant.actors.close()
            await tenant.storage.close()
