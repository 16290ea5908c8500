"""The dashboard at ``/ui/``: served by a real ``lmrpc serve`` on both backends (the tests
that touch no storage share one server on SQLite), signed in with a real one-time link from
``lmrpc ui``, and driven in Debian's headless Chromium.

Screenshots go to ``$LMRPC_TEST_ARTIFACTS`` (or the test's tmp dir); each path is printed.
"""

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc.jwk import RSAKey
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from lmrpc import keys
from lmrpc.settings import Settings
from lmrpc.ui import lifetimes, signin
from lmrpc.ui.routes import Dashboard
from storage import engine as storage_engine
from storage import history
from tests.oidc_issuer import AUDIENCE as ISSUER_AUDIENCE
from tests.oidc_issuer import Issuer, running_issuer
from tests.server import HTTP, Server, free_port, running_server, server_env
from tests.tokens import TokenFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EMBEDDED = {"LMRPC_OIDC_JWKS_FILE": None, "LMRPC_OIDC_ISSUER": None, "LMRPC_OIDC_AUDIENCE": None}
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
WAIT_MS = 20_000  # "does not hang" bound for the page to load under a busy machine


@dataclass
class Embedded:
    """A server in the embedded default, its environment (for ``lmrpc ui``) and its key."""

    server: Server
    env: dict[str, str]
    key: RSAKey

    @property
    def url(self) -> str:
        return self.server.url

    def admin(self) -> str:
        return keys.mint(self.key, client_id="cluster-a")

    def call(self, method: str, params: Any = None, token: str | None = None) -> Any:
        answer = self.server.rpc(token or self.admin(), method, params)
        assert "result" in answer, answer
        return answer["result"]

    def sign_in_link(self) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "lmrpc", "ui", "--url", self.url],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout.strip()


@contextmanager
def embedded_site(database_url: str, tokens: TokenFactory, directory: Path) -> Iterator[Embedded]:
    data_dir = directory / "data"
    env = server_env(database_url, tokens, data_dir, EMBEDDED)
    with running_server(env, directory) as srv:
        yield Embedded(srv, env, keys.load_or_create(data_dir))


@pytest.fixture
def embedded(database_url: str, tokens: TokenFactory, tmp_path: Path) -> Iterator[Embedded]:
    with embedded_site(database_url, tokens, tmp_path) as site:
        yield site


@pytest.fixture(scope="module")
def static_site(
    sqlite_template: Path, tokens: TokenFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Embedded]:
    """One embedded server, on SQLite only, for the tests that touch no storage (the page's
    files, sign-in codes, the page's answers to refused tokens): they share it."""
    directory = tmp_path_factory.mktemp("static-site")
    shutil.copy(sqlite_template, directory / "lmrpc.sqlite3")
    with embedded_site(f"sqlite:///{directory / 'lmrpc.sqlite3'}", tokens, directory) as site:
        yield site


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("LMRPC_TEST_ARTIFACTS") or tmp_path / "artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class Tab:
    page: Page
    problems: list[str]  # console errors (CSP violations among them) and uncaught exceptions

    def screenshot(self, artifacts: Path, request: pytest.FixtureRequest, what: str) -> None:
        name = request.node.name.replace("[", "-").replace("]", "")
        path = artifacts / f"{name}-{what}.png"
        self.page.screenshot(path=path, full_page=True)
        print(f"screenshot: {path}")


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    """A fresh browser context (own sessionStorage) that records every page error."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield Tab(page, problems)
    context.close()


def seed(site: Embedded) -> None:
    """A product, a configuration with two features, agent reports, a job and a heartbeat."""
    product = site.call("products.create", {"name": "abaqus"})
    site.call(
        "configurations.create",
        {
            "name": "abaqus-site",
            "cluster_client_id": "cluster-a",
            "type": "flexlm",
            "license_servers": [{"host": "lic1.example.org", "port": 27000}],
            "features": [
                {"name": "standard", "product_id": product["id"], "reserved": 2},
                {"name": "cae", "product_id": product["id"]},
            ],
        },
    )
    site.call(
        "features.bulk_update",
        {
            "features": [
                {"product_name": "abaqus", "feature_name": "standard", "total": 50, "used": 12},
                {"product_name": "abaqus", "feature_name": "cae", "total": 4, "used": 1},
            ]
        },
    )
    site.call(
        "jobs.create",
        {
            "slurm_job_id": "1001",
            "username": "alice",
            "lead_host": "node01",
            "bookings": [{"product_feature": "abaqus.standard", "quantity": 5}],
        },
    )
    site.call("clusters.report_status", {"interval": 60})


def code_of(link: str) -> str:
    fragment = urlsplit(link).fragment
    assert fragment.startswith("code="), link
    return fragment.removeprefix("code=")


def redeem(url: str, body: Any) -> httpx.Response:
    return HTTP.post(url + "/ui/session", json=body, timeout=30)


# --- HTTP: what the server sends -----------------------------------------------------------


def test_page_and_files_are_served_with_strict_headers(static_site: Embedded) -> None:
    page = HTTP.get(static_site.url + "/ui/", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert csp.startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    for name, content_type in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
    ]:
        answer = HTTP.get(f"{static_site.url}/ui/{name}", timeout=30)
        assert answer.status_code == 200, name
        assert answer.headers["content-type"] == content_type
        assert answer.headers["x-content-type-options"] == "nosniff"
    # every asset the page names is local: no CDN, no web font
    assert "http" not in page.text.replace('content="width', "")
    moved = HTTP.get(static_site.url + "/ui", timeout=30)
    assert (moved.status_code, moved.headers["location"]) == (308, "/ui/")
    config = HTTP.get(static_site.url + "/ui/config.json", timeout=30)
    assert config.json() == {"mode": "embedded"}
    assert config.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "path", ["/ui/nope.js", "/ui/../pyproject.toml", "/ui/%2e%2e/app.py", "/ui/vendor/"]
)
def test_only_the_page_files_are_served(static_site: Embedded, path: str) -> None:
    answer = HTTP.get(static_site.url + path, timeout=30)
    assert answer.status_code == 404
    assert "Traceback" not in answer.text


# --- the one-time sign-in code ---------------------------------------------------------------


def test_sign_in_link_works_once_and_grants_read_only(embedded: Embedded) -> None:
    link = embedded.sign_in_link()
    assert link.startswith(embedded.url + "/ui/#code=")
    code = code_of(link)
    first = redeem(embedded.url, {"code": code})
    assert first.status_code == 200, first.text
    token = first.json()["access_token"]
    assert first.json()["expires_in"] == lifetimes.SESSION_TTL_S
    assert embedded.server.rpc(token, "features.list")["result"] == []
    refused = embedded.server.rpc(token, "products.create", {"name": "abaqus"})
    assert refused["error"]["code"] == -32003
    again = redeem(embedded.url, {"code": code})
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_expired_or_malformed_codes_get_a_clear_answer(static_site: Embedded) -> None:
    data_dir = Path(static_site.env["LMRPC_DATA_DIR"])
    expired = signin.issue(data_dir, valid_for=-1)
    answer = redeem(static_site.url, {"code": expired})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
    assert "lmrpc ui" in answer.json()["reason"]
    for body in [{"code": "x" * 43}, {"code": 7}, {"nope": 1}, ["code"], "code"]:
        answer = redeem(static_site.url, body)
        assert answer.status_code == 400, body
        assert answer.json()["error"] in {"invalid_grant", "invalid_request"}
    garbage = HTTP.post(static_site.url + "/ui/session", content=b"\xff" * 100, timeout=30)
    assert (garbage.status_code, garbage.json()["error"]) == (400, "invalid_request")
    for large in (b"{" * 5000, iter([b"{" * 1000] * 5000)):  # with a length, and chunked
        answer = HTTP.post(static_site.url + "/ui/session", content=large, timeout=30)
        assert (answer.status_code, answer.json()["error"]) == (413, "invalid_request")


def test_racing_redeemers_of_one_code_have_one_winner(
    database_url: str, tokens: TokenFactory, tmp_path: Path
) -> None:
    """Two server processes, sixteen concurrent redeemers: exactly one gets a token."""
    data_dir = tmp_path / "data"
    env = server_env(database_url, tokens, data_dir, EMBEDDED)
    with running_server(env, tmp_path, workers=2) as srv:
        code = signin.issue(data_dir)
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: redeem(srv.url, {"code": code}), range(16)))
    assert sorted(a.status_code for a in answers) == [200] + [400] * 15


@pytest.fixture(scope="module")
def codes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("codes")


@given(candidate=st.text(max_size=60))
def test_only_issued_codes_redeem(codes_dir: Path, candidate: str) -> None:
    directory = codes_dir
    issued = signin.issue(directory)
    assert signin.redeem(directory, candidate) is None or candidate == issued
    assert signin.redeem(directory, issued) is not None
    assert signin.redeem(directory, issued) is None


# --- in the browser --------------------------------------------------------------------------


def open_signed_in(tab: Tab, site: Embedded) -> None:
    tab.page.goto(site.sign_in_link())
    expect(tab.page.locator("body[data-loaded=true]")).to_have_count(1)


def test_dashboard_signs_in_and_shows_the_api_numbers(
    embedded: Embedded, tab: Tab, artifacts: Path, request: pytest.FixtureRequest
) -> None:
    seed(embedded)
    page = tab.page
    open_signed_in(tab, embedded)
    assert page.url == embedded.url + "/ui/"  # the code left the address bar
    assert page.evaluate("sessionStorage.getItem('lmrpc.token')")
    for feature in embedded.call("features.list"):
        row = page.locator(f".feature[data-feature-id='{feature['id']}']")
        expect(row.locator(".name")).to_have_text(f"abaqus.{feature['name']}")
        available = (
            feature["total"] - feature["used"] - feature["booked_total"] - feature["reserved"]
        )
        for kind, value in [
            ("total", feature["total"]),
            ("used", feature["used"]),
            ("booked", feature["booked_total"]),
            ("reserved", feature["reserved"]),
            ("available", available),
        ]:
            expect(row.locator(f".num.{kind} b")).to_have_text(str(value))
        expect(row.locator(".bar")).to_have_attribute(
            "aria-label",
            f"{feature['used'] + feature['booked_total'] + feature['reserved']}"
            f" of {feature['total']} taken",
        )
    expect(page.locator("#jobs td").first).to_have_text("1001")
    expect(page.locator("#jobs")).to_contain_text("abaqus.standard \u00d7 5")
    expect(page.locator("#clusters")).to_contain_text("cluster-a")
    expect(page.locator("#clusters .badge")).to_have_text("healthy")
    tab.screenshot(artifacts, request, "desktop")
    fits_the_phone(page)
    tab.screenshot(artifacts, request, "phone")
    assert tab.problems == []


FITS = """() => document.documentElement.scrollWidth <= window.innerWidth
    && [...document.querySelectorAll('.uplot')].every((c) => c.offsetWidth <= window.innerWidth)"""


def fits_the_phone(page: Page) -> None:
    """On a phone-sized screen nothing is wider than the screen, the chart included (it
    resizes on the window's resize event, which the page gets after the viewport changed)."""
    page.set_viewport_size(PHONE)
    page.wait_for_function(FITS)


def test_a_used_link_says_so(static_site: Embedded, tab: Tab) -> None:
    link = static_site.sign_in_link()
    assert redeem(static_site.url, {"code": code_of(link)}).status_code == 200
    tab.page.goto(link)
    expect(tab.page.locator("#notice")).to_contain_text("expired or already used")
    assert tab.page.evaluate("sessionStorage.getItem('lmrpc.token')") is None
    assert [p for p in tab.problems if "400" not in p] == []  # the refused POST is logged


def test_token_without_feature_read_sees_a_clear_message(
    embedded: Embedded, tab: Tab, artifacts: Path, request: pytest.FixtureRequest
) -> None:
    seed(embedded)
    token = keys.mint(
        embedded.key, permissions=["license-manager:job:read", "license-manager:status:read"]
    )
    tab.page.add_init_script(f"sessionStorage.setItem('lmrpc.token', {token!r})")
    tab.page.goto(embedded.url + "/ui/")
    expect(tab.page.locator("body[data-loaded=true]")).to_have_count(1)
    expect(tab.page.locator("#features .problem")).to_have_text(
        "Your token lacks license-manager:feature:read, which this view needs (features.list)."
    )
    expect(tab.page.locator("#clusters")).to_contain_text("cluster-a")  # it may read those
    tab.screenshot(artifacts, request, "forbidden")
    assert tab.problems == []


def test_an_expired_session_asks_to_sign_in_again(static_site: Embedded, tab: Tab) -> None:
    expired = keys.mint(static_site.key, permissions=signin.READ_ONLY_PERMISSIONS, ttl=-120)
    tab.page.add_init_script(f"sessionStorage.setItem('lmrpc.token', {expired!r})")
    tab.page.goto(static_site.url + "/ui/")
    expect(tab.page.locator("#notice")).to_contain_text("Your session ended")
    expect(tab.page.locator("#notice")).to_contain_text("Run `lmrpc ui` on the server")
    expect(tab.page.locator("#features-section")).to_be_hidden()
    assert tab.page.evaluate("sessionStorage.getItem('lmrpc.token')") is None
    assert [p for p in tab.problems if "401" not in p] == []  # the refused call is logged


# --- with an OIDC issuer: Authorization Code with PKCE -----------------------------------------

DASHBOARD_CLIENT = "lmrpc-dashboard"


@dataclass
class OidcSite:
    server: Server
    issuer: Issuer

    def admin(self) -> str:
        return self.issuer.client_credentials("cluster-a", "agent-secret")


@pytest.fixture
def oidc_site(database_url: str, tokens: TokenFactory, tmp_path: Path) -> Iterator[OidcSite]:
    with running_issuer() as issuer:
        issuer.add_client("cluster-a", "agent-secret", ["license-manager:admin"])
        issuer.add_client(DASHBOARD_CLIENT, "", list(signin.READ_ONLY_PERMISSIONS))
        env = server_env(
            database_url,
            tokens,
            tmp_path / "data",
            {
                "LMRPC_OIDC_JWKS_FILE": None,
                "LMRPC_OIDC_ISSUER": issuer.url,
                "LMRPC_OIDC_AUDIENCE": ISSUER_AUDIENCE,
                "LMRPC_UI_CLIENT_ID": DASHBOARD_CLIENT,
            },
        )
        with running_server(env, tmp_path) as srv:
            yield OidcSite(srv, issuer)


def test_oidc_config_names_the_issuers_endpoints(oidc_site: OidcSite) -> None:
    issuer = oidc_site.issuer.url
    page = HTTP.get(oidc_site.server.url + "/ui/", timeout=30)
    assert f"connect-src 'self' {issuer}" in page.headers["content-security-policy"]
    config = HTTP.get(oidc_site.server.url + "/ui/config.json", timeout=30).json()
    assert config == {
        "mode": "oidc",
        "client_id": DASHBOARD_CLIENT,
        "scope": "openid",
        "audience": ISSUER_AUDIENCE,
        "authorization_endpoint": issuer + "/authorize",
        "token_endpoint": issuer + "/token",
    }
    refused = HTTP.post(oidc_site.server.url + "/ui/session", json={"code": "x"}, timeout=30)
    assert refused.status_code == 404  # one-time codes belong to the embedded default


async def test_oidc_config_explains_what_is_missing() -> None:
    without_client = Dashboard(Settings(oidc_issuer="http://127.0.0.1:9"))
    assert (await without_client.config())["reason"] == (
        "sign-in needs LMRPC_OIDC_ISSUER and LMRPC_UI_CLIENT_ID"
    )
    port = free_port()  # nothing listens there
    down = Dashboard(Settings(oidc_issuer=f"http://127.0.0.1:{port}", ui_client_id="ui"))
    config = await down.config()
    assert config["mode"] == "unavailable"
    assert config["reason"].startswith("identity provider:")
    assert "connect-src" not in down.content_security_policy()


def test_dashboard_signs_in_with_pkce(
    oidc_site: OidcSite, tab: Tab, artifacts: Path, request: pytest.FixtureRequest
) -> None:
    admin = oidc_site.admin()
    assert oidc_site.server.rpc(admin, "products.create", {"name": "ansys"})["result"]
    page = tab.page
    page.goto(oidc_site.server.url + "/ui/")
    expect(page.locator("#notice")).to_have_text("Sign in to see the licenses.")
    tab.screenshot(artifacts, request, "signed-out")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    assert page.url == oidc_site.server.url + "/ui/"  # code and state left the address bar
    expect(page.locator("#features")).to_have_text("No features yet.")
    seen = oidc_site.issuer.requests()
    assert any(
        line.startswith("GET /authorize?") and "code_challenge_method=S256" in line for line in seen
    )
    assert "POST /token" in seen
    assert tab.problems == []


# --- history, refusals and checkouts (the usage methods) ---------------------------------------


PAST_REPORTS = 12  # one every 10 minutes over the last two hours


def record_past_reports(database_url: str, feature: dict[str, Any]) -> None:
    """What an agent reporting every 10 minutes would have left over the last two hours
    (written as the report path writes it, at past times: a test cannot wait hours)."""
    engine = storage_engine.create(database_url)
    now = int(time.time())
    with engine.begin() as conn:
        for k in range(PAST_REPORTS, 0, -1):
            used = 10 + (k * 7) % 25
            history.record(conn, 60, now - k * 600, [(feature["id"], 50, used, 2, k % 6)])
    engine.dispose()


def test_history_chart_draws_after_reports_and_shows_a_refusal(
    embedded: Embedded,
    database_url: str,
    tab: Tab,
    artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    seed(embedded)
    standard = next(f for f in embedded.call("features.list") if f["name"] == "standard")
    record_past_reports(database_url, standard)
    checkouts = [
        {"username": "bob", "lead_host": "node07", "quantity": 3},
        {"username": "carol", "lead_host": "node09", "quantity": 2},
    ]
    for used in (14, 20, 26):
        report = {"product_name": "abaqus", "feature_name": "standard", "total": 50}
        embedded.call(
            "features.bulk_update", {"features": [{**report, "used": used, "checkouts": checkouts}]}
        )
    refused = embedded.server.rpc(
        embedded.admin(),
        "jobs.create",
        {
            "slurm_job_id": "1002",
            "username": "dave",
            "lead_host": "node11",
            "bookings": [{"product_feature": "abaqus.standard", "quantity": 40}],
        },
    )
    assert refused["error"]["code"] == -32010
    page = tab.page
    open_signed_in(tab, embedded)
    page.locator(f".feature[data-feature-id='{standard['id']}']").click()
    expect(page.locator("#history-feature")).to_have_text("abaqus.standard")
    chart = page.locator(
        f"#history .chart[data-feature-id='{standard['id']}'][data-range='86400'][data-drawn=true]"
    )
    expect(chart.locator("canvas")).to_have_count(1)
    # every past report and the ones just made: at least one point per 10 minutes
    assert int(chart.get_attribute("data-points") or 0) > PAST_REPORTS
    expect(chart).to_have_attribute("data-refused", "40")
    expect(page.locator("#history .refusals")).to_have_text(
        "Refused in this range: 40 licenses in 1 request."
    )
    rows = page.locator("#checkouts tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("bob")
    expect(rows.nth(0)).to_contain_text("node07")
    expect(page.locator("#by-user")).to_contain_text("carol")
    tab.screenshot(artifacts, request, "history")
    page.locator(".ranges button", has_text="7 d").click()
    week = page.locator("#history .chart[data-range='604800'][data-drawn=true]")
    expect(week.locator("canvas")).to_have_count(1)
    expect(week).to_have_attribute("data-refused", "40")
    tab.screenshot(artifacts, request, "history-week")
    fits_the_phone(page)
    tab.screenshot(artifacts, request, "history-phone")
    assert tab.problems == []


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"LMRPC_OIDC_ISSUER": "https://issuer.test/realms/hpc"}, "works only in embedded mode"),
        ({"LMRPC_MULTI_TENANCY": "1"}, "name the tenant: --organization ORG"),
    ],
)
def test_lmrpc_ui_refuses_what_cannot_sign_in(
    tmp_path: Path, setting: dict[str, str], message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMRPC_")}
    env.update(LMRPC_DATA_DIR=str(tmp_path), **setting)
    done = subprocess.run(
        [sys.executable, "-m", "lmrpc", "ui"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / signin.CODE_DIR).exists()
