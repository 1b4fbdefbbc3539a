"""The report as a reader sees it: PDF pages rasterized (pdftoppm), HTML in headless Chromium.

Both tools are external programs; each test skips with the reason when its tool is missing
(`make setup` installs them where apt is available).
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import report_fixture as rf  # tests/ is on sys.path under pytest
from PIL import Image, ImageStat
from pypdf import PdfReader

from reports.model import build_report_model
from reports.render import render_report

MIN_STDDEV = 4.0  # grey-level spread below which a page/screenshot counts as blank


def _chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in (
        "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")) if p), None)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("visual")
    db = rf.build_fixture(tmp / "wh.duckdb", with_ci=True)
    con = duckdb.connect(str(db), read_only=True)
    try:
        model = build_report_model(con, rf.PILOT, run_id="run-visual", pipeline_version="0.1.0",
                                   generated_at=datetime(2026, 5, 1, tzinfo=UTC))
    finally:
        con.close()
    return render_report(model, tmp / "out")


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
