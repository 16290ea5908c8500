"""A block of usage samples as a few bytes: each field as a column of differences from the
previous sample's value, deflated. Counters move little from one bucket to the next, so the
columns are mostly zeros and small numbers, which deflate to a byte or two per sample; that
is what keeps a year of history for 1,000 features near 50 MB where a row per bucket would
take a gigabyte. The arithmetic runs in C (``array``, ``itertools.accumulate``, ``zlib``):
the hourly roll-up rewrites a week's block per feature.
"""

import zlib
from array import array
from collections.abc import Sequence
from itertools import accumulate

from storage.series import Sample

_FIELDS = 6  # bucket index, total, used, reserved, booked, peak_used - used


def _differences(values: list[int]) -> list[int]:
    return [now - before for now, before in zip(values, [0, *values][:-1], strict=True)]


def pack(samples: Sequence[Sample], start: int, step: int) -> bytes:
    """Samples of one tier (all of width ``step``, at or after ``start``), ordered by time."""
    columns = (
        [(s.t - start) // step for s in samples],
        [s.total for s in samples],
        [s.used for s in samples],
        [s.reserved for s in samples],
        [s.booked for s in samples],
        [s.peak_used - s.used for s in samples],
    )
    flat = array("i", [value for column in columns for value in _differences(column)])
    return zlib.compress(flat.tobytes(), 9)


def unpack(data: bytes, start: int, step: int) -> list[Sample]:
    flat = array("i")
    flat.frombytes(zlib.decompress(data))
    count = len(flat) // _FIELDS
    index, total, used, reserved, booked, over = (
        list(accumulate(flat[at * count : (at + 1) * count])) for at in range(_FIELDS)
    )
    return [
        Sample(start + i * step, step, t, u, r, b, u + o)
        for i, t, u, r, b, o in zip(index, total, used, reserved, booked, over, strict=True)
    ]
