"""Report: heatmaps drawn with few SVG elements (PDF time), and the what-if table's columns."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import report_fixture as rf  # tests/ is on sys.path under pytest

from reports.charts import heat_grid, heatmap_chart, merge_rects
from reports.evidence import policy_name
from reports.model import ReportModel, _Warehouse

GENERATED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RECT = re.compile(r"M([-\d.e]+),([-\d.e]+)h([-\d.e]+)v([-\d.e]+)h-?[-\d.e]+Z")


def _model(db: Path) -> ReportModel:
    return rf.report_model(db, "run-1", GENERATED)


def _area_by_fill(svg: str) -> dict[str, float]:
    """Painted area per colour of every rect-mark group (what a reader sees)."""
    out: dict[str, float] = {}
    for group in re.findall(r'<g class="mark-rect role-mark[^>]*>(.*?)</g>', svg, re.S):
        for d, fill in re.findall(r'<path d="([^"]*)" fill="([^"]*)"/>', group):
            area = sum(float(w) * float(h) for _, _, w, h in RECT.findall(d))
            out[fill] = out.get(fill, 0.0) + area
    return out


def test_merge_rects_keeps_the_picture_with_one_path_per_colour() -> None:
    cells = "".join(f'<path d="M{5 * i},{6 * r}h5v6h-5Z" fill="{"red" if i < 3 else "blue"}"/>'
                    for r in range(2) for i in range(5))
    svg = f'<svg><g class="mark-rect role-mark heat"><path d="M0,0h1v1h-1Z" fill="x"/></g>' \
          f'<g class="mark-rect role-mark heat">{cells}</g></svg>'
    merged = merge_rects(svg)
    assert merged.count("<path") == 1 + 2  # the one-cell group, then one path per colour
    assert _area_by_fill(merged) == _area_by_fill(svg)
    # a run of same-colour cells in a row became one rectangle: 2 rows x 2 colours
    assert len(RECT.findall(merged)) == 1 + 4


def test_merge_rects_leaves_titled_or_stroked_marks_alone() -> None:
    titled = ('<g class="mark-rect role-mark bars"><path d="M0,0h5v6h-5Z" fill="red">'
              '<title>pool-a: 3 pp</title></path><path d="M5,0h5v6h-5Z" fill="red"/></g>')
    stroked = ('<g class="mark-rect role-mark bars"><path d="M0,0h5v6h-5Z" fill="red" '
               'stroke="#ddd"/><path d="M5,0h5v6h-5Z" fill="red"/></g>')
    assert merge_rects(titled) == titled  # hover titles survive
    assert merge_rects(stroked) == stroked


def test_heatmap_svg_has_few_elements_and_banded_colours(tmp_path: Path) -> None:
    db = rf.build_fixture(tmp_path / "wh.duckdb")
    con = duckdb.connect(str(db), read_only=True)
    grid = heat_grid(_Warehouse(con, rf.PILOT))
    con.close()
    assert grid is not None
    svg = heatmap_chart(grid, [])
    cells = grid.cells.height * 3  # three panels
    paths = len(re.findall(r'<path d="M[^"]*" fill="rgb', svg))
    assert paths < cells / 4, (paths, cells)  # was one <path> per cell
    # quantized colour scale: at most 10 colours per panel, legend shows band edges
    fills = set(re.findall(r'fill="(rgb\([^)]*\))"', svg))
    assert len(fills) <= 3 * 10 + 3
    assert svg.count("role-legend-band") == 3  # one banded (discrete) legend per panel
    assert sum(_area_by_fill(svg).values()) > 0


def _whatif(db: Path, rows: list[tuple]) -> None:
    con = duckdb.connect(str(db))
    con.execute("""CREATE TABLE whatif_results (pilot VARCHAR, policy VARCHAR,
        policies VARCHAR, segment VARCHAR, breakdown VARCHAR, metric VARCHAR,
        baseline_value DOUBLE, predicted_value DOUBLE, predicted_change DOUBLE,
        rel_change DOUBLE, seeds INTEGER)""")
    con.executemany("INSERT INTO whatif_results VALUES (?, ?, ?, 'all', 'overall', ?, ?, ?, "
                    "?, ?, 2)", [(rf.PILOT, *r) for r in rows])
    con.close()


def test_whatif_queue_wait_from_zero_prints_the_change_in_seconds(tmp_path: Path) -> None:
    # The demo's bug: today's replay has queue-wait P95 = 0 s, whatif.py leaves rel_change
    # null (undefined), and section 6 printed "—" for every policy in that column.
    db = rf.build_fixture(tmp_path / "wh.duckdb")
    _whatif(db, [
        ("fifo_shared", "fifo_shared", "queue_wait_p95_s", 0.0, 0.0, 0.0, None),
        ("segmentation", "segmentation", "queue_wait_p95_s", 0.0, 0.021, 0.021, None),
        ("segmentation", "segmentation", "p95_latency_s", 2.0, 1.5, -0.5, -0.25),
        ("fifo_shared", "fifo_shared", "p95_latency_s", 2.0, 2.0, 0.0, 0.0),
    ])
    table = _model(db).bodies["s6"][0].tables[0]
    col = table.columns.index("Queue wait P95")
    by_policy = {r[0]: r for r in table.rows}
    seg, today = policy_name("segmentation"), policy_name("fifo_shared")
    assert by_policy[seg][col] == "+21 ms from 0"
    assert by_policy[today][col] == "0 ms from 0"
    assert by_policy[seg][table.columns.index("P95 latency")] == "−25.0 %"
    assert "from 0" in table.note and "undefined" in table.note


def test_whatif_relative_change_stays_a_percentage(tmp_path: Path) -> None:
    db = rf.build_fixture(tmp_path / "wh.duckdb")
    _whatif(db, [("jsq", "jsq", "queue_wait_p95_s", 0.4, 0.3, -0.1, -0.25),
                 ("jsq", "jsq", "p99_latency_s", None, None, None, None)])
    table = _model(db).bodies["s6"][0].tables[0]
    row = table.rows[0]
    assert row[table.columns.index("Queue wait P95")] == "−25.0 %"
    assert "from 0" not in table.note


def test_only_installed_font_files_may_be_read_by_the_pdf_renderer() -> None:
    from reports.render import _installed_font

    assert _installed_font("file:///usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
    for url in ("file:///etc/passwd", "https://example.org/x.ttf", "file:///tmp/x.ttf",
                "file:///usr/share/fonts/../../../etc/shadow.ttf",
                "file:///usr/share/fonts/truetype/x.txt"):
        assert not _installed_font(url), url


def _pdf_fonts(pdf: Path) -> set[str]:
    from pypdf import PdfReader

    names = set()
    for page in PdfReader(pdf).pages:
        fonts = page["/Resources"].get_object().get("/Font") or {}
        names |= {str(f.get_object()["/BaseFont"]) for f in fonts.values()}
    return names


def test_emoji_in_pool_names_are_drawn_with_the_emoji_font(tmp_path: Path) -> None:
    import shutil
    import subprocess

    import pytest

    from reports.render import render_report

    if not shutil.which("fc-list") or "Noto Color Emoji" not in subprocess.run(
            ["fc-list"], capture_output=True, text=True).stdout:
        pytest.skip("no Noto Color Emoji font installed (make report-tools installs it)")
    db = rf.build_fixture(tmp_path / "wh.duckdb", pools=("pool-a", "pool 🚀"))
    _, pdf = render_report(_model(db), tmp_path / "out")
    fonts = _pdf_fonts(pdf)
    assert any("Noto-Color-Emoji" in f for f in fonts), fonts  # the rocket is a real glyph


def test_emoji_font_is_limited_to_emoji_code_points() -> None:
    # Listing "Noto Color Emoji" in a font-family makes Pango draw digits and spaces with it
    # ("1 1" for 11 in the PDF): it may appear only as the source of a unicode-range face.
    from reports.render import STATIC

    css = (STATIC / "report.css").read_text(encoding="utf-8")
    faces = re.findall(r"@font-face\s*{[^}]*}", css)
    assert any('local("Noto Color Emoji")' in f and "unicode-range" in f for f in faces)
    rest = re.sub(r"@font-face\s*{[^}]*}", "", css)
    assert "Noto Color Emoji" not in re.sub(r"/\*.*?\*/", "", rest, flags=re.S)


_CHART_HTML = """<html><head><style>figure.chart .svg svg {{ width: 100%; height: auto; }}
</style></head><body><figure class="chart"><div class="svg">{svg}</div></figure>
<p>after the chart</p></body></html>"""
_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="200" height="80" viewBox="0 0 200 80">'
        '<rect x="0" y="0" width="50" height="40" fill="#1f5f99"/>'
        '<text x="10" y="70" font-size="10">pool &lt;b&gt; rate</text></svg>')


def test_pdf_gets_the_charts_as_images_of_the_same_svg(tmp_path: Path) -> None:
    import pytest
    import weasyprint
    from pypdf import PdfReader

    from reports.render import CHART_URL, _NoFetch, pdf_source, write_pdf

    html = _CHART_HTML.format(svg=_SVG)
    source, charts = pdf_source(html)
    assert "<svg" not in source and list(charts) == [f"{CHART_URL}0"]
    assert charts[f"{CHART_URL}0"] == _SVG.encode()
    assert "figure.chart .svg svg, figure.chart .svg img {" in source  # same size rule
    # drawn the same way as the inline SVG: same pages, same text (the chart's included)
    inline, as_img = tmp_path / "inline.pdf", tmp_path / "img.pdf"
    weasyprint.HTML(string=html, url_fetcher=_NoFetch()).write_pdf(inline)
    write_pdf(html, as_img)
    text = [[p.extract_text() for p in PdfReader(f).pages] for f in (inline, as_img)]
    assert text[0] == text[1] and "pool <b> rate" in text[1][0]
    # only the charts handed over are served; anything else still stops the render
    with pytest.raises(weasyprint.urls.FatalURLFetchingError):
        _NoFetch(charts).fetch(f"{CHART_URL}1")
