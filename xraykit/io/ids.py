"""X-Ray's entity ids as 64-bit numbers, so that joins on them need no string hashing.

Segment and subsegment ids are 16 lower-case hex digits (xray-facts §1): exactly one 64-bit
number each. Turning a column of them into numbers is a few vectorised steps over the Arrow
buffer; comparing, hashing and sorting numbers is then several times faster than doing so with
the strings, and makes no Python object per id. Any other form of id makes :func:`hex_ids`
return None, and the caller compares the strings instead.

>>> import pyarrow as pa
>>> numbers, present = hex_ids(pa.array(["00000000000000ff", None, "70de5b6f19ff9a0a"]))
>>> [hex(int(n)) for n in numbers], present.tolist()
(['0xff', '0x0', '0x70de5b6f19ff9a0a'], [True, False, True])
>>> hex_ids(pa.array(["not-an-x-ray-id!"])) is None
True
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xraykit.io.memory import POOL as _POOL

__all__ = ["hex_ids"]

_STEP = 1 << 14  # ids converted at a time
_DIGIT = np.full(256, 255, dtype=np.uint8)  # hex digit value of each byte; 255: not one
_DIGIT[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)


def hex_ids(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray] | None:
    """Ids as uint64 numbers (one-to-one) and a mask of the present ones (a missing id is 0).

    Returns None when a present id is not 16 lower-case hex digits (upper case too: "AB" and
    "ab" are different strings but would be the same number).
    """
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    present = np.ones(len(values), dtype=bool)
    parts, at = [], 0
    for chunk in chunks:
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            return None
        size = len(chunk)
        if chunk.null_count:
            present[at : at + size] = chunk.is_valid().to_numpy(zero_copy_only=False)
            chunk = pc.drop_null(chunk, memory_pool=_POOL)
        at += size
        n = len(chunk)
        if n == 0:
            continue
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], width)[chunk.offset : chunk.offset + n + 1]
        if offsets[-1] - offsets[0] != 16 * n or (np.diff(offsets) != 16).any():
            return None
        text = np.frombuffer(chunk.buffers()[2], np.uint8, count=16 * n, offset=int(offsets[0]))
        out = np.empty(n, dtype=np.uint64)
        for lo in range(0, n, _STEP):  # in steps: the temporaries stay small
            digits = _DIGIT[text[16 * lo : 16 * (lo + _STEP)]].reshape(-1, 16)
            if (digits == 255).any():
                return None
            # two digits make a byte; eight bytes, read big-endian, the number
            pairs = (digits[:, 0::2] << 4) | digits[:, 1::2]
            out[lo : lo + len(pairs)] = np.ascontiguousarray(pairs).view(">u8").ravel()
        parts.append(out)
    numbers = np.zeros(len(present), dtype=np.uint64)
    if parts:
        numbers[present] = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return numbers, present
