"""The bookings insert of a group commit: one statement for any number of rows, each
booking answered with the id and values stored for it; on both backends."""

from sqlalchemy import select

from storage import admission, bookings
from storage.facade import Storage
from storage.schema import bookings as booking_rows
from tests.factories import make_feature, make_job


async def test_many_bookings_and_equal_ones_get_their_own_rows(storage: Storage) -> None:
    features = [await make_feature(storage, 10_000) for _ in range(3)]
    jobs = [await make_job(storage) for _ in range(4)]
    # 1,200 rows, every (job, feature, quantity) many times: equal rows are interchangeable
    requests = [(jobs[i % 4], features[i % 3], 1 + i % 2) for i in range(1_200)]
    created = await storage.write(lambda conn: admission.insert_bookings(conn, requests))

    assert [(b["job_id"], b["feature_id"], b["quantity"]) for b in created] == requests
    assert len({b["id"] for b in created}) == len(requests)
    stored = await storage.read(
        lambda conn: {
            row.id: (row.job_id, row.feature_id, row.quantity)
            for row in conn.execute(select(booking_rows))
        }
    )
    assert stored == {b["id"]: (b["job_id"], b["feature_id"], b["quantity"]) for b in created}
    # the time as answered is the time stored, in the column's own format
    some = created[-1]
    assert await storage.read(lambda conn: bookings.get(conn, some["id"])) == some


async def test_no_bookings_no_statement(storage: Storage) -> None:
    assert await storage.write(lambda conn: admission.insert_bookings(conn, [])) == []
