"""Burst buffering: token-bucket admission pacing with a bounded buffer.

A shaper in front of a pool's queue (GCRA form of a token bucket): tokens accrue at `rate`
per second up to `bucket_s * rate`; a paced request is released when a token is available,
in arrival order. Requests that find `buffer_s * rate` paced requests already waiting are
shed at once (`dropped`), the cheap failure a bounded buffer buys instead of a timeout after
the client's full deadline. Classes below PACING_BYPASS (P0) skip the buffer and use no
token: pacing protects them from the bursts of the others.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from pipelines.simulator.policies import PACING_BUCKET_S, PACING_BUFFER_S, PACING_BYPASS


def pace(
    arrival_us: np.ndarray,
    rank: np.ndarray,
    eligible: np.ndarray,
    rate_per_s: float,
    bucket_s: float = PACING_BUCKET_S,
    buffer_s: float = PACING_BUFFER_S,
    bypass: int = PACING_BYPASS,
) -> tuple[np.ndarray, np.ndarray]:
    """(release_us, rejected) for arrivals sorted by time; non-eligible ones pass as they are."""
    release = arrival_us.copy()
    rejected = np.zeros(len(arrival_us), dtype=bool)
    paced = np.flatnonzero(eligible & (rank >= bypass))
    if len(paced) == 0 or rate_per_s <= 0:
        return release, rejected
    step = 1e6 / rate_per_s  # microseconds per token
    tau = max(bucket_s * rate_per_s - 1, 0) * step  # burst tolerance of the bucket
    cap = max(1, int(buffer_s * rate_per_s))
    tat = -np.inf  # theoretical arrival time of the next conforming request
    held: deque[float] = deque()  # release times of admitted requests still buffered
    arr = arrival_us[paced].tolist()
    out_rel = np.empty(len(arr))
    out_rej = np.zeros(len(arr), dtype=bool)
    for i, a in enumerate(arr):
        while held and held[0] <= a:
            held.popleft()
        if len(held) >= cap:
            out_rej[i] = True
            out_rel[i] = a
            continue
        r = max(a, tat - tau)
        tat = max(r, tat) + step
        out_rel[i] = r
        if r > a:
            held.append(r)
    release[paced] = np.ceil(out_rel).astype(np.int64)
    rejected[paced] = out_rej
    return release, rejected
