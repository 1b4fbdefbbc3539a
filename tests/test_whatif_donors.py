"""Service-time donors stand for requests, not attempts, and timed-out ones for the longer
services they may have had (Kaplan-Meier), so replayed work (service up to the timeout)
matches the true work."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import duckdb
import numpy as np
import pytest

from pipelines.simulator import demo_config
from pipelines.simulator.model import MODEL_CLASSES, ClientSpec
from pipelines.simulator.runner import run_engine
from pipelines.simulator.tables import requests_table
from pipelines.warehouse import ensure_schema
from pipelines.whatif.replay import fit_donors, km_weights, service_donors

# a short timeout: many attempts time out, most of them after waiting, and are retried
CLIENT = ClientSpec(timeout_ms=6_000, max_queue_ms=3_000, retry_prob=0.9, backoff_ms=1_000,
                    max_attempts=3)


def test_km_weights_pass_a_censored_donors_mass_to_the_longer_ones():
    w = km_weights(np.array([1, 2, 3, 4]), np.array([False, True, False, False]))
    assert w == pytest.approx([1 / 4, 0, 3 / 8, 3 / 8])
    # mass past the longest completed service stays on the censored donors past it
    w = km_weights(np.array([5, 1, 7]), np.array([True, False, True]))
    assert w == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    w = km_weights(np.array([1, 5]), np.array([False, True]))
    assert w == pytest.approx([1 / 2, 1 / 2])


def test_donor_draws_keep_the_true_mean_service(tmp_path):
    cfg = replace(demo_config(7, 0.03), client=CLIENT)
    run = run_engine(cfg)
    req = requests_table(cfg, run.cluster, run.workloads, run.outcomes)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(con)
    con.register("r", req)
    con.execute("INSERT INTO requests BY NAME SELECT *, 'p' AS pilot FROM r")
    n_timeout, n_retry = con.execute(
        "SELECT count(*) FILTER (WHERE status = 'timeout'), count(*) FILTER (WHERE attempt > 0) "
        "FROM requests").fetchone()
    assert n_timeout > 50 and n_retry > 200  # censoring and retries to get right
    end = cfg.start + timedelta(seconds=cfg.duration_s)
    ok = service_donors(con, "p", cfg.start, end, 6_000_000)
    donors = fit_donors(ok.drop("m"))
    cap = CLIENT.timeout_ms * 1000  # past the timeout only "it times out" is observable
    for p, wl in enumerate(run.workloads):
        true_mean = np.minimum(wl.service_us, cap).mean()
        pool = run.cluster.pool_names[p]
        tokens = (np.maximum(wl.input_tokens, 0) + np.maximum(wl.output_tokens, 0)).astype(
            np.int64)
        classes = [MODEL_CLASSES[c] for c in wl.model_class]
        means = [donors.draw([pool] * len(wl), classes, tokens,
                             np.random.default_rng(s))[0].clip(max=cap).mean() for s in range(3)]
        # per attempt, with timed-out donors as certain timeouts, this is several % high
        assert np.mean(means) / true_mean == pytest.approx(1.0, abs=0.04), pool
    con.close()
