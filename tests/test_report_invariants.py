"""Report invariants (issue 15): intervals hold their points, changes match their values, counts
quoted in text equal their tables, and "significant" only where the interval excludes zero.

Runs on the report model of the small hand-made warehouse (tests/report_fixture.py, ~3 s), not
the demo; each check also has a negative test that breaks one printed cell and must be flagged.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
import report_fixture as rf  # tests/ is on sys.path under pytest
import report_invariants as ri

from reports.model import ReportModel
from reports.types import Table


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ReportModel:
    db = rf.build_fixture(tmp_path_factory.mktemp("invariants") / "wh.duckdb", with_ci=True)
    return rf.report_model(db, "run-inv", datetime(2026, 5, 1, tzinfo=UTC))


def _table(m: ReportModel, caption_start: str) -> Table:
    return next(t for t in ri.tables(m) if t.caption.startswith(caption_start))


def _row(t: Table, metric: str) -> list[str]:
    return next(r for r in t.rows if r[0] == metric)


def _phrases(m: ReportModel, rx) -> int:
    return sum(len(rx.findall(text)) for _, text in ri.texts(m))


# --- the invariants hold on the fixture's report (and each check has material to check) ---

def test_every_interval_contains_its_point(model: ReportModel) -> None:
    assert _phrases(model, ri.INTERVAL_RE) > 100
    assert ri.interval_problems(model) == []


def test_every_change_matches_its_values(model: ReportModel) -> None:
    assert _phrases(model, ri.CHANGE_RE) > 10
    assert ri.change_problems(model) == []
    assert ri.did_problems(model) == []


def test_significance_words_only_where_the_interval_excludes_zero(model: ReportModel) -> None:
    assert _phrases(model, ri.VERDICT_RE) + _phrases(model, ri.CLAIM_FIRST_RE) > 5
    assert ri.significance_problems(model) == []


def test_counts_quoted_in_text_equal_their_tables(model: ReportModel) -> None:
    assert ri.did_significant(model) == (14, 15)  # the fixture's DiD table, as printed
    assert _phrases(model, ri.CHART_DID_RE) >= 1 and _phrases(model, ri.PHASE_SPLIT_RE) >= 1
    assert ri.count_problems(model) == []


# --- each check flags one deliberately broken cell ---

def test_a_point_outside_its_interval_is_flagged(model: ReportModel) -> None:
    m = copy.deepcopy(model)
    row = _row(m.results.tables[0], "P95 latency")
    row[1] = row[1].replace("874 ms", "974 ms", 1)  # interval stays [804 ms, 944 ms]
    problems = ri.interval_problems(m)
    assert len(problems) == 1 and "974 ms" in problems[0]


def test_a_wrong_relative_change_is_flagged(model: ReportModel) -> None:
    m = copy.deepcopy(model)
    row = _row(m.results.tables[0], "P95 latency")
    row[4] = row[4].replace("−20.0 %", "−25.0 %", 1)  # 874 ms → 699 ms is −20.0 %
    assert [p for p in ri.change_problems(m) if "P95 latency / Relative" in p]
    # and in a sentence: "874 ms → 629 ms (−28.0 % [..." quoted as −18.0 %
    m = copy.deepcopy(model)
    seg = m.executive.verdict.segments[0]
    seg.details[0] = seg.details[0].replace("(−28.0 %", "(−18.0 %", 1)
    assert len(ri.change_problems(m)) == 1


def test_a_wrong_pp_change_and_a_wrong_did_are_flagged(model: ReportModel) -> None:
    m = copy.deepcopy(model)
    row = _row(m.results.tables[1], "SLA adherence")  # 79.1 % → 99.0 %: +19.9 pp
    row[3] = row[3].replace("+19.9 pp", "+18.9 pp", 1)
    assert [p for p in ri.change_problems(m) if "SLA adherence / Change" in p]
    m = copy.deepcopy(model)
    row = _row(m.results.did, "P50 latency")  # −51 ms − (−4 ms) = −47 ms
    row[3] = row[3].replace("−47 ms", "−40 ms", 1)
    assert len(ri.did_problems(m)) == 1


def test_significant_on_an_interval_touching_zero_is_flagged(model: ReportModel) -> None:
    m = copy.deepcopy(model)
    row = _row(m.results.did, "P50 latency")
    row[3] = "−47 ms\n[−66 ms, −0 ms]"  # the "[−43.8 pp, −0.0 pp]" case
    assert [p for p in ri.significance_problems(m) if "P50 latency" in p]
    m = copy.deepcopy(model)
    row = _row(m.results.tables[2], "P95 latency")  # control: [−70 ms, +35 ms]
    row[5] = "improved"
    assert len(ri.significance_problems(m)) == 1
    m = copy.deepcopy(model)
    seg = m.executive.verdict.segments[0]
    seg.details[0] = seg.details[0].replace("−14.0 %]: improved", "+14.0 %]: improved", 1)
    assert len(ri.significance_problems(m)) == 1


def test_a_count_that_disagrees_with_its_list_or_table_is_flagged(model: ReportModel) -> None:
    m = copy.deepcopy(model)  # "14 headline metrics improved (P50 latency, ...)"
    seg = m.executive.verdict.segments[0]
    seg.answer = seg.answer.replace("P50 latency, ", "", 1)
    assert len(ri.count_problems(m)) == 1
    m = copy.deepcopy(model)  # chart reading against the DiD table
    m.charts[6].reading = m.charts[6].reading.replace("14 of 15", "13 of 15", 1)
    assert [p for p in ri.count_problems(m) if "13 of 15" in p]
    m = copy.deepcopy(model)  # "12 burst episodes in 3 pools (6 in baseline, 6 in validation)"
    m.charts[1].reading = m.charts[1].reading.replace("12 burst", "13 burst", 1)
    problems = ri.count_problems(m)  # the phase split, and the total against section 4's
    assert [p for p in problems if "do not add up" in p]
    assert [p for p in problems if "burst episodes quoted as [12, 13]" in p]
    m = copy.deepcopy(model)  # a caption's "N of M" against its rows
    phases = m.validation.phases
    phases.caption = f"Phases (3 of 3; {len(phases.rows)} rows shown)"
    assert [p for p in ri.count_problems(m) if "Phases (3 of 3" in p]
    m = copy.deepcopy(model)  # segments are not pools
    m.executive.findings_note += " Seen in 2 pools (segment:control, segment:treatment)."
    assert [p for p in ri.count_problems(m) if "segments named as pools" in p]


def test_a_verdict_naming_a_metric_whose_interval_spans_zero_is_flagged(
        model: ReportModel) -> None:
    m = copy.deepcopy(model)
    row = _row(m.executive.headline, "P50 latency")  # "−28.0 %\n[−42.0 %, −14.0 %]"
    row[2] = row[2].replace("−14.0 %]", "+1.0 %]", 1)
    problems = ri.significance_problems(m)
    assert len(problems) == 1 and "treatment verdict names ['P50 latency']" in problems[0]
