"""A hypothesis state machine drives admission through the real dispatcher and storage and
checks it against a plain model after every step (DESIGN.md §6), on both backends.

Invariants: booked_total equals the sum of the feature's bookings; every admission
satisfied the rule at its moment (the model decides each call before it is made, and the
service must agree exactly); refused calls change nothing.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, select

from lmrpc.errors import RpcError
from storage.facade import Storage
from storage.schema import bookings, configurations, features, jobs, products
from tests.conftest import Rpc
from tests.factories import make_feature

# CI runs a short sweep; LMRPC_STATEFUL_EXAMPLES=2000 (README, "Tests") runs a long one.
SEQUENCES_PER_BACKEND = int(os.environ.get("LMRPC_STATEFUL_EXAMPLES", 60))
STEPS_PER_SEQUENCE = 12
FEATURES = 3


@dataclass
class ModelFeature:
    id: int
    name: str
    total: int
    used: int
    reserved: int

    def available(self, booked: int) -> int:
        return self.total - self.used - self.reserved - booked


@dataclass
class Model:
    features: dict[int, ModelFeature] = field(default_factory=dict)
    bookings: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # id → job, feature, q
    jobs: set[int] = field(default_factory=set)

    def booked(self, feature_id: int) -> int:
        return sum(q for _, f, q in self.bookings.values() if f == feature_id)


def _reset(conn: Any) -> None:
    """Empty the tables."""
    for table in (bookings, jobs, features, configurations, products):
        conn.execute(delete(table))


def _snapshot(
    conn: Any,
) -> tuple[dict[int, tuple[int, int, int, int]], dict[int, tuple[int, int, int]]]:
    feature_rows = {
        row.id: (row.total, row.used, row.reserved, row.booked_total)
        for row in conn.execute(select(features))
    }
    booking_rows = {
        row.id: (row.job_id, row.feature_id, row.quantity) for row in conn.execute(select(bookings))
    }
    return feature_rows, booking_rows


def machine_for(rpc: Rpc, storage: Storage, token: trio.lowlevel.TrioToken) -> type:
    def run(fn: Callable[[], Any]) -> Any:
        return trio.from_thread.run(fn, trio_token=token)

    def call(method: str, params: dict[str, Any]) -> tuple[Any, RpcError | None]:
        async def go() -> tuple[Any, RpcError | None]:
            try:
                return await rpc(method, params), None
            except RpcError as error:
                return None, error

        result: tuple[Any, RpcError | None] = run(go)
        return result

    class Admission(RuleBasedStateMachine):
        job_ids = Bundle("jobs")
        booking_ids = Bundle("bookings")

        def __init__(self) -> None:
            super().__init__()
            self.model = Model()
            self.slurm_ids = iter(range(1, 10**9))

        @initialize(
            counters=st.lists(
                st.tuples(st.integers(0, 12), st.integers(0, 4), st.integers(0, 3)),
                min_size=FEATURES,
                max_size=FEATURES,
            )
        )
        def setup(self, counters: list[tuple[int, int, int]]) -> None:
            run(lambda: storage.write(_reset))
            for index, (total, used, reserved) in enumerate(counters):
                name = f"f{index}"
                feature_id = run(
                    partial(
                        make_feature,
                        storage,
                        total,
                        used=used,
                        reserved=reserved,
                        product="p",
                        name=name,
                    )
                )
                self.model.features[feature_id] = ModelFeature(
                    feature_id, name, total, used, reserved
                )

        def _feature(self, index: int) -> ModelFeature:
            return list(self.model.features.values())[index % FEATURES]

        @rule(target=job_ids)
        def create_job(self) -> int:
            job, error = call(
                "jobs.create",
                {"slurm_job_id": str(next(self.slurm_ids)), "username": "u", "lead_host": "h"},
            )
            assert error is None, error
            self.model.jobs.add(job["id"])
            return int(job["id"])

        @rule(
            target=job_ids,
            wanted=st.lists(
                st.tuples(st.integers(0, FEATURES - 1), st.integers(1, 5)), min_size=1, max_size=3
            ),
        )
        def create_job_with_bookings(self, wanted: list[tuple[int, int]]) -> Any:
            per_feature: dict[int, int] = {}
            for index, quantity in wanted:
                feature = self._feature(index)
                per_feature[feature.id] = per_feature.get(feature.id, 0) + quantity
            short = [
                fid
                for fid, q in per_feature.items()
                if q > self.model.features[fid].available(self.model.booked(fid))
            ]
            params = {
                "slurm_job_id": str(next(self.slurm_ids)),
                "username": "u",
                "lead_host": "h",
                "bookings": [
                    {"product_feature": f"p.{self._feature(i).name}", "quantity": q}
                    for i, q in wanted
                ],
            }
            job, error = call("jobs.create", params)
            if short:
                assert error is not None and error.code == -32010, (job, error)
                assert error.data["feature_id"] == short[0]
                return multiple_none()
            assert error is None, error
            assert [(b["feature_id"], b["quantity"]) for b in job["bookings"]] == [
                (self._feature(i).id, q) for i, q in wanted
            ]
            self.model.jobs.add(job["id"])
            for booking in job["bookings"]:
                self.model.bookings[booking["id"]] = (
                    job["id"],
                    booking["feature_id"],
                    booking["quantity"],
                )
            return int(job["id"])

        @rule(
            target=booking_ids,
            job=job_ids,
            index=st.integers(0, FEATURES - 1),
            quantity=st.integers(1, 6),
        )
        def book(self, job: int, index: int, quantity: int) -> Any:
            feature = self._feature(index)
            available = feature.available(self.model.booked(feature.id))
            booking, error = call(
                "bookings.create", {"job_id": job, "feature_id": feature.id, "quantity": quantity}
            )
            if job not in self.model.jobs:
                assert error is not None and error.code == -32004
                return multiple_none()
            if quantity > available:
                assert error is not None and error.code == -32010, (booking, error)
                assert error.data["available"] == max(available, 0)
                return multiple_none()
            assert error is None, error
            self.model.bookings[booking["id"]] = (job, feature.id, quantity)
            return int(booking["id"])

        @rule(booking=consumes(booking_ids))
        def delete_booking(self, booking: int) -> None:
            result, error = call("bookings.delete", {"id": booking})
            if booking in self.model.bookings:
                assert result == {"deleted": booking}, error
                del self.model.bookings[booking]
            else:
                assert error is not None and error.code == -32004

        @rule(job=consumes(job_ids))
        def delete_job(self, job: int) -> None:
            result, error = call("jobs.delete", {"id": job})
            assert result == {"deleted": job}, error
            self.model.jobs.discard(job)
            self.model.bookings = {b: v for b, v in self.model.bookings.items() if v[0] != job}

        @rule(
            changes=st.lists(
                st.tuples(st.integers(0, FEATURES - 1), st.integers(0, 12), st.integers(0, 6)),
                min_size=1,
                max_size=FEATURES,
                unique_by=lambda change: change[0],
            )
        )
        def bulk_update(self, changes: list[tuple[int, int, int]]) -> None:
            entries = [
                {
                    "product_name": "p",
                    "feature_name": self._feature(i).name,
                    "total": total,
                    "used": used,
                }
                for i, total, used in changes
            ]
            result, error = call("features.bulk_update", {"features": entries})
            assert result == {"updated": len(changes)}, error
            for i, total, used in changes:
                self._feature(i).total, self._feature(i).used = total, used

        @rule(index=st.integers(0, FEATURES - 1), reserved=st.integers(0, 4))
        def update_reserved(self, index: int, reserved: int) -> None:
            feature = self._feature(index)
            result, error = call("features.update", {"id": feature.id, "reserved": reserved})
            assert error is None, error
            assert result["reserved"] == reserved
            assert result["booked_total"] == self.model.booked(feature.id)
            feature.reserved = reserved

        @invariant()
        def storage_matches_model(self) -> None:
            if not self.model.features:
                return
            feature_rows, booking_rows = run(lambda: storage.read(_snapshot))
            assert booking_rows == self.model.bookings
            for feature in self.model.features.values():
                total, used, reserved, booked_total = feature_rows[feature.id]
                assert (total, used, reserved) == (feature.total, feature.used, feature.reserved)
                assert booked_total == self.model.booked(feature.id)

    return Admission


def multiple_none() -> Any:
    from hypothesis.stateful import multiple

    return multiple()


async def test_admission_state_machine(rpc: Rpc, storage: Storage) -> None:
    machine = machine_for(rpc, storage, trio.lowlevel.current_trio_token())
    config = settings(
        max_examples=SEQUENCES_PER_BACKEND,
        stateful_step_count=STEPS_PER_SEQUENCE,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    await trio.to_thread.run_sync(lambda: run_state_machine_as_test(machine, settings=config))
