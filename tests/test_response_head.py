"""A response's head goes out with its body in one send (lmrpc/response_head.py), and an
informational head (``100 Continue``) at once. Against a real ``lmrpc serve``, over a raw
socket driven with h11."""

import json

import h11
import pytest

from lmrpc.response_head import is_final_head
from tests.raw_http import CALL, post_headers, raw_client
from tests.server import Server
from tests.tokens import TokenFactory


@pytest.fixture
def server(shared_server: Server) -> Server:
    """Any server with the default settings: these tests create no data."""
    return shared_server


@pytest.mark.parametrize(
    "data, final",
    [
        (b"HTTP/1.1 200 \r\ncontent-length: 2\r\n\r\n", True),
        (b"HTTP/1.1 401 \r\n\r\n", True),
        (b"HTTP/1.1 100 \r\n\r\n", False),
        (b'{"jsonrpc":"2.0"}', False),
        (b"", False),
    ],
)
def test_final_heads_are_told_from_other_bytes(data: bytes, final: bool) -> None:
    assert is_final_head(data) is final


def test_the_head_and_the_body_arrive_together(server: Server, tokens: TokenFactory) -> None:
    with raw_client(server) as client:
        client.head(post_headers(tokens.mint("admin"), len(CALL)))
        client.body(CALL)
        first = client.sock.recv(65536)  # one send on loopback: one read takes it whole
        client.http.receive_data(first)
        response = client.http.next_event()
        assert isinstance(response, h11.Response) and response.status_code == 200
        data = client.http.next_event()
        assert isinstance(data, h11.Data)
        assert json.loads(data.data)["result"][0] == "flexlm"


def test_100_continue_is_sent_before_the_body(server: Server, tokens: TokenFactory) -> None:
    """The client waits for it: were it held for what follows, the exchange would hang."""
    headers = {**post_headers(tokens.mint("admin"), len(CALL)), "Expect": "100-continue"}
    with raw_client(server) as client:
        client.head(headers)
        client.http.receive_data(client.sock.recv(65536))  # times out if it never comes
        informational = client.http.next_event()
        assert isinstance(informational, h11.InformationalResponse)
        assert informational.status_code == 100
        client.body(CALL)
        answer = client.answer()
        assert answer.status == 200
        assert json.loads(answer.body)["result"][0] == "flexlm"
