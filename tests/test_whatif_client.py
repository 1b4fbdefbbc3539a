"""The what-if's client model is fitted from the attempts: a simulated pilot with a known
timeout, abandonment limit and retry backoff gives them back (dropped attempts at their drop
time, not their arrival)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import duckdb

from pipelines.simulator import demo_config, simulate
from pipelines.simulator.model import ClientSpec
from pipelines.warehouse import ensure_schema
from pipelines.whatif.replay import fit_client

TRUE = ClientSpec(timeout_ms=9_000, max_queue_ms=4_000, retry_prob=0.8, backoff_ms=1_500,
                  max_attempts=3)


def test_fit_client_recovers_timeout_abandonment_and_backoff(tmp_path):
    cfg = replace(demo_config(7, 0.03), client=TRUE)
    res = simulate(cfg)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(con)
    con.register("r", res.requests)
    con.execute("INSERT INTO requests BY NAME SELECT *, 'p' AS pilot FROM r")
    n_drop, n_timeout, n_retry = con.execute(
        "SELECT count(*) FILTER (WHERE status = 'dropped'), count(*) FILTER (WHERE status = "
        "'timeout'), count(*) FILTER (WHERE attempt > 0) FROM requests").fetchone()
    assert n_drop > 200 and n_timeout > 20 and n_retry > 200  # the fit has data to work on
    end = cfg.start + timedelta(seconds=cfg.duration_s)
    fit = fit_client(con, "p", cfg.start, end, timeout_ms=None)  # nothing declared
    assert fit.timeout_ms is not None and abs(fit.timeout_ms / TRUE.timeout_ms - 1) < 0.05
    assert fit.max_queue_ms is not None and abs(fit.max_queue_ms / TRUE.max_queue_ms - 1) < 0.05
    assert abs(fit.backoff_ms / TRUE.backoff_ms - 1) < 0.05
    assert abs(fit.retry_prob - TRUE.retry_prob) < 0.05
    assert fit.max_attempts == TRUE.max_attempts
    # a declared timeout wins over the fitted one
    assert fit_client(con, "p", cfg.start, end, timeout_ms=12_345).timeout_ms == 12_345
