"""Render a ReportModel to a self-contained HTML file and a PDF made from the same HTML string."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

import weasyprint
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from weasyprint.urls import FatalURLFetchingError

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
    # Chart SVG is produced by vl-convert from escaped data and checked in charts.to_svg;
    # only that string is let through unescaped.
    if svg and not svg.lstrip().startswith("<svg"):
        raise ValueError("not an SVG document")
    return Markup(svg)


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


def render_html(model: ReportModel) -> str:
    return _env().get_template("report.html.j2").render(m=model, css=_css(), js=_js())


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
