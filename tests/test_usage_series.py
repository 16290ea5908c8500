"""Invariants of the usage series arithmetic and packing (pure, no IO), with hypothesis."""

from hypothesis import given
from hypothesis import strategies as st

from storage.packing import pack, unpack
from storage.series import Sample, finest, points, roll_up

MINUTE, HOUR = 60, 3600
COUNT = st.integers(0, 2**31 - 1)


@st.composite
def minute_samples(draw: st.DrawFn) -> list[Sample]:
    """Raw samples of one feature: distinct minutes within a few hours, any counters."""
    minutes = draw(st.lists(st.integers(0, 6 * 60), unique=True, max_size=80))
    samples = []
    for minute in sorted(minutes):
        used = draw(COUNT)
        peak = draw(st.integers(used, 2**31 - 1))
        samples.append(
            Sample(minute * MINUTE, MINUTE, draw(COUNT), used, draw(COUNT), draw(COUNT), peak)
        )
    return samples


@given(minute_samples())
def test_pack_round_trips(samples: list[Sample]) -> None:
    assert unpack(pack(samples, 0, MINUTE), 0, MINUTE) == samples


@given(minute_samples())
def test_roll_up_keeps_last_counters_and_the_peak(samples: list[Sample]) -> None:
    hours = roll_up(samples, HOUR)
    assert [h.t for h in hours] == sorted({s.t - s.t % HOUR for s in samples})
    for hour in hours:
        inside = [s for s in samples if hour.t <= s.t < hour.t + HOUR]
        last = inside[-1]
        assert (hour.total, hour.used, hour.reserved, hour.booked) == (
            last.total, last.used, last.reserved, last.booked,
        )  # fmt: skip
        assert hour.peak_used == max(s.peak_used for s in inside)
    # Rolling up in stages gives what rolling up at once does.
    assert roll_up(roll_up(samples, 15 * MINUTE), HOUR) == hours
    assert roll_up(hours, 24 * HOUR) == roll_up(samples, 24 * HOUR)


@given(
    minute_samples(),
    st.integers(0, 8 * HOUR),
    st.integers(1, 8 * HOUR),
    st.sampled_from([MINUTE, 5 * MINUTE, 7 * MINUTE, HOUR, 2 * HOUR]),
)
def test_series_covers_the_interval_without_gaps(
    samples: list[Sample], since: int, length: int, step: int
) -> None:
    until = since + length
    series = points(samples, None, since, until, step)
    first = since - since % step
    assert [p["t"] for p in series] == list(range(first, until, step))
    assert series[0]["t"] <= since < series[-1]["t"] + step  # no gap at either end
    for point in series:  # every sample is counted in exactly its own point's peak
        inside = [s.peak_used for s in samples if point["t"] <= s.t < point["t"] + step]
        if inside:
            assert point["peak_used"] == max(inside)


@given(minute_samples(), st.integers(0, 3), st.sampled_from([HOUR, 2 * HOUR, 3 * HOUR]))
def test_rolled_up_history_answers_coarse_steps_like_the_raw_one(
    samples: list[Sample], packed_hours: int, step: int
) -> None:
    """After the first hours are rolled up and their minutes dropped, a series at a step of
    whole hours is what it was before."""
    cut = packed_hours * HOUR
    rolled = roll_up([s for s in samples if s.t < cut], HOUR)
    mixed = finest([*rolled, *(s for s in samples if s.t >= cut)])
    assert points(mixed, None, 0, 7 * HOUR, step) == points(samples, None, 0, 7 * HOUR, step)


def test_finest_prefers_fine_samples_over_the_coarse_bucket_holding_them() -> None:
    minute = Sample(HOUR + 60, MINUTE, 5, 1, 0, 0, 1)
    hour = Sample(HOUR, HOUR, 5, 1, 0, 0, 3)
    other = Sample(2 * HOUR, HOUR, 5, 2, 0, 0, 2)
    assert finest([other, hour, minute]) == [minute, other]
