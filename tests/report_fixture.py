"""A small, hand-made warehouse for report tests: staging tables + the metric tables' contract.

Why hand-made: the metric SQL (sql/metrics, sql/topology) is being written in parallel, so the
report is developed against plausible numbers that follow the agreed table shapes. Values are
deterministic (seeded) so tests can assert on exact printed figures.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
STAGING_DDL = sorted((ROOT / "sql" / "staging").glob("*.sql"))

# The metric/topology tables the report reads (names and columns are the contract with the
# lead's sql/metrics + sql/topology; the fixture only needs the shapes).
METRIC_DDL = """
CREATE TABLE IF NOT EXISTS metrics_headline (
    pilot VARCHAR, phase VARCHAR, segment VARCHAR, breakdown VARCHAR, breakdown_value VARCHAR,
    metric VARCHAR, value DOUBLE, unit VARCHAR, basis VARCHAR, note VARCHAR);
CREATE TABLE IF NOT EXISTS metrics_before_after (
    pilot VARCHAR, segment VARCHAR, metric VARCHAR, baseline DOUBLE, validation DOUBLE,
    abs_change DOUBLE, rel_change DOUBLE, unit VARCHAR);
CREATE TABLE IF NOT EXISTS metrics_did (
    pilot VARCHAR, metric VARCHAR, treatment_change DOUBLE, control_change DOUBLE, did DOUBLE);
CREATE TABLE IF NOT EXISTS pool_windows (
    pilot VARCHAR, pool VARCHAR, window_start TIMESTAMP, phase VARCHAR, segment VARCHAR,
    arrivals BIGINT, arrival_rate_rps DOUBLE, queue_wait_p95_s DOUBLE, latency_p95_s DOUBLE,
    timeouts BIGINT, sla_adherence DOUBLE, in_burst BOOLEAN);
CREATE TABLE IF NOT EXISTS burst_episodes (
    pilot VARCHAR, pool VARCHAR, episode_id INTEGER, phase VARCHAR, start_ts TIMESTAMP,
    end_ts TIMESTAMP, windows INTEGER, arrivals BIGINT, peak_rate_rps DOUBLE,
    trailing_median_rps DOUBLE);
CREATE TABLE IF NOT EXISTS hidden_idle_map (
    pilot VARCHAR, pool VARCHAR, node VARCHAR, gpu VARCHAR, window_start TIMESTAMP,
    nominal DOUBLE, effective DOUBLE, hcl_pp DOUBLE);
"""

PILOT = "demo-cluster-a"
T0 = datetime(2026, 3, 2, 0, 0, 0)
PHASE_MIN = 180  # each phase lasts 3 h: 180 one-minute windows
PHASES = (("baseline", T0, T0 + timedelta(minutes=PHASE_MIN)),
          ("validation", T0 + timedelta(minutes=PHASE_MIN),
           T0 + timedelta(minutes=2 * PHASE_MIN)))
DEFAULT_POOLS = ("pool-a", "pool-b", "pool-c")
NODES_PER_POOL = 2
GPUS_PER_NODE = 4

# Baseline headline values (segment all, overall). Energy is deliberately not measured.
BASE = {
    "p50_latency_s": 0.182, "p95_latency_s": 0.874, "p99_latency_s": 1.62,
    "queue_wait_p50_s": 0.041, "queue_wait_p95_s": 0.93, "queue_wait_max_s": 14.2,
    "sched_delay_p95_s": 0.71,
    "burst_queue_wait_p50_s": 0.64, "burst_queue_wait_p95_s": 4.37,
    "nominal_util": 0.724, "effective_util": 0.583, "hcl_pp": 14.1,
    "timeout_drop_rate": 0.065, "sla_adherence": 0.791, "goodput_rps": 11.2,
    "goodput_rps_per_gpu": 0.467, "retry_amplification": 1.12,
    "energy_per_good_request_j": None, "delay_index": 0.57,
    "logical_requests": 120960.0, "attempts": 135475.0,
}
UNITS = {"share": ("nominal_util", "effective_util", "timeout_drop_rate", "sla_adherence",
                   "delay_index"),
         "pp": ("hcl_pp",), "req/s": ("goodput_rps",), "req/s/GPU": ("goodput_rps_per_gpu",),
         "ratio": ("retry_amplification",), "J": ("energy_per_good_request_j",),
         "count": ("logical_requests", "attempts")}
GPU_METRICS = ("nominal_util", "effective_util", "hcl_pp", "energy_per_good_request_j",
               "goodput_rps_per_gpu")
# Multiplicative change baseline -> validation per segment (treatment improves, control flat).
CHANGE = {"treatment": 0.72, "control": 0.98}
HIGHER_BETTER = ("effective_util", "sla_adherence", "goodput_rps", "goodput_rps_per_gpu")


def _unit(metric: str) -> str:
    for unit, names in UNITS.items():
        if metric in names:
            return unit
    return "s"


def _phase_value(metric: str, base: float | None, phase: str, segment: str) -> float | None:
    if base is None or phase == "baseline" or metric in ("logical_requests", "attempts",
                                                        "nominal_util"):
        return base
    f = CHANGE.get(segment, 0.8)
    if metric == "retry_amplification":  # the extra attempts shrink, not the ratio itself
        return 1 + (base - 1) * f
    if metric in HIGHER_BETTER:
        return min(base / f, 0.99) if _unit(metric) == "share" else base / f
    return base * f


def _headline_rows(pools: tuple[str, ...]) -> list[dict]:
    rows: list[dict] = []
    pool_factor = {p: 0.8 + 0.2 * i for i, p in enumerate(pools)}
    prio_factor = {"P0": 0.7, "P1": 0.9, "P2": 1.1, "P3": 1.4}
    for phase, _, _ in PHASES:
        for segment in ("all", "treatment", "control"):
            seg_scale = {"all": 1.0, "treatment": 0.66, "control": 0.34}[segment]
            groups: list[tuple[str, str | None, float]] = [("overall", None, 1.0)]
            if segment == "all":
                groups += [("pool", p, pool_factor[p]) for p in pools]
                groups += [("priority", c, f) for c, f in prio_factor.items()]
            for breakdown, bvalue, factor in groups:
                for metric, base in BASE.items():
                    if breakdown == "priority" and metric in GPU_METRICS:
                        continue  # the contract: GPU metrics have no priority rows
                    value = _phase_value(metric, base, phase, segment)
                    if value is not None:
                        if metric in ("logical_requests", "attempts"):
                            value = round(value * seg_scale * (0.33 if bvalue else 1.0))
                        elif _unit(metric) == "share":
                            value = min(value * (factor if breakdown != "overall" else 1.0)
                                        ** 0.3, 0.99)
                        elif metric == "retry_amplification" and breakdown != "overall":
                            value = 1 + (value - 1) * factor
                        elif breakdown != "overall":
                            value = value * factor
                    note = None
                    if metric == "effective_util":
                        note = "sm_active"
                    elif metric == "energy_per_good_request_j":
                        note = "no power_w or energy_j series in samples"
                    rows.append({"pilot": PILOT, "phase": phase, "segment": segment,
                                 "breakdown": breakdown, "breakdown_value": bvalue,
                                 "metric": metric, "value": value, "unit": _unit(metric),
                                 "basis": "measured", "note": note})
    return rows


def _before_after_rows(headline: list[dict]) -> tuple[list[dict], list[dict]]:
    by = {(r["phase"], r["segment"], r["metric"]): r["value"] for r in headline
          if r["breakdown"] == "overall"}
    ba: list[dict] = []
    changes: dict[tuple[str, str], float | None] = {}
    for segment in ("all", "treatment", "control"):
        for metric in BASE:
            b, v = by[("baseline", segment, metric)], by[("validation", segment, metric)]
            abs_c = None if b is None or v is None else v - b
            rel_c = None if abs_c is None or not b else abs_c / b
            changes[(segment, metric)] = abs_c
            ba.append({"pilot": PILOT, "segment": segment, "metric": metric, "baseline": b,
                       "validation": v, "abs_change": abs_c, "rel_change": rel_c,
                       "unit": _unit(metric)})
    did = []
    for metric in BASE:
        t, c = changes[("treatment", metric)], changes[("control", metric)]
        did.append({"pilot": PILOT, "metric": metric, "treatment_change": t,
                    "control_change": c, "did": None if t is None or c is None else t - c})
    return ba, did


def _windows(pools: tuple[str, ...], rng: random.Random) -> tuple[list[dict], list[dict]]:
    """1-min pool windows with two injected bursts per pool and phase, and their episodes."""
    rows: list[dict] = []
    episodes: list[dict] = []
    for pi, pool in enumerate(pools):
        segment = "control" if pi == len(pools) - 1 else "treatment"
        base_rate = 3.0 + 1.5 * pi
        ep_id = 0
        for phase, start, _ in PHASES:
            bursts = [(30 + 11 * pi, 6), (120 + 7 * pi, 4)]
            damp = 0.5 if (phase == "validation" and segment == "treatment") else 1.0
            for m in range(PHASE_MIN):
                in_burst = any(s <= m < s + d for s, d in bursts)
                rate = base_rate * (1 + 0.15 * math.sin(m / 9.0)) * (2.6 if in_burst else 1.0)
                rate *= rng.uniform(0.92, 1.08)
                qw = (0.35 + 0.05 * rng.random()) * (7.0 * damp if in_burst else 1.0)
                lat = 0.7 + qw * 0.9
                arrivals = round(rate * 60)
                timeouts = round(arrivals * (0.12 if in_burst else 0.01) * damp)
                rows.append({"pilot": PILOT, "pool": pool,
                             "window_start": start + timedelta(minutes=m), "phase": phase,
                             "segment": segment, "arrivals": arrivals, "arrival_rate_rps": rate,
                             "queue_wait_p95_s": qw, "latency_p95_s": lat, "timeouts": timeouts,
                             "sla_adherence": max(0.0, 0.93 - (0.3 * damp if in_burst else 0)),
                             "in_burst": in_burst})
            for s, d in bursts:
                ep_id += 1
                ep = [r for r in rows[-PHASE_MIN:][s:s + d]]
                episodes.append({
                    "pilot": PILOT, "pool": pool, "episode_id": ep_id, "phase": phase,
                    "start_ts": start + timedelta(minutes=s),
                    "end_ts": start + timedelta(minutes=s + d), "windows": d,
                    "arrivals": sum(r["arrivals"] for r in ep),
                    "peak_rate_rps": max(r["arrival_rate_rps"] for r in ep),
                    "trailing_median_rps": base_rate})
    return rows, episodes


def _hidden_idle(pools: tuple[str, ...], rng: random.Random) -> list[dict]:
    rows: list[dict] = []
    for pi, pool in enumerate(pools):
        for n in range(NODES_PER_POOL):
            node = f"{pool}-n{n}"
            for g in range(GPUS_PER_NODE):
                # one GPU per node keeps busy without doing useful work (a hidden-idle hot spot)
                leak = 0.3 if g == 0 else 0.08
                for m in range(2 * PHASE_MIN):
                    nominal = min(1.0, 0.6 + 0.05 * pi + 0.2 * math.sin(m / 25 + g) ** 2
                                  + rng.uniform(-0.05, 0.05))
                    effective = max(0.0, nominal - leak - rng.uniform(0, 0.08))
                    rows.append({"pilot": PILOT, "pool": pool, "node": node, "gpu": str(g),
                                 "window_start": T0 + timedelta(minutes=m), "nominal": nominal,
                                 "effective": effective,
                                 "hcl_pp": 100 * (nominal - effective)})
    return rows


def _requests(pools: tuple[str, ...], rng: random.Random) -> list[dict]:
    rows: list[dict] = []
    classes = ("llm", "llm", "llm", "vision", "multimodal", "prediction")
    statuses = ("ok",) * 17 + ("timeout", "dropped", "error")
    total = 2 * PHASE_MIN * 60
    for i in range(1500):
        pool = pools[i % len(pools)]
        arrival = T0 + timedelta(seconds=rng.uniform(0, total))
        start = arrival + timedelta(seconds=rng.expovariate(3.0))
        status = rng.choice(statuses)
        end = None if status == "dropped" else start + timedelta(seconds=rng.uniform(0.1, 2))
        rid = f"r{i:05d}"
        node = f"{pool}-n{i % NODES_PER_POOL}"
        row = {"pilot": PILOT, "request_id": rid, "parent_request_id": None, "attempt": 0,
               "pool": pool, "node": node, "gpu": str(i % GPUS_PER_NODE),
               "model_class": rng.choice(classes), "priority": f"P{rng.randint(0, 3)}",
               "arrival_ts": arrival, "dispatch_ts": start, "start_ts": start,
               "first_token_ts": None, "end_ts": end, "status": status,
               "input_tokens": rng.randint(20, 2000), "output_tokens": rng.randint(1, 500)}
        rows.append(row)
        if status == "timeout":  # one retry per timeout
            retry = dict(row, request_id=f"{rid}-1", parent_request_id=rid, attempt=1,
                         status="ok", arrival_ts=end, dispatch_ts=end, start_ts=end,
                         end_ts=end + timedelta(seconds=0.5))
            rows.append(retry)
    return rows


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    if not rows:
        return
    df = pl.DataFrame(rows, infer_schema_length=None)
    con.register("_rows", df)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
    con.unregister("_rows")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _ci_rows(ba: list[dict], did: list[dict]) -> list[dict]:
    """Hand-made intervals: ±8 % around each value (±0.5 pp for shares), so treatment
    changes are significant and control ones are not; DiD rows on the treatment segment."""
    dd = {d["metric"]: d for d in did}
    rows = []
    for r in ba:
        if r["baseline"] is None:
            continue
        def iv(v: float, unit: str) -> tuple[float, float]:
            w = 0.005 if unit == "share" else 0.08 * abs(v)
            return v - w, v + w
        b, v, c = r["baseline"], r["validation"], r["abs_change"]
        wc = max(abs(c) * 0.5, 1e-9) if r["segment"] != "control" else abs(c) * 3 + 1e-9
        row = {"pilot": PILOT, "segment": r["segment"], "metric": r["metric"], "baseline": b,
               "baseline_lo": iv(b, r["unit"])[0], "baseline_hi": iv(b, r["unit"])[1],
               "validation": v, "validation_lo": iv(v, r["unit"])[0],
               "validation_hi": iv(v, r["unit"])[1], "change": c, "change_lo": c - wc,
               "change_hi": c + wc, "rel_change": r["rel_change"],
               "rel_change_lo": None if r["rel_change"] is None else (c - wc) / abs(b),
               "rel_change_hi": None if r["rel_change"] is None else (c + wc) / abs(b),
               "significant": (c - wc > 0 or c + wc < 0), "did": None, "did_lo": None,
               "did_hi": None, "did_significant": None,
               "method": "fixture", "resamples": 400, "block_s": 300.0, "blocks_baseline": 36,
               "blocks_validation": 36, "seed": 20260302, "level": 0.95}
        d = dd.get(r["metric"])
        if r["segment"] == "treatment" and d and d["did"] is not None:
            w = abs(d["did"]) * 0.4 + 1e-9
            row.update(did=d["did"], did_lo=d["did"] - w, did_hi=d["did"] + w,
                       did_significant=abs(d["did"]) > w)
        rows.append(row)
    return rows


def build_fixture(path: Path, *, pools: tuple[str, ...] = DEFAULT_POOLS,
                  with_metrics: bool = True, with_ci: bool = False,
                  aggregated_only: bool = False) -> Path:
    """Write the fixture warehouse to `path` (a .duckdb file) and return the path.

    aggregated_only: a pilot whose telemetry is only time series (samples): no request rows,
    no jobs, so no request-based metric tables either.
    """
    rng = random.Random(20260302)
    con = duckdb.connect(str(path))
    for ddl in STAGING_DDL:
        con.execute(ddl.read_text())
    con.execute(METRIC_DDL)
    config = {"pilot": PILOT, "title": "Latency-sensitive serving, cluster A",
              "adjustments": ["inference_batch_separation", "priority_scheduling"],
              "timeout_ms": 30000, "scope": {"pools": list(pools[:-1])}}
    _insert(con, "pilots", [{"pilot": PILOT, "title": config["title"],
                             "timezone": "Europe/Berlin", "config_json": json.dumps(config),
                             "loaded_at": T0 + timedelta(days=1)}])
    _insert(con, "phases", [{"pilot": PILOT, "phase": p, "start_ts": s, "end_ts": e}
                            for p, s, e in PHASES])
    con.execute("INSERT INTO pilot_scope VALUES (?, 'pools', ?, NULL, NULL)",
                [PILOT, list(pools[:-1])])
    _insert(con, "sla_targets", [{"pilot": PILOT, "priority": p, "e2e_ms": ms, "ttft_ms": None}
                                 for p, ms in (("P0", 200.0), ("P1", 500.0), ("P2", 1000.0),
                                               ("P3", 5000.0))])
    _insert(con, "thresholds", [{"pilot": PILOT, "name": n, "value": v} for n, v in (
        ("burst_factor", 2.0), ("burst_min_count", 20.0), ("wave_factor", 1.5),
        ("wave_lag_s", 300.0), ("long_job_s", 60.0), ("di", 0.5), ("hcl_pp", 10.0))])
    requests = [] if aggregated_only else _requests(pools, rng)
    _insert(con, "requests", requests)
    _insert(con, "jobs", [] if aggregated_only else [
        {"pilot": PILOT, "job_id": f"j{i}", "kind": "batch", "queue": "batch",
                           "priority": 10.0, "submit_ts": T0 + timedelta(minutes=10 * i),
                           "eligible_ts": None, "start_ts": T0 + timedelta(minutes=10 * i + 1),
                           "end_ts": T0 + timedelta(minutes=10 * i + 30),
                           "node": f"{pools[0]}-n0", "pool": pools[0], "gpus": 1,
                           "gpu_ids": ["0"], "state": "COMPLETED"} for i in range(12)])
    hidden = _hidden_idle(pools, rng)
    _insert(con, "samples", [{"pilot": PILOT, "ts": r["window_start"], "series": "gpu_util",
                              "pool": r["pool"], "node": r["node"], "gpu": r["gpu"],
                              "value": r["nominal"], "le": None} for r in hidden[::7]])
    _insert(con, "quarantine", [
        {"pilot": PILOT, "source_index": 0, "source_kind": "canonical",
         "target_table": "requests", "file": "requests/part-0.parquet", "line": 17 + i,
         "field": "arrival_ts", "reason": "unparseable timestamp", "value": None}
        for i in range(3)] + [
        {"pilot": PILOT, "source_index": 1, "source_kind": "prometheus-text",
         "target_table": "samples", "file": "scrapes/node-1.prom", "line": 4,
         "field": "value", "reason": "value out of range", "value": "1.7"}])
    n_samples = con.execute("SELECT count(*) FROM samples").fetchone()[0]
    _insert(con, "ingest_log", [
        {"pilot": PILOT, "source_index": 0, "source_kind": "canonical",
         "target_table": "requests", "file": "requests/part-0.parquet",
         "sha256": _sha("requests"), "bytes": 183_402, "rows_in": len(requests) + 3,
         "rows_stored": len(requests), "rows_quarantined": 3, "ingested_at": T0},
        {"pilot": PILOT, "source_index": 1, "source_kind": "prometheus-text",
         "target_table": "samples", "file": "scrapes/node-1.prom", "sha256": _sha("samples"),
         "bytes": 96_120, "rows_in": n_samples + 1, "rows_stored": n_samples,
         "rows_quarantined": 1, "ingested_at": T0},
        {"pilot": PILOT, "source_index": 2, "source_kind": "sacct", "target_table": "jobs",
         "file": "slurm/sacct.txt", "sha256": _sha("jobs"), "bytes": 2_048, "rows_in": 12,
         "rows_stored": 12, "rows_quarantined": 0, "ingested_at": T0}])
    if aggregated_only:
        _insert(con, "hidden_idle_map", hidden)
    elif with_metrics:
        headline = _headline_rows(pools)
        ba, did = _before_after_rows(headline)
        windows, episodes = _windows(pools, rng)
        _insert(con, "metrics_headline", headline)
        _insert(con, "metrics_before_after", ba)
        _insert(con, "metrics_did", did)
        _insert(con, "pool_windows", windows)
        _insert(con, "burst_episodes", episodes)
        _insert(con, "hidden_idle_map", hidden)
        if with_ci:
            from pipelines.statistics import CI_COLUMNS

            cols = ", ".join(f'"{c}" {t}' for c, t in (
                (c, {"String": "VARCHAR", "Float64": "DOUBLE", "Int64": "BIGINT",
                     "Boolean": "BOOLEAN"}[str(d)]) for c, d in CI_COLUMNS.items()))
            con.execute(f"CREATE TABLE metrics_ci ({cols})")
            _insert(con, "metrics_ci", _ci_rows(ba, did))
    con.close()
    return path


def report_model(db: Path, run_id: str, generated_at: datetime, pilot: str = PILOT):
    """The report model of a fixture warehouse, read-only (reports.model.build_report_model)."""
    from reports.model import build_report_model

    con = duckdb.connect(str(db), read_only=True)
    try:
        return build_report_model(con, pilot, run_id=run_id, pipeline_version="0.1.0",
                                  generated_at=generated_at)
    finally:
        con.close()
