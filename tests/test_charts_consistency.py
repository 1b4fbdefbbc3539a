"""Charts agree with each other and with their readings: one colour meaning, one binning of
hidden_idle_map, readings that quote the series drawn, labels that do not overlap."""

from __future__ import annotations

import re

import duckdb
import pytest
import report_fixture as rf  # tests/ is on sys.path under pytest

from reports import fmt
from reports.charts import (
    PHASE_COLORS,
    SEGMENT_COLORS,
    check_svg,
    heat_grid,
    wave_data,
    wave_reading,
)
from reports.coverage import Coverage
from reports.model import _Warehouse
from reports.visuals import before_after_chart, hidden_idle_topology, label_lanes


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    db = rf.build_fixture(tmp_path_factory.mktemp("charts") / "wh.duckdb")
    con = duckdb.connect(str(db), read_only=True)
    yield _Warehouse(con, rf.PILOT)
    con.close()


def test_phase_and_segment_colours_never_share_a_meaning() -> None:
    phase = {PHASE_COLORS["baseline"], PHASE_COLORS["validation"]}
    segment = {SEGMENT_COLORS["treatment"], SEGMENT_COLORS["control"]}
    assert len(phase) == 2 and len(segment) == 2 and not phase & segment


def test_label_lanes_never_overlap() -> None:
    xs, widths = [0.0, 10.0, 20.0, 200.0, 205.0], [100.0, 100.0, 50.0, 40.0, 40.0]
    lanes = label_lanes(xs, widths)
    assert lanes == [0, 1, 2, 0, 1]
    for i in range(len(xs)):
        for j in range(i):
            if lanes[i] == lanes[j]:
                assert xs[j] + widths[j] <= xs[i] or xs[i] + widths[i] <= xs[j]


def test_wave_reading_quotes_the_plotted_series(wh: _Warehouse) -> None:
    wd = wave_data(wh)
    assert wd is not None
    reading = wave_reading(wd, Coverage.read(wh))
    top = wd.series.sort(["rate", "t"], descending=[True, False]).row(0, named=True)
    assert f"highest plotted arrival rate was {fmt.value(top['rate'], 'req/s')}" in reading
    assert f"in {top['pool']} at {fmt.ts(top['t'])}" in reading
    for peak in wd.episodes["peak_rate_rps"]:  # burst-window peaks are not quoted as plotted
        if peak > top["rate"]:
            assert fmt.value(peak, "req/s") not in reading


def test_hidden_loss_cells_are_binned_once_for_v1_and_v5(wh: _Warehouse) -> None:
    grid = heat_grid(wh)
    assert grid is not None
    v5 = hidden_idle_topology(wh)
    cell = grid.cells.drop_nulls("hcl_pp").sort(["hcl_pp", "t"], descending=[True, False]).row(
        0, named=True)
    # V5's worst cell is V1's: same row label, bin start, bin width and value
    assert (f"{grid.level} row {cell['row']} in the {grid.bin_minutes}-minute bin starting "
            f"{fmt.ts(cell['t'])} ({fmt.value(cell['hcl_pp'], 'pp')})") in v5.reading
    assert grid.level in v5.title and "per GPU" not in v5.title.replace("per GPU and", "")


def test_before_after_chart_draws_segments_and_the_did_interval() -> None:
    rows = [
        {"metric": "P95 latency [s]", "segment": "treatment", "baseline": 15.7,
         "baseline_lo": 14.0, "baseline_hi": 17.0, "validation": 9.2, "validation_lo": 8.0,
         "validation_hi": 10.5, "did_text": "DiD −7.3 s [−11.8, +0.2]",
         "did_significant": False},
        {"metric": "P95 latency [s]", "segment": "control", "baseline": 14.4,
         "validation": 15.1},
        {"metric": "SLA adherence [%]", "segment": "treatment", "baseline": 90.4,
         "validation": 95.8, "did_text": "DiD +6.2 pp [+1.0 pp, +14.2 pp]",
         "did_significant": True},
        {"metric": "SLA adherence [%]", "segment": "control", "baseline": 92.2,
         "validation": None},
    ]
    svg = before_after_chart(rows)
    assert check_svg(svg) and svg.startswith("<svg")
    assert "DiD −7.3 s [−11.8, +0.2]" in svg and "P95 latency [s]" in svg
    fills = {c.lower() for c in re.findall(r'(?:fill|stroke)="(#[0-9a-fA-F]{6})"', svg)}
    assert SEGMENT_COLORS["treatment"] in fills and SEGMENT_COLORS["control"] in fills
    assert PHASE_COLORS["validation"] not in fills  # blue means "validation" only
    assert before_after_chart([{"metric": "x", "segment": "all", "baseline": None,
                                "validation": None}]) == ""
