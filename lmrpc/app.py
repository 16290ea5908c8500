"""The HTTP face: a Quart-Trio app serving ``GET /metrics``, ``GET /openrpc.json`` and the
dashboard, with ``POST /rpc`` and ``GET /healthz`` answered in front of it
(:mod:`lmrpc.rpc_route`, :mod:`lmrpc.health_route`)."""

import gc
import logging
from typing import Any

import trio
from quart import Response, request
from quart_trio import QuartTrio

from lmrpc import openrpc
from lmrpc.auth import TokenVerifier, Unauthenticated, key_store
from lmrpc.health_route import HealthRoute
from lmrpc.identity import Identity
from lmrpc.metrics import CONTENT_TYPE, ServiceMetrics, render
from lmrpc.request_body import RequestBodyGuard
from lmrpc.rpc_route import MISSING_TOKEN, RpcRoute
from lmrpc.settings import Settings
from lmrpc.tenants import Tenant, Tenants
from lmrpc.ui.routes import register_ui
from storage.errors import StorageUnavailable

log = logging.getLogger("lmrpc.app")


class Service:
    """What lives as long as the server: tenants (storage and actors), token verifier."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = key_store(settings)
        self.verifier = TokenVerifier(settings, self.keys)
        self._key_refresh = trio.CancelScope()
        self.metrics = ServiceMetrics(per_tenant=settings.multi_tenancy)
        self._tenants: Tenants | None = None

    async def start(self, nursery: trio.Nursery) -> None:
        self._tenants = Tenants(
            self.settings.database,
            nursery,
            db_timeout=self.settings.db_timeout,
            usage_resolution=self.settings.usage_resolution,
        )
        await self._tenants.start()
        nursery.start_soon(self._keep_keys_fresh)
        settle_collector()

    async def _keep_keys_fresh(self) -> None:
        with self._key_refresh:
            await self.keys.keep_fresh()

    async def stop(self) -> None:
        self._key_refresh.cancel()
        if self._tenants is not None:
            await self._tenants.close()

    @property
    def tenants(self) -> Tenants:
        assert self._tenants is not None
        return self._tenants

    @property
    def default(self) -> Tenant:
        assert self.tenants.default is not None
        return self.tenants.default

    async def tenant_of(self, identity: Identity) -> Tenant:
        """The caller's tenant: its organization's with multi-tenancy, else the only one."""
        if not self.settings.multi_tenancy:
            return self.default
        assert identity.organization is not None  # the verifier refuses tokens without one
        return await self.tenants.get(identity.organization)

    async def authenticate(self, header: str | None) -> Identity:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(MISSING_TOKEN)
        return await self.verifier.verify(token.strip())


# Container objects allocated (net) before a young collection; Python's default is 700.
YOUNG_COLLECTION = 10_000


def settle_collector() -> None:
    """Garbage collection tuned for a server whose calls make many short-lived objects.

    What exists once the service is up (modules, models, statements, the app: about 130,000
    objects) lives as long as the process: frozen out of the collector's reach, a full
    collection no longer walks it (≈ 0.1 s of CPU each, several a minute under load: the p99
    of single calls and 10-20 % of a batch's CPU; frozen, 2 or 3 ms). A batch of calls holds
    thousands of objects at once: at the default threshold each batch set off young
    collections that found nothing to free (≈ 5 % of its CPU)."""
    gc.collect()  # freeze no garbage
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])


def create_app(settings: Settings | None = None) -> QuartTrio:
    service = Service(settings or Settings())
    app = QuartTrio("lmrpc")
    app.config["MAX_CONTENT_LENGTH"] = service.settings.max_body_bytes
    app.config["lmrpc.service"] = service

    @app.before_serving
    async def _start() -> None:
        await service.start(app.nursery)

    @app.after_serving
    async def _stop() -> None:
        await service.stop()

    @app.get("/metrics")
    async def metrics() -> Response:
        if not service.settings.metrics_public:
            try:
                identity = await service.authenticate(request.headers.get("Authorization"))
            except Unauthenticated as denied:
                return Response(
                    denied.reason,
                    status=401,
                    headers={"WWW-Authenticate": "Bearer"},
                    content_type="text/plain",
                )
            if not identity.allows("metrics:read"):
                return Response(
                    "needs license-manager:metrics:read", status=403, content_type="text/plain"
                )
            tenants = [await service.tenant_of(identity)]
        else:
            tenants = service.tenants.all()
        try:
            text = await render(service.metrics, tenants)
        except StorageUnavailable:
            return Response("storage unavailable", status=503, content_type="text/plain")
        return Response(text, content_type=CONTENT_TYPE)

    @app.get("/openrpc.json")
    async def openrpc_document() -> dict[str, Any]:
        return openrpc.document()

    register_ui(app, service.settings)
    app.asgi_app = RequestBodyGuard(  # type: ignore[method-assign, assignment]
        HealthRoute(service, RpcRoute(service, app.asgi_app)),
        service.settings.max_body_bytes,
        service.settings.body_timeout,
    )
    return app
