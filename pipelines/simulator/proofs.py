"""Estimators the closed-form proofs use (tests/test_queueing_proofs.py, the benchmark).

Mean waits at high load converge slowly: the queue's relaxation time grows like
1/(1 - rho)^2 arrivals, so a raw mean over a million customers still wanders by +-5 % at
rho = 0.95. Two standard variance reductions keep the proofs short and honest:
- batch means: the run is cut into B consecutive batches (after a warm-up); the batch means
  are nearly independent, so their spread gives a confidence interval;
- control variates (Lavenberg & Welch): the realised mean service time and mean inter-arrival
  time have known expectations; the wait is regressed on their batch deviations and the part
  they explain is removed. The estimator stays unbiased; only its variance shrinks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.simulator.telemetry import queue_waiting


@dataclass(frozen=True)
class Estimate:
    mean: float
    se: float  # standard error from batch means (with the control-variate regression)
    n: int

    def rel_error(self, expected: float) -> float:
        return self.mean / expected - 1


def cv_batch_means(
    wait: np.ndarray,
    controls: list[np.ndarray],
    control_means: list[float],
    batches: int = 40,
    warmup: float = 0.02,
) -> tuple[np.ndarray, int]:
    """Per-batch control-variate-adjusted means of `wait` (customers in arrival order)."""
    n = len(wait)
    w0 = int(n * warmup)
    m = (n - w0) // batches
    cut = slice(w0, w0 + m * batches)
    bw = wait[cut].reshape(batches, m).mean(1)
    if not controls:
        return bw, m * batches
    x = np.column_stack([c[cut].reshape(batches, m).mean(1) - mu
                         for c, mu in zip(controls, control_means, strict=True)])
    beta = np.linalg.lstsq(x - x.mean(0), bw - bw.mean(), rcond=None)[0]
    return bw - x @ beta, m * batches


def pooled(per_seed: list[np.ndarray], n_controls: int, n: int) -> Estimate:
    """Combine the adjusted batch means of several independent runs."""
    b = np.concatenate(per_seed)
    dof = len(b) - n_controls * len(per_seed)
    se = float(np.sqrt(((b - b.mean()) ** 2).sum() / max(dof, 1) / len(b)))
    return Estimate(float(b.mean()), se, n)


def littles_law(arrival_us: np.ndarray, start_us: np.ndarray, window_us: int = 60_000_000
                ) -> tuple[float, float]:
    """(L, lambda * W) for the waiting room over [first arrival, last arrival].

    L is the time-average number waiting computed through the telemetry code (waiting
    intervals cut into windows); lambda * W from the customers' own waits. Little's law
    L = lambda W holds on every sample path up to edge effects at the horizon, so a gap
    means lost or double-counted waiting time in the engine or its bookkeeping."""
    t0 = int(arrival_us.min())
    horizon = int(arrival_us.max()) - t0
    nw = max(1, horizon // window_us)
    horizon = nw * window_us
    a, s = arrival_us - t0, start_us - t0
    q = queue_waiting(np.zeros(len(a), dtype=np.int64), a, s, 1, window_us, nw)
    big_l = float(q.mean())
    inside = a < horizon
    lam = inside.sum() / (horizon / 1e6)
    w = (s[inside] - a[inside]).mean() / 1e6
    return big_l, float(lam * w)


def lindley_waits(gaps_s: np.ndarray, service_s: np.ndarray) -> np.ndarray:
    """FIFO single-server waits by the Lindley recursion, vectorised: W_n = X_n - min_k X_k
    with X the random walk of (service - next gap), X_0 = 0 (an empty system at the start).

    Used as an *approximating-system* control variate: the M/M/1 queue with a c-times faster
    server, fed the same arrivals and works, has a known mean wait and shares the M/M/c
    queue's slow excursions (the two have the same heavy-traffic limit)."""
    steps = service_s[:-1] - gaps_s[1:]
    x = np.concatenate([[0.0], np.cumsum(steps)])
    return x - np.minimum.accumulate(x)
