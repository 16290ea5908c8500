"""The dashboard's HTTP routes: ``/ui/`` (static page), ``/ui/config.json`` (how to sign
in) and ``POST /ui/session`` (the embedded default's one-time code → read-only token).

The page reads data only through ``POST /rpc`` with its bearer token, like any client.
"""

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from quart import Response, redirect, request
from quart_trio import QuartTrio
from werkzeug.exceptions import RequestEntityTooLarge

from lmrpc import keys
from lmrpc.auth import FETCH_TIMEOUT_S, _get_json, check_provider_url
from lmrpc.settings import Settings
from lmrpc.ui import signin

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
MAX_SESSION_BODY = 1024
INVALID_GRANT = "sign-in link expired or already used: run `lmrpc ui` for a new one"


def _static_files() -> dict[str, tuple[bytes, str]]:
    """Every servable file, read once: only these names are served, so no path can escape."""
    files = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file() and path.suffix in CONTENT_TYPES:
            name = path.relative_to(STATIC_DIR).as_posix()
            files[name] = (path.read_bytes(), CONTENT_TYPES[path.suffix])
    return files


class Dashboard:
    """The page's sign-in configuration; OIDC endpoints come from the issuer's discovery."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._oidc: dict[str, Any] | None = None  # cached once discovery succeeded

    async def config(self) -> dict[str, Any]:
        """How the page signs in; ``mode`` is embedded, oidc or unavailable (with a reason)."""
        settings = self.settings
        if settings.embedded_auth:
            return {"mode": "embedded"}
        if not settings.ui_client_id or not settings.oidc_issuer:
            return {
                "mode": "unavailable",
                "reason": "sign-in needs LMRPC_OIDC_ISSUER and LMRPC_UI_CLIENT_ID",
            }
        if self._oidc is None:
            try:
                self._oidc = await self._discover(settings.oidc_issuer)
            except (httpx.HTTPError, ValueError) as error:
                return {"mode": "unavailable", "reason": f"identity provider: {error}"}
        return {
            "mode": "oidc",
            "client_id": settings.ui_client_id,
            "scope": settings.ui_scope,
            "audience": settings.oidc_audience,
            **self._oidc,
        }

    def content_security_policy(self) -> str:
        """``default-src 'self'``; in OIDC mode the page may also POST to the token endpoint."""
        connect = ""
        if self._oidc is not None:
            parts = urlsplit(self._oidc["token_endpoint"])
            connect = f"; connect-src 'self' {parts.scheme}://{parts.netloc}"
        return (
            "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            + connect
        )

    async def _discover(self, issuer: str) -> dict[str, str]:
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False) as client:
            document = await _get_json(client, url)
        endpoints: dict[str, str] = {}
        for name in ("authorization_endpoint", "token_endpoint"):
            value = document.get(name) if isinstance(document, dict) else None
            if not isinstance(value, str):
                raise ValueError(f"the issuer's discovery document has no {name}")
            check_provider_url(value, name)
            endpoints[name] = value
        return endpoints


def register_ui(app: QuartTrio, settings: Settings) -> None:
    """Add the dashboard's routes to ``app``."""
    dashboard = Dashboard(settings)
    files = _static_files()

    @app.after_request
    async def _security_headers(response: Response) -> Response:
        if request.path == "/ui" or request.path.startswith("/ui/"):
            response.headers["Content-Security-Policy"] = dashboard.content_security_policy()
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers.setdefault("Cache-Control", "no-cache")
        return response

    @app.get("/ui")
    async def ui_root() -> Response:
        return redirect("/ui/", 308)  # type: ignore[return-value]

    @app.get("/ui/")
    async def ui_index() -> Response:
        await dashboard.config()  # the page's CSP must already name the token endpoint
        return _static(files, "index.html")

    @app.get("/ui/<path:name>")
    async def ui_file(name: str) -> Response:
        return _static(files, name)

    @app.get("/ui/config.json")
    async def ui_config() -> Response:
        return _json(200, await dashboard.config())

    @app.post("/ui/session")
    async def ui_session() -> Response:
        if not settings.embedded_auth:
            return _json(404, {"error": "not_found", "reason": "only in the embedded default"})
        try:
            too_large = (request.content_length or 0) > MAX_SESSION_BODY
            body = b"" if too_large else await request.get_data()
        except RequestEntityTooLarge:
            too_large = True
        if too_large or len(body) > MAX_SESSION_BODY:
            # the body may be unread: this connection cannot carry another request
            reason = f"body exceeds {MAX_SESSION_BODY} bytes"
            return _json(413, {"error": "invalid_request", "reason": reason}, Connection="close")
        try:
            code = json.loads(body)["code"]
        except (ValueError, TypeError, KeyError):
            code = None
        if not isinstance(code, str):
            return _json(400, {"error": "invalid_request", "reason": 'body must be {"code": …}'})
        grant = signin.redeem(settings.data_dir, code)
        if grant is None:
            return _json(400, {"error": "invalid_grant", "reason": INVALID_GRANT})
        token = keys.mint(
            keys.load_or_create(settings.data_dir),
            permissions=signin.READ_ONLY_PERMISSIONS,
            organization=grant.organization,
            ttl=grant.session_ttl,
            subject="lmrpc-ui",
        )
        return _json(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": grant.session_ttl}
        )


def _static(files: dict[str, tuple[bytes, str]], name: str) -> Response:
    if name not in files:
        return Response("not found", status=404, content_type="text/plain; charset=utf-8")
    body, content_type = files[name]
    return Response(body, content_type=content_type)


def _json(status: int, document: dict[str, Any], **headers: str) -> Response:
    return Response(
        json.dumps(document),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store", **headers},
    )
