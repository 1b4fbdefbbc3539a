"""What-if on partial telemetry: not modeled (with the reason) without per-request rows or a
declared service model; modeled from an arrival trace with pilot.yaml's `whatif:` block."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest
import yaml
from dagster_duckdb import DuckDBResource

from pipelines.config import (
    DEFAULT_THRESHOLDS,
    PilotConfigError,
    ServiceModel,
    WhatIfModel,
    load_pilot,
)
from pipelines.resources import PilotPaths
from pipelines.runner import run_pilot
from pipelines.warehouse import ensure_schema
from pipelines.whatif import DECLARED, TODAY, prepare, run_whatif, store
from pipelines.whatif.declared import describe, service_spec
from pipelines.whatif.replay import TRACE_BASIS, parametric_service
from pipelines.whatif.status import NEEDS_INPUT, NEEDS_MODEL
from tests.pilot_kinds import make_pilot

T0 = datetime(2026, 3, 2)
WHATIF_KEYS = ["whatif_results", "whatif_model_error", "whatif_status"]
BLOCK = {"service": {"distribution": "lognormal", "mean_s": 1.2, "cv": 0.8},
         "gpus": 4, "concurrency_per_gpu": 2, "pools": {"pool-a": 2, "pool-b": 2}}


def _config(con: duckdb.DuckDBPyConnection, pilot: str, whatif: dict | None) -> None:
    """The config rows ingestion writes, for a one-hour baseline and validation."""
    doc = {"timeout_ms": 30_000, "adjustments": ["priority_scheduling"], "whatif": whatif}
    con.execute("INSERT INTO pilots VALUES (?, 't', 'UTC', ?, now())", [pilot, json.dumps(doc)])
    con.execute("INSERT INTO phases VALUES (?, 'baseline', ?, ?), (?, 'validation', ?, ?)",
                [pilot, T0, T0 + timedelta(hours=1), pilot, T0 + timedelta(hours=1),
                 T0 + timedelta(hours=2)])
    con.execute("INSERT INTO sla_targets VALUES (?, 'P2', 5000, NULL)", [pilot])
    con.execute("INSERT INTO pilot_scope VALUES (?, 'pools', ['pool-a'], NULL, NULL)", [pilot])
    con.executemany("INSERT INTO thresholds VALUES (?, ?, ?)",
                    [[pilot, k, float(v)] for k, v in DEFAULT_THRESHOLDS.items()])


def gpu_only(con: duckdb.DuckDBPyConnection, pilot: str) -> None:
    _config(con, pilot, None)
    con.execute("""
        INSERT INTO samples BY NAME
        SELECT ? AS pilot, TIMESTAMP '2026-03-02' + INTERVAL (i * 15) SECOND AS ts,
               'gpu_util' AS series, 'pool-a' AS pool, 'node-1' AS node, 'gpu-' || (i % 4) AS gpu,
               0.7 AS value
        FROM range(480) t(i)""", [pilot])


def trace_only(con: duckdb.DuckDBPyConnection, pilot: str, whatif: dict | None) -> int:
    """Poisson arrivals at 2/s over both phases; returns the baseline's count."""
    _config(con, pilot, whatif)
    rng = np.random.default_rng(7)
    gaps = rng.exponential(0.5, 14_000)
    t = np.cumsum(gaps)
    t = t[t < 7200]
    df = pl.DataFrame({
        "pilot": pilot,
        "ts": [T0 + timedelta(seconds=float(x)) for x in t],
        "input_tokens": rng.integers(50, 2000, len(t)).astype(np.int32),
        "output_tokens": rng.integers(10, 400, len(t)).astype(np.int32),
        "source": "test-trace"})
    con.register("__a", df)
    con.execute("INSERT INTO arrivals BY NAME SELECT * FROM __a")
    con.unregister("__a")
    return int((t < 3600).sum())


@pytest.fixture
def warehouse(tmp_path: Path):
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    ensure_schema(con)
    yield path, con
    con.close()


def _materialize(tmp_path: Path, db: Path, pilot: str) -> dg.ExecuteInProcessResult:
    """The whatif asset alone, through Dagster, on `db`."""
    return run_pilot(
        pilot, selection=WHATIF_KEYS, dagster_instance=dg.DagsterInstance.ephemeral(),
        resources={"warehouse": DuckDBResource(database=str(db)),
                   "paths": PilotPaths(landing_dir=str(tmp_path / "landing"),
                                       reports_dir=str(tmp_path / "reports"))})


def _status(con: duckdb.DuckDBPyConnection, pilot: str) -> list[tuple]:
    return con.execute("SELECT status, basis, reason, window_start, window_end, service_model "
                       "FROM whatif_status WHERE pilot = ?", [pilot]).fetchall()


def _count(con: duckdb.DuckDBPyConnection, table: str, pilot: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table} WHERE pilot = ?", [pilot]).fetchone()[0]


def test_gpu_only_pilot_is_not_modeled_and_the_asset_succeeds(tmp_path: Path, warehouse):
    db, con = warehouse
    gpu_only(con, "gpu-only")
    con.close()
    for _ in range(2):  # a re-run replaces the pilot's rows: still one status row
        result = _materialize(tmp_path, db, "gpu-only")
        assert result.success
    mats = {m.asset_key.to_user_string(): m.metadata
            for m in result.asset_materializations_for_node("whatif")}
    assert set(mats) == set(WHATIF_KEYS)
    assert mats["whatif_status"]["whatif_status"].value == "not_modeled"
    assert mats["whatif_results"]["reason"].value == NEEDS_INPUT
    with duckdb.connect(str(db)) as c:
        assert _status(c, "gpu-only") == [("not_modeled", None, NEEDS_INPUT, None, None, None)]
        assert _count(c, "whatif_results", "gpu-only") == 0
        assert _count(c, "whatif_model_error", "gpu-only") == 0


def test_trace_without_a_service_model_needs_one(warehouse):
    _, con = warehouse
    trace_only(con, "trace-bare", None)
    rep, status = prepare(con, "trace-bare")
    assert rep is None and status.status == "not_modeled"
    assert status.reason == NEEDS_MODEL and "needs a service model" in status.reason


def test_trace_with_a_declared_model_is_modeled(warehouse):
    _, con = warehouse
    n_base = trace_only(con, "trace-wi", BLOCK)
    rep, status = prepare(con, "trace-wi", minutes=5)
    assert rep is not None and not rep.observed
    assert status.status == "modeled" and status.basis == TRACE_BASIS
    assert status.service_model == describe(WhatIfModel.from_dict(BLOCK))
    assert "CV 0.8" in status.service_model and "8 servers" in status.service_model
    # 4 GPUs x 2 concurrent requests = 8 slots; arrivals split between the two pools
    assert rep.cluster.n_gpus == 8 and rep.cluster.pool_names == ("pool-a", "pool-b")
    assert rep.start >= T0 and rep.end - rep.start == timedelta(minutes=5)
    n_window = con.execute("SELECT count(*) FROM arrivals WHERE pilot = 'trace-wi' "
                           "AND ts >= ? AND ts < ?", [rep.start, rep.end]).fetchone()[0]
    assert rep.arrivals.height == n_window and 0 < n_window < n_base
    assert 0.35 < (rep.arrivals["pool"] == "pool-a").mean() < 0.65
    svc = rep.workloads(1)[0].service_us
    assert abs(svc.mean() / 1.2e6 - 1) < 0.15

    run = run_whatif(con, "trace-wi", ["priority", DECLARED], minutes=5, seeds=(1,), rep=rep)
    r = run.results
    assert set(r["policy"]) == {TODAY, "priority", DECLARED}
    # GPU figures come from the simulator's defaults and say so
    assert set(r["basis"]) == {"modeled", "modeled (simulator defaults)"}
    assert r["measured_value"].is_null().all()
    lr = r.filter((pl.col("metric") == "logical_requests") & (pl.col("segment") == "all")
                  & (pl.col("breakdown") == "overall") & (pl.col("policy") == TODAY))
    assert lr["predicted_value"][0] == n_window  # every arrival of the window replayed
    # nothing observed to compare with: no baseline_replay rows
    assert run.model_error.filter(pl.col("comparison") == "baseline_replay").height == 0
    # the declared adjustment (priority) touches only the treatment pool
    ctrl = r.filter((pl.col("policy") == DECLARED) & (pl.col("segment") == "control")
                    & (pl.col("metric") == "p95_latency_s") & (pl.col("breakdown") == "overall"))
    assert ctrl["predicted_change"][0] == 0
    counts = store(con, "trace-wi", run)
    assert counts["whatif_status"] == 1 and counts["whatif_results"] == r.height
    assert _status(con, "trace-wi") == [("modeled", TRACE_BASIS, None, rep.start, rep.end,
                                          status.service_model)]


def test_declared_model_without_arrivals_in_the_phase(warehouse):
    _, con = warehouse
    gpu_only(con, "gpu-wi")
    con.execute("UPDATE pilots SET config_json = ? WHERE pilot = 'gpu-wi'",
                [json.dumps({"timeout_ms": 30_000, "whatif": BLOCK})])
    rep, status = prepare(con, "gpu-wi")
    assert rep is None and "needs arrivals" in status.reason


@pytest.mark.parametrize("dist,cv", [("lognormal", 0.8), ("gamma", 1.5), ("exponential", 1.0),
                                     ("deterministic", 0.0)])
def test_declared_distribution_has_the_declared_mean_and_cv(dist: str, cv: float):
    model = WhatIfModel(ServiceModel(dist, 0.9, cv), (("trace", 4),))
    rng = np.random.default_rng(3)
    x = parametric_service(service_spec(model), rng.random(200_000), rng) / 1e6
    assert x.mean() == pytest.approx(0.9, rel=0.02)
    assert x.std() / x.mean() == pytest.approx(cv, abs=0.04)


def _pilot_yaml(tmp_path: Path, whatif) -> Path:
    d = tmp_path / "p"
    d.mkdir(exist_ok=True)
    (d / "azure.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n")
    doc = {"pilot": "p", "timezone": "UTC", "scope": "all", "timeout_ms": 1000,
           "sla": {"P0": {"e2e_ms": 100}},
           "phases": {"baseline": {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"},
                      "validation": {"start": "2026-03-03T00:00:00Z",
                                     "end": "2026-03-04T00:00:00Z"}},
           "sources": [{"kind": "arrival-trace", "path": "azure.csv"}], "whatif": whatif}
    (d / "pilot.yaml").write_text(yaml.safe_dump(doc))
    return d


def _problems(tmp_path: Path, whatif) -> list[str]:
    with pytest.raises(PilotConfigError) as e:
        load_pilot(_pilot_yaml(tmp_path, whatif))
    return e.value.problems


def test_whatif_block_is_parsed_and_stored(tmp_path: Path):
    cfg = load_pilot(_pilot_yaml(tmp_path, BLOCK))
    assert cfg.whatif == WhatIfModel(ServiceModel("lognormal", 1.2, 0.8),
                                     (("pool-a", 2), ("pool-b", 2)), 2, None)
    assert "whatif" not in cfg.extra
    stored = json.loads(cfg.to_json())["whatif"]
    assert WhatIfModel.from_dict(stored) == cfg.whatif
    one = load_pilot(_pilot_yaml(tmp_path, {"service": {"distribution": "exponential",
                                                        "mean_s": 2}, "gpus": 3}))
    assert one.whatif is not None and one.whatif.pools == (("trace", 3),)
    assert one.whatif.service.cv == 1.0
    assert load_pilot(_pilot_yaml(tmp_path, None)).whatif is None


@pytest.mark.parametrize("block,expected", [
    ({"service": {"distribution": "weibull", "mean_s": 1, "cv": 1}, "gpus": 2},
     ["whatif.service.distribution: 'weibull' is not supported; allowed exponential, "
      "lognormal, gamma, deterministic"]),
    ({"service": {"distribution": "lognormal", "mean_s": -1, "cv": 0.5}, "gpus": 2},
     ["whatif.service.mean_s: -1 is not a service time; expected a number of seconds > 0"]),
    ({"service": {"distribution": "lognormal", "mean_s": 1}, "gpus": 2},
     ["whatif.service.cv: is required for lognormal; expected a number > 0 (standard "
      "deviation / mean of the service time)"]),
    ({"service": {"distribution": "exponential", "mean_s": 1, "cv": 0.3}, "gpus": 2},
     ["whatif.service.cv: 0.3 does not fit the exponential distribution (its CV is 1); omit "
      "cv, or choose lognormal or gamma"]),
    ({"service": {"distribution": "deterministic", "mean_s": 1}},
     ["whatif.gpus: is required (or whatif.pools); expected the number of GPUs that serve "
      "the traffic, a whole number >= 1"]),
    ({"service": {"distribution": "deterministic", "mean_s": 1}, "gpus": 3,
      "pools": {"a": 1, "b": 1}},
     ["whatif.gpus: 3 is not the sum of whatif.pools (2); give one or make them agree"]),
    ({"service": {"distribution": "gamma", "mean_s": 1, "cv": 2}, "gpus": 2,
      "concurrency_per_gpu": 0, "priority": "P7", "servers": 4},
     ["whatif: unknown key 'servers'; allowed service, gpus, pools, concurrency_per_gpu, "
      "priority",
      "whatif.concurrency_per_gpu: 0 is not valid; expected a whole number >= 1 (requests "
      "one GPU serves at once)",
      "whatif.priority: unknown priority class 'P7'; allowed P0, P1, P2, P3"]),
    ("lognormal", ["whatif: expected a mapping with service {distribution, mean_s, cv} and "
                   "gpus (or pools)"]),
])
def test_whatif_block_validation(tmp_path: Path, block, expected: list[str]):
    assert _problems(tmp_path, block) == expected


def test_azure_trace_pilot_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Ingest the azure-trace pilot with a `whatif:` block and run the whatif asset."""
    monkeypatch.setenv("STABILIS_SECRET", "s3cret")
    monkeypatch.setenv("STABILIS_WHATIF_MINUTES", "3")
    monkeypatch.setenv("STABILIS_WHATIF_SEEDS", "1")
    monkeypatch.setenv("STABILIS_WHATIF_POLICIES", "priority,declared")
    landing = tmp_path / "landing"
    d = make_pilot(landing, "azure-trace")
    doc = yaml.safe_load((d / "pilot.yaml").read_text())
    doc["whatif"] = {"service": {"distribution": "gamma", "mean_s": 0.8, "cv": 1.2,
                                 "scale_by_tokens": True}, "gpus": 8}
    (d / "pilot.yaml").write_text(yaml.safe_dump(doc))
    from assets.staging import STAGING_TABLES

    db = tmp_path / "w.duckdb"
    t0 = time.perf_counter()
    result = run_pilot(
        d.name, selection=[*STAGING_TABLES, *WHATIF_KEYS],
        dagster_instance=dg.DagsterInstance.ephemeral(),
        resources={"warehouse": DuckDBResource(database=str(db)),
                   "paths": PilotPaths(landing_dir=str(landing),
                                       reports_dir=str(tmp_path / "reports"))})
    assert result.success
    assert time.perf_counter() - t0 < 20
    with duckdb.connect(str(db)) as con:
        (st,) = _status(con, d.name)
        assert st[:3] == ("modeled", TRACE_BASIS, None)
        assert st[5] == ("gamma service time, mean 0.8 s, CV 1.2, proportional to each "
                         "request's tokens; 8 GPU(s); every arrival P1")  # lowest with SLA
        assert st[4] - st[3] == timedelta(minutes=3)
        rows = con.execute("SELECT DISTINCT policy, basis FROM whatif_results WHERE pilot = ? "
                           "AND basis = 'modeled' ORDER BY 1", [d.name]).fetchall()
        assert rows == [(DECLARED, "modeled"), (TODAY, "modeled"), ("priority", "modeled")]
        # nothing measured to judge a trace replay by
        assert con.execute("SELECT count(*) FROM whatif_model_error WHERE pilot = ?",
                           [d.name]).fetchone()[0] == 0
