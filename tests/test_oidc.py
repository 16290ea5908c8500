"""OIDC against a real issuer process on loopback (tests/oidc_issuer.py).

Discovery (``/.well-known/openid-configuration`` → ``jwks_uri``), the JWKS fetched over
HTTP and cached, refreshed on an unknown ``kid`` at most once per interval (key rotation
without a restart), and a provider that is down or hangs: ``-32001`` "identity provider
unavailable" quickly, never a hang. Also: the server's log never holds a token.

The key store runs in process where a test needs short intervals (the service's are a
minute); the rest runs through a real ``lmrpc serve``.
"""

import functools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from joserfc import jwt
from joserfc.jwk import RSAKey
from trio.testing import MockClock

from lmrpc.auth import (
    BACKGROUND_BOUNDS_S,
    KeyStore,
    TokenVerifier,
    Unauthenticated,
    background_interval,
    max_age,
    signature_keys,
)
from lmrpc.settings import Settings
from tests.oidc import oidc_env, verifier_for
from tests.oidc_issuer import AUDIENCE, Issuer, running_issuer, start_issuer
from tests.server import HTTP, Server, free_port, running_server
from tests.tokens import TokenFactory

AGENT, SECRET = "cluster-a", "agent-secret"
PERMISSIONS = ["license-manager:product:read", "license-manager:product:create"]
DISCOVERY = "GET /.well-known/openid-configuration"
JWKS = "GET /jwks"


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as running:
        running.add_client(AGENT, SECRET, PERMISSIONS)
        yield running


def token(issuer: Issuer, **options: Any) -> str:
    return issuer.client_credentials(AGENT, SECRET, **options)


@functools.cache
def _stranger_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "stranger", "alg": "RS256"})


def stranger_token(issuer_url: str) -> str:
    """A well-formed token for ``issuer_url`` signed by a key no issuer publishes."""
    claims = {"iss": issuer_url, "aud": AUDIENCE, "exp": int(time.time()) + 300}
    return jwt.encode({"alg": "RS256", "kid": "stranger"}, claims, _stranger_key())


async def unauthenticated(verifier: TokenVerifier, bearer: str) -> str:
    with pytest.raises(Unauthenticated) as denied:
        await verifier.verify(bearer)
    return denied.value.reason


def rpc(server: Server, bearer: str, method: str = "products.list", **params: Any) -> Any:
    body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    response = HTTP.post(
        server.url + "/rpc", json=body, headers={"Authorization": f"Bearer {bearer}"}, timeout=30
    )
    return response.status_code, response.json()


# --- discovery and the JWKS cache ------------------------------------------------------------


async def test_discovery_finds_the_jwks_which_is_fetched_once(issuer: Issuer) -> None:
    verifier = verifier_for(issuer.url)
    for _ in range(20):
        identity = await verifier.verify(token(issuer))  # 20 different tokens, one key
    assert identity.cluster_client_id == AGENT
    assert identity.permissions == set(PERMISSIONS)
    fetched = [line for line in issuer.requests() if line.startswith("GET")]
    assert fetched == [DISCOVERY, JWKS]


async def test_a_configured_jwks_url_skips_discovery(issuer: Issuer) -> None:
    settings = Settings(oidc_issuer=issuer.url, oidc_audience=AUDIENCE)
    verifier = TokenVerifier(settings, KeyStore(jwks_url=issuer.url + "/jwks"))
    await verifier.verify(token(issuer))
    assert [line for line in issuer.requests() if line.startswith("GET")] == [JWKS]


async def test_discovery_naming_another_issuer_is_refused(issuer: Issuer) -> None:
    """OIDC Discovery §4.3: the document's issuer must be the one configured."""
    configured = issuer.url + "/"  # differs from the document's "issuer"
    verifier = verifier_for(configured)
    reason = await unauthenticated(verifier, token(issuer, claims={"iss": configured}))
    assert reason.startswith("identity provider unavailable")
    assert "issuer" in reason
    assert JWKS not in issuer.requests()


def test_keys_are_fetched_over_https_except_on_loopback() -> None:
    for url in ("http://idp.example.org/jwks", "ftp://127.0.0.1/jwks", "file:///etc/jwks"):
        with pytest.raises(ValueError, match="https"):
            KeyStore(jwks_url=url)
    with pytest.raises(ValueError, match="https"):
        KeyStore(issuer="http://keycloak.example.org/realms/hpc")
    for url in ("https://idp.example.org/jwks", "http://127.0.0.1:1/jwks", "http://[::1]/j"):
        KeyStore(jwks_url=url)


def test_a_jwks_never_yields_symmetric_or_encryption_keys(issuer: Issuer) -> None:
    published = HTTP.get(issuer.url + "/jwks", timeout=10).json()["keys"]
    secret = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}
    encryption = {**published[0], "kid": "enc", "use": "enc"}
    keys = signature_keys({"keys": [secret, encryption, *published, {"kty": "weird"}]})
    assert [key.kid for key in keys.keys] == [published[0]["kid"]]
    with pytest.raises(ValueError, match="no usable"):
        signature_keys({"keys": [secret, encryption]})


# --- rotation --------------------------------------------------------------------------------


async def test_key_rotation_works_without_a_restart(issuer: Issuer, mock_clock: MockClock) -> None:
    verifier = verifier_for(issuer.url, refresh_interval=0.5)
    old = token(issuer)
    await verifier.verify(old)
    issuer.rotate(keep_old=True)  # the new key signs, the old one is still published
    mock_clock.jump(0.6)  # past the refresh interval
    rotated = token(issuer)
    assert (await verifier.verify(rotated)).cluster_client_id == AGENT
    await verifier.verify(old)
    issuer.rotate()  # a third key; the first two are withdrawn
    mock_clock.jump(0.6)
    await verifier.verify(token(issuer))
    for gone in (old, rotated):
        assert await unauthenticated(verifier, gone) == "unknown signing key"
    assert issuer.requests().count(DISCOVERY) == 1  # the jwks_uri is remembered


async def test_unknown_kids_refresh_the_jwks_at_most_once_per_interval(
    issuer: Issuer, mock_clock: MockClock
) -> None:
    verifier = verifier_for(issuer.url, refresh_interval=1.5)
    await verifier.verify(token(issuer))
    issuer.rotate()
    rotated = token(issuer)
    for _ in range(10):  # within the interval: no fetch, the new kid is unknown
        assert await unauthenticated(verifier, rotated) == "unknown signing key"
        assert await unauthenticated(verifier, token(issuer, foreign_key=True)) == (
            "unknown signing key"
        )
    assert issuer.requests().count(JWKS) == 1
    mock_clock.jump(1.6)
    assert (await verifier.verify(rotated)).cluster_client_id == AGENT
    for _ in range(10):
        await unauthenticated(verifier, token(issuer, foreign_key=True))
    assert issuer.requests().count(JWKS) == 2


def test_the_service_refreshes_at_most_once_a_minute() -> None:
    store = KeyStore(issuer="https://idp.example.org")
    assert store._refresh_interval == 60
    assert store._fetch_timeout <= 5
    assert store._background_bounds == (300, 900)  # 5 to 15 minutes
    assert store.background_interval == 600


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, 600),  # no header: about ten minutes
        ("public, max-age=720", 720),
        ("max-age=0, must-revalidate", 300),  # never more often than every 5 minutes
        ("no-cache", 600),
        ('MAX-AGE="86400"', 900),  # never less often than every 15 minutes
        ("max-age=-5", 600),
        ("max-age=lots", 600),
    ],
)
def test_the_background_interval_follows_max_age_within_bounds(
    header: str | None, seconds: float
) -> None:
    assert background_interval(max_age(header), BACKGROUND_BOUNDS_S) == seconds


async def wait_until_accepted(verifier: TokenVerifier, bearer: str, bound_s: float) -> float:
    """Polls until ``bearer`` is accepted; how long that took. Fails after ``bound_s``."""
    started = trio.current_time()
    with trio.fail_after(bound_s):
        while True:
            try:
                await verifier.verify(bearer)
                return trio.current_time() - started
            except Unauthenticated:
                await trio.sleep(0.05)


async def test_a_flood_of_unknown_kids_does_not_delay_a_real_rotation(issuer: Issuer) -> None:
    """The on-demand refresh is rate limited (here as in the service: a minute), so made-up
    kids use it up; the background refresh, here every second (the JWKS's max-age=1 within
    test bounds), still brings the rotated key in."""
    issuer.cache_for(1)
    store = KeyStore(issuer=issuer.url, background_bounds=(0.5, 5))
    verifier = TokenVerifier(Settings(oidc_issuer=issuer.url, oidc_audience=AUDIENCE), store)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.keep_fresh)
        await wait_until_accepted(verifier, token(issuer), bound_s=10)
        assert store.background_interval == 1
        for _ in range(30):  # the flood: tokens of keys nobody publishes
            reason = await unauthenticated(verifier, token(issuer, foreign_key=True))
            assert reason == "unknown signing key"
        issuer.rotate()
        rotated = token(issuer)
        await wait_until_accepted(verifier, rotated, bound_s=15)  # the rate limit is 60 s
        nursery.cancel_scope.cancel()
    assert issuer.requests().count(DISCOVERY) == 1


async def test_a_year_long_max_age_is_cut_to_the_upper_bound(issuer: Issuer) -> None:
    issuer.cache_for(365 * 24 * 3600)
    store = KeyStore(issuer=issuer.url, background_bounds=(0.5, 2))
    await store.refresh()
    assert store.background_interval == 2


# --- a provider that is down or hangs ---------------------------------------------------------


async def test_a_provider_down_at_start_gives_unavailable_at_once_then_recovers(
    mock_clock: MockClock,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    verifier = verifier_for(url, retry_interval=0.5)
    started = time.monotonic()
    reason = await unauthenticated(verifier, stranger_token(url))
    assert reason == "identity provider unavailable: cannot connect"
    assert time.monotonic() - started < 1
    fetches = verifier._keys.fetches
    await unauthenticated(verifier, stranger_token(url))
    assert verifier._keys.fetches == fetches  # no retry within the retry interval
    issuer = start_issuer(port=port)
    try:
        issuer.add_client(AGENT, SECRET, PERMISSIONS)
        mock_clock.jump(0.6)  # past the retry interval
        assert (await verifier.verify(token(issuer))).cluster_client_id == AGENT
    finally:
        issuer.stop()


async def test_a_hanging_provider_gives_unavailable_within_the_fetch_bound(
    issuer: Issuer,
) -> None:
    bearer = token(issuer)
    issuer.stall(30)
    verifier = verifier_for(issuer.url, fetch_timeout=1, retry_interval=30)
    reasons: list[str] = []

    async def one() -> None:
        reasons.append(await unauthenticated(verifier, bearer))

    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        for _ in range(5):  # concurrent requests share the one bounded fetch
            nursery.start_soon(one)
    assert time.monotonic() - started < 2
    assert reasons == ["identity provider unavailable: no answer within 1 s"] * 5
    started = time.monotonic()
    await unauthenticated(verifier, bearer)  # within the retry interval: no new wait
    assert time.monotonic() - started < 0.2
    assert verifier._keys.fetches == 1


async def test_a_provider_down_later_keeps_known_keys_working(issuer: Issuer) -> None:
    verifier = verifier_for(issuer.url, refresh_interval=0, retry_interval=0)
    await verifier.verify(token(issuer))
    later = token(issuer)  # same key, not yet seen
    stranger = token(issuer, foreign_key=True)
    issuer.stop()
    assert (await verifier.verify(later)).cluster_client_id == AGENT
    reason = await unauthenticated(verifier, stranger)
    assert reason.startswith("identity provider unavailable")


# --- through a real server ----------------------------------------------------------------------


def test_the_server_discovers_the_issuer_and_takes_its_tokens(
    issuer: Issuer, tokens: TokenFactory, tmp_path: Path
) -> None:
    with running_server(oidc_env(issuer.url, tokens, tmp_path), tmp_path) as server:
        agent = token(issuer)
        status, body = rpc(server, agent, "products.create", name="abaqus")
        assert status == 200 and body["result"]["name"] == "abaqus"
        for _ in range(10):
            assert rpc(server, token(issuer))[1]["result"] == [body["result"]]
        # one fetch of each, though eleven tokens came
        assert issuer.requests().count(DISCOVERY) == 1
        assert issuer.requests().count(JWKS) == 1
        # a test-only TokenFactory key is not trusted here: the issuer's keys are
        status, body = rpc(server, tokens.mint("admin", iss=issuer.url))
        assert status == 401 and body["error"]["data"]["reason"] == "unknown signing key"
    assert server.process.returncode == 0  # the background refresh does not hold shutdown


def test_the_server_answers_quickly_when_the_provider_is_down(
    tokens: TokenFactory, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with running_server(oidc_env(url, tokens, tmp_path), tmp_path) as server:
        for _ in range(3):
            started = time.monotonic()
            status, body = rpc(server, stranger_token(url))
            assert time.monotonic() - started < 2
            assert status == 401
            assert body["error"]["code"] == -32001
            assert body["error"]["data"]["reason"].startswith("identity provider unavailable")


def test_a_hanging_provider_does_not_block_the_server(
    issuer: Issuer, tokens: TokenFactory, tmp_path: Path
) -> None:
    bearer = token(issuer)
    issuer.stall(60)
    with running_server(oidc_env(issuer.url, tokens, tmp_path), tmp_path) as server:
        answers: list[tuple[float, Any]] = []

        async def call() -> None:
            started = time.monotonic()
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.post(
                    server.url + "/rpc",
                    json={"jsonrpc": "2.0", "method": "products.list", "id": 1},
                    headers={"Authorization": f"Bearer {bearer}"},
                )
            answers.append((time.monotonic() - started, response.json()))

        async def health() -> None:
            await trio.sleep(0.5)  # while the fetch hangs
            started = time.monotonic()
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.get(server.url + "/healthz")
            assert response.status_code == 200
            assert time.monotonic() - started < 1

        async def scenario() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call)
                nursery.start_soon(health)

        trio.run(scenario)
        [(elapsed, body)] = answers
        assert elapsed < 7  # the fetch bound (5 s) and a margin
        assert body["error"]["data"]["reason"].startswith("identity provider unavailable")
        started = time.monotonic()
        assert rpc(server, bearer)[0] == 401  # the failure is remembered: no second wait
        assert time.monotonic() - started < 1


# --- logs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("log_format", "level"), [("plain", "INFO"), ("json", "DEBUG")])
def test_the_server_log_never_contains_a_token(
    issuer: Issuer, tokens: TokenFactory, tmp_path: Path, log_format: str, level: str
) -> None:
    sent: list[str] = []
    env = oidc_env(issuer.url, tokens, tmp_path, LMRPC_LOG_FORMAT=log_format, LMRPC_LOG_LEVEL=level)
    with running_server(env, tmp_path) as server:
        good = token(issuer)
        header, payload, signature = good.split(".")
        bad = [
            f"{header}.{payload}.{signature[::-1]}",  # tampered
            token(issuer, ttl=-600),  # expired
            token(issuer, foreign_key=True),  # unknown key
            token(issuer, claims={"aud": "other"}),  # wrong audience
            f"{header}.{payload}",  # malformed
            "not-a-token-at-all-" + signature[:20],
        ]
        for bearer in [good, *bad, good]:
            sent.append(bearer)
            rpc(server, bearer)
            rpc(server, bearer, "no.such.method")
            rpc(server, bearer, "products.create", name=bearer[:200])  # a token in a param
    log = server.log.read_text()
    assert "signing keys loaded" in log  # the log is written, and auth logs to it
    assert "products.create" in log  # one line per call, the calls included
    for bearer in sent:
        for part in {bearer, *bearer.split(".")}:
            if len(part) >= 16:
                assert part not in log, f"a token (part) is in the server log: {part[:20]}..."
