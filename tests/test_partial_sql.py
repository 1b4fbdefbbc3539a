"""Partial telemetry through the SQL models (pipelines.sql_models.MODELS in order): a pilot
with GPU samples only, scheduler jobs only or an arrival trace only measures what its data
allows, labels the rest "not measured: needs ...", and says so in measurement_coverage.
Every expected value is worked out by hand in the comments.

Every warehouse: baseline [00:00, 01:00), validation [01:00, 02:00); scope pools ['a'], so
pool `a` is treatment and `b` control.
"""

from __future__ import annotations

import statistics
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.config import DEFAULT_THRESHOLDS
from pipelines.sql_models import MODELS, build_model
from pipelines.warehouse import SQL_DIR
from tests.built_warehouse import warehouse_fixture
from tests.test_metrics_sql import _seed

THRESHOLDS = {**DEFAULT_THRESHOLDS, "burst_min_count": 3}
P = "p1"


def _empty(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    _empty_schema(c)
    return c


def _empty_schema(c: duckdb.DuckDBPyConnection) -> None:
    """The staging tables with the phases, scope, SLA target and thresholds; no data rows."""
    for ddl in sorted((SQL_DIR / "staging").glob("*.sql")):
        c.execute(ddl.read_text())
    c.execute("INSERT INTO phases VALUES (?, 'baseline', '2026-01-01 00:00', '2026-01-01 01:00'),"
              " (?, 'validation', '2026-01-01 01:00', '2026-01-01 02:00')", [P, P])
    c.execute("INSERT INTO pilot_scope VALUES (?, 'pools', ['a'], NULL, NULL)", [P])
    c.execute("INSERT INTO sla_targets VALUES (?, 'P0', 1000, NULL)", [P])
    c.executemany("INSERT INTO thresholds VALUES (?, ?, ?)",
                  [(P, k, v) for k, v in THRESHOLDS.items()])


def _build(c: duckdb.DuckDBPyConnection) -> None:
    for m in MODELS:
        build_model(c, m, P)


def _metric(c, metric, phase="baseline", segment="all", breakdown="overall", value=None):
    row = c.execute(
        "SELECT value, basis, note FROM metrics_headline WHERE pilot = ? AND phase = ? AND "
        "segment = ? AND breakdown = ? AND breakdown_value IS NOT DISTINCT FROM ? AND metric = ?",
        [P, phase, segment, breakdown, value, metric]).fetchall()
    assert len(row) == 1, (metric, row)
    return row[0]


def _coverage(c) -> dict[str, tuple[str, str | None, str | None]]:
    return {item: (status, basis, needs) for item, status, basis, needs in c.execute(
        "SELECT item, status, basis, needs FROM measurement_coverage WHERE pilot = ?",
        [P]).fetchall()}


def _rows(c, table) -> int:
    return c.execute(f"SELECT count(*) FROM {table} WHERE pilot = ?", [P]).fetchone()[0]


# --- GPU samples only ------------------------------------------------------------------------
# g1 (pool a), one sample a minute over both phases: gpu_util 0.8, power 300 W, memory 1 GB and
# an energy counter rising 18 kJ a minute that resets at 00:30 (to 18 kJ: the value after a
# reset is its rise). g2 (pool b): gpu_util 0.05 for 00:00-00:29 then 0.6, power 100 W, no
# counter and no memory. Each sample stands for 60 s.

GPU_SAMPLES = """INSERT INTO samples
    SELECT 'p1', TIMESTAMP '2026-01-01 00:00:00' + to_minutes(i), s, 'a', 'n1', 'g1',
           CASE s WHEN 'gpu_util' THEN 0.8 WHEN 'power_w' THEN 300 WHEN 'mem_used_bytes' THEN 1e9
                  ELSE 18000.0 * CASE WHEN i < 30 THEN i ELSE i - 29 END END, NULL
    FROM range(120) t(i),
         (VALUES ('gpu_util'), ('power_w'), ('mem_used_bytes'), ('energy_j')) v(s)
    UNION ALL
    SELECT 'p1', TIMESTAMP '2026-01-01 00:00:00' + to_minutes(i), s, 'b', 'n2', 'g2',
           CASE WHEN s = 'power_w' THEN 100 WHEN i < 30 THEN 0.05 ELSE 0.6 END, NULL
    FROM range(120) t(i), (VALUES ('gpu_util'), ('power_w')) v(s)"""


def _fill_gpu_only(c: duckdb.DuckDBPyConnection) -> None:
    _empty_schema(c)
    c.execute(GPU_SAMPLES)
    _build(c)


gpu_only = warehouse_fixture("gpu_only", _fill_gpu_only)


@pytest.mark.parametrize(("metric", "segment", "pool", "expected"), [
    # (0.8 x 3600 + 0.05 x 1800 + 0.6 x 1800) / 7200 GPU-seconds
    ("nominal_util", "all", None, (2880 + 90 + 1080) / 7200),
    ("nominal_util", "control", None, (90 + 1080) / 3600),
    ("nominal_util", "all", "a", 0.8),
    ("gpu_power_w", "all", None, (300 + 100) / 2),
    ("gpu_power_w", "treatment", None, 300.0),
    # g1: 59 rises of 18 kJ inside the baseline (its first sample has none before it, the
    # reset at 00:30 counts its value); g2 has no counter: 100 W x 3600 s
    ("gpu_energy_j", "all", None, 59 * 18000 + 100 * 3600),
    ("gpu_energy_j", "all", "a", 59 * 18000),
    ("gpu_energy_j", "control", None, 100 * 3600),
    ("gpu_mem_used_bytes", "all", None, 1e9),
])
def test_gpu_only_headline_values(gpu_only, metric, segment, pool, expected):
    value, basis, _ = _metric(gpu_only, metric, segment=segment,
                              breakdown="pool" if pool else "overall", value=pool)
    assert value == pytest.approx(expected, rel=1e-9) and basis == "measured"


def test_gpu_only_says_what_it_cannot_measure(gpu_only):
    for metric in ("effective_util", "hcl_pp"):
        value, _, note = _metric(gpu_only, metric)
        assert value is None and note == "not measured: needs sm_active or per-request rows"
    value, _, note = _metric(gpu_only, "p95_latency_s")
    assert value is None and note.startswith("not measured: needs per-request rows")
    value, _, note = _metric(gpu_only, "gpu_mem_used_bytes", segment="control")
    assert value is None and note.startswith("not measured: needs GPU memory samples")
    assert _metric(gpu_only, "gpu_energy_j")[2] == (
        "increase of the energy_j counter where a GPU has one, else the integral of its power_w")
    hcl = gpu_only.execute("SELECT DISTINCT note FROM indices WHERE index = 'HCL'").fetchall()
    assert hcl == [("not measured: needs sm_active or per-request rows",)]
    compute = gpu_only.execute("SELECT DISTINCT value, note FROM sync_map WHERE name = "
                               "'compute'").fetchall()
    assert compute == [(None, "not measured: needs sm_active or per-request rows")]
    # no coherence cell without requests: no value, never a 0 %
    assert gpu_only.execute("SELECT count(value) FROM indices WHERE index = 'CI'").fetchone() \
        == (0,)


def test_gpu_only_states_are_idle_or_busy_and_say_overload_was_not_tested(gpu_only):
    rows = dict(((pool, state), n) for pool, state, n in gpu_only.execute(
        "SELECT pool, state, count(*) FROM idle_overload_states WHERE phase = 'baseline' "
        "GROUP BY ALL").fetchall())
    # g2's first 30 minutes run at 0.05 < idle_util 0.3
    assert rows == {("a", "busy"): 60, ("b", "idle"): 30, ("b", "busy"): 30}
    tested, notes = gpu_only.execute(
        "SELECT bool_or(overload_tested), list(DISTINCT note) FROM idle_overload_states"
    ).fetchone()
    assert not tested and notes == [
        "idle / busy only: overload not tested, needs per-request rows (queue wait)"]


def test_gpu_only_detectors_have_no_rows_and_coverage_says_why(gpu_only):
    for table in ("findings", "burst_amplification", "int_wave_events", "latency_cascade_paths",
                  "queue_saturation_zones", "burst_episodes", "arrival_burstiness"):
        assert _rows(gpu_only, table) == 0, table
    cov = _coverage(gpu_only)
    assert cov["gpu_nominal_util"] == ("measured", "gpu_util samples per GPU", None)
    assert cov["gpu_power"][0] == cov["gpu_energy"][0] == cov["gpu_memory"][0] == "measured"
    assert cov["idle_overload_states"][:2] == (
        "measured", "gpu_util samples: idle / busy only (overload not tested)")
    assert cov["gpu_effective_util"] == (
        "not_measured", None, "sm_active samples (DCGM profiling fields) or per-request rows")
    assert cov["hidden_capacity_loss"][2] == "sm_active samples or per-request rows"
    for item in ("latency_quantiles", "queue_wait", "sla_adherence", "burst_episodes",
                 "burst_amplification", "latency_waves", "batch_occupancy", "delay_index",
                 "pattern:burst_amplification", "pattern:idle_overload_oscillation"):
        status, basis, needs = cov[item]
        assert status == "not_measured" and basis is None and needs, item
    assert cov["pattern:idle_overload_oscillation"][2] == "per-request rows (queue wait: overload)"
    reasons = [r for (r,) in gpu_only.execute("SELECT reason FROM patterns_tested").fetchall()]
    assert len(reasons) == 9 and all(r.startswith("not tested: needs ") for r in reasons)


def test_aggregated_gpu_util_without_gpu_ids_is_an_aggregate(tmp_path):
    c = _empty(tmp_path)
    # a dashboard export: pool a's GPU duty cycle per minute, no GPU id
    c.execute("""INSERT INTO samples
        SELECT 'p1', TIMESTAMP '2026-01-01 00:00:00' + to_minutes(i), 'gpu_util', 'a', NULL,
               NULL, CASE WHEN i < 30 THEN 0.2 ELSE 0.6 END, NULL FROM range(120) t(i)""")
    _build(c)
    value, basis, _ = _metric(c, "nominal_util")
    assert value == pytest.approx((0.2 * 30 + 0.6 * 30) / 60) and basis == "aggregate"
    assert _coverage(c)["gpu_nominal_util"][:2] == (
        "aggregate", "aggregated gpu_util series (per pool, no GPU id)")


# --- scheduler jobs only ---------------------------------------------------------------------
# J1 pool a 00:10-00:40 on 2 GPUs, J2 pool a 00:30-00:50 on 1 GPU (merged: 00:10-00:50 held),
# J3 pool b 00:50-01:20 with no GPU count (10 min in baseline, 20 in validation), J4 pool a
# pending (never started).

JOBS = """INSERT INTO jobs VALUES
    ('p1', 'J1', 'batch', 'q', 1, '2026-01-01 00:05', NULL, '2026-01-01 00:10',
     '2026-01-01 00:40', 'n1', 'a', 2, NULL, 'COMPLETED'),
    ('p1', 'J2', 'batch', 'q', 1, '2026-01-01 00:30', NULL, '2026-01-01 00:30',
     '2026-01-01 00:50', 'n1', 'a', 1, NULL, 'COMPLETED'),
    ('p1', 'J3', 'batch', 'q', 1, '2026-01-01 00:45', NULL, '2026-01-01 00:50',
     '2026-01-01 01:20', 'n2', 'b', NULL, NULL, 'FAILED'),
    ('p1', 'J4', 'batch', 'q', 1, '2026-01-01 01:00', NULL, NULL, NULL, NULL, 'a', 1, NULL,
     'PENDING')"""


def _fill_jobs_only(c: duckdb.DuckDBPyConnection) -> None:
    _empty_schema(c)
    c.execute(JOBS)
    _build(c)


jobs_only = warehouse_fixture("jobs_only", _fill_jobs_only)


@pytest.mark.parametrize(("metric", "phase", "segment", "pool", "expected"), [
    ("batch_occupancy", "baseline", "all", None, (2400 + 600) / (2 * 3600)),
    ("batch_occupancy", "baseline", "treatment", None, 2400 / 3600),
    ("batch_occupancy", "baseline", "all", "b", 600 / 3600),
    ("batch_occupancy", "validation", "all", None, 1200 / (2 * 3600)),
    ("batch_occupancy", "validation", "all", "a", 0.0),
    # J1 2 GPUs x 0.5 h + J2 1 GPU x 1/3 h; J3's GPUs are unknown
    ("batch_gpu_hours", "baseline", "all", None, 1 + 1 / 3),
    ("batch_gpu_hours", "baseline", "control", None, 0.0),
    ("batch_gpu_hours", "validation", "all", None, 0.0),
])
def test_jobs_only_batch_occupancy(jobs_only, metric, phase, segment, pool, expected):
    value, basis, _ = _metric(jobs_only, metric, phase, segment,
                              "pool" if pool else "overall", pool)
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-12) and basis == "measured"


def test_jobs_only_timeline_and_coverage(jobs_only):
    rows = jobs_only.execute(
        "SELECT job_id, pool, phase, duration_s, wait_s, gpu_hours FROM job_timeline "
        "ORDER BY job_id").fetchall()
    assert rows == [("J1", "a", "baseline", 1800.0, 300.0, 1.0),
                    ("J2", "a", "baseline", 1200.0, 0.0, pytest.approx(1 / 3)),
                    ("J3", "b", "baseline", 1800.0, 300.0, None),
                    ("J4", "a", None, None, None, None)]
    value, _, note = _metric(jobs_only, "nominal_util")
    assert value is None and note.startswith("not measured: needs gpu_util samples")
    cov = _coverage(jobs_only)
    assert cov["batch_occupancy"][0] == cov["job_timeline"][0] == "measured"
    assert cov["gpu_nominal_util"][0] == cov["latency_quantiles"][0] == "not_measured"
    # a conflict needs queued requests as well as jobs
    assert cov["pattern:batch_scheduling_conflict"] == (
        "not_measured", None, "per-request rows (queue waits)")
    assert _rows(jobs_only, "findings") == _rows(jobs_only, "slot_locking_zones") == 0


# --- arrival trace only ----------------------------------------------------------------------
# Baseline arrivals at 00:01:00, :01:10, :01:30, :02:00, then five at 00:05:00..00:05:04 (one
# 10 s window holding 5 >= burst_min_count 3 arrivals after empty trailing windows: a burst).

TRACE_S = (60, 70, 90, 120, 300, 301, 302, 303, 304)


def _fill_trace_only(c: duckdb.DuckDBPyConnection) -> None:
    _empty_schema(c)
    c.executemany("INSERT INTO arrivals VALUES ('p1', TIMESTAMP '2026-01-01 00:00:00' "
                  "+ to_seconds(CAST(? AS BIGINT)), 10, 10, 'azure')", [(s,) for s in TRACE_S])
    _build(c)


trace_only = warehouse_fixture("trace_only", _fill_trace_only)


def test_trace_only_burstiness_from_arrivals(trace_only):
    rows = trace_only.execute(
        "SELECT phase, pool, arrivals, arrival_rate_rps, inter_arrivals, interarrival_cv, "
        "gamma_shape_k, index_of_dispersion, input FROM arrival_burstiness").fetchall()
    gaps = [b - a for a, b in zip(TRACE_S, TRACE_S[1:], strict=False)]  # 10 20 30 180 1 1 1 1
    cv = statistics.stdev(gaps) / statistics.mean(gaps)
    windows, n, sum_sq = 360, 9, 4 * 1 + 5 * 5  # four windows of 1, one of 5
    mean = n / windows
    iod = (sum_sq - n * n / windows) / (windows - 1) / mean
    assert rows == [("baseline", "(all pools)", 9, pytest.approx(9 / 3600), 8, pytest.approx(cv),
                     pytest.approx(1 / cv**2), pytest.approx(iod), "arrival trace (arrivals)")]


def test_trace_only_burst_episode_and_coverage(trace_only):
    eps = trace_only.execute(
        "SELECT pool, phase, CAST(start_ts AS VARCHAR), windows, arrivals FROM burst_episodes"
    ).fetchall()
    assert eps == [("all", "baseline", "2026-01-01 00:05:00", 1, 5)]
    # amplification and waves need queue waits and latency: no rows, coverage says why
    for table in ("burst_amplification", "int_wave_events", "findings"):
        assert _rows(trace_only, table) == 0, table
    cov = _coverage(trace_only)
    for item in ("arrival_burstiness", "burst_episodes", "request_rate"):
        assert cov[item] == ("measured", cov[item][1], None) and "arrival trace" in cov[item][1]
    assert cov["burst_amplification"] == (
        "not_measured", None, "per-request rows (requests) with start times (queue wait per "
        "attempt)")
    assert cov["latency_waves"][0] == cov["gpu_nominal_util"][0] == "not_measured"
    assert cov["pattern:burst_amplification"][2] == "per-request rows (queue wait per attempt)"
    # the per-minute load the burst chart reads: arrivals and bursts, no latency, no zeros
    pw = trace_only.execute(
        "SELECT pool, CAST(window_start AS VARCHAR), phase, segment, arrivals, timeouts, "
        "sla_adherence, latency_p95_s, in_burst FROM pool_windows ORDER BY window_start"
    ).fetchall()
    assert pw == [("all", "2026-01-01 00:01:00", "baseline", None, 3, None, None, None, False),
                  ("all", "2026-01-01 00:02:00", "baseline", None, 1, None, None, None, False),
                  ("all", "2026-01-01 00:05:00", "baseline", None, 5, None, None, None, True)]
    wpi = trace_only.execute("SELECT DISTINCT note FROM indices WHERE index = 'WPI'").fetchall()
    assert wpi == [("not measured: needs per-request rows (latency per pool)",)]


def test_a_trace_starting_after_the_phase_has_no_burst_at_its_start(tmp_path):
    # one arrival a second from 00:00:45: the empty windows before it are not observed, so
    # the first windows are not judged against a trailing median of 0
    c = _empty(tmp_path)
    c.executemany("INSERT INTO arrivals VALUES ('p1', TIMESTAMP '2026-01-01 00:00:00' "
                  "+ to_seconds(CAST(? AS BIGINT)), 10, 10, 'azure')",
                  [(s,) for s in range(45, 240)])
    _build(c)
    assert _rows(c, "burst_episodes") == 0
    assert c.execute("SELECT min(window_start) FROM burst_windows").fetchone()[0] == (
        datetime(2026, 1, 1, 0, 0, 50))


def test_requests_win_over_a_trace(tmp_path):
    # the hand-computed pilot of test_metrics_sql plus a trace: the trace is not read
    c = duckdb.connect(str(tmp_path / "r.duckdb"))
    _seed(c)
    c.executemany("INSERT INTO arrivals VALUES ('p1', TIMESTAMP '2026-01-01 00:00:00' "
                  "+ to_seconds(CAST(? AS BIGINT)), 10, 10, 'azure')", [(s,) for s in TRACE_S])
    _build(c)
    inputs = {i for (i,) in c.execute("SELECT input FROM arrival_burstiness").fetchall()}
    assert inputs == {"first attempts (attempt = 0)"}
    assert {p for (p,) in c.execute("SELECT DISTINCT pool FROM burst_windows").fetchall()} \
        == {"a", "b"}
    cov = _coverage(c)
    assert cov["arrival_burstiness"][1] == "requests (first attempts)"
    assert cov["latency_quantiles"][0] == cov["queue_wait"][0] == "measured"
    assert cov["hidden_capacity_loss"] == ("measured", "gpu_util and sm_active samples", None)
    # pool a's GPU g1 has no jobs table: occupancy says what it needs
    assert _metric(c, "batch_occupancy")[2] == (
        "not measured: needs scheduler jobs (sacct) with pool and run times")


def _productive_util(tmp_path: Path, name: str, gpu_ids: bool) -> float | None:
    c = duckdb.connect(str(tmp_path / name))
    _seed(c)
    c.execute("DELETE FROM samples WHERE series = 'sm_active'")  # productive-time fallback
    if not gpu_ids:  # utilization exported per node: the samples identify no GPU
        c.execute("UPDATE samples SET gpu = NULL")
    _build(c)
    return _metric(c, "effective_util")[0]


def test_gpu_samples_without_gpu_ids_fall_back_to_the_gpus_of_the_requests(tmp_path):
    # the GPU count divides productive time: samples naming no GPU must not make it 0; the
    # seeded requests ran on two GPUs, the samples name one of them
    with_ids = _productive_util(tmp_path, "ids.duckdb", gpu_ids=True)
    without = _productive_util(tmp_path, "no-ids.duckdb", gpu_ids=False)
    assert with_ids is not None and without == pytest.approx(with_ids / 2)


def test_coverage_names_aggregates_and_histograms_as_such(tmp_path):
    c = _empty(tmp_path)
    # a per-minute dashboard export (aggregates) and one vLLM TTFT histogram (buckets)
    c.execute("""INSERT INTO samples
        SELECT 'p1', TIMESTAMP '2026-01-01 00:00:00' + to_minutes(i), s, 'a', NULL, NULL, 1.0,
               NULL
        FROM range(60) t(i),
             (VALUES ('queue_time_mean_s'), ('e2e_latency_p95_s'), ('queue_waiting')) v(s)
        UNION ALL
        SELECT 'p1', TIMESTAMP '2026-01-01 00:00:00' + to_minutes(i), 'ttft_s_bucket', 'a',
               NULL, NULL, 10.0 * i, le
        FROM range(60) t(i), (VALUES (0.5), ('Infinity'::DOUBLE)) v(le)""")
    _build(c)
    cov = _coverage(c)
    assert cov["latency_quantiles"][:2] == (
        "aggregate", "aggregated per-interval latency series (e2e_latency_<stat>_s)")
    assert cov["queue_wait"][:2] == ("aggregate", "aggregated series queue_time_<stat>_s")
    assert cov["queue_depth"][:2] == ("aggregate", "aggregated series queue_waiting")
    assert cov["ttft"][:2] == ("approximate", "vLLM time_to_first_token histogram buckets")
    assert cov["sla_adherence"] == (
        "not_measured", None, "per-request rows (requests) with SLA targets in pilot.yaml")
