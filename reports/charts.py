"""Altair charts rendered to inline SVG with vl-convert (no network, no scripts, no fonts fetched).

Large tables (the hidden idle map can be ~1 M GPU×minute rows) are first aggregated in DuckDB to
a grid a reader can see; the downsampling is stated under each chart and in appendix B.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import altair as alt
import polars as pl
import vl_convert as vlc

from reports import fmt
from reports.coverage import Coverage

MAX_HEAT_ROWS = 64
MAX_HEAT_COLS = 96
HEAT_STEPS = 10  # colour bands of the heatmaps
MAX_WAVE_POINTS = 300
MAX_WAVE_POOLS = 8
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
# Every chart is scaled to the 180-mm A4 text width (510 pt): its smallest text, FONT_PX, is
# ≥ 7 pt in print as long as the chart is at most MAX_CHART_PX wide.
FONT_PX = 10
PRINT_WIDTH_PT = 510.2
MIN_PRINT_PT = 7.0
MAX_CHART_PX = int(FONT_PX * PRINT_WIDTH_PT / MIN_PRINT_PT)  # 728

# One colour meaning across every chart (defined here only): phases are grey → blue, segments
# green / purple, so "validation" never shares a colour with a segment. Orange marks a
# quantity to look at (bursts, hidden loss), never a category; INK draws a plain series.
PHASE_COLORS = {"baseline": "#8c8c8c", "validation": "#1f5f99", "outside phases": "#d0d0d0"}
SEGMENT_COLORS = {"treatment": "#1b9e77", "control": "#7b3294", "all": "#333333"}
INK = "#333333"
ACCENT = "#e07b39"


def phase_scale(phases: list[str]) -> alt.Scale:
    return alt.Scale(domain=phases, range=[PHASE_COLORS.get(p, INK) for p in phases])


def segment_scale(segments: list[str]) -> alt.Scale:
    return alt.Scale(domain=segments, range=[SEGMENT_COLORS.get(s, INK) for s in segments])


# --- SVG safety: the chart markup is parsed and its elements and attributes are checked; text
# nodes are never inspected (a pool named `src=x` or `<script>` is escaped text, and harmless).
SVG_NS = "{http://www.w3.org/2000/svg}"
SAFE_ELEMENTS = frozenset({
    "svg", "g", "path", "rect", "line", "circle", "ellipse", "polygon", "polyline", "text",
    "tspan", "title", "desc", "defs", "clipPath", "linearGradient", "radialGradient", "stop"})
# attributes that hold words for people, never a URL or a style
TEXT_ATTRIBUTES = frozenset({"aria-label", "aria-roledescription", "role", "class", "id"})
_URL = re.compile(r"url\(\s*(?![\"']?#)", re.IGNORECASE)  # url(#id) is an internal reference
_ACTIVE = re.compile(r"javascript:|vbscript:|data:|expression\(|@import", re.IGNORECASE)


class UnsafeSVG(ValueError):
    """A chart's markup could run a script or load something: a bug, never telemetry text."""


def check_svg(svg: str) -> str:
    """Return `svg` unchanged if its elements and attributes can neither run nor fetch.

    Parsed as XML: only plain drawing elements (SAFE_ELEMENTS); no `on*` handler attribute;
    `href` only to `#id`; `url(…)` only to `#id`; no `javascript:`/`data:` URL or CSS
    expression in any attribute but the ones that hold words (TEXT_ATTRIBUTES). No DOCTYPE,
    entity or processing instruction (raw `<!`/`<?` can only be markup: text has them escaped).
    """
    if re.search(r"<!(?!--)|<\?", svg):
        raise UnsafeSVG("chart SVG has a DOCTYPE, entity or processing instruction")
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as e:
        raise UnsafeSVG(f"chart SVG is not well-formed XML: {e}") from e
    for el in root.iter():
        tag = el.tag.removeprefix(SVG_NS) if isinstance(el.tag, str) else "?"
        if tag not in SAFE_ELEMENTS:
            raise UnsafeSVG(f"chart SVG has a <{tag}> element")
        for name, value in el.attrib.items():
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on"):
                raise UnsafeSVG(f"chart SVG has an event handler attribute {local}")
            if local in TEXT_ATTRIBUTES:
                continue
            if local in ("href", "src") and not value.strip().startswith("#"):
                raise UnsafeSVG(f"chart SVG has an external {local}")
            if _URL.search(value) or _ACTIVE.search(value):
                raise UnsafeSVG(f"chart SVG attribute {local} loads or runs something")
    return svg


class Reader(Protocol):
    pilot: str

    def q(self, table: str, sql: str, *params: Any) -> pl.DataFrame: ...


@dataclass
class Chart:
    number: int
    title: str
    svg: str
    reading: str
    basis: str = "measured"
    note: str = ""


Post = Callable[[str], str]


# The converter process: vl-convert holds the GIL while it converts (seconds per report), so a
# thread would not let the queries go on; a process does. One JSON line per spec in, one per
# result out (the SVG or the error).
_CONVERTER = """
import json, sys
import vl_convert as vlc
vlc.vegalite_to_svg({"mark": "point", "data": {"values": []}})  # start its JS runtime now
for line in sys.stdin:
    try:
        out = {"svg": vlc.vegalite_to_svg(json.loads(line))}  # the dict, as in-process
    except Exception as e:  # reported to the caller, which raises it
        out = {"error": f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(out) + "\\n")
    sys.stdout.flush()
"""


CONVERTERS = 2  # child processes: the queries end first, then the charts use both cores


class _Background:
    """Charts drawn by vl-convert in CONVERTERS child processes while the caller goes on
    reading the warehouse. A worker thread per child feeds it one spec at a time and waits for
    the answer (the wait does not hold the GIL), then checks and post-processes the SVG. Each
    pending chart is a placeholder string until resolved."""

    def __init__(self) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-c", _CONVERTER],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True, encoding="utf-8") for _ in range(CONVERTERS)]
        self.idle: queue.SimpleQueue[subprocess.Popen[str]] = queue.SimpleQueue()
        for proc in self.procs:
            self.idle.put(proc)
        self.pool = ThreadPoolExecutor(CONVERTERS, thread_name_prefix="vl-convert")
        self.pending: dict[str, Future[str]] = {}

    def convert(self, spec: dict[str, Any]) -> str:
        """vl-convert's SVG of `spec`, from an idle child process (a worker thread calls it:
        there are as many workers as children, so one is always idle)."""
        proc = self.idle.get()
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(spec) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        finally:
            self.idle.put(proc)
        if not line:
            raise RuntimeError(f"the vl-convert process ended (exit code {proc.poll()})")
        out = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"vl-convert: {out['error']}")
        return out["svg"]

    def submit(self, draw: Callable[[], str]) -> str:
        # not an SVG document: _trusted_svg refuses one that was never resolved
        key = f"\ue000pending chart {len(self.pending)}\ue000"
        self.pending[key] = self.pool.submit(draw)
        return key

    def resolve(self, svg: str) -> str:
        """The SVG of a placeholder (waiting for it), or `svg` itself if it is not one."""
        fut = self.pending.pop(svg, None)
        return svg if fut is None else fut.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


_background: _Background | None = None


@contextmanager
def charts_in_background() -> Iterator[Callable[[str], str]]:
    """Within this block to_svg returns a placeholder at once and the chart is drawn in a child
    process (_Background); the block must hand every placeholder to the yielded `resolve`,
    which waits for the SVG (and re-raises the drawing's error). A placeholder never resolved
    is an error."""
    global _background
    if _background is not None:
        raise RuntimeError("charts_in_background does not nest")
    bg = _background = _Background()
    try:
        yield bg.resolve
        if bg.pending:
            raise RuntimeError(f"{len(bg.pending)} chart(s) drawn but never placed in the report")
    finally:
        _background = None
        bg.close()


# Altair's check of a spec against the Vega-Lite schema: ~0.4 s of CPU per report at 10 M
# attempts, taken from the charts being drawn beside it. A spec's structure is this module's
# and visuals.py's code, not data (rows go in afterwards, as datasets), so the tests check
# every spec they draw (tests/conftest.py sets the variable) and a report run does not.
CHECK_SPECS_ENV = "STABILIS_CHECK_CHART_SPECS"

# Channels are given as Altair classes (x2=alt.X2("t2:T"), not x2="t2:T"): Altair looks a
# shorthand string up in the whole Vega-Lite schema, ~7 ms a channel (0.3 ms as a class).

# The look every chart shares, merged into its Vega-Lite dict by to_svg: as Altair
# configure_* calls it cost six copies of the whole chart object per chart (~0.6 s of the
# 10 M-attempt report's model). aria=False: no per-mark aria-label copies of the data (they
# would triple the SVG size).
CHART_CONFIG: dict[str, Any] = {
    "font": FONT,
    "aria": False,
    "axis": {"labelFontSize": FONT_PX, "titleFontSize": 10},
    "title": {"fontSize": 11, "anchor": "start"},
    "header": {"labelFontSize": 10, "titleFontSize": 10},
    "legend": {"labelFontSize": FONT_PX, "titleFontSize": FONT_PX},
    "view": {"stroke": "#bbb"},
}


def _configured(config: dict[str, Any]) -> dict[str, Any]:
    """A chart's own config (Altair's theme puts the default view size there) with
    CHART_CONFIG over it, merged one level deep."""
    out = dict(config)
    for key, value in CHART_CONFIG.items():
        mine = out.get(key)
        out[key] = {**mine, **value} if isinstance(value, dict) and isinstance(mine, dict) \
            else value
    return out


def to_svg(chart: alt.TopLevelMixin, datasets: dict[str, list[dict[str, Any]]],
           post: tuple[Post, ...] = ()) -> str:
    """Vega-Lite → SVG string; refuses any output that could load or run something. `post`:
    rewrites of the checked SVG, applied in order (inside charts_in_background, all of it
    happens in the background and a placeholder is returned).

    Rows go in as named top-level datasets after validation: Altair validating thousands of
    inline records costs seconds and checks nothing the spec's structure does not.
    """
    spec = chart.to_dict(validate=os.environ.get(CHECK_SPECS_ENV) == "1")
    spec["config"] = _configured(spec.get("config", {}))
    spec["datasets"] = {**spec.get("datasets", {}), **datasets}

    bg = _background

    def draw() -> str:
        svg = check_svg(vlc.vegalite_to_svg(spec) if bg is None else bg.convert(spec))
        for f in post:
            svg = f(svg)
        return svg

    return draw() if bg is None else bg.submit(draw)


_RECT_GROUP = re.compile(r'(<g class="mark-rect role-mark[^"]*"[^>]*>)'
                         r'((?:<path d="[^"]*" fill="[^"]*"/>)+)(</g>)')
_RECT_PATH = re.compile(r'<path d="M([-\d.e]+),([-\d.e]+)h([-\d.e]+)v([-\d.e]+)h-?[-\d.e]+Z" '
                        r'fill="([^"]*)"/>')


def _n(v: float) -> str:
    return f"{round(v, 2):g}"


def merge_rects(svg: str) -> str:
    """One `<path>` per colour in each rect-mark group of a heatmap (same picture).

    vl-convert writes one `<path>` per cell; WeasyPrint's cost grows with the number of SVG
    elements (a 32 x 90 x 3 heatmap took ~10 s of the PDF). Cells of a heatmap never overlap,
    so cells of one colour can be one path of many sub-paths, and a run of same-colour cells
    in a row one rectangle. Only groups made solely of plain cell paths (no hover title, no
    stroke) are touched; anything else is left as vl-convert wrote it.
    """

    def group(m: re.Match[str]) -> str:
        cells = _RECT_PATH.findall(m[2])
        if len(cells) != m[2].count("<path"):
            return m[0]  # a path we do not understand: keep the group as it is
        # runs: same colour, same row (y, height), each cell starting where the last ended
        runs: dict[tuple[str, float, float], list[list[float]]] = {}
        for x, y, w, h, fill in cells:
            fx, fw = float(x), float(w)
            row = runs.setdefault((fill, float(y), float(h)), [])
            if row and abs(row[-1][0] + row[-1][1] - fx) < 1e-6:
                row[-1][1] += fw
            else:
                row.append([fx, fw])
        by_fill: dict[str, list[str]] = {}
        for (fill, y, h), row in runs.items():
            by_fill.setdefault(fill, []).extend(
                f"M{_n(x)},{_n(y)}h{_n(w)}v{_n(h)}h{_n(-w)}Z" for x, w in row)
        paths = "".join(f'<path d="{"".join(d)}" fill="{f}"/>' for f, d in by_fill.items())
        return m[1] + paths + m[3]

    return _RECT_GROUP.sub(group, svg)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")  # explicit UTC: vega must not shift to local time


def _time_axis(lo: datetime, hi: datetime, title: str | None = "time (UTC)") -> alt.X:
    fmt_ = "%H:%M" if (hi - lo).total_seconds() <= 2 * 86400 else "%b %d"
    return alt.X("t:T", title=title, scale=alt.Scale(type="utc"),
                 axis=alt.Axis(format=fmt_, labelAngle=0, tickCount=6, labelOverlap=True))


def _bin_minutes(lo: datetime, hi: datetime, max_bins: int) -> int:
    minutes = (hi - lo).total_seconds() / 60 + 1
    return max(1, math.ceil(minutes / max_bins))


def _boundaries(phases: pl.DataFrame) -> list[datetime]:
    return phases["start_ts"].to_list()[1:] if phases.height > 1 else []


# ---------------------------------------------------------------------------------------------
# 1. GPU utilization heatmap


@dataclass
class HeatGrid:
    cells: pl.DataFrame  # pool, row, t, t2, nominal, effective, hcl_pp
    level: str  # "GPU" | "node" | "pool"
    bin_minutes: int
    n_gpus: int


def heat_grid(w: Reader, max_rows: int = MAX_HEAT_ROWS,
              max_cols: int = MAX_HEAT_COLS) -> HeatGrid | None:
    """The one binning rule of hidden_idle_map for every chart that draws it (V1 and V5): rows
    per GPU, else node, else pool; columns of `bin_minutes` from the first window; each cell
    the mean of the 1-minute values it covers. The same cell therefore reads the same."""
    stats = w.q("hidden_idle_map", """SELECT min(window_start) AS lo, max(window_start) AS hi,
                  count(DISTINCT (pool, node, gpu)) AS gpus, count(DISTINCT (pool, node)) AS nodes,
                  count(gpu) AS with_gpu
                  FROM hidden_idle_map WHERE pilot = ?""")
    if stats.is_empty() or stats["lo"][0] is None:
        return None
    s = stats.row(0, named=True)
    # coarsen rows until they fit: one row per GPU, else per node, else per pool
    if not s["with_gpu"]:  # per-pool series (aggregated export): no GPU or node to show
        level, key = "pool", "coalesce(pool,'?')"
    elif s["gpus"] <= max_rows:
        level, key = "GPU", "coalesce(pool,'?') || ' / ' || coalesce(node,'?') || ' / gpu ' " \
                            "|| coalesce(gpu,'?')"
    elif s["nodes"] <= max_rows:
        level, key = "node", "coalesce(pool,'?') || ' / ' || coalesce(node,'?')"
    else:
        level, key = "pool", "coalesce(pool,'?')"
    bin_min = _bin_minutes(s["lo"], s["hi"], max_cols)
    cells = w.q("hidden_idle_map", f"""
        SELECT coalesce(pool, '?') AS pool, {key} AS row,
               time_bucket(to_minutes($2), window_start, $3::TIMESTAMP) AS t,
               avg(nominal) AS nominal, avg(effective) AS effective, avg(hcl_pp) AS hcl_pp
        FROM hidden_idle_map WHERE pilot = $1 GROUP BY ALL ORDER BY row, t""",
                bin_min, s["lo"])
    if level == "pool" and cells["row"].n_unique() > max_rows:
        # keep the pools with the largest hidden loss; the note says so
        top = (cells.group_by("row").agg(pl.col("hcl_pp").mean()).sort("hcl_pp",
               descending=True).head(max_rows)["row"])
        cells = cells.filter(pl.col("row").is_in(top.implode()))
    cells = cells.with_columns(t2=pl.col("t") + pl.duration(minutes=bin_min))
    return HeatGrid(cells, level, bin_min, int(s["gpus"]))


# rows are labelled as what they are
ROW_TITLES = {"GPU": "pool / node / GPU", "node": "pool / node", "pool": "pool"}


def _pct(v: float | None) -> float | None:
    return None if v is None else 100 * v


def drawable(grid: HeatGrid) -> list[str]:
    """The heatmap panels with at least one value: nominal needs gpu_util; effective and the
    hidden loss need sm_active or per-request rows (a GPU-only pilot has neither)."""
    return [f for f, col in (("nominal", "nominal"), ("effective", "effective"),
                             ("hcl", "hcl_pp")) if grid.cells[col].drop_nulls().len()]


def heatmap_chart(grid: HeatGrid, boundaries: list[datetime]) -> str:
    df = grid.cells
    rows = sorted(df["row"].unique().to_list())
    lo, hi = df["t"].min(), df["t2"].max()
    values = [{"row": r["row"], "t": _iso(r["t"]), "t2": _iso(r["t2"]),
               "nominal": _pct(r["nominal"]), "effective": _pct(r["effective"]),
               "hcl": r["hcl_pp"]} for r in df.iter_rows(named=True)]
    data = alt.Data(name="heat")
    # integer cell sizes keep the SVG path coordinates short (and the file small)
    # three panels fit well within one A4 page; rows under ~11 px drop some labels (greedy):
    # visual 5 labels every row of the same grid
    row_h = max(2, min(10, 160 // max(len(rows), 1)))
    n_cols = df["t"].n_unique()
    width = max(2, 470 // max(n_cols, 1)) * n_cols
    y = alt.Y("row:N", sort=rows, title=ROW_TITLES[grid.level],
              axis=alt.Axis(labelLimit=170, labelFontSize=FONT_PX,
                            labelOverlap="greedy"))
    rules = alt.Chart(alt.Data(values=[{"t": _iso(b)} for b in boundaries])).mark_rule(
        color="black", strokeDash=[4, 2], strokeWidth=1.2).encode(x=alt.X("t:T"))
    hcl_max = max(1.0, max((v["hcl"] or 0 for v in values), default=0.0))

    def panel(field: str, title: str, scheme: str, domain: list[float],
              last: bool) -> alt.LayerChart:
        # colour in HEAT_STEPS bands (legend shows the band edges): a reader compares bands
        # anyway, and equal colours let merge_rects draw a panel with a few paths
        rect = alt.Chart(data).mark_rect().encode(
            x=_time_axis(lo, hi, "time (UTC)" if last else None), x2=alt.X2("t2:T"), y=y,
            color=alt.Color(f"{field}:Q", title=title.split(" [")[1].rstrip("]"),
                            scale=alt.Scale(type="quantize", domain=domain, scheme=alt.SchemeParams(
                                name=scheme, count=HEAT_STEPS)),
                            legend=alt.Legend(gradientLength=max(60, row_h * len(rows) - 10))))
        # a cell without a value stays blank (not coloured as 0)
        rect = rect.transform_filter(f"isValid(datum.{field})")
        return alt.layer(rect, rules).properties(width=width, height=row_h * len(rows),
                                                 title=title)

    specs = {"nominal": ("Nominal GPU utilization [%]", "blues", [0, 100]),
             "effective": ("Effective utilization [%]", "blues", [0, 100]),
             "hcl": ("Hidden loss: nominal − effective [pp]", "oranges", [0, hcl_max])}
    shown = drawable(grid)
    chart = alt.vconcat(*(panel(f, *specs[f], i == len(shown) - 1) for i, f in enumerate(shown)),
                        spacing=8).resolve_scale(color="independent")
    return to_svg(chart, {"heat": values}, post=(merge_rects,))


def _basis_word(cov: Coverage, item: str) -> str:
    i = cov.get(item)
    return i.status if i and i.status != "not_measured" else "measured"


def heatmap_reading(grid: HeatGrid, hx: dict, cov: Coverage) -> str:
    if "hcl" not in drawable(grid):
        per_row = (grid.cells.group_by("row").agg(pl.col("nominal").mean())
                   .drop_nulls("nominal").sort(["nominal", "row"], descending=[False, False]))
        low = per_row.row(0, named=True)
        high = per_row.row(-1, named=True)
        return (f"Nominal utilization averaged {fmt.value(low['nominal'], 'share')} on "
                f"{grid.level} row {low['row']} (the least busy) and "
                f"{fmt.value(high['nominal'], 'share')} on {high['row']} (the busiest) "
                f"({_basis_word(cov, 'gpu_nominal_util')}). Effective utilization and hidden "
                f"loss are not drawn: "
                + (f"needs {cov.needs('gpu_effective_util')}" if cov.needs('gpu_effective_util')
                   else "no values in hidden_idle_map") + ".")
    per_row = (grid.cells.group_by("row").agg(pl.col("hcl_pp").mean()).drop_nulls("hcl_pp")
               .sort(["hcl_pp", "row"], descending=[True, False]))
    worst = per_row.row(0, named=True)
    cell = grid.cells.drop_nulls("hcl_pp").sort("hcl_pp", descending=True).row(0, named=True)
    text = (f"Hidden loss is highest on {grid.level} row {worst['row']} "
            f"({fmt.value(worst['hcl_pp'], 'pp')} on average over the period) and peaks at "
            f"{fmt.value(cell['hcl_pp'], 'pp')} on {cell['row']} in the {grid.bin_minutes}-"
            f"minute bin starting {fmt.ts(cell['t'])}")
    head = hx.get(("baseline", "all", "overall", None, "hcl_pp"))
    if head and head["value"] is not None:
        text += f"; the baseline HCL for all GPUs is {fmt.value(head['value'], 'pp')}"
    return text + " (measured)."


# ---------------------------------------------------------------------------------------------
# 2. Request burst wave propagation

WAVE_MEASURES = (("rate", "Arrival rate [req/s]"), ("qw", "Queue wait P95 [s]"),
                 ("lat", "Latency P95 [s]"))


@dataclass
class WaveData:
    series: pl.DataFrame  # pool, t, rate, qw, lat, phase (largest 1-minute value per bin)
    episodes: pl.DataFrame  # pool, episode_id, phase, start_ts, end_ts, peak/median, qw_max
    pools: list[str]
    pools_total: int
    bin_minutes: int


def wave_data(w: Reader, max_points: int = MAX_WAVE_POINTS,
              max_pools: int = MAX_WAVE_POOLS) -> WaveData | None:
    stats = w.q("pool_windows", """SELECT pool, sum(arrivals) AS n, min(window_start) AS lo,
                  max(window_start) AS hi FROM pool_windows WHERE pilot = ?
                  GROUP BY pool ORDER BY n DESC, pool""")
    if stats.is_empty():
        return None
    # the busiest pools if there are many, shown in name order so a reader can find one
    pools = sorted(stats["pool"].head(max_pools).to_list())
    lo, hi = stats["lo"].min(), stats["hi"].max()
    bin_min = _bin_minutes(lo, hi, max_points)
    series = w.q("pool_windows", """
        SELECT pool, time_bucket(to_minutes($2), window_start, $3::TIMESTAMP) AS t,
               max(arrival_rate_rps) AS rate, max(queue_wait_p95_s) AS qw,
               max(latency_p95_s) AS lat, max(phase) AS phase
        FROM pool_windows WHERE pilot = $1 AND list_contains($4, pool)
        GROUP BY ALL ORDER BY pool, t""", bin_min, lo, pools)
    episodes = w.q("burst_episodes", """
        SELECT e.pool, e.episode_id, e.phase, e.start_ts, e.end_ts, e.peak_rate_rps,
               e.trailing_median_rps,
               (SELECT max(p.queue_wait_p95_s) FROM pool_windows p
                 WHERE p.pilot = e.pilot AND p.pool = e.pool
                   AND p.window_start >= e.start_ts AND p.window_start < e.end_ts) AS qw_max
        FROM burst_episodes e WHERE e.pilot = ? ORDER BY e.start_ts, e.pool""")
    return WaveData(series, episodes, pools, stats.height, bin_min)


def wave_measures(wd: WaveData) -> list[tuple[str, str]]:
    """The columns with at least one value: a trace has arrival rates but no queue wait or
    latency, and an empty axis would read as 'zero'."""
    return [(f, t) for f, t in WAVE_MEASURES if wd.series[f].drop_nulls().len()]


def wave_chart(wd: WaveData, boundaries: list[datetime]) -> str:
    """One facet grid, pools in rows and measures in columns: every row lines up across the
    columns (one layout, not three charts side by side). Lines coloured by phase."""
    lo, hi = wd.series["t"].min(), wd.series["t"].max()
    eps = wd.episodes.filter(pl.col("pool").is_in(wd.pools)) if not wd.episodes.is_empty() \
        else wd.episodes
    measures = wave_measures(wd)
    titles = [t for _, t in measures]
    vals: list[dict[str, Any]] = []
    for field, title in measures:
        vals += [{"kind": "s", "m": title, "pool": r["pool"], "t": _iso(r["t"]), "v": r[field],
                  "phase": r["phase"] or "outside phases"}
                 for r in wd.series.iter_rows(named=True)]
        vals += [{"kind": "e", "m": title, "pool": r["pool"], "t": _iso(r["start_ts"]),
                  "t2": _iso(r["end_ts"])} for r in eps.iter_rows(named=True)]
        vals += [{"kind": "b", "m": title, "pool": p, "t": _iso(b)}
                 for p in wd.pools for b in boundaries]
    phases = [p for p in ("baseline", "validation", "outside phases")
              if p in set(wd.series["phase"].fill_null("outside phases"))]
    base = alt.Chart().encode(x=_time_axis(lo, hi))
    rect = base.transform_filter("datum.kind == 'e'").mark_rect(
        color=ACCENT, opacity=0.35).encode(x2=alt.X2("t2:T"))
    rule = base.transform_filter("datum.kind == 'b'").mark_rule(color="black",
                                                                strokeDash=[4, 2])
    line = base.transform_filter("datum.kind == 's'").mark_line(strokeWidth=1).encode(
        y=alt.Y("v:Q", title=None, axis=alt.Axis(tickCount=3)),
        color=alt.Color("phase:N", title="phase", sort=phases, scale=phase_scale(phases)))
    col_w = {1: 440, 2: 215, 3: 138}[len(measures)]
    chart = alt.layer(rect, rule, line, data=alt.Data(name="wave")).properties(
        width=col_w, height=52).facet(
        row=alt.Row("pool:N", sort=wd.pools, title=None,
                    header=alt.Header(labelAngle=0, labelAlign="left", labelOrient="left",
                                      labelFontWeight="bold", labelLimit=90)),
        column=alt.Column("m:N", sort=titles, title=None,
                          header=alt.Header(labelFontWeight="bold")),
        spacing={"row": 6, "column": 10}).resolve_scale(y="independent")
    return to_svg(chart, {"wave": vals})


def wave_reading(wd: WaveData, cov: Coverage) -> str:
    """Quotes the series as plotted (1-minute values, largest per bin), not the detector's
    shorter burst-window rates: a reader must find every number on the chart."""
    eps = wd.episodes
    if eps.is_empty() and not cov.measured("burst_episodes"):
        return f"Burst episodes: {cov.not_tested('burst_episodes')}; the lines show the " \
               "1-minute windows only."
    if eps.is_empty():
        return ("Burst episodes: none detected in any pool; the lines show the 1-minute "
                "windows only (measured, burst_episodes).")
    by_phase = eps.group_by("phase").len().sort("phase")
    phases = ", ".join(f"{r['len']} in {r['phase']}" for r in by_phase.iter_rows(named=True))
    text = f"{eps.height} burst episodes in {eps['pool'].n_unique()} pools ({phases})"
    top = wd.series.drop_nulls("rate").sort(["rate", "t"], descending=[True, False])
    if not top.is_empty():
        r = top.row(0, named=True)
        text += (f"; the highest plotted arrival rate was {fmt.value(r['rate'], 'req/s')} "
                 f"(1-minute window) in {r['pool']} at {fmt.ts(r['t'])}")
        qw = wd.series.filter(pl.col("pool") == r["pool"]).drop_nulls("qw")
        if not qw.is_empty():
            q = qw.sort(["qw", "t"], descending=[True, False]).row(0, named=True)
            text += (f"; that pool's plotted queue-wait P95 peaked at "
                     f"{fmt.value(q['qw'], 's')} at {fmt.ts(q['t'])}")
    return text + " (measured)."


def not_drawn(number: int, title: str, why: str) -> Chart:
    """A chart whose data is missing: one line saying what it would need, no empty axes."""
    return Chart(number, title, "", f"Not drawn: {why}.")


def build_charts(w: Reader, hx: dict, phases: pl.DataFrame,
                 cov: Coverage) -> tuple[list[Chart], list[str]]:
    """The v1 visual appendices, plus one methodology line per chart on how it was reduced."""
    bounds = _boundaries(phases)
    out: list[Chart] = []
    notes: list[str] = []
    grid = heat_grid(w)
    if grid is None or not drawable(grid):
        out.append(not_drawn(1, "GPU utilization heatmap", (
            "needs " + (cov.needs("gpu_nominal_util") or "GPU utilization samples"))
            if not cov.measured("gpu_nominal_util") else "no hidden_idle_map rows in this run"))
    else:
        shown = drawable(grid)
        note = (f"One row per {grid.level} "
                + (f"({grid.n_gpus} GPUs in the map), " if grid.level != "pool"
                   or cov.exact("gpu_nominal_util") else "(per-pool series: no GPU named), ")
                + f"{grid.bin_minutes}-minute columns; each cell is the mean of the 1-minute "
                f"values of the GPUs and windows it covers, coloured in {HEAT_STEPS} equal "
                f"bands (legend). Dashed line: phase boundary.")
        if "hcl" not in shown:
            note += (" Not drawn: effective utilization and hidden loss panels — needs "
                     + (cov.needs("gpu_effective_util") or "sm_active or per-request rows")
                     + ".")
        out.append(Chart(1, "GPU utilization heatmap — nominal vs effective, and hidden loss"
                         if "hcl" in shown else "GPU utilization heatmap — nominal utilization",
                         heatmap_chart(grid, bounds), heatmap_reading(grid, hx, cov),
                         basis=_basis_word(cov, "gpu_nominal_util"), note=note))
        notes.append("GPU heatmap (visual appendix 1): " + note)
    wd = wave_data(w)
    title = "Request burst wave propagation"
    if wd is None or not wave_measures(wd):
        out.append(not_drawn(2, title, "needs " + (
            cov.needs("burst_episodes") or "per-request rows or an arrival trace")
            if not cov.measured("burst_episodes") else "no pool windows in this run"))
    else:
        measures = wave_measures(wd)
        shown = (f"all {wd.pools_total} pools" if wd.pools_total <= len(wd.pools) else
                 f"the {len(wd.pools)} busiest of {wd.pools_total} pools by arrivals")
        note = (f"Shows {shown}; {wd.bin_minutes}-minute bins, each the largest 1-minute "
                f"value in the bin (arrival rate, P95s). Line colour: phase; shaded: burst "
                f"episodes (burst_episodes); dashed line: phase boundary.")
        absent = [t.split(" [")[0] for f, t in WAVE_MEASURES if (f, t) not in measures]
        if absent:
            note += (f" Not drawn: {' and '.join(absent).lower()} — needs "
                     f"{cov.needs('queue_wait', 'latency_quantiles') or 'per-request rows'}.")
        words = ", ".join(t.split(" [")[0].lower() for _, t in measures)
        out.append(Chart(2, f"{title} — {words} per pool", wave_chart(wd, bounds),
                         wave_reading(wd, cov), note=note))
        notes.append("Burst wave chart (visual appendix 2): " + note)
    return out, notes
