"""GPU and queue time series derived from what actually ran (vectorized over busy intervals).

Per GPU and window (default 1 min):
- gpu_util: share of the window any kernel ran: request service time, or a batch job holding
  the GPU (including its stalled, low-occupancy periods) times the job's util level;
- sm_active: useful work only: request busy time x its model-class efficiency, job time x the
  job's own efficiency (stalled jobs ~0.1-0.25), so nominal - effective is a real loss;
- power_w: idle + a term in sm_active + a smaller term in gpu_util, capped (H100-like).
Per pool and window: queue_waiting = time-averaged number of attempts waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IDLE_W, SM_W, UTIL_W, MAX_W = 70.0, 480.0, 90.0, 700.0


@dataclass
class Intervals:
    """Half-open busy (or waiting) intervals [start_us, end_us) on a key (GPU or pool)."""

    key: np.ndarray  # int64
    start_us: np.ndarray  # int64
    end_us: np.ndarray  # int64
    util: np.ndarray  # float64: gpu_util weight per busy second
    sm: np.ndarray  # float64: sm_active weight per busy second


def split_by_window(
    start_us: np.ndarray, end_us: np.ndarray, window_us: int, n_windows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut intervals at window boundaries -> (interval index, window index, duration us)."""
    horizon = window_us * n_windows
    s = np.clip(start_us, 0, horizon)
    e = np.clip(end_us, 0, horizon)
    keep = np.flatnonzero(e > s)
    s, e = s[keep], e[keep]
    ws = s // window_us
    cnt = (e - 1) // window_us - ws + 1
    idx = np.repeat(np.arange(len(s)), cnt)
    first = np.repeat(np.cumsum(cnt) - cnt, cnt)
    w = ws[idx] + (np.arange(len(idx)) - first)
    dur = np.minimum(e[idx], (w + 1) * window_us) - np.maximum(s[idx], w * window_us)
    return keep[idx], w, dur


def window_sums(
    iv: Intervals,
    n_keys: int,
    window_us: int,
    n_windows: int,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Time-weighted util and sm per (key, window), as fractions of the window.

    With `rng`, the sm weight of every (interval, window) piece gets lognormal noise: a job's
    useful work fluctuates from minute to minute around its efficiency."""
    idx, w, dur = split_by_window(iv.start_us, iv.end_us, window_us, n_windows)
    flat = iv.key[idx] * n_windows + w
    size = n_keys * n_windows
    util = np.bincount(flat, weights=dur * iv.util[idx], minlength=size) / window_us
    smw = iv.sm[idx]
    if rng is not None:
        smw = smw * rng.lognormal(0.0, 0.12, len(idx))
    sm = np.bincount(flat, weights=dur * smw, minlength=size) / window_us
    return util.reshape(n_keys, n_windows), sm.reshape(n_keys, n_windows)


def gpu_series(
    requests: Intervals,
    jobs: Intervals,
    n_gpus: int,
    window_us: int,
    n_windows: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gpu_util, sm_active, power_w), each shaped (n_gpus, n_windows)."""
    u1, s1 = window_sums(requests, n_gpus, window_us, n_windows)
    u2, s2 = window_sums(jobs, n_gpus, window_us, n_windows, rng)
    util = np.clip(u1 + u2, 0.0, 1.0)
    sm = np.clip(np.minimum(s1 + s2, util), 0.0, 1.0)
    power = IDLE_W + SM_W * sm + UTIL_W * util + rng.normal(0.0, 3.0, util.shape)
    return util, sm, np.clip(power, IDLE_W * 0.85, MAX_W)


def hold_power(power: np.ndarray, watts: float, rng: np.random.Generator) -> np.ndarray:
    """Power of GPUs held at `watts` whatever their load (a block of the power array)."""
    return np.clip(watts + rng.normal(0.0, 3.0, power.shape), IDLE_W * 0.85, MAX_W)


def queue_waiting(
    pool: np.ndarray,
    arrival_us: np.ndarray,
    wait_end_us: np.ndarray,
    n_pools: int,
    window_us: int,
    n_windows: int,
) -> np.ndarray:
    """Time-averaged waiting count per (pool, window); wait ends at start or abandonment."""
    m = wait_end_us > arrival_us
    ones = np.ones(int(m.sum()))
    iv = Intervals(pool[m].astype(np.int64), arrival_us[m], wait_end_us[m], ones, ones)
    q, _ = window_sums(iv, n_pools, window_us, n_windows)
    return q
