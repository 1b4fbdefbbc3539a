"""Block-bootstrap confidence intervals for the headline metrics, and difference-in-differences.

Why this design: resampling 1 M logical requests row by row, hundreds of times, is slow and
memory-hungry. Instead each phase is cut into fixed time blocks (blocks keep autocorrelation:
a burst stays inside its block); DuckDB computes per block the *sufficient statistics* of every
headline metric — counts, sums, and for quantiles a fine log-spaced histogram — and numpy
resamples whole blocks with replacement by multiplying a (resamples x blocks) count matrix
with the (blocks x statistics) matrix. A metric is then a function of summed statistics, the
same function for the point value and for every resample.

Quantile intervals are histogram-approximate (log-spaced bins, interpolated inside a bin);
the printed point values stay the exact ones of metrics_headline. Each interval is the
percentile interval of the resampled values, translated by the difference between the exact
point value and the same metric computed from the blocks (zero up to rounding for ratios; the
histogram's own approximation error for quantiles), so an interval is always about the
number printed beside it.

Resampling is paired across segments: treatment and control draw the same time blocks of a
phase, so a shock common to both (a cluster-wide burst) cancels in the DiD as it does in the
point estimate. Baseline and validation are resampled independently (disjoint periods).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

SEGMENTS = ("all", "treatment", "control")
PHASES = ("baseline", "validation")


@dataclass(frozen=True)
class BootstrapConfig:
    resamples: int = 400
    seed: int = 20260302
    block_s: float = 300.0  # preferred block length
    min_blocks: int = 40  # blocks are shortened (not below min_block_s) to reach this many
    min_block_s: float = 60.0
    bins: int = 200  # log-spaced histogram bins per quantity
    level: float = 0.95
    min_finite: float = 0.9  # share of resamples that must give a value, else no interval


def block_seconds(phase_lengths_s: list[float], cfg: BootstrapConfig) -> float:
    """The block length used for a pilot: `block_s`, shortened so the shortest phase has at
    least `min_blocks` blocks, but never below `min_block_s` (short blocks cut autocorrelation).
    """
    if not phase_lengths_s:
        return cfg.block_s
    wanted = min(phase_lengths_s) / cfg.min_blocks
    return float(max(cfg.min_block_s, min(cfg.block_s, math.floor(wanted))))


# ---------------------------------------------------------------------------------------------
# Histograms


@dataclass(frozen=True)
class LogBins:
    """Bin 0 holds values <= 0; bins 1..n are log-spaced from `lo` to `hi`."""

    lo: float
    hi: float
    n: int

    @property
    def edges(self) -> np.ndarray:  # n + 1 edges of the positive bins
        return np.geomspace(self.lo, self.hi, self.n + 1)

    def index(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        out = np.zeros(x.shape, dtype=np.int64)
        pos = x > 0
        step = math.log(self.hi / self.lo) / self.n
        k = np.floor(np.log(np.maximum(x[pos], self.lo) / self.lo) / step).astype(np.int64)
        out[pos] = 1 + np.clip(k, 0, self.n - 1)
        return out

    def sql_index(self, col: str) -> str:
        step = math.log(self.hi / self.lo) / self.n
        return (f"CASE WHEN {col} <= 0 THEN 0 ELSE 1 + least({self.n - 1}, greatest(0, "
                f"CAST(floor(ln(greatest({col}, {self.lo!r}) / {self.lo!r}) / {step!r}) "
                f"AS BIGINT))) END")


def log_bins(lo_pos: float | None, hi: float | None, n: int) -> LogBins:
    """Bins covering (0, hi] from the smallest positive value; a little margin on both ends."""
    if lo_pos is None or hi is None or not hi > 0:
        return LogBins(1e-6, 1.0, n)
    lo = max(float(lo_pos), 1e-9) * 0.999
    return LogBins(lo, max(float(hi) * 1.001, lo * 1.01), n)


def hist_quantile(h: np.ndarray, bins: LogBins, q: float) -> np.ndarray:
    """Quantile q of histograms h (..., n + 1); linear inside a bin on the log scale.

    Returns NaN where a histogram is empty. Values in bin 0 (<= 0) count as 0.
    """
    h = np.asarray(h, dtype=float)
    total = h.sum(axis=-1)
    cum = np.cumsum(h, axis=-1)
    target = q * total
    # first bin whose cumulative count reaches the target (ties: the lowest such bin)
    k = np.argmax(cum >= target[..., None] - 1e-9 * np.maximum(total[..., None], 1), axis=-1)
    below = np.take_along_axis(cum, k[..., None], axis=-1)[..., 0] - np.take_along_axis(
        h, k[..., None], axis=-1)[..., 0]
    inbin = np.take_along_axis(h, k[..., None], axis=-1)[..., 0]
    frac = np.clip(np.where(inbin > 0, (target - below) / np.where(inbin > 0, inbin, 1), 0), 0, 1)
    edges = bins.edges
    kk = np.clip(k - 1, 0, bins.n - 1)
    lo_e, hi_e = np.log(edges[kk]), np.log(edges[kk + 1])
    val = np.where(k == 0, 0.0, np.exp(lo_e + frac * (hi_e - lo_e)))
    return np.where(total > 0, val, np.nan)


# ---------------------------------------------------------------------------------------------
# Resampling core (Dagster- and warehouse-free; the tests drive it with hand-built blocks)


def resample_counts(n_blocks: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples x n_blocks) counts: how often each block is drawn in each resample.

    Drawing n blocks with replacement gives multinomial counts, so no index arrays are built.
    """
    if n_blocks == 0:
        return np.zeros((resamples, 0))
    return rng.multinomial(n_blocks, np.full(n_blocks, 1.0 / n_blocks), size=resamples).astype(
        float)


@dataclass
class Blocks:
    """Sufficient statistics of one phase, per time block (rows) — one segment's view."""

    duration_s: np.ndarray  # (n,)
    sums: dict[str, np.ndarray] = field(default_factory=dict)  # stat -> (n,)
    hists: dict[str, np.ndarray] = field(default_factory=dict)  # quantity -> (n, bins + 1)
    consts: dict[str, float] = field(default_factory=dict)  # e.g. GPU count

    @property
    def n(self) -> int:
        return int(self.duration_s.shape[0])


@dataclass
class Totals:
    """Summed statistics, one value per resample (shape (R,)) or per point (shape (1,))."""

    duration_s: np.ndarray
    sums: dict[str, np.ndarray]
    hists: dict[str, np.ndarray]
    consts: dict[str, float]


def combine(blocks: Blocks, weights: np.ndarray) -> Totals:
    """Weighted block sums: weights (R x n) @ statistics (n x k) — one matrix product each."""
    return Totals(weights @ blocks.duration_s,
                  {k: weights @ v for k, v in blocks.sums.items()},
                  {k: weights @ v for k, v in blocks.hists.items()},
                  dict(blocks.consts))


MetricFn = Callable[[Totals], np.ndarray]


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1), np.nan)


def interval(x: np.ndarray, level: float = 0.95, min_finite: float = 0.9) -> tuple[float,
                                                                                    float] | None:
    """Percentile interval of resampled values; None when too few resamples give a value."""
    finite = np.isfinite(x)
    if x.size == 0 or finite.mean() < min_finite:
        return None
    a = (1 - level) / 2
    lo, hi = np.quantile(x[finite], [a, 1 - a])
    return float(lo), float(hi)


@dataclass
class CI:
    point: float | None  # the value the interval is about (exact where given)
    lo: float | None
    hi: float | None


@dataclass
class Comparison:
    baseline: CI
    validation: CI
    change: CI
    rel_change: CI

    @property
    def significant(self) -> bool | None:
        return _significant(self.change)


def _significant(ci: CI) -> bool | None:
    if ci.lo is None or ci.hi is None:
        return None
    return bool(ci.lo > 0 or ci.hi < 0)


def _anchored(samples: np.ndarray, from_blocks: float, exact: float | None) -> np.ndarray:
    # translate resamples so they centre on the exact value (see the module docstring)
    if exact is None or not np.isfinite(from_blocks):
        return samples
    return samples + (exact - from_blocks)


def totals(blocks: Blocks, weights: np.ndarray) -> tuple[Totals, Totals]:
    """(point totals, resampled totals) of one phase — computed once, shared by all metrics."""
    return combine(blocks, np.ones((1, blocks.n))), combine(blocks, weights)


def phase_samples(tot: tuple[Totals, Totals], fn: MetricFn, exact: float | None = None,
                  nonneg: bool = True) -> tuple[float | None, np.ndarray]:
    """(point value, resampled values) of one metric in one phase, anchored on `exact`."""
    point_t, res_t = tot
    if point_t.duration_s.size and point_t.duration_s[0] > 0:
        point, res = float(fn(point_t)[0]), fn(res_t)
    else:
        point, res = float("nan"), np.full(res_t.duration_s.shape[0], np.nan)
    value = exact if exact is not None else (point if np.isfinite(point) else None)
    res = _anchored(res, point, exact)
    # a translated quantile interval may dip below zero; the quantity cannot
    return value, (np.maximum(res, 0.0) if nonneg else res)


def compare(base: tuple[float | None, np.ndarray], val: tuple[float | None, np.ndarray],
            level: float = 0.95, min_finite: float = 0.9) -> Comparison:
    """Baseline, validation, absolute and relative change, each with its percentile interval."""
    (bp, bs), (vp, vs) = base, val

    def ci(point: float | None, s: np.ndarray) -> CI:
        iv = interval(s, level, min_finite) if point is not None else None
        return CI(point, *(iv or (None, None)))

    change = None if bp is None or vp is None else vp - bp
    rel = None if change is None or not bp else change / abs(bp)
    return Comparison(ci(bp, bs), ci(vp, vs), ci(change, vs - bs),
                      ci(rel, _ratio(vs - bs, np.abs(bs))))


def did_interval(treat: tuple[np.ndarray, np.ndarray], control: tuple[np.ndarray, np.ndarray],
                 point: float | None, level: float = 0.95, min_finite: float = 0.9) -> CI:
    """(Vt − Bt) − (Vc − Bc) per resample; treatment and control resamples must be paired."""
    (bt, vt), (bc, vc) = treat, control
    iv = interval((vt - bt) - (vc - bc), level, min_finite) if point is not None else None
    return CI(point, *(iv or (None, None)))


# ---------------------------------------------------------------------------------------------
# The headline metrics as functions of block sums (same definitions as metrics_headline.sql)


def _q(name: str, q: float, bins: Mapping[str, LogBins]) -> MetricFn:
    return lambda t: hist_quantile(t.hists[name], bins[name], q)


def _effective(t: Totals) -> np.ndarray:
    sm = _ratio(t.sums["sm_vdt"], t.sums["sm_dt"])
    gpus = t.consts.get("gpus", 0.0)
    fallback = _ratio(t.sums["productive_s"], gpus * t.duration_s) if gpus else np.full_like(
        t.duration_s, np.nan)
    # sm_active where the phase has it (a const so resamples cannot switch definitions)
    return sm if t.consts.get("has_sm", 0.0) else fallback


def headline_functions(bins: Mapping[str, LogBins]) -> dict[str, MetricFn]:
    nominal: MetricFn = lambda t: _ratio(t.sums["gu_vdt"], t.sums["gu_dt"])  # noqa: E731
    return {
        "p50_latency_s": _q("lat", 0.50, bins),
        "p95_latency_s": _q("lat", 0.95, bins),
        "p99_latency_s": _q("lat", 0.99, bins),
        "queue_wait_p50_s": _q("qw", 0.50, bins),
        "queue_wait_p95_s": _q("qw", 0.95, bins),
        "queue_wait_completed_p95_s": _q("qwc", 0.95, bins),
        "queue_wait_censored_share": lambda t: _ratio(t.sums["n_censored"], t.sums["n_att"]),
        "burst_queue_wait_p50_s": _q("bqw", 0.50, bins),
        "burst_queue_wait_p95_s": _q("bqw", 0.95, bins),
        "nominal_util": nominal,
        "effective_util": _effective,
        "hcl_pp": lambda t: 100 * (nominal(t) - _effective(t)),
        "timeout_drop_rate": lambda t: _ratio(t.sums["n_td"], t.sums["n_logical"]),
        "sla_adherence": lambda t: _ratio(t.sums["n_good"], t.sums["n_logical"]),
        "goodput_rps": lambda t: _ratio(t.sums["n_good"], t.duration_s),
        "retry_amplification": lambda t: _ratio(t.sums["attempts"], t.sums["n_logical"]),
        "energy_per_good_request_j": lambda t: _ratio(t.sums["pw_vdt"], t.sums["n_good"]),
        "delay_index": lambda t: _ratio(t.sums["qw_ok"], t.sums["e2e_ok"]),
    }


# Queue wait is int_attempts.queue_wait_s, the definition metrics_headline uses: every attempt,
# right-censored ones (left without starting) at their wait until they left; "qwc" is the
# secondary view over the attempts that started.
QUANTITIES = {  # histogram name -> (table, value column, filter on alias x: its conditions ANDed)
    "lat": ("int_logical_requests", "latency_s", ("x.outcome = 'ok'",)),
    "qw": ("int_attempts", "queue_wait_s", ("x.queue_wait_s IS NOT NULL",)),
    "qwc": ("int_attempts", "queue_wait_s", ("x.queue_wait_s IS NOT NULL", "NOT x.wait_censored")),
    "bqw": ("int_attempts", "queue_wait_s", ("x.queue_wait_s IS NOT NULL", "x.in_burst")),
}
SUM_STATS = ("n_logical", "attempts", "n_td", "n_good", "qw_ok", "e2e_ok", "productive_s",
             "n_att", "n_censored", "gu_vdt", "gu_dt", "sm_vdt", "sm_dt", "pw_vdt")


# ---------------------------------------------------------------------------------------------
# Reading the blocks from the warehouse


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {n for (n,) in con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}


def _lit(value: str) -> str:
    """A SQL string literal. The stage inlines its few values instead of binding them: DuckDB's
    Python client imports pandas on a process's first bound parameter (~0.4 CPU s)."""
    return "'" + str(value).replace("'", "''") + "'"


# per source table: (FROM clause on alias x, block timestamp, the sum that is its row count,
# the other per-block sums). {burst} is the attempts' in-burst flag. One scan of a table serves
# its sums and its quantities' histograms.
SOURCES: dict[str, tuple[str, str, str | None, str]] = {
    "int_logical_requests": (
        "int_logical_requests x", "x.first_arrival_ts", "n_logical",
        """CAST(sum(x.attempts) AS DOUBLE) AS attempts,
           count(*) FILTER (WHERE x.outcome IN ('timeout', 'dropped')) AS n_td,
           count(*) FILTER (WHERE x.met_sla) AS n_good"""),
    "int_attempts": (
        "(SELECT a.*, {burst} AS in_burst FROM int_attempts a {burst_join} "
        "WHERE a.pilot = {pilot}) x", "x.arrival_ts", "n_att",
        """sum(x.queue_wait_s) FILTER (WHERE x.status = 'ok') AS qw_ok,
           sum(x.e2e_s) FILTER (WHERE x.status = 'ok') AS e2e_ok,
           sum(x.service_s) FILTER (WHERE x.status = 'ok' AND x.logical_met_sla) AS productive_s,
           count(*) FILTER (WHERE x.wait_censored) AS n_censored"""),
    "int_gpu_samples": (
        "int_gpu_samples x", "x.ts", None,
        """sum(x.value * x.dt_s) FILTER (WHERE x.series = 'gpu_util') AS gu_vdt,
           sum(x.dt_s) FILTER (WHERE x.series = 'gpu_util') AS gu_dt,
           sum(x.value * x.dt_s) FILTER (WHERE x.series = 'sm_active') AS sm_vdt,
           sum(x.dt_s) FILTER (WHERE x.series = 'sm_active') AS sm_dt,
           sum(x.value * x.dt_s) FILTER (WHERE x.series = 'power_w') AS pw_vdt"""),
}


def _split(names: list[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The filter conditions all of `names` share, and each one's remaining conditions (ANDed;
    absent when none remain): rows are read once under the shared ones and told apart by the
    rest, a boolean group key each."""
    common = tuple(c for c in QUANTITIES[names[0]][2]
                   if all(c in QUANTITIES[n][2] for n in names))
    extra = {n: " AND ".join(c for c in QUANTITIES[n][2] if c not in common) for n in names}
    return common, {n: e for n, e in extra.items() if e}


def _where(conds: tuple[str, ...]) -> str:
    return " AND ".join(f"({c})" for c in conds) or "true"


def _bounds_sql(src: str, names: list[str], pilot: str) -> str:
    """Smallest positive and largest value of each quantity, in one scan grouped by the
    quantities' own conditions (a few groups: cheaper than a FILTER per quantity)."""
    common, extra = _split(names)
    cols = list(dict.fromkeys(QUANTITIES[n][1] for n in names))
    inner = [f"{e} AS f_{n}" for n, e in extra.items()] + [
        f"min(x.{c}) FILTER (WHERE x.{c} > 0) AS lo_{c}, max(x.{c}) AS hi_{c}" for c in cols]
    outer = [f"min(lo_{QUANTITIES[n][1]}){f' FILTER (WHERE f_{n})' if n in extra else ''}, "
             f"max(hi_{QUANTITIES[n][1]}){f' FILTER (WHERE f_{n})' if n in extra else ''}"
             for n in names]
    return (f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {src} "
            f"WHERE x.pilot = {pilot} AND {_where(common)}"
            f"{' GROUP BY ALL' if extra else ''})")


BinKeys = dict[str, tuple[str, str | None]]  # quantity -> (bin key, filter key or None)


def _bin_keys(names: list[str], bins: Mapping[str, LogBins]) -> tuple[list[str], BinKeys]:
    """SQL group keys of the histograms of `names`, and per quantity its (bin key, filter key).

    Quantities of one column with the same bins (queue wait: all, completed, in burst) share
    one bin expression (its logarithm per row is what costs), NULL outside their shared
    conditions; the rest of a quantity's conditions is a boolean key of its own."""
    share: dict[tuple[str, LogBins], list[str]] = {}
    for n in names:
        share.setdefault((QUANTITIES[n][1], bins[n]), []).append(n)
    keys: list[str] = []
    which: BinKeys = {}
    for j, ((col, b), ns) in enumerate(share.items()):
        common, extra = _split(ns)
        keys.append(f"CASE WHEN {_where(common)} THEN {b.sql_index('x.' + col)} END AS k{j}")
        keys += [f"{e} AS f_{n}" for n, e in extra.items()]
        which.update({n: (f"k{j}", f"f_{n}" if n in extra else None) for n in ns})
    return keys, which


def load_blocks(con: duckdb.DuckDBPyConnection, pilot: str, cfg: BootstrapConfig
                ) -> tuple[dict[str, dict[str, Blocks]], dict[str, LogBins], float]:
    """phase -> segment -> Blocks, the histogram bins, and the block length used."""
    have = _tables(con)
    lit = _lit(pilot)
    ph = con.execute(f"""SELECT phase, epoch_us(start_ts), epoch_us(end_ts) FROM phases
                         WHERE pilot = {lit} AND phase IN ('baseline', 'validation')
                         ORDER BY start_ts""").fetchall()
    block_s = block_seconds([(e - s) / 1e6 for _, s, e in ph], cfg)
    blk_us = int(block_s * 1e6)
    start = {p: s for p, s, _ in ph}
    nblocks = {p: max(1, -(-(e - s) // blk_us)) for p, s, e in ph}
    dur = {}
    for p, s, e in ph:
        n = nblocks[p]
        d = np.full(n, block_s)
        d[-1] = (e - s) / 1e6 - block_s * (n - 1)  # a partial last block
        dur[p] = d

    # A row's block is (t - its phase's start) // blk_us. When every phase starts a whole number
    # of blocks after the first, that is (t - first start) // blk_us less the phase's offset in
    # blocks (exact in integers), and no row needs its phase's start looked up.
    ref = min(start.values(), default=0)
    if all((s - ref) % blk_us == 0 for s in start.values()):
        offset = {p: (s - ref) // blk_us for p, s in start.items()}
        origin = str(ref)
    else:
        offset = dict.fromkeys(start, 0)
        origin = ("CASE x.phase " + " ".join(f"WHEN {_lit(p)} THEN {s}" for p, s in start.items())
                  + " END")

    burst, burst_join = "false", ""
    if "burst_windows" in have and "int_thresholds" in have:
        win = con.execute(f"SELECT CAST(burst_window_s * 1e6 AS BIGINT) FROM int_thresholds "
                          f"WHERE pilot = {lit}").fetchall()
        if win and win[0][0] is not None:
            # the burst windows alone as the build side (a few hundred rows) and the window
            # length a constant: the cheapest probe for every attempt
            burst, burst_join = "bw.w IS NOT NULL", (
                f"LEFT JOIN (SELECT DISTINCT pool, w FROM burst_windows WHERE pilot = {lit} "
                f"AND is_burst) bw ON bw.pool = a.pool AND bw.w = a.arrival_us // {win[0][0]}")

    # Per source: the histogram bins, shared by both phases (from each quantity's smallest
    # positive and largest value), then one scan grouped by phase, segment, block and the
    # histogram keys, with the block sums as aggregates (a row in no quantity has NULL bins).
    bins: dict[str, LogBins] = {}
    frames: list[tuple[pl.DataFrame, str, BinKeys]] = []
    for table, (src, ts, count, sums) in SOURCES.items():
        if table not in have:
            continue
        src = src.format(burst=burst, burst_join=burst_join, pilot=lit)
        names = [n for n, q in QUANTITIES.items() if q[0] == table]
        if names:
            bounds = con.execute(_bounds_sql(src, names, lit)).fetchone()
            for i, name in enumerate(names):
                bins[name] = log_bins(bounds[2 * i], bounds[2 * i + 1], cfg.bins)
        keys, which = _bin_keys(names, bins) if names else ([], {})
        df = con.execute(f"""SELECT x.phase, x.segment,
                (epoch_us({ts}) - {origin}) // {blk_us} AS b, {''.join(k + ', ' for k in keys)}
                count(*) AS {count or 'n'}, {sums}
            FROM {src} WHERE x.pilot = {lit} GROUP BY ALL""").pl()
        # in key order: a block's float sums add up its groups in the same order every run
        df = df.filter(pl.col("phase").is_in(list(nblocks)) & pl.col("b").is_not_null())
        frames.append((df.sort(df.columns[:3 + len(keys)], nulls_last=True), count or "n",
                       which))

    gpus: dict[tuple[str, str], float] = {}
    if "int_gpu_samples" in have:
        for r in con.execute(f"""SELECT phase, coalesce(segment, 'none') AS segment,
                    grouping(segment) AS g, count(DISTINCT gpu) AS n FROM int_gpu_samples
                    WHERE pilot = {lit} GROUP BY GROUPING SETS ((phase, segment), (phase))"""
                             ).fetchall():
            gpus[(r[0], "all" if r[2] else r[1])] = float(r[3])
    # the SQL's fallback GPU count when no samples exist: a 10 M-row distinct count, run only
    # when a (phase, segment) the blocks use has no count from the samples
    if "int_attempts" in have and any((p_, s) not in gpus for p_ in nblocks for s in SEGMENTS):
        for r in con.execute(f"""SELECT phase, segment, grouping(segment) AS g,
                    count(DISTINCT gpu) AS n FROM int_attempts WHERE pilot = {lit}
                    GROUP BY GROUPING SETS ((phase, segment), (phase))""").fetchall():
            gpus.setdefault((r[0], "all" if r[2] else r[1]), float(r[3]))

    out: dict[str, dict[str, Blocks]] = {}
    seg_code = {s: i for i, s in enumerate(SEGMENTS) if i}  # any other segment: "all" only
    for phase, n in nblocks.items():
        segs: dict[str, Blocks] = {s: Blocks(dur[phase].copy(), {k: np.zeros(n)
                                                                 for k in SUM_STATS}, {},
                                             {}) for s in SEGMENTS}
        for df, count, which in frames:
            d = df.filter(pl.col("phase") == phase)
            # a group's cell: segment code x block; per segment, a bincount over the cells
            cell = (d["segment"].replace_strict(seg_code, default=0, return_dtype=pl.Int64)
                    .fill_null(0).to_numpy() * n
                    + np.clip(d["b"].to_numpy() - offset[phase], 0, n - 1))
            for stat in (c for c in d.columns if c in SUM_STATS):
                v = np.nan_to_num(d[stat].cast(pl.Float64).to_numpy(), nan=0.0)
                acc = np.bincount(cell, v, minlength=3 * n).reshape(3, n)
                for i, s in enumerate(SEGMENTS):
                    segs[s].sums[stat] = acc.sum(0) if i == 0 else acc[i]
            for name, (key, flag) in which.items():
                keep = (d[key].is_not_null() & (d[flag].fill_null(False) if flag else True)
                        ).to_numpy()
                h = np.bincount(cell[keep] * (cfg.bins + 1) + d[key].fill_null(0).to_numpy()[keep],
                                d[count].cast(pl.Float64).to_numpy()[keep],
                                minlength=3 * n * (cfg.bins + 1)).reshape(3, n, cfg.bins + 1)
                for i, s in enumerate(SEGMENTS):
                    segs[s].hists[name] = h.sum(0) if i == 0 else h[i]
        for s in SEGMENTS:
            segs[s].consts["gpus"] = gpus.get((phase, s), 0.0)
            segs[s].consts["has_sm"] = float(segs[s].sums["sm_dt"].sum() > 0)
        out[phase] = segs
    return out, bins, block_s


# ---------------------------------------------------------------------------------------------
# The metrics_ci table

CI_COLUMNS: dict[str, pl.DataType] = {
    "pilot": pl.String, "segment": pl.String, "metric": pl.String,
    "baseline": pl.Float64, "baseline_lo": pl.Float64, "baseline_hi": pl.Float64,
    "validation": pl.Float64, "validation_lo": pl.Float64, "validation_hi": pl.Float64,
    "change": pl.Float64, "change_lo": pl.Float64, "change_hi": pl.Float64,
    "rel_change": pl.Float64, "rel_change_lo": pl.Float64, "rel_change_hi": pl.Float64,
    "significant": pl.Boolean,
    "did": pl.Float64, "did_lo": pl.Float64, "did_hi": pl.Float64, "did_significant": pl.Boolean,
    "method": pl.String, "resamples": pl.Int64, "block_s": pl.Float64,
    "blocks_baseline": pl.Int64, "blocks_validation": pl.Int64, "seed": pl.Int64,
    "level": pl.Float64,
}


def _exact_values(con: duckdb.DuckDBPyConnection, pilot: str) -> dict[tuple[str, str, str],
                                                                     float | None]:
    if "metrics_headline" not in _tables(con):
        return {}
    rows = con.execute(f"""SELECT phase, segment, metric, value FROM metrics_headline
                           WHERE pilot = {_lit(pilot)} AND breakdown = 'overall'""").fetchall()
    return {(p, s, m): v for p, s, m, v in rows}


def compute_ci(con: duckdb.DuckDBPyConnection, pilot: str,
               cfg: BootstrapConfig | None = None) -> pl.DataFrame:
    """One row per segment × headline metric with intervals; DiD on the treatment rows."""
    cfg = cfg or BootstrapConfig()
    blocks, bins, block_s = load_blocks(con, pilot, cfg)
    if not all(p in blocks for p in PHASES):
        return pl.DataFrame(schema=CI_COLUMNS)
    exact = _exact_values(con, pilot)
    fns = headline_functions(bins)
    rng = np.random.default_rng(cfg.seed)
    # one weight matrix per phase, shared by the segments (paired resampling)
    weights = {p: resample_counts(blocks[p]["all"].n, cfg.resamples, rng) for p in PHASES}
    rows: list[dict] = []
    draws: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    points: dict[tuple[str, str], float | None] = {}
    has_seg = {s: blocks["baseline"][s].sums["n_logical"].sum() > 0 for s in SEGMENTS}
    for seg in SEGMENTS:
        if not has_seg[seg]:
            continue
        tots = {p: totals(blocks[p][seg], weights[p]) for p in PHASES}
        for metric, fn in fns.items():
            have_exact = ("baseline", seg, metric) in exact
            res = [phase_samples(tots[p], fn, exact.get((p, seg, metric)) if have_exact
                                 else None, nonneg=metric != "hcl_pp")
                   for p in PHASES]
            if have_exact:  # the exact table says "not measured": keep it so
                res = [(exact.get((p, seg, metric)), s) for p, (_, s) in zip(PHASES, res,
                                                                              strict=True)]
            c = compare(res[0], res[1], cfg.level, cfg.min_finite)
            draws[(seg, metric)] = (res[0][1], res[1][1])
            points[(seg, metric)] = c.change.point
            quantile = metric.startswith(("p5", "p9", "queue_wait", "burst_queue")) \
                and metric != "queue_wait_censored_share"
            rows.append({
                "pilot": pilot, "segment": seg, "metric": metric,
                "baseline": c.baseline.point, "baseline_lo": c.baseline.lo,
                "baseline_hi": c.baseline.hi,
                "validation": c.validation.point, "validation_lo": c.validation.lo,
                "validation_hi": c.validation.hi,
                "change": c.change.point, "change_lo": c.change.lo, "change_hi": c.change.hi,
                "rel_change": c.rel_change.point, "rel_change_lo": c.rel_change.lo,
                "rel_change_hi": c.rel_change.hi, "significant": c.significant,
                "did": None, "did_lo": None, "did_hi": None, "did_significant": None,
                "method": "block bootstrap, percentile; histogram-approximate quantile"
                          if quantile else "block bootstrap, percentile; exact block sums",
                "resamples": cfg.resamples, "block_s": block_s,
                "blocks_baseline": blocks["baseline"][seg].n,
                "blocks_validation": blocks["validation"][seg].n,
                "seed": cfg.seed, "level": cfg.level})
    if has_seg["treatment"] and has_seg["control"]:
        for r in rows:
            if r["segment"] != "treatment":
                continue
            m = r["metric"]
            t, c_ = points.get(("treatment", m)), points.get(("control", m))
            point = None if t is None or c_ is None else t - c_
            ci = did_interval(draws[("treatment", m)], draws[("control", m)], point, cfg.level,
                              cfg.min_finite)
            r.update(did=ci.point, did_lo=ci.lo, did_hi=ci.hi, did_significant=_significant(ci))
    return pl.DataFrame(rows, schema=CI_COLUMNS)


def build_metrics_ci(con: duckdb.DuckDBPyConnection, pilot: str,
                     cfg: BootstrapConfig | None = None) -> int:
    """Replace the pilot's rows of table metrics_ci in one transaction; return its row count."""
    df = compute_ci(con, pilot, cfg)
    _replace(con, "metrics_ci", pilot, df, CI_COLUMNS)
    return df.height


def _sql_value(v: object, sql_type: str) -> str:
    if v is None:
        return "NULL"
    if sql_type == "VARCHAR":
        return _lit(str(v))
    if sql_type == "DOUBLE":
        return f"CAST('{float(v)!r}' AS DOUBLE)"  # type: ignore[arg-type]
    if sql_type == "BOOLEAN":
        return "true" if v else "false"
    return str(int(v))  # type: ignore[call-overload]


def _replace(con: duckdb.DuckDBPyConnection, table: str, pilot: str, df: pl.DataFrame,
             schema: Mapping[str, pl.DataType]) -> None:
    types = {pl.String: "VARCHAR", pl.Float64: "DOUBLE", pl.Int64: "BIGINT",
             pl.Boolean: "BOOLEAN"}
    cols = ", ".join(f'"{c}" {types[t]}' for c, t in schema.items())  # type: ignore[index]
    con.execute("BEGIN TRANSACTION")
    try:
        existing = [c for (c,) in con.execute(
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_name = {_lit(table)} ORDER BY ordinal_position").fetchall()]
        if existing and existing != list(schema):
            con.execute(f'DROP TABLE "{table}"')  # shape changed: rows are rebuildable
        con.execute(f'CREATE TABLE IF NOT EXISTS "{table}" ({cols})')
        con.execute(f'DELETE FROM "{table}" WHERE pilot = {_lit(pilot)}')
        if df.height:
            # literal rows, not a registered frame: DuckDB's scan of a Python frame imports
            # pandas (~0.3 CPU s in a fresh process); a float's repr read as DOUBLE is exact
            sql_types = [types[t] for t in schema.values()]  # type: ignore[index]
            names = ", ".join(f'"{c}"' for c in schema)
            rows = (", ".join(_sql_value(v, t) for v, t in zip(row, sql_types, strict=True))
                    for row in df.select(list(schema)).iter_rows())
            con.execute(f'INSERT INTO "{table}" ({names}) VALUES '
                        + ", ".join(f"({r})" for r in rows))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


# ---------------------------------------------------------------------------------------------
# Energy–latency correlation (visual appendix 6 and the energy–latency mismatch reading)

CORR_COLUMNS: dict[str, pl.DataType] = {
    "pilot": pl.String, "phase": pl.String, "x": pl.String, "y": pl.String,
    "windows": pl.Int64, "spearman_rho": pl.Float64, "rho_lo": pl.Float64,
    "rho_hi": pl.Float64, "pearson_r": pl.Float64, "y_cv": pl.Float64,
    "resamples": pl.Int64, "block_windows": pl.Int64, "seed": pl.Int64,
}


def rank_average(a: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, 1-based, ties sharing their average rank (scipy's
    `rankdata(method="average")` for finite values; importing scipy.stats alone costs ~3 s of
    CPU in every fresh process that runs the statistics)."""
    a = np.asarray(a, float)
    n = a.shape[-1]
    order = np.argsort(a, axis=-1, kind="stable")
    s = np.take_along_axis(a, order, axis=-1)
    pos = np.broadcast_to(np.arange(n), s.shape)
    starts = np.ones(s.shape, bool)  # first of a run of equal sorted values
    starts[..., 1:] = s[..., 1:] != s[..., :-1]
    ends = np.ones(s.shape, bool)  # last of such a run
    ends[..., :-1] = starts[..., 1:]
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=-1)
    last = np.flip(np.minimum.accumulate(np.flip(np.where(ends, pos, n - 1), -1), axis=-1), -1)
    ranks = np.empty(s.shape)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=-1)
    return ranks


def _rowwise_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's ρ of each row pair of (R, n) arrays (average ranks for ties)."""
    rx, ry = rank_average(x), rank_average(y)
    rx -= rx.mean(axis=-1, keepdims=True)
    ry -= ry.mean(axis=-1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=-1) * (ry * ry).sum(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (rx * ry).sum(axis=-1) / np.where(den > 0, den, 1), np.nan)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ (average ranks for ties); NaN when either side is constant or n < 3."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    return float(_rowwise_spearman(x[ok], y[ok]))


def moving_block_rho(x: np.ndarray, y: np.ndarray, block: int, resamples: int,
                     rng: np.random.Generator, level: float = 0.95) -> tuple[float, float] | None:
    """Interval for ρ by a moving-block bootstrap over consecutive windows."""
    n = x.size
    if n < 2 * block or n < 10:
        return None
    starts = rng.integers(0, n - block + 1, size=(resamples, -(-n // block)))
    idx = (starts[..., None] + np.arange(block)).reshape(resamples, -1)[:, :n]
    return interval(_rowwise_spearman(x[idx], y[idx]), level)


def compute_energy_latency(con: duckdb.DuckDBPyConnection, pilot: str,
                           cfg: BootstrapConfig | None = None) -> pl.DataFrame:
    """ρ between per-minute cluster power and per-minute P95 latency, overall and per phase."""
    cfg = cfg or BootstrapConfig()
    if "energy_latency_windows" not in _tables(con):
        return pl.DataFrame(schema=CORR_COLUMNS)
    df = con.execute(f"""SELECT phase, power_w, p95_latency_s FROM energy_latency_windows
                         WHERE pilot = {_lit(pilot)} AND power_w IS NOT NULL
                           AND p95_latency_s IS NOT NULL ORDER BY window_start""").pl()
    rows = []
    rng = np.random.default_rng(cfg.seed)
    block = 10  # 10 one-minute windows: longer than a burst episode
    for phase in ("all", *sorted(set(df["phase"].drop_nulls().to_list()))):
        d = df if phase == "all" else df.filter(pl.col("phase") == phase)
        x, y = d["power_w"].to_numpy(), d["p95_latency_s"].to_numpy()
        rho = spearman(x, y)
        iv = moving_block_rho(x, y, block, min(cfg.resamples, 200), rng, cfg.level) \
            if np.isfinite(rho) else None
        pear = float(np.corrcoef(x, y)[0, 1]) if x.size >= 3 and np.ptp(x) and np.ptp(y) \
            else float("nan")
        cv = float(np.std(y) / np.mean(y)) if y.size and np.mean(y) else float("nan")
        rows.append({"pilot": pilot, "phase": phase, "x": "power_w", "y": "p95_latency_s",
                     "windows": int(x.size), "spearman_rho": None if not np.isfinite(rho)
                     else rho, "rho_lo": iv[0] if iv else None, "rho_hi": iv[1] if iv else None,
                     "pearson_r": None if not np.isfinite(pear) else pear,
                     "y_cv": None if not np.isfinite(cv) else cv,
                     "resamples": min(cfg.resamples, 200), "block_windows": block,
                     "seed": cfg.seed})
    return pl.DataFrame(rows, schema=CORR_COLUMNS)


def build_energy_latency_corr(con: duckdb.DuckDBPyConnection, pilot: str,
                              cfg: BootstrapConfig | None = None) -> int:
    df = compute_energy_latency(con, pilot, cfg)
    _replace(con, "energy_latency_corr", pilot, df, CORR_COLUMNS)
    return df.height
