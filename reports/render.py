"""Render a ReportModel to a self-contained HTML file and a PDF made from the same HTML string
(its charts handed to WeasyPrint as images of the same SVG: see pdf_source)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

import weasyprint
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from weasyprint.urls import FatalURLFetchingError, URLFetcherResponse

from reports.charts import check_svg
from reports.model import ReportModel

STATIC = Path(__file__).parent / "static"


def _env() -> Environment:
    # Autoescape on: pool names, files and notes come from telemetry and must stay text.
    env = Environment(loader=PackageLoader("reports", "templates"),
                      autoescape=select_autoescape(["j2", "html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["svg"] = _trusted_svg
    return env


def _trusted_svg(svg: str) -> Markup:
    # Chart SVG is produced by vl-convert from escaped data; the final string (after any
    # post-processing of the charts) is parsed and checked here, the one place it goes out
    # unescaped: elements and attributes, never the text that names pools.
    if svg and not svg.lstrip().startswith("<svg"):
        raise ValueError("not an SVG document")
    return Markup(check_svg(svg) if svg else svg)


def _css() -> Markup:
    css = (STATIC / "report.css").read_text(encoding="utf-8")
    if "</" in css:
        raise ValueError("report.css must not contain '</' (it is inlined into <style>)")
    return Markup(css)


def _js() -> Markup:
    # Sortable tables on screen only (the PDF never runs it). No network, no eval.
    js = (STATIC / "sort.js").read_text(encoding="utf-8")
    if "</" in js:
        raise ValueError("sort.js must not contain '</' (it is inlined into <script>)")
    return Markup(js)


NBSP = "\u00a0"
_CELL = re.compile(r'<td class="([^"]*)">([^<]*)</td>')
# a space after a digit, before a unit or word (not before an arrow, bracket or sign)
_NUM_UNIT = re.compile(r"(?<=\d) (?=[^\s\d→\[\](—−+–])")
_DIGEST = re.compile(r"[0-9a-f]{32,}")


def _cell(m: re.Match[str]) -> str:
    cls, text = m[1], m[2]
    if _DIGEST.fullmatch(text.strip()):
        # a checksum: small monospace on one line (report.css td.hash), its text untouched
        # so that it can be searched and copied whole
        return f'<td class="{cls} hash">{text}</td>'
    if "num" in cls.split():
        text = _NUM_UNIT.sub(NBSP, text)
    return f'<td class="{cls}">{text}</td>'


def print_typography(html: str) -> str:
    """Table cells made for paper: a number is never split from its unit (a no-break space
    in numeric cells, which may still wrap between values), and a checksum is marked so
    that it prints on one line. Cell text is already escaped; only spaces change."""
    return _CELL.sub(_cell, html)


def render_html(model: ReportModel) -> str:
    return print_typography(
        _env().get_template("report.html.j2").render(m=model, css=_css(), js=_js()))


FONT_DIRS = ("/usr/share/fonts/", "/usr/local/share/fonts/")
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")


def _installed_font(url: str) -> bool:
    """A font file of this machine, as fontconfig resolves the CSS `src: local(...)` of the
    emoji font face (report.css): read from disk, never downloaded."""
    if not url.startswith("file:///"):
        return False
    path = os.path.realpath(unquote(url[len("file://"):]))
    return path.startswith(FONT_DIRS) and path.lower().endswith(FONT_SUFFIXES)


class _NoFetch(weasyprint.URLFetcher):
    """The report is self-contained: any attempt to load a resource is a bug, not a download.
    The exceptions are an installed font file that a `local()` font face names, and the
    report's own charts, served from memory (`charts`, from pdf_source)."""

    def __init__(self, charts: dict[str, bytes] | None = None) -> None:
        super().__init__()
        self._charts = charts or {}

    def fetch(self, url: str, headers: dict | None = None):  # type: ignore[override]  # noqa: ANN201
        if url in self._charts:
            return URLFetcherResponse(url, self._charts[url],
                                      headers={"Content-Type": "image/svg+xml"})
        if _installed_font(url):
            return super().fetch(url, headers)
        raise FatalURLFetchingError(f"report tried to load an external resource: {url}")


CHART_URL = "stabilis-chart:"  # not a network scheme: only _NoFetch's in-memory charts answer
_INLINE_SVG = re.compile(r'(<div class="svg">)(<svg\b.*?</svg>)', re.DOTALL)
_SVG_RULE = "figure.chart .svg svg {"  # report.css: the one size rule of a chart


def pdf_source(html: str) -> tuple[str, dict[str, bytes]]:
    """The HTML WeasyPrint lays out, and the chart SVGs it fetches from memory.

    Each chart's inline `<svg>` (about 80 % of the report's bytes and half its elements)
    becomes an `<img>` of the same SVG, sized by the same CSS rule: WeasyPrint then parses it
    with ElementTree instead of its pure-Python HTML parser and computes no CSS for its
    thousands of elements. It draws both with the same SVG code: the pages are the same.
    The HTML file keeps its inline SVG (hover titles, no fetch at all)."""
    charts: dict[str, bytes] = {}

    def as_img(m: re.Match[str]) -> str:
        if m[2].count("<svg") != 1:  # not one whole SVG document: leave it inline
            return m[0]
        url = f"{CHART_URL}{len(charts)}"
        charts[url] = m[2].encode("utf-8")
        return f'{m[1]}<img src="{url}" alt="">'

    out = _INLINE_SVG.sub(as_img, html)
    if charts:
        if _SVG_RULE not in out:
            raise ValueError(f"report.css has no '{_SVG_RULE}' rule to size the PDF's charts")
        out = out.replace(_SVG_RULE, "figure.chart .svg svg, figure.chart .svg img {", 1)
    return out, charts


def write_pdf(html: str, pdf_path: Path) -> None:
    """The PDF of the report's HTML (A4, report.css print rules), nothing fetched."""
    source, charts = pdf_source(html)
    weasyprint.HTML(string=source, url_fetcher=_NoFetch(charts)).write_pdf(pdf_path)


def render_report(model: ReportModel, out_dir: Path) -> tuple[Path, Path]:
    """Write report.html and report.pdf into out_dir; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html = render_html(model)
    html_path, pdf_path = out_dir / "report.html", out_dir / "report.pdf"
    html_path.write_text(html, encoding="utf-8")
    write_pdf(html, pdf_path)
    return html_path, pdf_path
