"""The smallest end-to-end path: a real server, a real token, one call."""

from tests.server import Server
from tests.tokens import TokenFactory


def test_create_and_list_product(server: Server, tokens: TokenFactory) -> None:
    token = tokens.mint("product:create", "product:read")
    created = server.rpc(token, "products.create", {"name": "abaqus"})
    assert created["result"]["name"] == "abaqus"
    listed = server.rpc(token, "products.list")
    assert listed["result"] == [created["result"]]
