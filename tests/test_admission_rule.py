"""The pure admission rule (no IO)."""

from hypothesis import given
from hypothesis import strategies as st

from actors.rule import Counters, admit


def test_admits_until_total_then_refuses_with_what_is_left() -> None:
    verdicts, after = admit(Counters(total=10, used=2, reserved=1, booked_total=3), [3, 2, 1])
    assert [v.admitted for v in verdicts] == [True, False, True]
    assert [v.available for v in verdicts] == [4, 1, 1]
    assert after.booked_total == 7


def test_used_above_free_reports_zero_available() -> None:
    [verdict], after = admit(Counters(total=10, used=12, reserved=0, booked_total=0), [1])
    assert not verdict.admitted and verdict.available == 0
    assert after.booked_total == 0


@given(
    total=st.integers(0, 1000),
    used=st.integers(0, 1000),
    reserved=st.integers(0, 1000),
    booked=st.integers(0, 1000),
    quantities=st.lists(st.integers(1, 200), max_size=50),
)
def test_never_admits_past_total(
    total: int, used: int, reserved: int, booked: int, quantities: list[int]
) -> None:
    start = Counters(total, used, reserved, booked)
    verdicts, after = admit(start, quantities)
    admitted = sum(q for q, v in zip(quantities, verdicts, strict=True) if v.admitted)
    assert after.booked_total == booked + admitted
    running = booked
    for quantity, verdict in zip(quantities, verdicts, strict=True):
        fits = running + used + reserved + quantity <= total
        assert verdict.admitted == fits
        if fits:
            running += quantity
