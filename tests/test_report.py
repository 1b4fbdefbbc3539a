"""Report v1: model, HTML and PDF rendered from the hand-made fixture warehouse."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import report_fixture as rf  # tests/ is on sys.path under pytest
from pypdf import PdfReader

from reports import fmt
from reports.charts import heat_grid
from reports.conclusion import conclude
from reports.evidence import policy_name
from reports.findings_rules import rule_findings
from reports.model import ReportModel, _Warehouse
from reports.render import STATIC, render_html, render_report

HOSTILE = "<script>alert(1)</script>"
GENERATED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _model(db: Path) -> ReportModel:
    return rf.report_model(db, "run-7f3a", GENERATED)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportModel, str, Path]:
    # one full render (the PDF takes seconds) shared by the read-only checks below
    tmp = tmp_path_factory.mktemp("report")
    model = _model(rf.build_fixture(tmp / "wh.duckdb", with_ci=True))
    html_path, pdf_path = render_report(model, tmp / "out")
    return model, html_path.read_text(encoding="utf-8"), pdf_path


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_html_has_every_section_and_the_provenance(rendered: tuple) -> None:
    model, html, _ = rendered
    for s in model.sections:
        assert f'id="{s.anchor}"' in html
        assert s.title in html, s.title
    for needed in ("run-7f3a", "0.1.0", "2026-05-01 12:00:00 UTC", rf.PILOT):
        assert needed in html
    for kind in ("requests", "samples", "jobs"):  # full checksums of every input file
        assert rf._sha(kind) in html


def test_charts_are_inline_svg_of_reasonable_size(rendered: tuple) -> None:
    model, html, _ = rendered
    assert [c.number for c in model.charts] == list(range(1, 9))  # all eight visuals
    drawn = [c for c in model.charts if c.svg]
    for chart in drawn:
        assert chart.svg.startswith("<svg") and chart.svg in html
        assert len(chart.svg) < 1_500_000
        assert chart.reading.endswith(").") or chart.reading.endswith(".")
        assert chart.title and f'id="fig{chart.number}"' in html
    # the fixture has no sync_map / disruption / power tables: those say so in one line
    absent = {c.number: c.reading for c in model.charts if not c.svg}
    assert set(absent) == {3, 4, 6}
    assert all(r.startswith("Not drawn: ") for r in absent.values())
    # the five drawn visuals in their sections, plus section 0's compact before/after chart
    assert model.executive.verdict.chart_svg
    assert html.count("<svg") == len(drawn) + 1 == 6


def test_chart_marks_carry_hover_titles(rendered: tuple) -> None:
    model, _, _ = rendered
    coherence = next(c for c in model.charts if c.number == 7)
    topology = next(c for c in model.charts if c.number == 8)
    assert "<title>P95 latency, treatment, baseline: 874 ms" in coherence.svg
    assert "<title>pool-a: 8 GPUs on 2 nodes</title>" in topology.svg
    assert not re.search(r"<path[^>]*aria-label=", coherence.svg)  # moved into <title>


def test_html_loads_nothing_from_outside(rendered: tuple) -> None:
    _, html, _ = rendered
    assert not re.search(r"<\s*(link|img|iframe|object|embed)\b", html, re.I)
    # one inline script: the project's own table sorter, no src, nothing fetched
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S | re.I)
    assert len(scripts) == 1 and scripts[0][0].strip() == ""
    assert scripts[0][1] == (STATIC / "sort.js").read_text(encoding="utf-8")
    assert not re.search(r"fetch|XMLHttpRequest|import\(|eval\(|src\s*=", scripts[0][1])
    assert "@import" not in html
    # any src/href must be an in-document anchor; url() only an in-document reference
    assert re.findall(r"\b(?:src|href)\s*=\s*[\"']?([^\"'\s>]+)", html)
    for target in re.findall(r"\b(?:src|href)\s*=\s*[\"']?([^\"'\s>]+)", html):
        assert target.startswith("#"), target
    for target in re.findall(r"url\(\s*[\"']?([^\"')]+)", html):
        assert target.startswith("#"), target


def test_pdf_is_a4_with_page_numbers_titles_and_numbers(rendered: tuple) -> None:
    model, _, pdf_path = rendered
    reader = PdfReader(pdf_path)
    n = len(reader.pages)
    assert n >= 5
    texts = []
    for i, page in enumerate(reader.pages, start=1):
        box = page.mediabox
        assert abs(float(box.width) - 595.28) < 1 and abs(float(box.height) - 841.89) < 1
        text = page.extract_text()
        assert f"{i} / {n}" in text, f"page {i} has no page number"
        texts.append(text)
    full = _norm(" ".join(texts))
    for s in model.sections:
        assert s.title in full, s.title
    # a headline number from the fixture: baseline P95 latency, as the report formats it
    assert fmt.value(rf.BASE["p95_latency_s"], "s") == "874 ms"
    assert "874 ms" in full
    assert f"{rf.PILOT} — Operational synchronization report" in full  # running header


def test_not_measured_metric_says_so_with_the_reason(rendered: tuple) -> None:
    _, html, _ = rendered
    assert "not measured — no power_w or energy_j series in samples" in html


def test_prose_is_chosen_by_the_data(rendered: tuple) -> None:
    model, html, _ = rendered
    # fixture baseline: DI 57.0 % > 50 % and effective 58.3 % < 85 % -> queue-dominated
    assert model.executive.conclusion.kind == "queue"
    assert ("57.0 % of completed attempts' latency (Delay Index"
            in model.executive.conclusion.sentence)
    assert "baseline phase, all traffic" in model.executive.conclusion.sentence
    # no detector tables in the fixture: the threshold rules stand in, and say so
    assert [f.title for f in model.executive.findings] == [
        "SLA adherence below target", "Timeouts and drops", "Burst amplification of queue wait"]
    assert "Not in this run: the pattern detectors&#39; tables" in html
    # with intervals, a change is judged: treatment P95 fell 28 % with an interval below 0
    assert "P95 latency improved significantly (874 ms → 629 ms, change −28.0 % [" in html
    headline = {r[0]: r for r in model.executive.headline.rows}
    assert headline["P95 latency"][-1] == "significant"
    conclusion = " ".join(model.bodies["s10"][0].paragraphs)
    assert "improved beyond the control segment's change" in conclusion


def test_no_intervals_means_no_significance_claims(tmp_path: Path) -> None:
    model = _model(rf.build_fixture(tmp_path / "wh.duckdb"))
    html = render_html(model)
    assert "decreased by 28.0 %" in html  # neutral wording without an interval
    assert "significant" not in " ".join(model.results.sentences)
    assert {r[-1] for r in model.executive.headline.rows} == {"no interval"}
    assert "Not in this run: no confidence intervals" in html


def test_conclusion_and_findings_follow_thresholds() -> None:
    th = {"di": 0.5, "hcl_pp": 10.0, "burst_wait_ratio": 2.0, "retry_amplification_max": 1.1,
          "timeout_rate_max": 0.02, "sla_adherence_target": 0.95,
          "compute_saturation_util": 0.85}

    def hx(**values: float | None) -> dict:
        return {("baseline", "all", "overall", None, k): {"value": v} for k, v in values.items()}

    assert conclude(hx(delay_index=0.7, effective_util=0.9), th).kind == "gpu"
    assert "no dominant limit" in conclude(hx(delay_index=0.2, effective_util=0.6), th).sentence
    assert "cannot be judged" in conclude(hx(delay_index=None, effective_util=0.6), th).sentence
    found, skipped, _ = rule_findings(hx(delay_index=0.6, hcl_pp=25.0, nominal_util=0.8,
                                     effective_util=0.55, timeout_drop_rate=0.001,
                                     sla_adherence=0.99, retry_amplification=1.0), th)
    # HCL 25/10 = 2.5 outranks DI 0.6/0.5 = 1.2; the rules below their thresholds stay silent
    assert [f.title for f in found] == ["Hidden GPU occupancy loss",
                                        "Non-productive queue waiting"]
    assert skipped == ["Burst amplification of queue wait: not evaluated, Burst queue wait P95, "
                       "Queue wait P95 not measured"]


def test_hostile_pool_name_is_escaped_everywhere(tmp_path: Path) -> None:
    db = rf.build_fixture(tmp_path / "wh.duckdb", pools=("pool-a", "pool-b", HOSTILE))
    html_path, pdf_path = render_report(_model(db), tmp_path / "out")
    html = html_path.read_text(encoding="utf-8")
    text = _norm(" ".join(p.extract_text() for p in PdfReader(pdf_path).pages))
    assert HOSTILE in text  # in the PDF as visible text, intact
    assert HOSTILE not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert escaped in html.split("<svg")[0]  # tables and text
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    labelled = [s for s in svgs if "pool-a" in s]  # every chart that names pools
    assert len(labelled) >= 3 and all(escaped in s for s in labelled)


def test_quotes_emoji_and_markup_in_names_render_inert_and_intact(tmp_path: Path) -> None:
    odd = 'po"ol \'b\' 🚀'
    db = rf.build_fixture(tmp_path / "wh.duckdb", pools=("pool-a", odd, HOSTILE),
                          with_ci=True)
    model = _model(db)
    html_path, pdf_path = render_report(model, tmp_path / "out")
    html = html_path.read_text(encoding="utf-8")
    assert HOSTILE not in html and "<script>alert" not in html
    assert "po&#34;ol &#39;b&#39; 🚀" in html  # escaped quotes, emoji kept as is
    for svg in re.findall(r"<svg.*?</svg>", html, re.S):
        # a quote in a text node is inert; inside a tag it could end an attribute
        assert "<script" not in svg and not re.search(r"<[^>]*po\"ol", svg)
    # the PDF renders (the emoji needs an emoji font to show; without one WeasyPrint draws a
    # placeholder glyph, and text extraction of that page is unreliable, so not asserted)
    assert len(PdfReader(pdf_path).pages) >= 5


def test_heatmap_grid_coarsens_to_fit(tmp_path: Path) -> None:
    db = rf.build_fixture(tmp_path / "wh.duckdb")
    con = duckdb.connect(str(db), read_only=True)
    w = _Warehouse(con, rf.PILOT)
    n_gpus = len(rf.DEFAULT_POOLS) * rf.NODES_PER_POOL * rf.GPUS_PER_NODE
    full = heat_grid(w)
    assert full is not None and full.level == "GPU"
    assert full.cells["row"].n_unique() == n_gpus and full.cells["t"].n_unique() <= 96
    by_node = heat_grid(w, max_rows=n_gpus - 1, max_cols=10)
    assert by_node is not None and by_node.level == "node"
    assert by_node.cells["row"].n_unique() == len(rf.DEFAULT_POOLS) * rf.NODES_PER_POOL
    assert by_node.cells["t"].n_unique() <= 10
    con.close()


def test_empty_metric_tables_say_so_in_one_line(tmp_path: Path) -> None:
    db = rf.build_fixture(tmp_path / "wh.duckdb", with_metrics=False)
    model = _model(db)
    html = render_html(model)
    assert "No headline metrics in the warehouse for this pilot." in html
    assert "No before/after rows in the warehouse for this pilot." in html
    assert "Not drawn: " in html
    assert [c.number for c in model.charts if c.svg] == [8]  # pools from requests only
    assert "cannot be judged" in html


def test_aggregated_series_only_pilot_renders_with_not_measured(tmp_path: Path) -> None:
    """Only time series (no per-request rows, no jobs): every section still renders."""
    db = rf.build_fixture(tmp_path / "wh.duckdb", aggregated_only=True)
    model = _model(db)
    html_path, pdf_path = render_report(model, tmp_path / "out")
    html = html_path.read_text(encoding="utf-8")
    for s in model.sections:
        assert f'id="{s.anchor}"' in html
    assert "Not in this run: the pattern detectors&#39; tables" in html
    assert "Not in this run: no what-if (modeled) results" in html
    assert "Not in this run: no confidence intervals" in html
    assert "No request arrivals" not in html  # spans table says 'no rows' instead
    assert {c.number for c in model.charts if c.svg} == {1, 5, 8}  # GPU series only
    assert model.environment.mix_class.rows == []
    assert len(PdfReader(pdf_path).pages) >= 5


def test_whatif_rows_are_shown_as_modeled_beside_the_measured_did(tmp_path: Path) -> None:
    db = rf.build_fixture(tmp_path / "wh.duckdb", with_ci=True)
    con = duckdb.connect(str(db))
    con.execute("""CREATE TABLE whatif_results AS SELECT * FROM (VALUES
        (?, 'declared', 'batch_separation+priority', 'treatment', 'overall', 'p95_latency_s',
         0.9, 0.6, -0.3, -0.333, 2),
        (?, 'declared', 'batch_separation+priority', 'all', 'overall', 'p95_latency_s',
         0.9, 0.7, -0.2, -0.222, 2),
        (?, 'jsq', 'jsq', 'all', 'overall', 'p95_latency_s', 0.9, 0.45, -0.45, -0.5, 2))
        v(pilot, policy, policies, segment, breakdown, metric, baseline_value,
          predicted_value, predicted_change, rel_change, seeds)""", [rf.PILOT] * 3)
    con.close()
    model = _model(db)
    html = render_html(model)
    assert model.has_modeled and model.results.did is not None
    assert model.results.did.columns[-1] == "Predicted change (modeled)"
    p95 = next(r for r in model.results.did.rows if r[0] == "P95 latency")
    assert p95[-1] == "−300 ms"  # the declared policy's treatment prediction
    policy_rows = model.bodies["s6"][0].tables[0].rows
    # policies are named in words, never by their code names
    assert [r[0] for r in policy_rows] == [policy_name("batch_separation+priority"),
                                           policy_name("jsq")]
    assert "jsq" not in policy_rows[1][0] and "load distribution" in policy_rows[1][0]
    assert policy_rows[1][1] == "−50.0 %"
    assert '<span class="basis modeled">modeled</span>' in html
