"""A block of usage samples as a few bytes: each sample's fields as differences from the
previous sample's (zigzag varints), deflated. Counters move little from one bucket to the
next, so most fields take one byte before deflate and less after; that is what keeps a year
of history for 1,000 features near 100 MB where a row per bucket would take ten times that.
"""

import zlib
from collections.abc import Iterator, Sequence

from storage.series import Sample


def _varint(value: int, out: bytearray) -> None:
    zigzag = value * 2 if value >= 0 else -value * 2 - 1
    while zigzag >= 0x80:
        out.append(zigzag & 0x7F | 0x80)
        zigzag >>= 7
    out.append(zigzag)


def _varints(data: bytes) -> Iterator[int]:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            continue
        yield value // 2 if value % 2 == 0 else -(value + 1) // 2
        value = shift = 0


def pack(samples: Sequence[Sample], start: int, step: int) -> bytes:
    """Samples of one tier (all of width ``step``, at or after ``start``), ordered by time."""
    out = bytearray()
    previous = (start // step - 1, 0, 0, 0, 0)
    for s in samples:
        fields = (s.t // step, s.total, s.used, s.reserved, s.booked)
        for now, before in zip(fields, previous, strict=True):
            _varint(now - before, out)
        _varint(s.peak_used - s.used, out)
        previous = fields
    return zlib.compress(bytes(out), 9)


def unpack(data: bytes, start: int, step: int) -> list[Sample]:
    values = list(_varints(zlib.decompress(data)))
    samples = []
    index, total, used, reserved, booked = start // step - 1, 0, 0, 0, 0
    for at in range(0, len(values), 6):
        d_index, d_total, d_used, d_reserved, d_booked, over = values[at : at + 6]
        index, total, used = index + d_index, total + d_total, used + d_used
        reserved, booked = reserved + d_reserved, booked + d_booked
        samples.append(Sample(index * step, step, total, used, reserved, booked, used + over))
    return samples
