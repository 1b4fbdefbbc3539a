"""The benchmark suite (benchmarks/bench_suite.py) on a tiny size: every stage runs and lands
in bench.json and bench.md, with the floor and the analytics/floor ratio."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]


def _suite():
    spec = importlib.util.spec_from_file_location("bench_suite", ROOT / "benchmarks" /
                                                  "bench_suite.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_suite_writes_every_stage(tmp_path: Path) -> None:
    suite = _suite()
    out, work = tmp_path / "results", tmp_path / "work"
    suite.main(["--sizes", "8k", "--out", str(out), "--work", str(work), "--inline", "--smoke"])

    doc = json.loads((out / "bench.json").read_text())
    [run] = doc["runs"]
    assert run["size"] == "8k" and run["attempts"] == 8000
    assert set(run["stages"]) == set(suite.STAGES)
    failed = {s: r["error"] for s, r in run["stages"].items() if "error" in r}
    assert not failed and run["failed_stages"] == []
    for r in [*run["stages"].values(), run["floors_run"], *run["peers"].values()]:
        assert r["wall_s"] > 0 and r["cpu_s"] >= 0 and r["peak_rss_mib"] > 0
    # ingest stored exactly what the generator wrote (nothing quarantined)
    assert run["stages"]["ingest"]["rows"] == run["attempts"] + run["samples"] + run["jobs"]
    with duckdb.connect(str(work / "8k" / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM int_attempts").fetchone()[0] == 8000
        # 8 pools x 6 h of 10 s burst windows, empty ones included, each pool from the window
        # after the one holding its first arrival (the first one in the phase's first window)
        observed = con.execute(
            "SELECT sum(2160 - CASE WHEN w0 > s0 THEN w0 + 1 - s0 ELSE 0 END) FROM ("
            " SELECT min(epoch_us(arrival_ts)) // 10000000 AS w0,"
            "  (SELECT min(epoch_us(start_ts)) // 10000000 FROM phases) AS s0"
            " FROM requests GROUP BY pool)").fetchone()[0]
        assert 8 * 2150 < observed <= 8 * 2160
        assert con.execute("SELECT count(*) FROM burst_windows").fetchone()[0] == observed
    # every model of the registry was built, timed and given a floor and a ratio
    from pipelines.sql_models import MODELS

    names = [m.name for m in MODELS]
    assert list(run["stages"]["analytics"]["per_model"]) == names[names.index("int_pool_minutes"):]
    floors = run["floors_run"]["floors"]
    groups = {"ingest", *(f"stage:{s}" for s in suite.SQL_STAGES),
              *(f"layer:{ly}" for ly in suite.LAYERS), *(f"model:{n}" for n in names)}
    write = {g for g in floors if g.startswith("write:")}
    views = {f"write:model:{m.name}" for m in MODELS if m.view}  # a view writes nothing
    assert set(floors) - write == groups
    assert all(w > 0 for g, (w, _) in floors.items() if g not in views)
    assert views and all(floors[g] == [0, 0] for g in views)
    # a write floor per group but the ingest's: the sum of its models' table copies
    assert write == {f"write:{g}" for g in groups - {"ingest"}}
    assert floors["write:stage:staging"][0] == round(sum(
        floors[f"write:model:{n}"][0] for n in names[:names.index("int_gpu_samples") + 1]), 3)
    ratio = run["floor_ratios"]["stage:analytics"]
    assert ratio["ratio"] == round(run["stages"]["analytics"]["wall_s"]
                                   / floors["stage:analytics"][0], 2)
    assert ratio["rw_ratio"] == round(run["stages"]["analytics"]["wall_s"] / (
        floors["stage:analytics"][0] + floors["write:stage:analytics"][0]), 2)
    assert not (work / "8k" / "floor_scratch.duckdb").exists()
    assert run["throughput_aps"] == round(8000 / sum(
        run["stages"][s]["wall_s"] for s in suite.PIPELINE))
    # both peers answered the same as the SQL tables, on every peer table
    for table, v in run["peer_vs_duckdb"].items():
        assert v["duckdb_s"] > 0, table
        for peer in suite.PEERS:
            assert v[peer]["max_rel_diff"] < 1e-9, (table, peer)
            assert v[peer]["ratio"] == round(v[peer]["compute_s"] / v["duckdb_s"], 2)
    assert doc["goals"]["at"] == "8k" and doc["goals"]["scaling"] is None

    md = (out / "bench.md").read_text()
    for stage in (*suite.STAGES, "**total**", "**ingest..statistics**"):
        assert f"| 8k | {stage} |" in md
    assert "| throughput, ingest..statistics |" in md and "| peak RSS, any stage |" in md
    assert "| 8k | stage:metrics |" in md and "| 8k | layer:topology |" in md
    assert "| 8k | arrival_burstiness |" in md and "## Per-model profile at 8k" in md
