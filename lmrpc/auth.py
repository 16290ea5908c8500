"""Bearer token verification (API.md §2) with joserfc.

What is checked, in order (RFC 8725):

- the token is a JWS in compact form (three parts; a JWE's five parts are refused), at most
  ``MAX_TOKEN_BYTES`` long, with a JSON object header;
- ``alg`` is one of the configured algorithms, which may only be asymmetric signature
  algorithms (never ``none``, never HMAC: a public key must not become an HMAC secret);
- the key is found by ``kid`` among keys *we* chose (a JWKS file, a JWKS URL, or the
  ``jwks_uri`` of the issuer's discovery document); header parameters naming keys
  (``jku``, ``x5u``, ``jwk``, ``x5c``) are never fetched or trusted. joserfc checks the
  key's type, ``use`` and ``alg`` against the token's algorithm;
- the signature, with a registry pinned to the configured algorithms;
- the claims, explicitly (joserfc's ``decode`` checks only the signature): ``exp``
  required, ``nbf`` and ``iat`` honoured, ``iss`` equal to the configured issuer, ``aud``
  containing the configured audience when one is set; leeway ``LEEWAY_S``.

Fetched keys are refreshed when a token names an unknown ``kid``, at most once per
``REFRESH_INTERVAL_S`` after a successful fetch and once per ``RETRY_INTERVAL_S`` after a
failed one; each fetch (discovery and JWKS) is bounded by ``FETCH_TIMEOUT_S``. A provider
that cannot be reached gives "identity provider unavailable" at once, never a hang.
They are also refreshed in the background (``KeyStore.keep_fresh``), as often as the JWKS
answer's ``Cache-Control: max-age`` says within ``BACKGROUND_BOUNDS_S`` (default
``BACKGROUND_DEFAULT_S``): a flood of tokens with made-up key ids uses up the on-demand
refreshes, and a real rotation must still become known without waiting on them.

Verified tokens are cached by SHA-256 digest until they expire (bounded, least recently
used first out), so the signature check is paid once per token; a change of the key set
drops every cached token, so a key removed by rotation revokes its tokens.
"""

import hashlib
import ipaddress
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    KeyParameterError,
    MissingClaimError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import ECKey, Key, KeySet, OKPKey, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.jwt import JWTClaimsRegistry

from lmrpc.identity import Identity
from lmrpc.settings import EMBEDDED_ISSUER, Settings

log = logging.getLogger("lmrpc.auth")

LEEWAY_S = 30
REFRESH_INTERVAL_S = 60.0
RETRY_INTERVAL_S = 10.0
FETCH_TIMEOUT_S = 5.0
BACKGROUND_BOUNDS_S = (300.0, 900.0)
BACKGROUND_DEFAULT_S = 600.0
MAX_DOCUMENT_BYTES = 1024 * 1024  # discovery document or JWKS
MAX_TOKEN_BYTES = 16 * 1024
CACHE_SIZE = 10_000

#: Signature algorithms with a public verification key; the only ones that may be allowed.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_PUBLIC_KEY_TYPES = (RSAKey, ECKey, OKPKey)
UNAVAILABLE = "identity provider unavailable"
_CLAIM_REASONS = {
    "iss": "wrong issuer (iss)",
    "aud": "wrong audience (aud)",
    "nbf": "token not yet valid (nbf)",
    "iat": "token issued in the future (iat)",
    "exp": "invalid expiry (exp)",
}


class Unauthenticated(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_provider_url(url: str, what: str) -> None:
    """Keys come over HTTPS; plain HTTP only from this machine (loopback)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        if parts.hostname == "localhost":
            return
        try:
            if ipaddress.ip_address(parts.hostname).is_loopback:
                return
        except ValueError:
            pass
    raise ValueError(f"{what} must be an https:// URL (http:// only on loopback): {url!r}")


def signature_keys(document: Any) -> KeySet:
    """The usable public signature keys of a JWKS document.

    Symmetric (``oct``) keys and encryption keys are dropped: a JWKS must never turn into
    an HMAC secret. Keys joserfc cannot import are skipped, not fatal.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: list[Key] = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        public = {name: value for name, value in entry.items() if name not in ("d", "p", "q")}
        try:
            key = KeySet.import_key_set({"keys": [public]}).keys[0]
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        if isinstance(key, _PUBLIC_KEY_TYPES):
            keys.append(key)
    if not keys:
        raise ValueError("the JWKS holds no usable signature key")
    return KeySet(keys)


class KeyStore:
    """The verification keys: fixed (file, embedded) or fetched (URL, discovery)."""

    def __init__(
        self,
        keys: KeySet | None = None,
        *,
        jwks_url: str | None = None,
        issuer: str | None = None,
        refresh_interval: float = REFRESH_INTERVAL_S,
        retry_interval: float = RETRY_INTERVAL_S,
        fetch_timeout: float = FETCH_TIMEOUT_S,
        background_bounds: tuple[float, float] = BACKGROUND_BOUNDS_S,
    ) -> None:
        if keys is None and jwks_url is None and issuer is None:
            raise ValueError("a key store needs keys, a JWKS URL or an issuer")
        if jwks_url is not None:
            check_provider_url(jwks_url, "LMRPC_OIDC_JWKS_URL")
        elif keys is None and issuer is not None:
            check_provider_url(issuer, "LMRPC_OIDC_ISSUER (used for discovery)")
        self._keys = keys
        self._fixed = keys is not None and jwks_url is None and issuer is None
        self._jwks_url = jwks_url
        self._issuer = issuer
        self._refresh_interval = refresh_interval
        self._retry_interval = retry_interval
        self._fetch_timeout = fetch_timeout
        self._background_bounds = background_bounds
        self._next_fetch = -math.inf  # trio clock: the next on-demand fetch allowed
        self._next_background = -math.inf  # trio clock: the next background fetch
        self.background_interval = BACKGROUND_DEFAULT_S  # from the last JWKS answer
        self._error: str | None = None  # why the last fetch failed; None after a success
        self._lock = trio.Lock()
        self.generation = 0  # bumped when the key set changes: cached tokens are dropped
        self.fetches = 0  # fetch attempts (observability and tests)

    @classmethod
    def from_file(cls, path: Path) -> "KeyStore":
        return cls(signature_keys(json.loads(path.read_text())))

    @property
    def remote(self) -> bool:
        return not self._fixed

    async def key_for(self, kid: str | None) -> Key:
        """The key for ``kid``; a remote key set is refreshed (rate limited) when unknown."""
        found = self._find(kid)
        if found is None and self.remote:
            await self.refresh()
            found = self._find(kid)
        if found is not None:
            return found
        if self._error is not None:
            raise Unauthenticated(f"{UNAVAILABLE}: {self._error}")
        raise Unauthenticated("unknown signing key")

    def _find(self, kid: str | None) -> Key | None:
        if self._keys is None:
            return None
        try:
            return self._keys.get_by_kid(kid)  # no kid: only when the set has a single key
        except JoseError:
            return None

    async def refresh(self) -> None:
        """Fetch the key set unless one was fetched too recently; never raises."""
        if trio.current_time() < self._next_fetch:
            return
        async with self._lock:
            if trio.current_time() < self._next_fetch:
                return  # another request fetched while this one waited
            await self._fetch_now()

    async def keep_fresh(self) -> None:
        """Refresh a remote key set in the background until cancelled: at once, then every
        ``background_interval`` (every retry interval while the provider fails)."""
        if not self.remote:
            return
        while True:
            await trio.sleep_until(self._next_background)
            async with self._lock:
                await self._fetch_now()

    async def _fetch_now(self) -> None:
        """One fetch, the lock held; never raises."""
        self.fetches += 1
        try:
            with trio.fail_after(self._fetch_timeout):
                keys, max_age = await self._fetch()
        except trio.TooSlowError:
            self._failed(f"no answer within {self._fetch_timeout:g} s")
            return
        except Exception as error:  # any failure of a remote party is "unavailable"
            self._failed(_describe(error))
            return
        now = trio.current_time()
        self._error = None
        self._next_fetch = now + self._refresh_interval
        self.background_interval = background_interval(max_age, self._background_bounds)
        self._next_background = now + self.background_interval
        if self._keys is None or keys.as_dict() != self._keys.as_dict():
            self._keys = keys
            self.generation += 1
            log.info("signing keys loaded: %s", ", ".join(str(k.kid) for k in keys.keys))

    def _failed(self, reason: str) -> None:
        self._error = reason
        self._next_fetch = self._next_background = trio.current_time() + self._retry_interval
        log.warning("%s: %s", UNAVAILABLE, reason)

    async def _fetch(self) -> tuple[KeySet, float | None]:
        """The key set and the max-age its answer allows caching it for."""
        timeout = httpx.Timeout(self._fetch_timeout)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            if self._jwks_url is None:
                self._jwks_url = await self._discover(client)
            document, headers = await get_json(client, self._jwks_url)
            return signature_keys(document), max_age(headers.get("Cache-Control"))

    async def _discover(self, client: httpx.AsyncClient) -> str:
        assert self._issuer is not None
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        document, _ = await get_json(client, url)
        if not isinstance(document, dict):
            raise ValueError("the discovery document is not a JSON object")
        if document.get("issuer") != self._issuer:  # OpenID Connect Discovery 1.0 §4.3
            raise ValueError(f"the discovery document names issuer {document.get('issuer')!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("the discovery document has no jwks_uri")
        check_provider_url(jwks_uri, "jwks_uri")
        return jwks_uri


def max_age(cache_control: str | None) -> float | None:
    """The ``max-age`` of a ``Cache-Control`` header in seconds; None when absent or bad."""
    for directive in (cache_control or "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.strip().lower() == "max-age":
            digits = value.strip().strip('"')
            return float(digits) if digits.isdigit() else None
    return None


def background_interval(max_age: float | None, bounds: tuple[float, float]) -> float:
    """How long to keep a key set before the background refresh: its max-age within
    ``bounds`` (a provider's "no-cache" must not make us poll it constantly, nor a year-long
    max-age hide a rotation); without one, ``BACKGROUND_DEFAULT_S`` within the bounds."""
    low, high = bounds
    return min(max(BACKGROUND_DEFAULT_S if max_age is None else max_age, low), high)


async def get_json(client: httpx.AsyncClient, url: str) -> tuple[Any, httpx.Headers]:
    """The JSON document at ``url`` (bounded in size) and the answer's headers."""
    async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise ValueError(f"{url} answered HTTP {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    return json.loads(body), response.headers


def _describe(error: Exception) -> str:
    if isinstance(error, httpx.ConnectError):
        return "cannot connect"
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.HTTPError):
        return f"HTTP error ({type(error).__name__})"
    if isinstance(error, json.JSONDecodeError):
        return "answer is not JSON"
    if isinstance(error, ValueError):
        return str(error)
    return type(error).__name__


class TokenVerifier:
    def __init__(
        self, settings: Settings, keys: KeyStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        """``clock``: the wall clock that token expiry is measured on (a test's own)."""
        algorithms = settings.algorithms
        refused = [name for name in algorithms if name not in ASYMMETRIC_ALGORITHMS]
        if not algorithms or refused:
            raise ValueError(
                "LMRPC_OIDC_ALGORITHMS must list asymmetric signature algorithms only "
                f"(some of {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}); refused: {refused}"
            )
        if settings.oidc_issuer:
            issuer = settings.oidc_issuer
        elif settings.embedded_auth:
            issuer = EMBEDDED_ISSUER
        else:
            raise ValueError("LMRPC_OIDC_ISSUER is required with LMRPC_OIDC_JWKS_URL or _FILE")
        self._keys = keys
        self._algorithms = frozenset(algorithms)
        self._registry = JWSRegistry(algorithms=list(algorithms))  # pinned: nothing else
        self._issuer = issuer
        self._audience = settings.oidc_audience
        self._permissions_claim = settings.permissions_claim
        self._client_claims = settings.client_claims
        self._multi_tenancy = settings.multi_tenancy
        self._cache: OrderedDict[bytes, tuple[Identity, int]] = OrderedDict()
        self.cache_size = CACHE_SIZE
        self.signature_checks = 0  # observability and tests
        self._clock = clock

    async def verify(self, token: str) -> Identity:
        """The caller's identity, or raises Unauthenticated with a reason."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        cached = self._cache.get(digest)
        if cached is not None:
            identity, generation = cached
            if (
                identity.expires_at + LEEWAY_S > self._clock()
                and generation == self._keys.generation
            ):
                self._cache.move_to_end(digest)
                return identity
            del self._cache[digest]
        identity = await self._verify(token)
        self._cache[digest] = (identity, self._keys.generation)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return identity

    async def _verify(self, token: str) -> Identity:
        parts = token.count(".") + 1
        if parts == 5:
            raise Unauthenticated("encrypted tokens (JWE) are not accepted")
        if parts != 3 or len(token) > MAX_TOKEN_BYTES or not token.isascii():
            raise Unauthenticated("malformed token")
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError, TypeError):
            raise Unauthenticated("malformed token") from None
        if not isinstance(header, dict):
            raise Unauthenticated("malformed token")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise Unauthenticated("algorithm not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthenticated("malformed token: kid")
        key = await self._keys.key_for(kid)
        self.signature_checks += 1
        try:
            claims = jwt.decode(token, key, registry=self._registry).claims
        except BadSignatureError:
            raise Unauthenticated("bad signature") from None
        except UnsupportedAlgorithmError:
            raise Unauthenticated("algorithm not allowed") from None
        except KeyParameterError:
            raise Unauthenticated("signing key does not fit the algorithm") from None
        except (JoseError, ValueError, TypeError):
            raise Unauthenticated("malformed token") from None
        self._check_claims(claims)
        return self._identity(claims)

    def _check_claims(self, claims: dict[str, Any]) -> None:
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self._issuer},
            "exp": {"essential": True},
        }
        if self._audience:
            options["aud"] = {"essential": True, "value": self._audience}
        try:
            JWTClaimsRegistry(now=lambda: int(self._clock()), leeway=LEEWAY_S, **options).validate(
                claims
            )
        except ExpiredTokenError:
            raise Unauthenticated("token expired") from None
        except MissingClaimError as error:
            raise Unauthenticated(f"missing claim: {error.claim}") from None
        except ClaimError as error:
            raise Unauthenticated(_CLAIM_REASONS.get(error.claim, f"wrong {error.claim}")) from None
        except JoseError:
            raise Unauthenticated("invalid claims") from None
        except (TypeError, ValueError, OverflowError):
            raise Unauthenticated("invalid claims") from None

    def _identity(self, claims: dict[str, Any]) -> Identity:
        try:
            expires_at = float(claims["exp"])  # an int too large for a float overflows
        except OverflowError:
            raise Unauthenticated("invalid claim: exp") from None
        permissions = claims.get(self._permissions_claim)
        if permissions is None:
            permissions = claims.get("scope", "")
        if isinstance(permissions, str):
            permissions = permissions.split()
        if not isinstance(permissions, list):
            permissions = []
        cluster = next(
            (claims[name] for name in self._client_claims if isinstance(claims.get(name), str)),
            None,
        )
        organization = _organization(claims.get("organization"))
        if self._multi_tenancy and organization is None:
            raise Unauthenticated("token names no organization")
        return Identity(
            subject=claims.get("sub") if isinstance(claims.get("sub"), str) else None,
            permissions=frozenset(p for p in permissions if isinstance(p, str)),
            cluster_client_id=cluster or None,
            organization=organization,
            expires_at=expires_at,
        )


def _organization(claim: Any) -> str | None:
    """A string, or an object with exactly one key whose value may hold ``id``."""
    if isinstance(claim, str) and claim:
        return claim
    if isinstance(claim, dict) and len(claim) == 1:
        ((name, value),) = claim.items()
        if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"]:
            return str(value["id"])
        return str(name) if name else None
    return None


def key_store(settings: Settings) -> KeyStore:
    """The key store the settings ask for; the embedded key when no provider is set."""
    if settings.oidc_jwks_file:
        return KeyStore.from_file(settings.oidc_jwks_file)
    if settings.oidc_jwks_url or settings.oidc_issuer:
        return KeyStore(jwks_url=settings.oidc_jwks_url, issuer=settings.oidc_issuer)
    from lmrpc import keys

    return KeyStore(keys.public_key_set(keys.load_or_create(settings.data_dir)))
