"""A small OpenID Connect issuer for tests, run as its own process on loopback.

It serves what lmrpc needs from Keycloak or Auth0, over real HTTP:

- ``GET /.well-known/openid-configuration``: discovery (``issuer``, ``jwks_uri``,
  ``token_endpoint``);
- ``GET /jwks``: the public keys of the current key set;
- ``POST /token``: OAuth 2.0 client credentials (RFC 6749 §4.4; client id and secret in
  HTTP Basic or in the form) → a signed JWT access token with ``iss``, ``aud``, ``azp``,
  ``permissions``, ``exp``, ``iat``, ``nbf``;
- ``GET /authorize`` and ``POST /token`` with ``grant_type=authorization_code``: the
  Authorization Code flow with PKCE (RFC 7636, S256 only) for a browser's public client;
  the user approves at once, and the token answer allows any origin (CORS) as Keycloak's
  web origins would.

and a few test controls (``/admin/*``): register a client, rotate keys, make discovery and
JWKS hang, set the JWKS's ``Cache-Control: max-age``, list the requests seen.
``POST /token`` also takes test-only form fields: ``claims`` and ``header`` (JSON objects
merged into the token), ``ttl``, ``kid`` (sign with that key of the set) and
``key=foreign`` (sign with a key that is never in ``/jwks``, but is served at
``/foreign/jwks`` as an attacker's ``jku`` would be).

Run: ``python -m tests.oidc_issuer --port 0`` prints ``listening <port>`` when ready.
In tests use :func:`running_issuer`.
"""

import argparse
import base64
import hashlib
import json
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from tests.server import HTTP

AUDIENCE = "lmrpc"
TOKEN_TTL_S = 300
START_TIMEOUT_S = 20
Key = RSAKey | ECKey


def new_key(kty: str) -> Key:
    kid = uuid.uuid4().hex
    if kty == "EC":
        return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256", "use": "sig"})
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"})


def algorithm_of(key: Key) -> str:
    return "ES256" if isinstance(key, ECKey) else "RS256"


@dataclass
class Client:
    secret: str
    permissions: list[str]


@dataclass
class State:
    """The issuer's keys and clients; guarded by ``lock`` (the server is threaded)."""

    issuer: str = ""
    keys: list[Key] = field(default_factory=list)
    foreign: Key = field(default_factory=lambda: new_key("EC"))
    clients: dict[str, Client] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    codes: dict[str, "PendingCode"] = field(default_factory=dict)
    stall_s: float = 0.0
    max_age: int | None = None  # Cache-Control: max-age of /jwks
    lock: threading.Lock = field(default_factory=threading.Lock)

    def jwks(self, keys: list[Key]) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in keys]}


@dataclass
class PendingCode:
    """An authorization code not yet redeemed, with what its redemption must match."""

    client_id: str
    redirect_uri: str
    challenge: str


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Handler(BaseHTTPRequestHandler):
    state: State  # set on the class by serve()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(
        self,
        status: int,
        document: Any,
        headers: dict[str, str] | None = None,
        *,
        cors: bool = False,
    ) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if cors:
            self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _record(self) -> None:
        with self.state.lock:
            self.state.requests.append(f"{self.command} {self.path}")

    def _stall(self) -> None:
        with self.state.lock:
            stall = self.state.stall_s
        if stall:
            time.sleep(stall)

    def do_GET(self) -> None:
        self._record()
        state = self.state
        if self.path == "/.well-known/openid-configuration":
            self._stall()
            self._send(
                200,
                {
                    "issuer": state.issuer,
                    "jwks_uri": state.issuer + "/jwks",
                    "token_endpoint": state.issuer + "/token",
                    "authorization_endpoint": state.issuer + "/authorize",
                    "grant_types_supported": ["client_credentials", "authorization_code"],
                    "token_endpoint_auth_methods_supported": [
                        "client_secret_basic",
                        "client_secret_post",
                    ],
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                },
            )
        elif self.path.startswith("/authorize?"):
            self._authorize(parse_qs(urlsplit(self.path).query))
        elif self.path == "/jwks":
            self._stall()
            with state.lock:
                document = state.jwks(state.keys)
                max_age = state.max_age
            cache = {} if max_age is None else {"Cache-Control": f"public, max-age={max_age}"}
            self._send(200, document, cache)
        elif self.path == "/foreign/jwks":
            self._send(200, state.jwks([state.foreign]))
        elif self.path == "/admin/requests":
            with state.lock:
                self._send(200, list(state.requests))
        elif self.path == "/admin/foreign":
            self._send(200, state.foreign.as_dict(private=False))
        elif self.path == "/admin/keys":
            with state.lock:
                self._send(200, [key.kid for key in state.keys])
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        self._record()
        state = self.state
        if self.path == "/token":
            self._token(parse_qs(self._body().decode()))
            return
        try:
            command = json.loads(self._body() or b"{}")
        except ValueError:
            self._send(400, {"error": "invalid_request"})
            return
        with state.lock:
            if self.path == "/admin/clients":
                state.clients[command["client_id"]] = Client(
                    command["client_secret"], list(command.get("permissions", []))
                )
                self._send(200, {})
            elif self.path == "/admin/rotate":
                key = new_key(command.get("kty", "RSA"))
                state.keys = ([*state.keys] if command.get("keep_old") else []) + [key]
                self._send(200, {"kid": key.kid, "kids": [k.kid for k in state.keys]})
            elif self.path == "/admin/stall":
                state.stall_s = float(command["seconds"])
                self._send(200, {})
            elif self.path == "/admin/cache":
                state.max_age = command["max_age"]
                self._send(200, {})
            else:
                self._send(404, {"error": "not_found"})

    def _credentials(self, form: dict[str, list[str]]) -> tuple[str, str]:
        authorization = self.headers.get("Authorization", "")
        if authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = decoded.partition(":")
            return client_id, secret
        return form.get("client_id", [""])[0], form.get("client_secret", [""])[0]

    def _authorize(self, query: dict[str, list[str]]) -> None:
        """Approve at once: redirect back with a code bound to the PKCE challenge."""
        field_of = {name: values[0] for name, values in query.items()}
        with self.state.lock:
            known = field_of.get("client_id") in self.state.clients
        if not known or field_of.get("code_challenge_method") != "S256":
            self._send(400, {"error": "invalid_request"})
            return
        code = secrets.token_urlsafe(16)
        with self.state.lock:
            self.state.codes[code] = PendingCode(
                field_of["client_id"], field_of["redirect_uri"], field_of["code_challenge"]
            )
        self.send_response(302)
        location = urlencode({"code": code, "state": field_of.get("state", "")})
        self.send_header("Location", f"{field_of['redirect_uri']}?{location}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _redeem_code(self, form: dict[str, list[str]]) -> str | None:
        """The client id an authorization code was issued to, if the PKCE verifier fits."""
        field_of = {name: values[0] for name, values in form.items()}
        with self.state.lock:
            pending = self.state.codes.pop(field_of.get("code", ""), None)
        if (
            pending is None
            or pending.client_id != field_of.get("client_id")
            or pending.redirect_uri != field_of.get("redirect_uri")
            or pending.challenge != s256(field_of.get("code_verifier", ""))
        ):
            return None
        return pending.client_id

    def _token(self, form: dict[str, list[str]]) -> None:
        state = self.state
        grant = form.get("grant_type", [""])[0]
        if grant == "authorization_code":
            client_id = self._redeem_code(form)
            if client_id is None:
                self._send(400, {"error": "invalid_grant"}, cors=True)
                return
            with state.lock:
                client = state.clients[client_id]
                key = state.keys[-1]
            self._issue(client_id, client, key, form, cors=True)
            return
        if grant != "client_credentials":
            self._send(400, {"error": "unsupported_grant_type"})
            return
        client_id, secret = self._credentials(form)
        with state.lock:
            registered = state.clients.get(client_id)
            if registered is None or not secrets.compare_digest(registered.secret, secret):
                self._send(401, {"error": "invalid_client"})
                return
            wanted = form.get("kid", [""])[0]
            if form.get("key", [""])[0] == "foreign":
                key = state.foreign
            elif wanted:
                key = next(k for k in state.keys if k.kid == wanted)
            else:
                key = state.keys[-1]
        self._issue(client_id, registered, key, form)

    def _issue(
        self,
        client_id: str,
        client: Client,
        key: Key,
        form: dict[str, list[str]],
        *,
        cors: bool = False,
    ) -> None:
        state = self.state
        now = int(time.time())
        ttl = int(form.get("ttl", [str(TOKEN_TTL_S)])[0])
        claims: dict[str, Any] = {
            "iss": state.issuer,
            "sub": f"{client_id}@clients",
            "aud": form.get("audience", [AUDIENCE])[0],
            "azp": client_id,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "permissions": client.permissions,
        }
        claims.update(json.loads(form.get("claims", ["{}"])[0]))
        header: dict[str, Any] = {"alg": algorithm_of(key), "typ": "at+jwt", "kid": key.kid}
        header.update(json.loads(form.get("header", ["{}"])[0]))
        claims = {name: value for name, value in claims.items() if value is not None}
        token = jwt.encode(header, claims, key, algorithms=[header["alg"]])
        self._send(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": ttl,
                "scope": " ".join(client.permissions),
            },
            cors=cors,
        )


def serve(port: int, kinds: list[str]) -> None:
    state = State(keys=[new_key(kind) for kind in kinds])
    Handler.state = state
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    state.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


@dataclass
class Issuer:
    """A running issuer process and the calls the tests make on it."""

    url: str
    port: int
    process: subprocess.Popen[str]

    def _post(self, path: str, document: dict[str, Any]) -> Any:
        response = HTTP.post(self.url + path, json=document, timeout=10)
        response.raise_for_status()
        return response.json()

    def add_client(self, client_id: str, secret: str, permissions: list[str]) -> None:
        self._post(
            "/admin/clients",
            {"client_id": client_id, "client_secret": secret, "permissions": permissions},
        )

    def rotate(self, *, kty: str = "RSA", keep_old: bool = False) -> str:
        """A new signing key (the one tokens are signed with from now on); its kid."""
        kid: str = self._post("/admin/rotate", {"kty": kty, "keep_old": keep_old})["kid"]
        return kid

    def kids(self) -> list[str]:
        """The kids of the current key set (the last one signs by default)."""
        kids: list[str] = HTTP.get(self.url + "/admin/keys", timeout=10).json()
        return kids

    def foreign_key(self) -> dict[str, Any]:
        """The public part of the foreign key (not in /jwks; served at /foreign/jwks)."""
        key: dict[str, Any] = HTTP.get(self.url + "/admin/foreign", timeout=10).json()
        return key

    def stall(self, seconds: float) -> None:
        """Make discovery and JWKS answers wait ``seconds`` (0: answer at once)."""
        self._post("/admin/stall", {"seconds": seconds})

    def cache_for(self, max_age: int | None) -> None:
        """Serve /jwks with ``Cache-Control: max-age`` (None: without the header)."""
        self._post("/admin/cache", {"max_age": max_age})

    def requests(self) -> list[str]:
        """Every request seen so far, as ``"METHOD /path"``."""
        seen: list[str] = HTTP.get(self.url + "/admin/requests", timeout=10).json()
        return [line for line in seen if "/admin/" not in line]

    def client_credentials(
        self,
        client_id: str,
        secret: str,
        *,
        ttl: int | None = None,
        claims: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
        foreign_key: bool = False,
        kid: str | None = None,
    ) -> str:
        """An access token from the token endpoint (client credentials, HTTP Basic)."""
        form: dict[str, str] = {"grant_type": "client_credentials"}
        if ttl is not None:
            form["ttl"] = str(ttl)
        if claims:
            form["claims"] = json.dumps(claims)
        if header:
            form["header"] = json.dumps(header)
        if foreign_key:
            form["key"] = "foreign"
        if kid:
            form["kid"] = kid
        response = HTTP.post(self.url + "/token", data=form, auth=(client_id, secret), timeout=10)
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_issuer(*, port: int = 0, keys: str = "RSA") -> Issuer:
    """Start an issuer process (``keys``: comma-separated key types) and wait until it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.oidc_issuer", "--port", str(port), "--keys", keys],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until it listens (or exits)
    if not line.startswith("listening "):
        process.kill()
        process.wait()
        raise RuntimeError(f"issuer did not start: {line!r}")
    bound = int(line.split()[1])
    return Issuer(f"http://127.0.0.1:{bound}", bound, process)


@contextmanager
def running_issuer(*, port: int = 0, keys: str = "RSA") -> Iterator[Issuer]:
    issuer = start_issuer(port=port, keys=keys)
    try:
        yield issuer
    finally:
        issuer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--keys", default="RSA", help="key types of the initial set: RSA,EC")
    arguments = parser.parse_args()
    serve(arguments.port, arguments.keys.split(","))


if __name__ == "__main__":
    main()
