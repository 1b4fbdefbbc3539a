"""The simulator reproduces closed-form queueing results (METRICS.md, What-if): within 3 %.

Every proof runs the production engine (`run_engine`) on a pure queueing configuration,
with the seeds stated here, and averages several independent runs. Estimators
(`pipelines.simulator.proofs`): batch means after a 2 % warm-up, with control variates of known
expectation (the estimator stays unbiased, its variance shrinks): the realised mean service
and inter-arrival times, and for multi-server and priority queues the FIFO M/M/1 queue with a
c-times faster server fed the same arrivals and works (Lindley recursion; mean known in closed
form). For M/G/1 that control would be the system itself, so it is not used there. Each proof
also asserts that its standard error is small enough for the 3 % band to mean something
(3 % >= 2 standard errors), and Little's law L = lambda W on every run (L through the
telemetry code path, lambda W from the waits).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipelines.simulator import mmc_config, run_engine
from pipelines.simulator.model import PolicyWindow
from pipelines.simulator.policies import Policy
from pipelines.simulator.proofs import (
    Estimate,
    cv_batch_means,
    lindley_waits,
    littles_law,
    pooled,
)
from pipelines.simulator.queueing import cobham_waits, mg1_mean_wait, mmc_mean_wait

TOL = 0.03


def _check_little(out) -> None:
    big_l, lam_w = littles_law(out.arrival_us, out.start_us)
    assert abs(big_l - lam_w) <= 0.01 * max(lam_w, 1e-9), (big_l, lam_w)


def _run(cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(waits, service times, inter-arrival gaps, class) of one run's customers."""
    run = run_engine(cfg)
    out, wl = run.outcomes[0], run.workloads[0]
    assert (out.status == 0).all() and (out.attempt == 0).all()
    _check_little(out)
    wait = (out.start_us - out.arrival_us) / 1e6
    gaps = np.diff(wl.arrival_us, prepend=wl.arrival_us[0]) / 1e6
    return wait, wl.service_us / 1e6, gaps, wl.priority


def _estimate(cfgs, c: int, lam: float, mean_s: float, fast_server: bool = True) -> Estimate:
    per = []
    n = 0
    for cfg in cfgs:
        wait, svc, gaps, _ = _run(cfg)
        controls, means = [svc, gaps], [mean_s, 1 / lam]
        if fast_server:
            rho = lam * mean_s / c
            controls.append(lindley_waits(gaps, svc / c))
            means.append(rho * mean_s / c / (1 - rho))  # M/M/1 wait, service mean/c
        b, m = cv_batch_means(wait, controls, means)
        per.append(b)
        n += m
    return pooled(per, len(controls), n)


def _assert_close(est: Estimate, expected: float, label: str) -> None:
    err = est.rel_error(expected)
    print(f"{label}: simulated {est.mean:.4f} expected {expected:.4f} error {err:+.2%} "
          f"(se {est.se / expected:.2%}, n {est.n:,})")
    assert abs(err) < TOL, (label, err)
    assert 2 * est.se / expected < TOL, (label, "not enough samples for a 3 % claim")


# (c, rho, arrivals per run, seeds)
MMC_CASES = [
    (4, 0.50, 200_000, (11, 12)),
    (4, 0.70, 150_000, (21, 22)),
    (8, 0.85, 150_000, (31, 32)),
    (4, 0.90, 150_000, (41, 42)),
    (4, 0.95, 200_000, (51, 52)),
]


@pytest.mark.parametrize(("c", "rho", "n", "seeds"), MMC_CASES)
def test_mmc_mean_wait_erlang_c(c: int, rho: float, n: int, seeds: tuple[int, ...]) -> None:
    lam = rho * c
    est = _estimate([mmc_config(c=c, rho=rho, arrivals=n, seed=s) for s in seeds], c, lam, 1.0)
    _assert_close(est, mmc_mean_wait(c, lam, 1.0), f"M/M/{c} rho={rho}")


def _mg1(model: str, rho: float, n: int, seed: int, sigma: float = 1.0):
    cfg = mmc_config(c=1, rho=rho, arrivals=n, seed=seed)
    return dataclasses.replace(cfg, service_model=model, service_sigma=sigma)


@pytest.mark.parametrize(("model", "rho", "sigma", "n", "seeds"), [
    ("deterministic", 0.8, 0.0, 200_000, (61, 62)),
    ("lognormal", 0.7, 1.0, 400_000, (71, 72)),
])
def test_mg1_mean_wait_pollaczek_khinchine(model: str, rho: float, sigma: float, n: int,
                                           seeds: tuple[int, ...]) -> None:
    lam = rho  # mean service 1 s
    second = 1.0 if model == "deterministic" else float(np.exp(sigma**2))  # E[S^2], mean 1
    est = _estimate([_mg1(model, rho, n, s, sigma) for s in seeds], 1, lam, 1.0,
                    fast_server=False)
    _assert_close(est, mg1_mean_wait(lam, 1.0, second), f"M/G/1 {model} rho={rho}")


def test_nonpreemptive_priority_mm1_cobham() -> None:
    mix = (0.3, 0.3, 0.4, 0.0)
    rho, n, seeds = 0.7, 200_000, (81, 82)
    fifo_w = rho / (1 - rho)  # M/M/1 FIFO mean wait (mean service 1 s): the control's mean
    per: list[list[np.ndarray]] = [[] for _ in range(3)]
    total = [0, 0, 0]
    for s in seeds:
        base = mmc_config(c=1, rho=rho, arrivals=n, seed=s)
        cfg = dataclasses.replace(
            base, pools=(dataclasses.replace(base.pools[0], priority_mix=mix),),
            policy={"pool-mmc": (PolicyWindow(0, frozenset({Policy.PRIORITY})),)})
        wait, svc, gaps, cls = _run(cfg)
        # The same customers' waits under FIFO (Lindley): by PASTA every class sees the
        # FIFO mean wait, and its slow excursions drive every class's priority wait too.
        fifo = lindley_waits(gaps, svc)
        for k in range(3):
            m_k = cls == k
            b, m = cv_batch_means(wait[m_k], [fifo[m_k]], [fifo_w])
            per[k].append(b)
            total[k] += m
    lams = [rho * p for p in mix[:3]]
    expected = cobham_waits(lams, [1.0] * 3, [2.0] * 3)
    for k in range(3):
        _assert_close(pooled(per[k], 1, total[k]), expected[k], f"Cobham class P{k}")


def test_littles_law_holds_on_a_demo_run() -> None:
    """Little's law on the full model (bursts, batch jobs, retries, abandonment, priority)."""
    from pipelines.simulator import demo_config

    run = run_engine(demo_config(seed=3, scale=0.05))
    for out in run.outcomes:
        started = out.start_us >= 0
        # waiting ends at start, or at abandonment for attempts that never started
        wait_end = np.where(started, out.start_us, out.end_us)
        _check_little(dataclasses.replace(out, start_us=wait_end))
