"""Chart SVG safety: elements and attributes are checked on the parsed SVG, never the text.

A pool named `src=x`, `<script>…` or `javascript:…` is text: it must be drawn escaped, and must
not abort the report (the old check matched such text in the escaped markup). The whole report
with such pool names, in HTML and PDF: tests/test_report_visual.py."""

from __future__ import annotations

import pytest

from reports.charts import UnsafeSVG, check_svg
from reports.render import _trusted_svg

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">{}</svg>'

@pytest.mark.parametrize("inner", [
    '<text x="1">pool src=x href=y</text>',
    '<text>&lt;script&gt;alert(1)&lt;/script&gt; javascript:alert(1) url(http://x)</text>',
    '<path d="M0,0h1v1h-1Z" aria-label="pool src=x; url(http://x) javascript:y"/>',
    '<g><title>"&gt;&lt;img src=x onerror=alert(1)&gt;</title></g>',
    '<defs><linearGradient id="g"><stop offset="0"/></linearGradient></defs>'
    '<rect width="1" height="1" fill="url(#g)"/>',
    '<!-- a comment -->',
])
def test_text_and_internal_references_pass(inner: str) -> None:
    svg = SVG.format(inner)
    assert check_svg(svg) == svg


@pytest.mark.parametrize("inner", [
    "<script>alert(1)</script>",
    '<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>',
    '<rect width="1" height="1" onload="alert(1)"/>',
    '<g onmouseover="x()"/>',
    '<a href="https://example.org"><text>x</text></a>',
    '<use href="https://example.org/sprite.svg#a"/>',
    '<image href="data:image/png;base64,AAAA"/>',
    '<rect width="1" height="1" fill="url(https://example.org/x)"/>',
    '<rect width="1" height="1" style="fill: url(\'http://x\')"/>',
    '<rect width="1" height="1" style="background: javascript:alert(1)"/>',
    '<path d="M0,0" src="http://x"/>',
    '<style>@import url(http://x);</style>',
])
def test_active_or_external_markup_is_refused(inner: str) -> None:
    with pytest.raises(UnsafeSVG):
        check_svg(SVG.format(inner))


def test_doctype_entities_and_processing_instructions_are_refused() -> None:
    for svg in ('<!DOCTYPE svg [<!ENTITY a "b">]><svg xmlns="http://www.w3.org/2000/svg"/>',
                '<?xml-stylesheet href="http://x/a.css"?><svg xmlns="http://www.w3.org/2000/svg"/>',
                '<svg xmlns="http://www.w3.org/2000/svg"><text>unclosed</svg>'):
        with pytest.raises(UnsafeSVG):
            check_svg(svg)


def test_the_render_filter_checks_the_final_svg() -> None:
    ok = SVG.format("<text>pool src=x</text>")
    assert str(_trusted_svg(ok)) == ok
    with pytest.raises(UnsafeSVG):  # e.g. markup added after charts.to_svg checked it
        _trusted_svg(SVG.format('<g onclick="x()"/>'))


def test_charts_drawn_in_background_are_the_same_svg() -> None:
    """charts_in_background (the report model's worker thread) returns a placeholder that
    resolves to the very SVG drawn in place, post-processing included; the placeholder itself
    is refused as chart markup, and one never resolved fails the block."""
    import altair as alt

    from reports.charts import charts_in_background, merge_rects, to_svg

    chart = alt.Chart(alt.Data(name="d")).mark_rect().encode(
        x="a:O", y="b:O", color="c:N").configure(aria=False)
    rows = {"d": [{"a": i % 4, "b": i // 4, "c": "x" if i % 4 < 2 else "y"} for i in range(16)]}
    direct = to_svg(chart, rows, post=(merge_rects,))
    assert direct != to_svg(chart, rows)  # merge_rects did merge cells: `post` is applied
    with charts_in_background() as resolve:
        pending = to_svg(chart, rows, post=(merge_rects,))
        assert pending != direct
        with pytest.raises(ValueError):
            _trusted_svg(pending)
        assert resolve(pending) == direct
        assert resolve(direct) == direct  # a finished SVG passes through
    with pytest.raises(RuntimeError, match="never placed"), charts_in_background():
        to_svg(chart, rows)


def test_tests_check_every_chart_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the tests (tests/conftest.py) to_svg checks each spec against the Vega-Lite
    schema; a report run skips the check (reports/charts.py, CHECK_SPECS_ENV)."""
    import altair as alt
    from altair.utils.schemapi import SchemaValidationError

    from reports.charts import CHECK_SPECS_ENV, to_svg

    bad = alt.Chart(alt.Data(name="d")).mark_point().encode(x=alt.X("a:Q", bin="yes"))
    rows = {"d": [{"a": 1}]}
    with pytest.raises(SchemaValidationError, match="bin"):
        to_svg(bad, rows)
    monkeypatch.delenv(CHECK_SPECS_ENV)
    assert to_svg(bad, rows).startswith("<svg")
