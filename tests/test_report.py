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
from reports.model import ReportModel, _conclusion, _findings, _Warehouse, build_report_model
from reports.render import render_html, render_report

HOSTILE = "<script>alert(1)</script>"
GENERATED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _model(db: Path) -> ReportModel:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return build_report_model(con, rf.PILOT, run_id="run-7f3a", pipeline_version="0.1.0",
                                  generated_at=GENERATED)
    finally:
        con.close()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportModel, str, Path]:
    # one full render (the PDF takes seconds) shared by the read-only checks below
    tmp = tmp_path_factory.mktemp("report")
    model = _model(rf.build_fixture(tmp / "wh.duckdb"))
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
    assert len(model.charts) == 2
    for chart in model.charts:
        assert chart.svg.startswith("<svg") and chart.svg in html
        assert len(chart.svg) < 1_500_000
        assert chart.reading.endswith("(measured).")
    assert html.count("<svg") == 2


def test_html_loads_nothing_from_outside(rendered: tuple) -> None:
    _, html, _ = rendered
    assert not re.search(r"<\s*(script|link|img|iframe|object|embed)\b", html, re.I)
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
    # fixture baseline: DI 0.57 > 0.5 and effective 58.3 % < 85 % -> scheduling-limited
    assert "scheduling-limited" in model.executive.conclusion
    assert "DI 0.57" in model.executive.conclusion
    assert [f.title for f in model.executive.findings] == [
        "SLA adherence below target", "Timeouts and drops", "Burst amplification of queue wait"]
    assert "decreased by 28.0 %" in html  # neutral wording of the treatment change
    assert "significant" not in " ".join(model.results.sentences)


def test_conclusion_and_findings_follow_thresholds() -> None:
    th = {"di": 0.5, "hcl_pp": 10.0, "burst_wait_ratio": 2.0, "retry_amplification_max": 1.1,
          "timeout_rate_max": 0.02, "sla_adherence_target": 0.95,
          "compute_saturation_util": 0.85}

    def hx(**values: float | None) -> dict:
        return {("baseline", "all", "overall", None, k): {"value": v} for k, v in values.items()}

    assert "compute-limited" in _conclusion(hx(delay_index=0.7, effective_util=0.9), th)
    assert "no dominant limit" in _conclusion(hx(delay_index=0.2, effective_util=0.6), th)
    assert "cannot be judged" in _conclusion(hx(delay_index=None, effective_util=0.6), th)
    found, skipped, _ = _findings(hx(delay_index=0.6, hcl_pp=25.0, nominal_util=0.8,
                                     effective_util=0.55, timeout_drop_rate=0.001,
                                     sla_adherence=0.99, retry_amplification=1.0), th)
    # HCL 25/10 = 2.5 outranks DI 0.6/0.5 = 1.2; the rules below their thresholds stay silent
    assert [f.title for f in found] == ["Hidden GPU occupancy loss",
                                        "Non-productive queue waiting"]
    assert skipped == ["Burst amplification of queue wait: not evaluated, Burst queue wait P95, "
                       "Queue wait P95 not measured"]


def test_hostile_pool_name_is_escaped_everywhere(tmp_path: Path) -> None:
    db = rf.build_fixture(tmp_path / "wh.duckdb", pools=("pool-a", "pool-b", HOSTILE))
    html = render_html(_model(db))
    assert HOSTILE not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert escaped in html.split("<svg")[0]  # tables and text
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(svgs) == 2 and all(escaped in s for s in svgs)  # chart labels


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
    html = render_html(_model(db))
    assert "No headline metrics in the warehouse for this pilot." in html
    assert "No before/after rows in the warehouse for this pilot." in html
    assert "cannot be drawn" in html and "<svg" not in html
    assert "cannot be judged" in html
