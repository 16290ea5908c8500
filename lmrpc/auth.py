"""Bearer token verification (API.md §2) with joserfc.

Signatures are checked with pinned algorithms against keys we chose (a JWKS file, URL or
the issuer's discovery document), never keys named by the token. Claims are checked
explicitly: joserfc's ``decode`` checks only the signature. Verified tokens are cached until
expiry, so the RSA verification is paid once per token.
"""

import hashlib
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import httpx
import trio
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet
from joserfc.jwt import JWTClaimsRegistry

from lmrpc.identity import Identity
from lmrpc.settings import EMBEDDED_ISSUER, Settings

LEEWAY_S = 30
REFRESH_INTERVAL_S = 60
FETCH_TIMEOUT_S = 5
CACHE_SIZE = 10_000


class Unauthenticated(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeyStore:
    """The verification keys: fixed (file, embedded) or fetched (URL, discovery).

    Fetched keys are refreshed when a token names an unknown ``kid``, at most once per
    ``REFRESH_INTERVAL_S`` (key rotation without a restart, no refresh storm).
    """

    def __init__(
        self,
        keys: KeySet | None = None,
        *,
        jwks_url: str | None = None,
        issuer: str | None = None,
    ) -> None:
        self._keys = keys
        self._jwks_url = jwks_url
        self._issuer = issuer
        self._fetched_at = -float("inf")
        self._lock = trio.Lock()
        self.generation = 0  # bumped when fetched keys change: cached tokens are dropped

    @classmethod
    def from_file(cls, path: Path) -> "KeyStore":
        import json

        return cls(KeySet.import_key_set(json.loads(path.read_text())))

    @property
    def remote(self) -> bool:
        return self._keys is None or self._jwks_url is not None or self._issuer is not None

    async def key_for(self, kid: str | None) -> Key:
        if self._keys is None:
            await self._refresh()
        found = self._find(kid)
        if found is None and self.remote:
            await self._refresh()
            found = self._find(kid)
        if found is None:
            raise Unauthenticated("unknown signing key")
        return found

    def _find(self, kid: str | None) -> Key | None:
        if self._keys is None:
            return None
        try:
            return self._keys.get_by_kid(kid)
        except JoseError:
            return None

    async def _refresh(self) -> None:
        async with self._lock:
            if trio.current_time() - self._fetched_at < REFRESH_INTERVAL_S:
                return
            self._fetched_at = trio.current_time()
            try:
                with trio.fail_after(FETCH_TIMEOUT_S):
                    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S) as client:
                        url = self._jwks_url or await self._discover(client)
                        response = await client.get(url)
                        response.raise_for_status()
                        keys = KeySet.import_key_set(response.json())
            except (httpx.HTTPError, trio.TooSlowError, ValueError, JoseError) as error:
                raise Unauthenticated(
                    f"identity provider unavailable: {type(error).__name__}"
                ) from None
            if self._keys is None or keys.as_dict() != self._keys.as_dict():
                self._keys = keys
                self.generation += 1

    async def _discover(self, client: httpx.AsyncClient) -> str:
        assert self._issuer is not None
        response = await client.get(self._issuer.rstrip("/") + "/.well-known/openid-configuration")
        response.raise_for_status()
        url = response.json().get("jwks_uri")
        if not isinstance(url, str):
            raise ValueError("discovery document has no jwks_uri")
        self._jwks_url = url
        return url


class TokenVerifier:
    def __init__(self, settings: Settings, keys: KeyStore) -> None:
        self._keys = keys
        self._algorithms = settings.algorithms
        self._issuer = settings.oidc_issuer or EMBEDDED_ISSUER
        self._audience = settings.oidc_audience
        self._permissions_claim = settings.permissions_claim
        self._client_claims = settings.client_claims
        self._multi_tenancy = settings.multi_tenancy
        self._cache: OrderedDict[bytes, tuple[Identity, int]] = OrderedDict()

    async def verify(self, token: str) -> Identity:
        """The caller's identity, or raises Unauthenticated with a reason."""
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(digest)
        if cached is not None:
            identity, generation = cached
            if identity.expires_at + LEEWAY_S > time.time() and generation == self._keys.generation:
                self._cache.move_to_end(digest)
                return identity
            del self._cache[digest]
        identity = await self._verify(token)
        self._cache[digest] = (identity, self._keys.generation)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return identity

    async def _verify(self, token: str) -> Identity:
        if token.count(".") != 2:
            raise Unauthenticated("malformed token")
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError):
            raise Unauthenticated("malformed token") from None
        if header.get("alg") not in self._algorithms:
            raise Unauthenticated("algorithm not allowed")
        key = await self._keys.key_for(header.get("kid"))
        try:
            claims = jwt.decode(token, key, algorithms=self._algorithms).claims
        except JoseError:
            raise Unauthenticated("bad signature") from None
        except ValueError:
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
            JWTClaimsRegistry(leeway=LEEWAY_S, **options).validate(claims)
        except JoseError as error:
            raise Unauthenticated(f"invalid claim: {error.description or error.error}") from None
        except (TypeError, ValueError):
            raise Unauthenticated("invalid claims") from None

    def _identity(self, claims: dict[str, Any]) -> Identity:
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
            expires_at=float(claims["exp"]),
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
