"""Closed-form queueing results the simulator must reproduce (METRICS.md, What-if)."""

from __future__ import annotations


def erlang_c(c: int, lam: float, mu: float) -> float:
    """Probability that an arrival waits in M/M/c (offered load a = lam/mu, rho = a/c < 1)."""
    a = lam / mu
    rho = a / c
    if rho >= 1:
        raise ValueError("unstable: rho >= 1")
    # Erlang B by the stable recursion, then C from B.
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1 - rho * (1 - b))


def mmc_mean_wait(c: int, lam: float, mu: float) -> float:
    """Mean time in queue (before service) of M/M/c."""
    return erlang_c(c, lam, mu) / (c * mu - lam)


def mg1_mean_wait(lam: float, mean_s: float, second_moment_s: float) -> float:
    """Pollaczek-Khinchine: W = lam E[S^2] / (2 (1 - rho))."""
    rho = lam * mean_s
    if rho >= 1:
        raise ValueError("unstable: rho >= 1")
    return lam * second_moment_s / (2 * (1 - rho))


def cobham_waits(lams: list[float], means: list[float], second_moments: list[float]
                 ) -> list[float]:
    """Non-preemptive priority M/G/1 mean waits per class (class 0 served first)."""
    w0 = sum(la * m2 for la, m2 in zip(lams, second_moments, strict=True)) / 2
    out, sigma = [], 0.0
    for la, m in zip(lams, means, strict=True):
        prev = sigma
        sigma += la * m
        out.append(w0 / ((1 - prev) * (1 - sigma)))
    return out
