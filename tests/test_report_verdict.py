"""Section 0's verdict and conclusion, derived from the numbers on hand-built warehouses.

Three tiny warehouses (queue-dominated, GPU-limited, balanced) hold only the tables the
conclusion reads (metrics_headline, findings); the verdict's significance rule is checked at the
printed precision.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.metric_catalog import BY_NAME
from reports import fmt
from reports.cells import headline_index
from reports.conclusion import conclude, pattern_shares
from reports.coverage import Coverage
from reports.evidence import evidence_sentence, one_row_per_job, policy_name
from reports.model import _Warehouse
from reports.sections.common import is_significant
from reports.sections.operational_patterns import PatternSummary
from reports.sections.outlook import interpretation
from reports.thresholds import read_thresholds
from reports.verdict import build_verdict

PILOT = "p"

WAREHOUSES = {
    # queue-dominated: the latency tail is queueing, GPUs have productive room
    "queue": {"p95_latency_s": 12.0, "queue_wait_p95_s": 9.0, "delay_index": 0.31,
              "effective_util": 0.40, "nominal_util": 0.60, "hcl_pp": 20.0,
              "queue_wait_cap_s": 15.0, "queue_wait_censored_share": 0.05},
    # GPU-limited: effective utilization at saturation
    "gpu": {"p95_latency_s": 3.0, "queue_wait_p95_s": 0.5, "delay_index": 0.20,
            "effective_util": 0.92, "nominal_util": 0.95, "hcl_pp": 3.0},
    # balanced: nothing crosses its threshold
    "balanced": {"p95_latency_s": 2.0, "queue_wait_p95_s": 0.2, "delay_index": 0.10,
                 "effective_util": 0.60, "nominal_util": 0.65, "hcl_pp": 5.0},
}


def _warehouse(path: Path, values: dict[str, float], shares: dict[str, float]) -> Path:
    con = duckdb.connect(str(path))
    con.execute("""CREATE TABLE metrics_headline (pilot VARCHAR, phase VARCHAR,
        segment VARCHAR, breakdown VARCHAR, breakdown_value VARCHAR, metric VARCHAR,
        value DOUBLE, unit VARCHAR, basis VARCHAR, note VARCHAR)""")
    con.executemany("INSERT INTO metrics_headline VALUES (?, 'baseline', 'all', 'overall', "
                    "NULL, ?, ?, NULL, 'measured', NULL)",
                    [[PILOT, k, v] for k, v in values.items()])
    con.execute("""CREATE TABLE findings (pilot VARCHAR, phase VARCHAR, pattern VARCHAR,
        detected BOOLEAN, queue_wait_share DOUBLE)""")
    if shares:  # two findings per pattern: the conclusion sums them
        con.executemany("INSERT INTO findings VALUES (?, 'baseline', ?, true, ?)",
                        [[PILOT, p, s / 2] for p, s in shares.items() for _ in range(2)])
    con.close()
    return path


@pytest.fixture(scope="module")
def concluded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("verdict")
    out = {}
    for name, values in WAREHOUSES.items():
        shares = {"batch_scheduling_conflict": 0.40, "priority_inversion": 0.25} \
            if name == "queue" else {}
        con = duckdb.connect(str(_warehouse(tmp / f"{name}.duckdb", values, shares)),
                             read_only=True)
        w = _Warehouse(con, PILOT)
        hx = headline_index(w.q("metrics_headline", "SELECT * FROM metrics_headline "
                                                    "WHERE pilot = ?"))
        th, _ = read_thresholds(w)
        out[name] = conclude(hx, th, pattern_shares(w))
        con.close()
    return out


def test_queue_dominated_warehouse_says_so_with_its_numbers(concluded: dict) -> None:
    c = concluded["queue"]
    assert c.kind == "queue"
    s = c.sentence
    # DI is below its threshold here: the tail share (9 s of 12 s) is what decides
    assert "queue-wait P95 was 9.00 s, 75.0 % of P95 latency (12.00 s" in s
    assert "31.0 % of completed attempts' latency (Delay Index" in s
    assert "baseline phase, all traffic" in s
    assert "batch scheduling conflict 40.0 %" in s and "of the total queue wait" in s
    assert "capped at 15.00 s" in s and "5.0 % of attempts reached the cap" in s
    assert "no dominant limit" not in s


def test_gpu_limited_warehouse(concluded: dict) -> None:
    c = concluded["gpu"]
    assert c.kind == "gpu"
    assert "GPU-limited" in c.sentence and "92.0 %" in c.sentence
    assert "capped" not in c.sentence  # no cap metrics in this warehouse: nothing is claimed


def test_balanced_warehouse_is_the_only_one_without_a_dominant_limit(concluded: dict) -> None:
    assert concluded["balanced"].kind == "balanced"
    assert "no dominant limit" in concluded["balanced"].sentence
    assert "10.0 % of P95 latency" in concluded["balanced"].sentence
    assert [k for k, c in concluded.items() if "no dominant limit" in c.sentence] == [
        "balanced"]


def _ci(seg: str, metric: str, change: float, lo: float, hi: float, did: float | None = None,
        did_lo: float | None = None, did_hi: float | None = None) -> dict:
    base = 10.0
    return {"segment": seg, "metric": metric, "baseline": base, "validation": base + change,
            "change": change, "change_lo": lo, "change_hi": hi, "rel_change": change / base,
            "rel_change_lo": lo / base, "rel_change_hi": hi / base,
            "significant": lo > 0 or hi < 0, "did": did, "did_lo": did_lo, "did_hi": did_hi,
            "did_significant": None if did is None else bool(did_lo > 0 or did_hi < 0),
            "block_s": 180.0, "blocks_baseline": 80, "blocks_validation": 40}


def test_significance_follows_the_printed_interval() -> None:
    m = BY_NAME["delay_index"]
    # numerically below zero, printed as −0.04 pp once widened: significant
    r = _ci("treatment", "delay_index", -0.2, -0.3, -0.1, -0.22, -0.438, -0.00043)
    assert fmt.change_interval(r["did_lo"], r["did_hi"], "share") == "[−43.8 pp, −0.04 pp]"
    assert is_significant(r, m, "did_significant") is True
    # below zero but printed as zero even with 3 more decimals: not called significant
    r["did_hi"] = -1e-9
    assert r["did_significant"] is True
    assert is_significant(r, m, "did_significant") is False


def test_relative_bounds_beyond_a_thousand_percent_print_as_the_cap() -> None:
    # the demo's treatment queue-wait P95: baseline interval [0.013 s, 14.3 s], so the
    # resampled ratio reached +105,119 %; the absolute interval stays the informative one
    assert fmt.rel_interval(-0.9964, 1051.19) == "[−99.6 %, > +1,000 %]"
    assert fmt.rel_interval(-12.0, -10.5) == "[< −1,000 %, < −1,000 %]"
    assert fmt.rel_interval(-0.5, 9.99) == "[−50.0 %, +999.0 %]"
    m = BY_NAME["queue_wait_p95_s"]
    r = _ci("treatment", "queue_wait_p95_s", 4.0, 10.5, 12.0)  # relative [+1,050 %, +1,200 %]
    r.update(rel_change_lo=10.5, rel_change_hi=12.0)
    assert is_significant(r, m) is True  # a capped bound still sits on one side of zero


def test_verdict_answers_per_segment_with_limits() -> None:
    ci = {}
    for name in ("p95_latency_s", "queue_wait_p95_s"):
        ci[("treatment", name)] = _ci("treatment", name, -4.0, -6.0, -2.0, -4.5, -9.0, 0.5)
        ci[("control", name)] = _ci("control", name, 0.5, -3.0, 4.0)
    ci[("treatment", "sla_adherence")] = _ci("treatment", "sla_adherence", 0.05, 0.01, 0.09,
                                             0.06, 0.02, 0.10)
    ci[("control", "sla_adherence")] = _ci("control", "sla_adherence", -0.01, -0.05, 0.03)
    v = build_verdict(ci, True, "requests in pools a, b",
                      {"baseline": timedelta(hours=4), "validation": timedelta(hours=2)},
                      {}, Coverage([], known=False))
    assert v.answer.startswith("Did the adjustments work? Partly: 1 of 3 headline metrics "
                               "improved in the treatment segment beyond the control (SLA "
                               "adherence)")
    assert "P95 latency, Queue wait P95 improved within the treatment segment, but not " \
           "beyond the control" in v.answer
    assert [s.segment for s in v.segments] == ["treatment", "control"]
    assert "requests in pools a, b" in v.segments[0].title
    assert any("Validation length: 2.0 h against a 4.0 h baseline" in x for x in v.limits)
    assert v.counts["improved"] == 1


def test_verdict_without_intervals_claims_nothing() -> None:
    v = build_verdict({}, True, "x", {}, {}, Coverage([], known=False))
    assert v.answer.startswith("Cannot be judged") and "improved" not in v.answer.replace(
        "called an improvement", "")


def test_interpretation_has_one_bullet_per_metric() -> None:
    ci = {("treatment", "queue_wait_p95_s"): _ci("treatment", "queue_wait_p95_s", -4.0, -6.0,
                                                 -2.0, -4.5, -9.0, 0.5)}
    pats = [PatternSummary(p, p.replace("_", " "), 3, {"baseline": 2, "validation": 1}, [],
                           None, None, "high")
            for p in ("batch_scheduling_conflict", "legitimate_vs_amplifying_queueing")]
    parts = interpretation(pats, ci, True, Coverage([], known=False), "queue")
    assert len(parts[0].bullets) == 1  # both act on queue-wait P95: one sentence, not two
    assert "includes zero, so the change is not attributed" in parts[0].bullets[0]
    assert parts[0].paragraphs[0].startswith("The baseline was queue-dominated")


def test_evidence_reads_as_a_sentence_once_per_job() -> None:
    ev = json.dumps({"job_id": "job-ab12", "kind": "batch", "held_s": 3140.0,
                     "p0_p1_attempts_waiting": 5510, "inversion_time_s": 7200.0})
    text = evidence_sentence("priority_inversion", ev)
    assert text == ("A batch job held its GPUs for 52.3 min while 5,510 P0/P1 attempts waited "
                    "for 2.0 h of summed wait (job job-ab12).")
    rows = [{"pattern": "priority_inversion", "phase": "baseline", "evidence_json": ev}] * 4
    assert len(one_row_per_job(rows)) == 1
    assert policy_name("jsq").startswith("latency-aware load distribution")
    assert policy_name("fifo_shared").startswith("today's policy")
