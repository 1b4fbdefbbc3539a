"""Render a ReportModel to a self-contained HTML file and a PDF made from the same HTML string."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

import weasyprint
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from weasyprint.urls import FatalURLFetchingError

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
    The one exception is an installed font file that a `local()` font face names."""

    def fetch(self, url: str, headers: dict | None = None):  # type: ignore[override]  # noqa: ANN201
        if _installed_font(url):
            return super().fetch(url, headers)
        raise FatalURLFetchingError(f"report tried to load an external resource: {url}")


def render_report(model: ReportModel, out_dir: Path) -> tuple[Path, Path]:
    """Write report.html and report.pdf into out_dir; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html = render_html(model)
    html_path, pdf_path = out_dir / "report.html", out_dir / "report.pdf"
    html_path.write_text(html, encoding="utf-8")
    weasyprint.HTML(string=html, url_fetcher=_NoFetch()).write_pdf(pdf_path)
    return html_path, pdf_path
