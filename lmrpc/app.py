"""The HTTP face: a Quart-Trio app serving ``POST /rpc``, ``GET /healthz``, ``GET /metrics``
and ``GET /openrpc.json``."""

import logging
import uuid
from typing import Any

import trio
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import RequestEntityTooLarge

from lmrpc import jsonrpc, openrpc
from lmrpc.auth import TokenVerifier, Unauthenticated, key_store
from lmrpc.dispatch import dispatch
from lmrpc.errors import INVALID_REQUEST, STORAGE_UNAVAILABLE, UNAUTHENTICATED, RpcError
from lmrpc.identity import Identity
from lmrpc.logs import log_call
from lmrpc.metrics import CONTENT_TYPE, ServiceMetrics, render
from lmrpc.registry import CallContext
from lmrpc.settings import Settings
from lmrpc.tenants import Tenant, Tenants
from storage.errors import StorageUnavailable

log = logging.getLogger("lmrpc.app")

HEALTH_TIMEOUT_S = 3
JSON = "application/json"
MISSING_TOKEN = "missing bearer token"


def _rpc_error(status: int, error: RpcError, **headers: str) -> Response:
    body = jsonrpc.encode(jsonrpc.error(None, error))
    return Response(body, status=status, content_type=JSON, headers=headers)


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
        self._tenants = Tenants(self.settings.database, nursery, self.settings.db_timeout)
        await self._tenants.start()
        nursery.start_soon(self._keep_keys_fresh)

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

    @app.post("/rpc")
    async def rpc() -> Response:
        try:
            identity = await service.authenticate(request.headers.get("Authorization"))
        except Unauthenticated as denied:
            # RFC 6750 §3.1: no error code when the request carries no bearer token at all
            missing = denied.reason == MISSING_TOKEN
            return _rpc_error(
                401,
                RpcError(UNAUTHENTICATED, {"reason": denied.reason}),
                **{"WWW-Authenticate": "Bearer" if missing else 'Bearer error="invalid_token"'},
            )
        if request.mimetype != JSON:
            return _rpc_error(
                415, RpcError(INVALID_REQUEST, {"reason": "Content-Type must be application/json"})
            )
        try:
            body: bytes = await request.body
        except RequestEntityTooLarge:
            limit = service.settings.max_body_bytes
            # The rest of the body stays unread, so this connection cannot carry another
            # request: close it (else a keep-alive client waits forever on its next call).
            return _rpc_error(
                413,
                RpcError(INVALID_REQUEST, {"reason": f"body exceeds {limit} bytes"}),
                Connection="close",
            )
        request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:16]

        def observe(call: jsonrpc.Call, code: int | None, seconds: float) -> None:
            service.metrics.observe(call, code, seconds, identity.organization)
            log_call(request_id, identity, call, code, seconds)

        try:
            tenant = await service.tenant_of(identity)
        except StorageUnavailable:
            return _rpc_error(200, RpcError(STORAGE_UNAVAILABLE))

        def context_for(who: Identity) -> CallContext:
            return CallContext(who, tenant.storage, tenant.actors)

        answer = await dispatch(
            body,
            identity,
            context_for,
            service.settings.max_batch,
            observe,
            max_response_bytes=service.settings.max_response_bytes,
        )
        if answer is None:
            nothing = Response(b"", status=204)  # bytes: a None body is iterated with asyncio
            nothing.headers.pop("Content-Type", None)  # no body, so no media type
            return nothing
        return Response(answer, content_type=JSON, headers={"X-Request-Id": request_id})

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

    @app.get("/healthz")
    async def healthz() -> tuple[dict[str, Any], int]:
        try:
            with trio.fail_after(HEALTH_TIMEOUT_S):
                await service.default.storage.ping()
        except (StorageUnavailable, trio.TooSlowError) as error:
            return {"status": "unavailable", "reason": f"storage: {error or 'timeout'}"}, 503
        return {"status": "ok"}, 200

    return app
