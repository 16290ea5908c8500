"""``/healthz`` answered in front of Quart (lmrpc/health_route.py), through a real server:
the same bytes Quart sent, 503 once the database is gone, and every other GET left to
Quart."""

import json
import time
from pathlib import Path

import psycopg

from tests.conftest import PG_ADMIN_URL, _new_pg_database
from tests.raw_http import NO_HANG_S, raw_client
from tests.server import HTTP, Server, running_server, server_env
from tests.tokens import TokenFactory

OK_BODY = b'{"status":"ok"}\n'  # what Quart's jsonify sent: compact, newline-terminated


def test_get_and_head_answer_ok_on_one_keep_alive_connection(shared_server: Server) -> None:
    with raw_client(shared_server) as client:
        for method in ["GET", "HEAD", "GET"]:
            client.head({}, target="/healthz", method=method)
            client.body(b"")
            answer = client.answer()
            assert answer.status == 200
            assert answer.headers[b"content-type"] == b"application/json"
            assert answer.headers[b"content-length"] == b"%d" % len(OK_BODY)
            assert answer.body == (OK_BODY if method == "GET" else b"")
            client.next_cycle()


def test_other_methods_on_healthz_get_405(shared_server: Server) -> None:
    with raw_client(shared_server) as client:
        client.head({"Content-Length": "0"}, target="/healthz", method="POST")
        answer = client.answer()
    assert answer.status == 405
    assert answer.headers[b"allow"] == b"GET, HEAD"


def test_other_gets_are_left_to_quart(shared_server: Server) -> None:
    with raw_client(shared_server) as client:

        def get(target: str) -> tuple[int, bytes, bytes]:
            client.head({}, target=target, method="GET")
            client.body(b"")
            answer = client.answer()
            client.next_cycle()
            return answer.status, answer.headers[b"content-type"], answer.body

        status, content_type, body = get("/openrpc.json")
        assert (status, content_type) == (200, b"application/json")
        assert "openrpc" in json.loads(body)
        assert get("/metrics") == (401, b"text/plain", b"missing bearer token")
        status, content_type, body = get("/ui/")
        assert (status, content_type) == (200, b"text/html; charset=utf-8")
        assert b"<title>lmrpc" in body
        assert get("/healthz/")[0] == 404  # only the exact path is the health route's


def test_healthz_says_503_and_why_once_the_database_is_gone(
    tokens: TokenFactory, tmp_path: Path
) -> None:
    """A database of its own, dropped under the running server (the shared PostgreSQL
    server stays up); SQLite's ``SELECT 1`` cannot be made to fail under a live process."""
    with _new_pg_database() as url:
        env = server_env(url, tokens, tmp_path / "data")
        with running_server(env, tmp_path) as server:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{url.rpartition("/")[2]}" WITH (FORCE)')
            deadline = time.monotonic() + NO_HANG_S
            # the answer may be one check old (storage/health.py); a connection each, since
            # Hypercorn closes one after 1,000 requests and these polls are quick
            while (answer := HTTP.get(server.url + "/healthz")).status_code == 200:
                assert time.monotonic() < deadline, "still 200 long after the database went"
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/json"
    document = json.loads(answer.content)
    assert list(document) == ["reason", "status"]  # sorted, as Quart's jsonify wrote it
    assert document["status"] == "unavailable"
    assert document["reason"].startswith("storage: ")
    assert answer.content.endswith(b"}\n")


def test_other_methods_on_rpc_get_405(shared_server: Server) -> None:
    with raw_client(shared_server) as client:
        for method in ["GET", "PUT"]:
            client.head({"Content-Length": "0"}, target="/rpc", method=method)
            client.body(b"")
            answer = client.answer()
            assert answer.status == 405
            assert answer.headers[b"allow"] == b"POST"
            assert answer.body == b"method not allowed\n"
            client.next_cycle()
