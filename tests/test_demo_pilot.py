"""Demo pilot generator: the landing folder, its pilot.yaml and its canonical files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from pipelines.demo import generate_demo_pilot
from pipelines.simulator.scenarios import DEMO_POWER_HOLD

TABLE_COLUMNS = {
    "requests": ["request_id", "parent_request_id", "attempt", "pool", "node", "gpu",
                 "model_class", "priority", "arrival_ts", "dispatch_ts", "start_ts",
                 "first_token_ts", "end_ts", "status", "input_tokens", "output_tokens"],
    "jobs": ["job_id", "kind", "queue", "priority", "submit_ts", "eligible_ts", "start_ts",
             "end_ts", "node", "pool", "gpus", "gpu_ids", "state"],
    "samples": ["ts", "series", "pool", "node", "gpu", "value", "le"],
}


@pytest.fixture(scope="module")
def pilot(tmp_path_factory) -> Path:
    return generate_demo_pilot(tmp_path_factory.mktemp("landing"), seed=7, scale=0.02)


def test_writes_all_files(pilot: Path):
    assert pilot.name == "demo-cluster-a"
    for rel in ("pilot.yaml", "jobs/jobs.parquet", "ground_truth.parquet", "ground_truth.csv"):
        assert (pilot / rel).is_file(), rel
    assert list((pilot / "requests").glob("*.parquet"))
    assert list((pilot / "samples").glob("*.parquet"))


def test_pilot_yaml_shape(pilot: Path):
    cfg = yaml.safe_load((pilot / "pilot.yaml").read_text())
    assert list(cfg) == ["pilot", "title", "timezone", "phases", "scope", "sla", "timeout_ms",
                         "adjustments", "sources", "anonymization"]
    assert cfg["pilot"] == "demo-cluster-a"
    assert cfg["timezone"] == "Europe/Berlin"
    b, v = cfg["phases"]["baseline"], cfg["phases"]["validation"]
    assert b["start"] < b["end"] == v["start"] < v["end"]
    assert cfg["scope"] == {"pools": ["pool-c", "pool-d"]}
    assert set(cfg["sla"]) == {"P0", "P1", "P2", "P3"}
    assert "ttft_ms" in cfg["sla"]["P0"]
    assert all(t["e2e_ms"] < cfg["timeout_ms"] for t in cfg["sla"].values())
    assert set(cfg["adjustments"]) == {"inference_batch_separation", "priority_scheduling"}
    assert cfg["anonymization"] == {"secret_env": "STABILIS_DEMO_SECRET"}
    for src in cfg["sources"]:
        assert src["kind"] == "canonical"
        assert list(pilot.glob(src["path"])), src


def test_tables_are_canonical_and_cover_the_phases(pilot: Path):
    cfg = yaml.safe_load((pilot / "pilot.yaml").read_text())
    frames = {
        "requests": pl.read_parquet(pilot / "requests" / "*.parquet"),
        "jobs": pl.read_parquet(pilot / "jobs" / "jobs.parquet"),
        "samples": pl.read_parquet(pilot / "samples" / "*.parquet"),
    }
    for name, cols in TABLE_COLUMNS.items():
        assert frames[name].columns == cols, name
        assert frames[name].height > 0, name
    r = frames["requests"]
    start = cfg["phases"]["baseline"]["start"].replace(tzinfo=None)
    end = cfg["phases"]["validation"]["end"].replace(tzinfo=None)
    assert r["arrival_ts"].min() >= start and r["arrival_ts"].max() < end
    assert r["arrival_ts"].dtype == pl.Datetime("us") and r["arrival_ts"].dtype.time_zone is None
    assert set(r["pool"]) >= set(cfg["scope"]["pools"])
    assert 4 <= r["pool"].n_unique() <= 6
    share = r.filter(pl.col("pool").is_in(cfg["scope"]["pools"])).height / r.height
    assert 0.2 < share < 0.5
    assert (r["attempt"] > 0).any() and (r["status"] != "ok").any()


def test_ground_truth(pilot: Path):
    gt = pl.read_parquet(pilot / "ground_truth.parquet")
    csv = pl.read_csv(pilot / "ground_truth.csv")
    assert gt.height > 0 and csv.height == gt.height
    assert {"type", "pool", "start_ts", "end_ts", "magnitude", "overload", "conflict",
            "retry_storm", "oscillation", "flagged", "marginal"} <= set(gt.columns)
    # an overload within the arrival noise is marginal, never both
    assert not gt.select((pl.col("overload") & pl.col("marginal")).any()).item()
    # (oscillations and slowdowns are too rare for this 51-minute pilot: see the plan test)
    assert {"burst", "batch_job", "policy_change", "unit:non_productive_queue_waiting",
            "unit:hidden_gpu_occupancy_loss", "unit:energy_latency_mismatch"} <= set(gt["type"])
    assert (gt["end_ts"] >= gt["start_ts"]).all()
    # one row per job that ran in the pilot, matching the jobs table by pool and run time
    jobs = pl.read_parquet(pilot / "jobs" / "jobs.parquet")
    end = gt["end_ts"].max()
    ran = jobs.filter(pl.col("start_ts").is_not_null() & (pl.col("start_ts") < end))
    gj = gt.filter(pl.col("type") == "batch_job")
    assert gj.height == ran.height
    assert gj.join(ran, on=["pool", "start_ts"]).height == ran.height
    assert gt.filter(pl.col("type") == "burst")["magnitude"].min() >= 1.1
    # phase-level ground truth: one unit per pool x phase and pattern
    for pattern in ("energy_latency_mismatch", "non_productive_queue_waiting",
                    "hidden_gpu_occupancy_loss"):
        units = gt.filter(pl.col("type") == f"unit:{pattern}")
        assert units.height == 10, pattern  # 5 pools x 2 phases
        assert units["pool"].n_unique() == 5, pattern
    # energy-latency: the pool whose power is held, in both phases (held for the whole pilot)
    units = gt.filter(pl.col("type") == "unit:energy_latency_mismatch")
    assert units.filter(pl.col("flagged"))["pool"].to_list() == [DEMO_POWER_HOLD[0]] * 2
    # hidden loss: the pools of memory-bound LLM / multimodal decoding, not the compute-bound
    hcl = gt.filter((pl.col("type") == "unit:hidden_gpu_occupancy_loss") & pl.col("flagged"))
    assert set(hcl["pool"]) == {"pool-a", "pool-b", "pool-d"}


def test_regeneration_is_identical(pilot: Path, tmp_path: Path):
    again = generate_demo_pilot(tmp_path, seed=7, scale=0.02)
    for rel in ("pilot.yaml", "jobs/jobs.parquet", "ground_truth.csv",
                "requests/part-000.parquet", "samples/samples.parquet"):
        assert (pilot / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_scripted_episodes_are_graded_and_spaced():
    from pipelines.simulator.scenarios import DEMO_EPISODES, demo_config
    from pipelines.simulator.workload import scripted_plan

    plan = scripted_plan(demo_config(7, 1.0))
    assert plan is not None
    assert sum(map(len, plan.oscillations)) >= 5 and sum(map(len, plan.slowdowns)) >= 3
    for p in range(len(plan.bursts)):
        # every episode of a pool (an oscillation's lull and surge as one) has a calm
        # trailing window: quiet_s without another before it
        eps = sorted([(s, e) for s, e, m in plan.bursts[p] if m != DEMO_EPISODES.lull_multiplier
                      and (s, e, m) not in [x[1] for x in plan.oscillations[p]]]
                     + [(lull[0], surge[1]) for lull, surge in plan.oscillations[p]]
                     + [(s, e) for s, e, _ in plan.slowdowns[p]])
        for (_, e0), (s1, _) in zip(eps, eps[1:], strict=False):
            assert s1 - e0 >= DEMO_EPISODES.quiet_s
    mults = [m for b in plan.bursts for _, _, m in b]
    assert min(mults) < 1.6 and max(mults) >= 2.5
