"""The JSON-RPC client shared by the CLI and the agent: calls and batches over HTTP, with a
bearer token from the command line, the environment, or OIDC client credentials (cached
until shortly before expiry).

Failures are sorted by what the user can do about them: :class:`RpcFailure` is the
server's answer to the call (exit 1), :class:`TransportFailure` means the call never got a
proper answer: no connection, timeout, refused credentials (exit 3).
"""

import base64
import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import platformdirs

DEFAULT_URL = "http://127.0.0.1:8000"  # the server's default host and port
DEFAULT_TIMEOUT_S = 30.0
MAX_BATCH = 1000  # the server's default batch limit (LMRPC_MAX_BATCH)
# The agent imports this module and never the service's settings: the two defaults above
# are checked against Settings by tests/test_settings_table.py instead.
EXPIRY_MARGIN_S = 30  # a cached token is renewed this long before it expires
UNAUTHENTICATED = -32001
_DISCOVERY = "/.well-known/openid-configuration"
_NOTIFICATION = object()  # no id: a request nobody answers


def request(method: str, params: Any = None, id_: Any = _NOTIFICATION) -> dict[str, Any]:
    """A request object as a client sends it: without ``params`` it has none, without
    ``id_`` it is a notification (``id_=None`` is a call with a null id)."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        body["params"] = params
    if id_ is not _NOTIFICATION:
        body["id"] = id_
    return body


class RpcFailure(Exception):
    """The server answered the call with a JSON-RPC error object."""

    def __init__(self, error: Mapping[str, Any]) -> None:
        self.code: int = error.get("code", 0)
        self.message: str = error.get("message", "")
        self.data: Any = error.get("data")
        self.error = dict(error)
        super().__init__(f"{self.message} ({self.code})")


class TransportFailure(Exception):
    """No usable answer: connection refused, timeout, authentication refused, not JSON-RPC."""


class Credentials(Protocol):
    def token(self) -> str | None:
        """The bearer token to send, or None to send none."""

    def renew(self) -> str | None:
        """A fresh token after the server refused the last one; None when there is none."""


@dataclass
class StaticToken:
    """A token given with ``--token`` / ``LMRPC_TOKEN`` (or none at all)."""

    value: str | None

    def token(self) -> str | None:
        return self.value

    def renew(self) -> str | None:
        return None


class TokenCache:
    """Access tokens in files of the user's cache dir, mode 0600, one per issuer and client.

    A file another user could read or write is ignored (and replaced): the token is a
    credential, and a planted one would make us act as someone else.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or platformdirs.user_cache_path("lmrpc")

    def path(self, issuer: str, client_id: str, audience: str | None) -> Path:
        key = hashlib.sha256(f"{issuer}\n{client_id}\n{audience or ''}".encode()).hexdigest()
        return self.directory / f"token-{key[:32]}.json"

    def load(self, path: Path) -> str | None:
        """The cached token if it is still good for more than the margin."""
        try:
            info = path.stat()
            if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
                return None
            entry = json.loads(path.read_text())
            token, expires_at = entry["access_token"], float(entry["expires_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(token, str) or expires_at - time.time() <= EXPIRY_MARGIN_S:
            return None
        return token

    def store(self, path: Path, token: str, expires_at: float) -> None:
        """Write atomically (a concurrent reader sees the old or the new file, whole)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".token-")
        try:  # mkstemp creates the file with mode 0600
            with os.fdopen(descriptor, "w") as out:
                json.dump({"access_token": token, "expires_at": expires_at}, out)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def drop(self, path: Path) -> None:
        path.unlink(missing_ok=True)


@dataclass
class ClientCredentials:
    """OAuth 2.0 client credentials (RFC 6749 §4.4) at the issuer's discovered token endpoint.

    The client secret goes over HTTPS only (plain HTTP on loopback, for tests and labs).
    ``audience`` is sent when set: Auth0 needs it to pick the API the token is for.
    """

    http: httpx.Client
    issuer: str
    client_id: str
    client_secret: str
    audience: str | None
    cache: TokenCache

    @property
    def _path(self) -> Path:
        return self.cache.path(self.issuer, self.client_id, self.audience)

    def token(self) -> str | None:
        return self.cache.load(self._path) or self._fetch()

    def renew(self) -> str | None:
        self.cache.drop(self._path)
        return self._fetch()

    def _fetch(self) -> str:
        discovery = self._send("GET", self.issuer.rstrip("/") + _DISCOVERY, "OIDC discovery")
        endpoint = discovery.get("token_endpoint")
        if not isinstance(endpoint, str):
            raise TransportFailure("OIDC discovery names no token_endpoint")
        form = {"grant_type": "client_credentials"}
        if self.audience:
            form["audience"] = self.audience
        answer = self._send(
            "POST",
            endpoint,
            "the token endpoint",
            data=form,
            auth=(self.client_id, self.client_secret),
        )
        token, lifetime = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str):
            raise TransportFailure("the token endpoint returned no access_token")
        expires_at = time.time() + lifetime if isinstance(lifetime, int) else _jwt_expiry(token)
        if expires_at is not None:
            with contextlib.suppress(OSError):  # no writable cache: the token still serves
                self.cache.store(self._path, token, expires_at)
        return token

    def _send(self, verb: str, url: str, what: str, **options: Any) -> dict[str, Any]:
        from lmrpc.auth import check_provider_url  # the server's rule: https off loopback

        try:
            check_provider_url(url, what)
        except ValueError as error:
            raise TransportFailure(str(error)) from None
        try:
            response = self.http.request(verb, url, **options)
        except httpx.HTTPError as error:
            raise TransportFailure(f"{what} at {url}: {_describe(error)}") from None
        document, detail = _json_body(response)
        if response.status_code != 200 or not isinstance(document, dict):
            raise TransportFailure(
                f"{what} at {url} answered HTTP {response.status_code}"
                + (f": {detail}" if detail else "")
            )
        return document


def _jwt_expiry(token: str) -> float | None:
    """``exp`` of a JWT read without verifying it (only to know when to renew it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def _describe(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect ({error})"
    return str(error) or type(error).__name__


def credentials_from_env(
    http: httpx.Client, token: str | None, env: Mapping[str, str] = os.environ
) -> Credentials:
    """An explicit token wins; else OIDC client credentials when all three are set."""
    if token:
        return StaticToken(token)
    client_id = env.get("LMRPC_OIDC_CLIENT_ID")
    secret = env.get("LMRPC_OIDC_CLIENT_SECRET")
    issuer = env.get("LMRPC_OIDC_ISSUER")
    if client_id and secret and issuer:
        return ClientCredentials(
            http, issuer, client_id, secret, env.get("LMRPC_OIDC_AUDIENCE") or None, TokenCache()
        )
    return StaticToken(None)


class Client:
    """Calls JSON-RPC methods at ``{url}/rpc``; renews an OIDC token once if it is refused."""

    def __init__(self, url: str, token: str | None, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            timeout=timeout, follow_redirects=False, verify=_may_use_tls(self.url, token)
        )
        self.credentials = credentials_from_env(self.http, token)
        self._next_id = 0

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """The call's result; raises RpcFailure or TransportFailure."""
        answer = self._send(self._request(method, params))
        if not isinstance(answer, dict):
            raise TransportFailure(f"{self.url}/rpc answered a single call with {answer!r:.80}")
        return _outcome(answer)

    def batch(self, calls: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Any]:
        """The results of several calls in one request (one per MAX_BATCH calls), in order;
        an error is an RpcFailure in its place (calls in a batch are independent)."""
        results: list[Any] = []
        for start in range(0, len(calls), MAX_BATCH):
            results.extend(self._batch(calls[start : start + MAX_BATCH]))
        return results

    def _batch(self, calls: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Any]:
        requests = [self._request(method, params) for method, params in calls]
        answers = self._send(requests)
        if not isinstance(answers, list):
            if isinstance(answers, dict):
                _outcome(answers)  # a batch refused whole: raises its error
            raise TransportFailure(f"{self.url}/rpc answered a batch with {answers!r:.80}")
        by_id = {answer.get("id"): answer for answer in answers if isinstance(answer, dict)}
        results: list[Any] = []
        for request in requests:
            try:
                results.append(_outcome(by_id.get(request["id"], {})))
            except RpcFailure as failure:
                results.append(failure)
        return results

    def _request(self, method: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        self._next_id += 1
        return request(method, dict(params or {}), self._next_id)

    def _send(self, body: Any) -> Any:
        """POST the body with the current token; once more with a renewed one if refused."""
        token = self.credentials.token()
        try:
            return self._post(body, token)
        except _Refused as refused:
            fresh = self.credentials.renew() if token else None
            if fresh is None:
                raise refused.failure from None
        try:
            return self._post(body, fresh)
        except _Refused as refused:
            raise refused.failure from None

    def _post(self, body: Any, token: str | None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = self.http.post(self.url + "/rpc", json=body, headers=headers)
        except httpx.HTTPError as error:
            raise TransportFailure(f"{self.url}: {_describe(error)}") from None
        answer, refusal = _json_body(response)
        if response.status_code == 401 or (
            isinstance(refusal, dict) and refusal.get("code") == UNAUTHENTICATED
        ):
            raise _Refused(_unauthenticated(refusal, token))
        if isinstance(refusal, dict):
            raise RpcFailure(refusal)
        if response.status_code != 200 or answer is None:
            raise TransportFailure(
                f"{self.url}/rpc answered HTTP {response.status_code} without a JSON-RPC response"
            )
        return answer


def _json_body(response: httpx.Response) -> tuple[Any, Any]:
    """The answer's body as JSON (None when it is not JSON) and its ``error`` member, an
    OAuth error code or a JSON-RPC error object (None when there is none)."""
    try:
        document = response.json()
    except ValueError:
        return None, None
    return document, document.get("error") if isinstance(document, dict) else None


def _may_use_tls(url: str, token: str | None, env: Mapping[str, str] = os.environ) -> bool:
    """Whether a request may go over HTTPS (to lmrpc or to the OIDC issuer): only then are
    the CA certificates loaded, which costs a slurmctld prolog tens of milliseconds."""
    return not url.startswith("http://") or (not token and bool(env.get("LMRPC_OIDC_ISSUER")))


def _outcome(answer: Mapping[str, Any]) -> Any:
    """The result of one response object, or its error raised as RpcFailure."""
    if isinstance(answer.get("error"), dict):
        raise RpcFailure(answer["error"])
    if "result" not in answer:
        raise TransportFailure("the server answered without a result or an error")
    return answer["result"]


class _Refused(Exception):
    """The server refused the token (HTTP 401); a fresh one may be worth a second try."""

    def __init__(self, failure: TransportFailure) -> None:
        self.failure = failure


def _unauthenticated(error: Any, token: str | None) -> TransportFailure:
    reason = ""
    if isinstance(error, dict) and isinstance(error.get("data"), dict):
        reason = str(error["data"].get("reason") or "")
    if token is None:
        reason = (
            "no token: give --token or LMRPC_TOKEN, or set LMRPC_OIDC_ISSUER, "
            "LMRPC_OIDC_CLIENT_ID and LMRPC_OIDC_CLIENT_SECRET"
        )
    return TransportFailure("authentication failed" + (f": {reason}" if reason else ""))
