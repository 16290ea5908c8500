"""Token checks of RFC 8725 (API.md §2), one test each, and the verified-token cache.

The checks run end to end: a real ``lmrpc serve`` that knows only the issuer's URL (it
discovers the JWKS over HTTP) and a real issuer process (tests/oidc_issuer.py) that signs
client-credentials tokens. The cache tests run the verifier in process against the same
kind of issuer, so they can count signature checks.
"""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwe
from joserfc.jwk import ECKey, RSAKey

from lmrpc.auth import LEEWAY_S, KeyStore, TokenVerifier, Unauthenticated
from lmrpc.settings import Settings
from tests.oidc import oidc_env, verifier_for
from tests.oidc_issuer import AUDIENCE, Issuer, running_issuer
from tests.server import HTTP, Server, running_server
from tests.tokens import TokenFactory

AGENT, SECRET = "cluster-a", "agent-secret"
PERMISSIONS = ["license-manager:product:read"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload)), signature


def _with_header(token: str, header: dict[str, Any], signature: str | None = None) -> str:
    """``token`` with another header and the same payload (and signature, unless given)."""
    _, payload, old_signature = token.split(".")
    encoded = _b64(json.dumps(header).encode())
    return f"{encoded}.{payload}.{old_signature if signature is None else signature}"


def _jwks(issuer: Issuer) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = HTTP.get(issuer.url + "/jwks", timeout=10).json()["keys"]
    return keys


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    """An issuer with an EC key and an RSA key (tokens are signed RS256 unless asked)."""
    with running_issuer(keys="EC,RSA") as running:
        running.add_client(AGENT, SECRET, PERMISSIONS)
        yield running


@pytest.fixture(scope="module")
def oidc_server(
    issuer: Issuer, tokens: TokenFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("oidc-server")
    with running_server(oidc_env(issuer.url, tokens, directory), directory) as server:
        yield server


def token(issuer: Issuer, **options: Any) -> str:
    return issuer.client_credentials(AGENT, SECRET, **options)


def post(server: Server, bearer: str) -> httpx.Response:
    body = {"jsonrpc": "2.0", "method": "products.list", "params": {}, "id": 1}
    return HTTP.post(
        server.url + "/rpc", json=body, headers={"Authorization": f"Bearer {bearer}"}, timeout=30
    )


def accepted(server: Server, bearer: str) -> None:
    response = post(server, bearer)
    assert response.status_code == 200, response.text
    assert response.json() == {"jsonrpc": "2.0", "result": [], "id": 1}


def refused(server: Server, bearer: str, word: str) -> str:
    """Assert a 401 with -32001 whose reason contains ``word``; the reason."""
    response = post(server, bearer)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    error = response.json()["error"]
    assert error["code"] == -32001
    reason: str = error["data"]["reason"]
    assert word in reason, reason
    return reason


# --- the control: a good token works ----------------------------------------------------------


def test_a_client_credentials_token_from_the_issuer_is_accepted(
    oidc_server: Server, issuer: Issuer
) -> None:
    accepted(oidc_server, token(issuer))
    header, claims, _ = _parts(token(issuer))
    assert header["alg"] == "RS256" and claims["azp"] == AGENT


# --- RFC 8725 §2.1, §3.1: algorithms -----------------------------------------------------------


def test_alg_none_is_refused(oidc_server: Server, issuer: Issuer) -> None:
    good = token(issuer)
    header, _, _ = _parts(good)
    for spelling in ("none", "None", "NONE", "nOnE"):
        unsigned = _with_header(good, {**header, "alg": spelling}, signature="")
        refused(oidc_server, unsigned, "algorithm")
    accepted(oidc_server, good)


def test_hs256_signed_with_the_rsa_public_key_as_secret_is_refused(
    oidc_server: Server, issuer: Issuer
) -> None:
    rsa_public = next(key for key in _jwks(issuer) if key["kty"] == "RSA")
    _, claims, _ = _parts(token(issuer))
    pem = RSAKey.import_key(rsa_public).as_pem(private=False)
    secrets = [pem, json.dumps(rsa_public).encode(), pem.strip()]
    for secret in secrets:  # signed by hand: joserfc itself refuses a public key as secret
        signing_input = (
            _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": rsa_public["kid"]}).encode())
            + "."
            + _b64(json.dumps(claims).encode())
        )
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        refused(oidc_server, f"{signing_input}.{_b64(mac)}", "algorithm")


def test_hmac_and_none_cannot_even_be_configured(tmp_path: Path) -> None:
    keys = KeyStore(jwks_url="https://idp.example.org/jwks")
    for algorithms in ("HS256", "RS256,HS512", "none", "", "RS256,none"):
        settings = Settings(
            oidc_issuer="https://idp.example.org/", oidc_algorithms=algorithms, data_dir=tmp_path
        )
        with pytest.raises(ValueError, match="asymmetric"):
            TokenVerifier(settings, keys)


def test_an_algorithm_outside_lmrpc_oidc_algorithms_is_refused(
    oidc_server: Server, issuer: Issuer, tokens: TokenFactory, tmp_path: Path
) -> None:
    ec_kid = next(key["kid"] for key in _jwks(issuer) if key["kty"] == "EC")
    es256 = token(issuer, kid=ec_kid)
    assert _parts(es256)[0]["alg"] == "ES256"
    accepted(oidc_server, es256)  # the default RS256,ES256 allows it
    env = oidc_env(issuer.url, tokens, tmp_path, LMRPC_OIDC_ALGORITHMS="RS256")
    with running_server(env, tmp_path) as rs256_only:
        refused(rs256_only, es256, "algorithm not allowed")
        accepted(rs256_only, token(issuer))


def test_an_encrypted_token_jwe_is_refused(oidc_server: Server, issuer: Issuer) -> None:
    published = next(k for k in _jwks(issuer) if k["kty"] == "RSA")
    rsa_public = RSAKey.import_key({k: v for k, v in published.items() if k not in ("use", "alg")})
    _, claims, _ = _parts(token(issuer))
    encrypted = jwe.encrypt_compact(
        {"alg": "RSA-OAEP", "enc": "A256GCM"}, json.dumps(claims).encode(), rsa_public
    )
    assert encrypted.count(".") == 4
    refused(oidc_server, encrypted, "JWE")


# --- RFC 8725 §3.10: time and identity claims ------------------------------------------------


def test_an_expired_token_is_refused(oidc_server: Server, issuer: Issuer) -> None:
    refused(oidc_server, token(issuer, ttl=-31 - 5), "expired")
    accepted(oidc_server, token(issuer, ttl=-5))  # within the 30 s leeway


def test_a_token_with_nbf_in_the_future_is_refused(oidc_server: Server, issuer: Issuer) -> None:
    now = int(time.time())
    refused(oidc_server, token(issuer, claims={"nbf": now + 120}), "nbf")
    accepted(oidc_server, token(issuer, claims={"nbf": now + 10}))  # within the leeway


def test_a_token_without_exp_is_refused(oidc_server: Server, issuer: Issuer) -> None:
    refused(oidc_server, token(issuer, claims={"exp": None}), "exp")


def test_a_token_of_another_issuer_is_refused(oidc_server: Server, issuer: Issuer) -> None:
    for other in ("https://evil.example.org", issuer.url + "/", issuer.url.upper(), None):
        refused(oidc_server, token(issuer, claims={"iss": other}), "iss")


def test_a_token_for_another_audience_is_refused(oidc_server: Server, issuer: Issuer) -> None:
    for other in ("someone-else", ["someone-else", "api"], "lmrpc2", None):
        refused(oidc_server, token(issuer, claims={"aud": other}), "aud")
    accepted(oidc_server, token(issuer, claims={"aud": ["api", AUDIENCE]}))


# --- keys: kid, signature, keys named by the token ----------------------------------------------


def test_a_token_with_an_unknown_kid_is_refused(oidc_server: Server, issuer: Issuer) -> None:
    good = token(issuer)
    header, _, _ = _parts(good)
    jwks_fetches = issuer.requests().count("GET /jwks")
    for number in range(5):
        refused(oidc_server, _with_header(good, {**header, "kid": f"nobody-{number}"}), "key")
    refused(oidc_server, token(issuer, foreign_key=True), "unknown signing key")
    # unknown kids trigger at most one refresh per minute, however many arrive
    assert issuer.requests().count("GET /jwks") - jwks_fetches <= 1


def test_a_tampered_signature_or_payload_is_refused(oidc_server: Server, issuer: Issuer) -> None:
    good = token(issuer)
    header, payload, signature = good.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    refused(oidc_server, f"{header}.{payload}.{flipped}", "signature")
    _, claims, _ = _parts(good)
    elevated = _b64(json.dumps({**claims, "permissions": ["license-manager:admin"]}).encode())
    refused(oidc_server, f"{header}.{elevated}.{signature}", "signature")
    refused(oidc_server, f"{header}.{payload}.", "signature")
    accepted(oidc_server, good)


def test_keys_named_by_the_token_are_never_fetched_or_trusted(
    oidc_server: Server, issuer: Issuer
) -> None:
    """jku, x5u and jwk point at the attacker's key: the server never looks."""
    foreign = issuer.foreign_key()
    trusted_ec = next(key["kid"] for key in _jwks(issuer) if key["kty"] == "EC")
    jku, x5u = issuer.url + "/foreign/jwks", issuer.url + "/foreign/x5u"
    headers: list[dict[str, Any]] = [
        {"jku": jku},
        {"x5u": x5u},
        {"jwk": foreign},
        {"jku": jku, "x5u": x5u, "jwk": foreign},
        {"jku": jku, "jwk": foreign, "kid": trusted_ec},  # claims a trusted key's kid
    ]
    for extra in headers:
        forged = token(issuer, foreign_key=True, header=extra)
        assert _parts(forged)[0]["alg"] == "ES256"  # an allowed algorithm, signed correctly
        refused(oidc_server, forged, "")
    assert not [line for line in issuer.requests() if "/foreign/" in line]
    # the foreign key really signs these tokens: trusted, its token would pass
    assert ECKey.import_key(foreign).kid == _parts(token(issuer, foreign_key=True))[0]["kid"]


# --- the verified-token cache (in process, real issuer) ---------------------------------------


async def test_the_signature_is_checked_once_per_token(issuer: Issuer) -> None:
    verifier = verifier_for(issuer.url)
    first, second = token(issuer), token(issuer)
    for _ in range(50):
        identity = await verifier.verify(first)
    assert identity.cluster_client_id == AGENT and identity.permissions == set(PERMISSIONS)
    assert verifier.signature_checks == 1
    await verifier.verify(second)
    assert verifier.signature_checks == 2


async def test_a_cached_token_stops_working_when_it_expires(issuer: Issuer) -> None:
    now = [time.time()]
    verifier = verifier_for(issuer.url, clock=lambda: now[0])
    expires = int(now[0]) + 60
    short = token(issuer, claims={"exp": expires})
    await verifier.verify(short)
    now[0] = expires + LEEWAY_S - 1  # still valid, thanks to the leeway
    await verifier.verify(short)
    assert verifier.signature_checks == 1  # served from the cache
    now[0] = expires + LEEWAY_S + 1
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(short)
    assert verifier.signature_checks == 2  # not from the cache: checked again, and refused


async def test_the_cache_is_bounded(issuer: Issuer) -> None:
    verifier = verifier_for(issuer.url)
    verifier.cache_size = 3
    minted = [token(issuer) for _ in range(5)]
    for bearer in minted:
        await verifier.verify(bearer)
    assert verifier.signature_checks == 5
    await verifier.verify(minted[-1])  # recent: still cached
    assert verifier.signature_checks == 5
    await verifier.verify(minted[0])  # the oldest was evicted: checked again
    assert verifier.signature_checks == 6


async def test_cached_tokens_of_a_key_rotated_away_fail() -> None:
    """Revocation by rotation: once the JWKS is refreshed, the removed key's tokens fail."""
    with running_issuer() as own:
        own.add_client(AGENT, SECRET, PERMISSIONS)
        verifier = verifier_for(own.url, refresh_interval=0)
        old = token(own)
        await verifier.verify(old)
        await verifier.verify(old)
        assert verifier.signature_checks == 1
        own.rotate()  # the old key is gone from the JWKS
        new = token(own)
        await verifier.verify(new)  # unknown kid: refresh, the key set changes
        with pytest.raises(Unauthenticated, match="unknown signing key"):
            await verifier.verify(old)
