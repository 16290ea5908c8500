"""The connection table's rule, against a model: never more connections than the cap, a
connection busy with a request is never dropped, and past the cap the one dropped is the
one that has waited longest for its next request head."""

from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from lmrpc.connections import ConnectionTable, GuardedTCPServer, default_max_connections

# (operation, index of an earlier connection): connect, request begins, request ends, close
operations = st.lists(
    st.tuples(st.sampled_from(["connect", "busy", "waiting", "close"]), st.integers(0, 50)),
    max_size=200,
)


class Connection:
    """Stands in for a GuardedTCPServer: the table only keeps and compares them."""


def as_guarded(connection: Connection) -> GuardedTCPServer:
    return cast(GuardedTCPServer, connection)


@given(cap=st.integers(1, 8), steps=operations)
def test_the_cap_holds_and_the_longest_waiting_connection_makes_room(
    cap: int, steps: list[tuple[str, int]]
) -> None:
    table = ConnectionTable(cap)
    made: list[Connection] = []
    open_: set[Connection] = set()
    waiting: list[Connection] = []  # the model: oldest first
    for operation, index in steps:
        if operation == "connect":
            new = Connection()
            made.append(new)
            dropped: Any = table.admit(as_guarded(new))
            expected = None
            if len(open_) >= cap:
                expected = waiting[0] if waiting else new
            assert dropped is expected
            if expected is not None:
                open_.discard(expected)
                if expected in waiting:
                    waiting.remove(expected)
            if expected is not new:
                open_.add(new)
                waiting.append(new)
        elif made:
            connection = made[index % len(made)]
            if operation == "busy":
                table.busy(as_guarded(connection))
                if connection in waiting:
                    waiting.remove(connection)
            elif operation == "waiting":
                table.waiting(as_guarded(connection))
                if connection in open_:
                    if connection in waiting:
                        waiting.remove(connection)
                    waiting.append(connection)
            else:
                table.remove(as_guarded(connection))
                open_.discard(connection)
                if connection in waiting:
                    waiting.remove(connection)
        assert len(table) == len(open_) <= cap


@given(open_files=st.integers(1, 10_000_000))
def test_the_default_cap_leaves_room_for_the_process_own_files(open_files: int) -> None:
    cap = default_max_connections(open_files)
    assert cap >= 16
    if open_files >= 116:
        assert cap <= open_files - 100  # room for databases, logs, keys
    assert cap >= open_files * 9 // 10 - 100  # and no more than that is held back
