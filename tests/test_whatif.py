"""What-if replay: one measurement path, tables, model error, traces, CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.simulator.policies import Policy, policy_set
from pipelines.sql_models import build_model
from pipelines.whatif import (
    DECLARED,
    ERROR_COLUMNS,
    ERROR_METRICS,
    RESULTS_COLUMNS,
    TODAY,
    headline_models,
    policy_map,
    run_whatif,
    simulate_replay,
    store,
)
from pipelines.whatif.replay import load_replay, read_trace, trace_replay
from tests.simulated_pilot import write_simulated_pilot

PILOT = "wi-test"
TRACES = Path(__file__).resolve().parent / "fixtures" / "public" / "traces"


def write_pilot(con: duckdb.DuckDBPyConnection, seed: int = 4, scale: float = 0.05) -> None:
    """A simulated pilot straight into the staging tables (no ingestion needed here)."""
    write_simulated_pilot(con, PILOT, seed, scale)
    doc = {"timeout_ms": 30_000, "adjustments": ["inference_batch_separation",
                                                 "priority_scheduling"]}
    con.execute("INSERT INTO pilots VALUES (?, 'test', 'UTC', ?, now())", [PILOT, json.dumps(doc)])
    for m in headline_models("metrics_did"):  # the measured DiD the effect is judged by
        build_model(con, m, PILOT)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    write_pilot(con)
    con.close()
    return path


@pytest.fixture(scope="module")
def whatif(warehouse: Path):
    con = duckdb.connect(str(warehouse))
    run = run_whatif(con, PILOT, ["priority", "jsq", "burst_buffering+segmentation", DECLARED],
                     seeds=(1, 2))  # whole phases, the default
    counts = store(con, PILOT, run)
    yield con, run, counts
    con.close()


def test_results_table_shape_and_basis(whatif):
    con, run, counts = whatif
    r = run.results
    assert dict(r.schema) == RESULTS_COLUMNS
    assert dict(run.model_error.schema) == ERROR_COLUMNS
    assert set(r["policy"]) == {TODAY, "priority", "jsq", "burst_buffering+segmentation",
                                DECLARED}
    assert set(r["basis"]) == {"modeled", "modeled (simulator defaults)"}
    assert set(r.filter(pl.col("basis") != "modeled")["metric"]) <= {
        "nominal_util", "effective_util", "hcl_pp", "gpu_power_w", "gpu_energy_j",
        "energy_per_good_request_j", "gpu_mem_used_bytes", "goodput_rps_per_gpu"}
    assert set(r["seeds"]) == {2}
    assert set(r["segment"]) == {"all", "treatment", "control"}
    # calibration: the baseline under today's policy; counterfactual: the validation
    # arrivals (after a warm-up) under today's policy and every other policy
    assert set(r.filter(pl.col("phase") == "baseline")["policy"]) == {TODAY}
    val = r.filter(pl.col("phase") == "validation")
    # the validation phase is replayed after a warm-up; the baseline starts as the pilot did
    assert (val["warmup_minutes"] == 15).all()
    assert (r.filter(pl.col("phase") == "baseline")["warmup_minutes"] == 0).all()
    # seed spread brackets the mean
    assert (val["change_min"] <= val["predicted_change"] + 1e-9).all()
    assert (val["predicted_change"] <= val["change_max"] + 1e-9).all()
    # the declared policy set is the pilot's adjustments
    dec = r.filter(pl.col("policy") == DECLARED)["policies"].unique().to_list()
    assert dec == ["batch_separation+priority"]
    # today's replay against itself: no change, no spread
    today = r.filter(pl.col("policy") == TODAY)
    assert today["predicted_change"].abs().max() == 0
    assert counts == {"whatif_results": r.height, "whatif_model_error": run.model_error.height,
                      "whatif_status": 1}
    st = con.execute("SELECT status, basis, reason, window_start, window_end, service_model "
                     "FROM whatif_status WHERE pilot = ?", [PILOT]).fetchall()
    base = r.filter(pl.col("phase") == "baseline")
    assert st == [("modeled", "per-request replay", None, base["replay_start"][0],
                   base["replay_end"][0], None)]
    assert con.execute("SELECT count(*) FROM whatif_results WHERE pilot = ?",
                       [PILOT]).fetchone()[0] == r.height


def test_replays_cover_whole_phases(whatif):
    con, run, _ = whatif
    for phase in ("baseline", "validation"):
        b0, b1 = con.execute("SELECT start_ts, end_ts FROM phases WHERE pilot = ? "
                             "AND phase = ?", [PILOT, phase]).fetchone()
        r = run.results.filter(pl.col("phase") == phase)
        assert (r["replay_start"][0], r["replay_end"][0]) == (b0, b1)  # whole phases
        assert r["replay_minutes"][0] == (b1 - b0).total_seconds() / 60


def test_no_derived_key_reaches_the_warehouse(whatif):
    con, _, _ = whatif
    for (t,) in con.execute("SELECT DISTINCT table_name FROM information_schema.columns "
                            "WHERE column_name = 'pilot'").fetchall():
        keys = {k for (k,) in con.execute(f'SELECT DISTINCT pilot FROM "{t}"').fetchall()}
        assert keys <= {PILOT}, (t, keys)


def _value(r: pl.DataFrame, policy: str, metric: str, segment: str = "all",
           breakdown: str = "overall", bv: str = "") -> dict:
    row = r.filter((pl.col("phase") == "validation") & (pl.col("policy") == policy)
                   & (pl.col("metric") == metric) & (pl.col("segment") == segment)
                   & (pl.col("breakdown") == breakdown)
                   & (pl.col("breakdown_value") == bv))
    assert row.height == 1, (policy, metric, segment, breakdown, bv)
    return row.row(0, named=True)


def test_policies_move_the_metrics_the_way_queueing_says(whatif):
    _, run, _ = whatif
    r = run.results
    # same arrivals under every policy: the logical request count never changes
    for p in set(r["policy"]):
        assert _value(r, p, "logical_requests")["predicted_change"] == 0
    # non-preemptive priority: P0 waits less and gains at least as much SLA adherence as P3
    # (P3's started waits may even shrink: more of its attempts abandon before starting)
    p0 = _value(r, "priority", "queue_wait_p95_s", breakdown="priority", bv="P0")
    assert p0["predicted_change"] < 0
    s0 = _value(r, "priority", "sla_adherence", breakdown="priority", bv="P0")
    s3 = _value(r, "priority", "sla_adherence", breakdown="priority", bv="P3")
    assert s0["predicted_change"] >= s3["predicted_change"]
    # pooling pools of the same model class: less waiting overall
    assert _value(r, "jsq", "queue_wait_p95_s")["predicted_change"] < 0
    # the declared adjustments touch only the treatment pools
    ctrl = _value(r, DECLARED, "queue_wait_p95_s", segment="control")
    assert ctrl["predicted_change"] == 0


def test_model_error_rows(whatif):
    _, run, _ = whatif
    me = run.model_error
    assert set(me["comparison"]) == {"calibration", "effect", "modeled_did", "validation_level"}
    # no counts and no GPU figures are judged
    assert set(me["metric"]) <= set(ERROR_METRICS)
    cal = me.filter(pl.col("comparison") == "calibration")
    assert set(cal["segment"]) == {"all", "treatment", "control"}
    p50 = cal.filter((pl.col("segment") == "all") & (pl.col("metric") == "p50_latency_s"))
    assert abs(p50["error_rel"][0]) < 0.15
    assert p50["modeled_min"][0] <= p50["modeled"][0] <= p50["modeled_max"][0]
    eff = me.filter(pl.col("comparison").is_in(["effect", "modeled_did"]))
    assert set(eff["segment"]) == {"treatment"} and eff["measured"].is_not_null().all()
    # the verdict is the interval test, the sign the sign test
    for r in eff.iter_rows(named=True):
        if r["measured_lo"] is not None:
            assert r["inside"] == (r["measured_lo"] <= r["modeled"] <= r["measured_hi"])
        assert r["same_sign"] == ((r["modeled"] > 0) - (r["modeled"] < 0)
                                  == (r["measured"] > 0) - (r["measured"] < 0))
    assert set(me.filter(pl.col("comparison") == "validation_level")["segment"]) == {
        "all", "treatment", "control"}


def test_replay_is_deterministic_per_seed(whatif):
    con = whatif[0]
    rep = load_replay(con, PILOT, minutes=10)
    pm = policy_map(rep, "priority+jsq")
    a, b = simulate_replay(rep, pm, 3), simulate_replay(rep, pm, 3)
    assert a.requests.equals(b.requests) and a.samples.equals(b.samples)
    c = simulate_replay(rep, pm, 4)
    assert not c.requests.equals(a.requests)
    # fitted client and observed slots
    assert rep.client.timeout_ms == 30_000 and rep.client.max_queue_ms == 15_000
    assert 0.5 < rep.client.retry_prob <= 1.0
    assert rep.cluster.n_gpus == con.execute(
        "SELECT count(DISTINCT gpu) FROM samples WHERE pilot = ? AND gpu IS NOT NULL",
        [PILOT]).fetchone()[0]


def test_adjustment_names_map_to_policies():
    assert policy_set(["inference_batch_separation", "priority_scheduling"]) == frozenset(
        {Policy.BATCH_SEPARATION, Policy.PRIORITY})
    assert policy_set(["latency_aware_load_distribution"]) == frozenset({Policy.JSQ})
    assert policy_set(["resource_segmentation", "burst_buffering"]) == frozenset(
        {Policy.SEGMENTATION, Policy.BURST_BUFFERING})
    with pytest.raises(ValueError, match="routing"):
        policy_set(["jsq", "random_routing"])


def test_trace_readers(tmp_path: Path):
    az = read_trace(str(TRACES / "AzureLLMInferenceTrace_conv.csv"), "azure")
    assert az.columns == ["ts", "input_tokens", "output_tokens"] and az.height > 19_000
    assert az["ts"].is_sorted()
    mc = read_trace(str(TRACES / "synthetic_trace.jsonl"), "mooncake")
    assert mc.height > 3_000 and mc["input_tokens"].min() > 0
    bg = tmp_path / "burst.csv"
    bg.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                  "0.5,ChatGPT,100,20,120,Conversation log\n"
                  "2.25,GPT-4,300,50,350,API log\n")
    b = read_trace(str(bg), "burstgpt")
    assert b["input_tokens"].to_list() == [100, 300]
    assert (b["ts"][1] - b["ts"][0]) == timedelta(seconds=1.75)


def test_trace_replay_through_the_cli(tmp_path: Path):
    from pipelines.cli import app

    out = tmp_path / "wi.json"
    res = CliRunner().invoke(app, [
        "whatif", "--trace", str(TRACES / "AzureLLMInferenceTrace_conv.csv"), "--kind", "azure",
        "--service", "lognormal:1500,0.6", "--gpus", "12", "--minutes", "5", "--seeds", "1",
        "--policy", "priority", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "replaying the first 5 min of the trace" in res.output  # it says when it cuts
    doc = json.loads(out.read_text())
    pols = {r["policy"] for r in doc["results"]}
    assert pols == {TODAY, "priority"}
    assert doc["attempts"] > 100


def test_trace_replay_parametric_service_mean():
    df = read_trace(str(TRACES / "AzureLLMInferenceTrace_conv.csv"), "azure")
    rep = trace_replay(df, "exp:800", gpus=16, minutes=10)
    wl = rep.workloads(1)[0]
    assert abs(wl.service_us.mean() / 800_000 - 1) < 0.05
    assert rep.cluster.n_gpus == 16 and rep.cluster.gpus_per_node == 8


def test_same_warehouse_and_settings_give_identical_tables(whatif):
    con = whatif[0]
    a, b = (run_whatif(con, PILOT, [DECLARED], seeds=(1, 2)) for _ in range(2))
    assert a.results.height and a.model_error.height
    assert a.results.equals(b.results) and a.model_error.equals(b.model_error)
