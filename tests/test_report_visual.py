"""The report as a reader sees it: PDF pages rasterized (pdftoppm), their text boxes against the
margins (pdftotext -bbox), HTML in headless Chromium; pool names that look like markup.

The tools are external programs; each test skips with the reason when its tool is missing
(`make setup` installs them where apt is available). One small fixture report is rendered
once for the whole module (the demo would take minutes).
"""

from __future__ import annotations

import html as htmllib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
import report_fixture as rf  # tests/ is on sys.path under pytest
from PIL import Image, ImageStat
from pypdf import PdfReader

from reports.charts import MIN_PRINT_PT, PRINT_WIDTH_PT, check_svg
from reports.model import ReportModel
from reports.render import NBSP, print_typography, render_report

MIN_STDDEV = 4.0  # grey-level spread below which a page/screenshot counts as blank
MM = 72 / 25.4
SIDE_MARGIN_PT = 15 * MM  # report.css @page margin, left and right
BOTTOM_MARGIN_PT = 17 * MM
EDGE_PT = 5 * MM  # running header and page number sit in the margins, never past this
# pool names that look like markup or URLs: they must stay text, and never abort the report
HOSTILE_POOLS = ("pool-a", "pool src=x", "<script>alert(1)</script>",
                 '"><img src=x onerror=alert(1)>')


def _chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in (
        "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")) if p), None)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ReportModel:
    tmp = tmp_path_factory.mktemp("visual-db")
    db = rf.build_fixture(tmp / "wh.duckdb", pools=HOSTILE_POOLS, with_ci=True)
    return rf.report_model(db, "run-visual", datetime(2026, 5, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def report(model: ReportModel, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return render_report(model, tmp_path_factory.mktemp("visual") / "out")


def _words(pdf: Path) -> list[tuple[int, float, float, list[tuple[float, ...]], str]]:
    """(page, width, height, [x0, y0, x1, y1], text) of every word, from pdftotext -bbox."""
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    words, page, w, h = [], 0, 0.0, 0.0
    for line in out.splitlines():
        if m := re.search(r'<page width="([\d.]+)" height="([\d.]+)"', line):
            page, w, h = page + 1, float(m[1]), float(m[2])
        elif m := re.search(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" '
                            r'yMax="([\d.]+)">(.*)</word>', line):
            words.append((page, w, h, [float(v) for v in m.groups()[:4]],
                          htmllib.unescape(m[5])))
    return words


def test_no_text_past_the_margins_on_any_page(report: tuple[Path, Path]) -> None:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: cannot read text boxes")
    _, pdf = report
    words = _words(pdf)
    assert len({p for p, *_ in words}) == len(PdfReader(pdf).pages)
    outside = [(p, t, round(x0), round(x1)) for p, w, h, (x0, y0, x1, y1), t in words
               if x0 < SIDE_MARGIN_PT - 1 or x1 > w - SIDE_MARGIN_PT + 1
               or y0 < EDGE_PT or y1 > h - EDGE_PT]
    assert not outside, f"text past the margins (page, word, x0, x1): {outside[:10]}"


MIN_LINES_AFTER_HEADING = 2  # a heading with fewer lines of its own below it is stranded


def test_no_heading_is_stranded_at_a_page_bottom(report: tuple[Path, Path]) -> None:
    """A heading on a page is followed there by ≥ 2 lines of its content, unless its content
    ends there (the next heading follows on the page or opens the next page)."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: cannot read text boxes")
    html, pdf = report
    headings = {re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", "", h))).strip()
                for h in re.findall(r"<h[23][^>]*>(.*?)</h[23]>", html.read_text(), re.S)}
    pages: dict[int, dict[int, list[str]]] = {}
    for p, _, h, (_, y0, _, y1), t in _words(pdf):
        if y0 > EDGE_PT * 3 and y1 < h - BOTTOM_MARGIN_PT:  # the body: no running header
            pages.setdefault(p, {}).setdefault(round(y0), []).append(t)
    lines = {p: [" ".join(by_y[y]) for y in sorted(by_y)] for p, by_y in pages.items()}
    stranded = []
    for p, page in lines.items():
        for i, line in enumerate(page):
            if line not in headings or line == "Contents":
                continue
            after = page[i + 1:i + 1 + MIN_LINES_AFTER_HEADING]
            ends_here = any(a in headings for a in after) or (lines.get(p + 1) or [""])[
                0] in headings
            if len(after) < MIN_LINES_AFTER_HEADING and not ends_here:
                stranded.append((p, line))
    assert not stranded, f"headings stranded at a page bottom (page, heading): {stranded}"


def test_markup_like_pool_names_render_literally(model: ReportModel,
                                                 report: tuple[Path, Path]) -> None:
    html_path, pdf = report
    html = html_path.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "pool src=x" in html
    if shutil.which("pdftotext"):  # the PDF shows the names as text, intact
        text = " ".join(t for *_, t in _words(pdf))
        for name in HOSTILE_POOLS:
            assert name in text, name
    drawn = [c for c in model.charts if c.svg]
    assert len(drawn) >= 4  # the charts that name pools are drawn, not refused
    assert any("pool src=x" in c.svg for c in drawn)
    for c in drawn:
        assert check_svg(c.svg) and "<script" not in c.svg


def test_chart_text_is_at_least_7_pt_at_print_size(model: ReportModel) -> None:
    # every chart is scaled to the text width (report.css): a px of a W-px wide chart
    # prints at PRINT_WIDTH_PT / W pt
    for c in [c for c in model.charts if c.svg]:
        root = ET.fromstring(c.svg)
        scale = PRINT_WIDTH_PT / float(root.attrib["width"])
        sizes = [float(t.attrib["font-size"].removesuffix("px"))
                 for t in root.iter("{http://www.w3.org/2000/svg}text")
                 if "font-size" in t.attrib]
        assert sizes and min(sizes) * scale >= MIN_PRINT_PT - 0.05, (c.number, min(sizes),
                                                                      scale)


def test_numbers_keep_their_units_and_checksums_are_marked() -> None:
    digest = "ab" * 32
    out = print_typography(f'<td class="num">1.56 s → 1.31 s\n[−25.8 %, −5.7 %]</td>'
                           f'<td class="">2 pools</td><td class=" wrap">{digest}</td>')
    assert f"1.56{NBSP}s → 1.31{NBSP}s\n[−25.8{NBSP}%, −5.7{NBSP}%]" in out
    assert '<td class="">2 pools</td>' in out  # text cells keep their spaces
    assert f'<td class=" wrap hash">{digest}</td>' in out  # whole: searchable, copyable


def _stddev(png: Path) -> float:
    with Image.open(png) as im:
        return float(ImageStat.Stat(im.convert("L")).stddev[0])


def test_every_pdf_page_rasterizes_and_none_is_blank(report: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: cannot rasterize the PDF")
    _, pdf = report
    n = len(PdfReader(pdf).pages)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "p")], check=True,
                   timeout=120)
    pngs = sorted(tmp_path.glob("p-*.png"))
    assert len(pngs) == n >= 10
    for png in pngs:
        with Image.open(png) as im:  # A4 portrait at 40 dpi
            w, h = im.size
            assert abs(h / w - 297 / 210) < 0.02, png.name
        assert _stddev(png) > MIN_STDDEV, f"{png.name} looks blank"


def test_html_renders_in_headless_chromium(report: tuple[Path, Path], tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium/Chrome binary on PATH: cannot screenshot the HTML")
    html, _ = report
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1280,2000", html.resolve().as_uri()]
    try:
        subprocess.run(cmd, check=False, timeout=120, capture_output=True)
    except subprocess.TimeoutExpired:
        pytest.fail("headless Chromium did not finish within 120 s")
    assert shot.exists(), "Chromium wrote no screenshot"
    assert _stddev(shot) > MIN_STDDEV, "the screenshot looks blank"
    with Image.open(shot) as im:  # the cover and contents sit in the top third
        top = im.crop((0, 0, im.size[0], im.size[1] // 3))
        assert ImageStat.Stat(top.convert("L")).stddev[0] > MIN_STDDEV
