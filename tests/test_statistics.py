"""Block bootstrap and DiD (pipelines/statistics.py) on hand-built data with known answers."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from pipelines.statistics import (
    Blocks,
    BootstrapConfig,
    block_seconds,
    build_metrics_ci,
    compare,
    compute_ci,
    did_interval,
    hist_quantile,
    load_blocks,
    log_bins,
    phase_samples,
    rank_average,
    resample_counts,
    spearman,
    totals,
)

T0 = datetime(2026, 3, 2)
PHASE_S = 4 * 3600


def test_histogram_quantiles_are_close_to_exact_ones() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([np.zeros(300), rng.lognormal(0.0, 1.2, 20_000)])
    bins = log_bins(x[x > 0].min(), x.max(), 200)
    h = np.bincount(bins.index(x), minlength=bins.n + 1).astype(float)
    for q in (0.5, 0.95, 0.99):
        assert hist_quantile(h, bins, q) == pytest.approx(np.quantile(x, q), rel=0.03)
    assert hist_quantile(h, bins, 0.01) == 0.0  # inside the zeros
    assert np.isnan(hist_quantile(np.zeros(bins.n + 1), bins, 0.5))


def test_sql_and_numpy_binning_agree() -> None:
    bins = log_bins(0.01, 50.0, 200)
    x = np.array([0.0, 0.01, 0.0105, 0.5, 3.3, 49.99, 50.0])
    con = duckdb.connect()
    got = [con.execute(f"SELECT {bins.sql_index(repr(float(v)))}").fetchone()[0] for v in x]
    assert got == bins.index(x).tolist()


def test_block_length_adapts_to_short_phases() -> None:
    cfg = BootstrapConfig()
    assert block_seconds([35 * 86400, 18 * 86400], cfg) == 300  # long pilot: 5-min blocks
    assert block_seconds([2 * 3600], cfg) == 180  # 40 blocks in two hours
    assert block_seconds([600], cfg) == 60  # never below one minute


def _ratio_blocks(rng: np.random.Generator, n_blocks: int, p: float,
                  per_block: int = 10) -> Blocks:
    """Blocks of a success process with long-run share p, autocorrelated minute to minute
    (AR(1), φ = 0.5: correlation fades within a few minutes, well inside a 10-minute block —
    the assumption the block bootstrap rests on)."""
    m = n_blocks * per_block
    e = np.zeros(m)
    for i in range(1, m):
        e[i] = 0.5 * e[i - 1] + rng.normal(0, 0.05)
    n = rng.poisson(20, m)
    good = rng.binomial(n, np.clip(p + e, 0, 1))
    return Blocks(np.full(n_blocks, 60.0 * per_block),
                  {"n_good": good.reshape(n_blocks, -1).sum(1).astype(float),
                   "n_logical": n.reshape(n_blocks, -1).sum(1).astype(float)})


def _share(t) -> np.ndarray:  # noqa: ANN001
    return t.sums["n_good"] / t.sums["n_logical"]


def test_interval_covers_the_true_value_of_a_stationary_series() -> None:
    rng = np.random.default_rng(7)
    covered = 0
    runs = 120
    for _ in range(runs):
        b = _ratio_blocks(rng, 80, 0.8)
        point, samples = phase_samples(totals(b, resample_counts(b.n, 300, rng)), _share)
        lo, hi = np.quantile(samples, [0.025, 0.975])
        covered += lo <= 0.8 <= hi
    # nominal 95 %; a percentile bootstrap on 80 blocks may undercover a little
    assert covered / runs >= 0.88


def test_bootstrap_is_deterministic_per_seed(tmp_path: Path) -> None:
    db = _warehouse(tmp_path / "w.duckdb", treat_effect=0.7, control_effect=1.0)
    con = duckdb.connect(str(db))
    a = compute_ci(con, "p", BootstrapConfig(resamples=100, seed=1))
    b = compute_ci(con, "p", BootstrapConfig(resamples=100, seed=1))
    c = compute_ci(con, "p", BootstrapConfig(resamples=100, seed=2))
    assert a.equals(b)
    assert not a.select("change_lo").equals(c.select("change_lo"))
    assert set(a["resamples"]) == {100} and set(a["seed"]) == {1}


def test_zero_effect_did_is_not_significant() -> None:
    rng = np.random.default_rng(3)
    w_b = resample_counts(60, 400, rng)
    w_v = resample_counts(60, 400, rng)
    seg = {s: {ph: _ratio_blocks(rng, 60, 0.8) for ph in ("b", "v")} for s in ("t", "c")}

    def draw(s: str, ph: str, w: np.ndarray) -> tuple[float | None, np.ndarray]:
        return phase_samples(totals(seg[s][ph], w), _share)

    t = (draw("t", "b", w_b), draw("t", "v", w_v))
    c = (draw("c", "b", w_b), draw("c", "v", w_v))
    did = (t[1][0] - t[0][0]) - (c[1][0] - c[0][0])
    ci = did_interval((t[0][1], t[1][1]), (c[0][1], c[1][1]), did)
    assert ci.lo is not None and ci.hi is not None and ci.lo < 0 < ci.hi
    assert compare(t[0], t[1]).significant is False


def _warehouse(path: Path, *, treat_effect: float, control_effect: float) -> Path:
    """Logical requests and attempts (one attempt each) for two phases and two segments."""
    con = duckdb.connect(str(path))
    con.execute("""CREATE TABLE phases AS SELECT 'p' AS pilot, * FROM (VALUES
        ('baseline', ?::TIMESTAMP, ?::TIMESTAMP),
        ('validation', ?::TIMESTAMP, ?::TIMESTAMP)) v(phase, start_ts, end_ts)""",
                [T0, T0 + timedelta(seconds=PHASE_S), T0 + timedelta(seconds=PHASE_S),
                 T0 + timedelta(seconds=2 * PHASE_S)])
    # latency: lognormal-ish from a hash; validation multiplies it by the segment's effect
    con.execute(f"""CREATE TABLE int_logical_requests AS
        SELECT 'p' AS pilot, 'r' || i AS logical_id,
               CASE WHEN i % 2 = 0 THEN 'baseline' ELSE 'validation' END AS phase,
               CASE WHEN i % 3 = 0 THEN 'control' ELSE 'treatment' END AS segment,
               ?::TIMESTAMP + to_microseconds(CAST(hash(i * 31) % {PHASE_S * 1_000_000} AS BIGINT))
                 + CASE WHEN i % 2 = 0 THEN INTERVAL 0 SECOND
                        ELSE to_seconds({PHASE_S}) END AS first_arrival_ts,
               'ok' AS outcome, 1 AS attempts,
               exp(((hash(i) % 1000) / 1000.0 - 0.5) * 2)
                 * CASE WHEN i % 2 = 0 THEN 1.0
                        WHEN i % 3 = 0 THEN {control_effect} ELSE {treat_effect} END
                 AS latency_s
        FROM range(40000) t(i)""", [T0])
    con.execute("""ALTER TABLE int_logical_requests ADD COLUMN met_sla BOOLEAN;
                   UPDATE int_logical_requests SET met_sla = latency_s < 1.5""")
    con.execute("""CREATE TABLE int_attempts AS SELECT pilot, phase, segment, 'pool' AS pool,
        'g' || (hash(logical_id) % 8) AS gpu, first_arrival_ts AS arrival_ts,
        epoch_us(first_arrival_ts) AS arrival_us, latency_s * 0.3 AS queue_wait_s,
        false AS wait_censored, latency_s AS e2e_s, latency_s * 0.7 AS service_s, 'ok' AS status,
        met_sla AS logical_met_sla FROM int_logical_requests""")
    con.close()
    return path


def test_warehouse_intervals_find_a_real_effect_and_its_did(tmp_path: Path) -> None:
    db = _warehouse(tmp_path / "w.duckdb", treat_effect=0.7, control_effect=1.0)
    con = duckdb.connect(str(db))
    n = build_metrics_ci(con, "p", BootstrapConfig(resamples=200))
    df = con.execute("SELECT * FROM metrics_ci WHERE metric = 'p95_latency_s'").pl()
    assert n > 0 and set(df["segment"]) == {"all", "treatment", "control"}
    t = df.filter(df["segment"] == "treatment").row(0, named=True)
    c = df.filter(df["segment"] == "control").row(0, named=True)
    assert t["significant"] is True and t["change_hi"] < 0
    assert t["rel_change"] == pytest.approx(-0.3, abs=0.02)
    assert c["significant"] is False  # the control did not change
    assert t["did_significant"] is True and t["did_hi"] < 0
    for r in (t, c):  # every interval brackets the value it is printed beside
        assert r["baseline_lo"] <= r["baseline"] <= r["baseline_hi"]
        assert r["validation_lo"] <= r["validation"] <= r["validation_hi"]
    # rebuilt in place, not appended
    assert build_metrics_ci(con, "p", BootstrapConfig(resamples=200)) == n
    assert con.execute("SELECT count(*) FROM metrics_ci").fetchone()[0] == n


def test_no_effect_anywhere_says_no_significant_change(tmp_path: Path) -> None:
    db = _warehouse(tmp_path / "w.duckdb", treat_effect=1.0, control_effect=1.0)
    con = duckdb.connect(str(db))
    df = compute_ci(con, "p", BootstrapConfig(resamples=200))
    lat = df.filter(df["metric"].is_in(["p50_latency_s", "p95_latency_s", "delay_index"]))
    assert lat.height == 9 and not any(lat["significant"])
    assert not any(lat.filter(lat["segment"] == "treatment")["did_significant"])
    # GPU metrics without GPU telemetry or productive time: no value, no interval
    nom = df.filter(df["metric"] == "nominal_util")
    assert nom["baseline"].is_null().all() and nom["significant"].is_null().all()


def test_average_ranks_equal_scipys_with_ties_row_by_row() -> None:
    from scipy.stats import rankdata

    rng = np.random.default_rng(7)
    tied = rng.integers(0, 4, size=(60, 25)).astype(float)  # many ties per row
    for x in (tied, rng.normal(size=(30, 40)), np.array([3.0, 1.0, 3.0, 2.0, 3.0])):
        assert np.array_equal(rank_average(x), rankdata(x, axis=-1))
    assert rank_average(np.array([5.0, 5.0, 5.0])).tolist() == [2.0, 2.0, 2.0]


def test_spearman_matches_a_monotone_relation() -> None:
    x = np.arange(50.0)
    assert spearman(x, x ** 3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert np.isnan(spearman(x, np.ones(50)))


def test_gpu_counts_come_from_samples_and_fall_back_to_attempts(tmp_path: Path) -> None:
    """The GPU count of each phase × segment: from int_gpu_samples where they name it, else
    from int_attempts (8 GPUs here) — also when the samples miss only one segment."""
    db = _warehouse(tmp_path / "w.duckdb", treat_effect=1.0, control_effect=1.0)
    con = duckdb.connect(str(db))
    con.execute("""CREATE TABLE int_gpu_samples AS
        SELECT 'p' AS pilot, ph AS phase, 'treatment' AS segment, 'g' || (i % 3) AS gpu,
               'gpu_util' AS series, ?::TIMESTAMP + to_seconds(i) AS ts, 0.5 AS value,
               1.0 AS dt_s
        FROM range(60) t(i), (VALUES ('baseline'), ('validation')) v(ph)""", [T0])
    blocks, _, _ = load_blocks(con, "p", BootstrapConfig())
    for phase in ("baseline", "validation"):
        assert blocks[phase]["treatment"].consts["gpus"] == 3  # from the samples
        assert blocks[phase]["all"].consts["gpus"] == 3
        assert blocks[phase]["control"].consts["gpus"] == 8  # not in the samples: attempts
    con.execute("UPDATE int_gpu_samples SET segment = 'control' WHERE gpu = 'g0'")
    blocks, _, _ = load_blocks(con, "p", BootstrapConfig())
    assert blocks["baseline"]["control"].consts["gpus"] == 1  # now named by the samples
    assert blocks["baseline"]["treatment"].consts["gpus"] == 2


def _mixed_warehouse(path: Path, validation_gap_s: int) -> None:
    """Attempts and logical requests with everything load_blocks tells apart: both segments and
    a third one, rows of another phase, right-censored and missing waits, zero waits, attempts
    in burst windows, requests that did not end ok. The validation phase starts
    `validation_gap_s` after the baseline ends (not a whole number of blocks: another path)."""
    con = duckdb.connect(str(path))
    v0 = 2 * 3600 + validation_gap_s
    con.execute(f"""CREATE TABLE phases AS SELECT 'p' AS pilot, * FROM (VALUES
        ('baseline', ?::TIMESTAMP, ?::TIMESTAMP + INTERVAL 2 HOUR),
        ('validation', ?::TIMESTAMP + to_seconds({v0}),
                       ?::TIMESTAMP + to_seconds({v0 + 3600}))) v(phase, start_ts, end_ts)""",
                [T0] * 4)
    con.execute(f"""CREATE TABLE int_logical_requests AS
        SELECT 'p' AS pilot, 'r' || i AS logical_id,
               CASE WHEN i % 7 = 0 THEN 'washout' WHEN i % 3 = 0 THEN 'validation'
                    ELSE 'baseline' END AS phase,
               CASE WHEN i % 5 = 0 THEN 'control' WHEN i % 11 = 0 THEN 'canary'
                    WHEN i % 31 = 0 THEN NULL
                    ELSE 'treatment' END AS segment,
               CASE WHEN i % 8 = 0 THEN 'pool-b' ELSE 'pool-a' END AS pool,
               ?::TIMESTAMP + to_microseconds(CAST(hash(i * 7) % 7000000000 AS BIGINT)
                   + CASE WHEN i % 3 = 0 AND i % 7 <> 0 THEN {v0 * 1_000_000} ELSE 0 END)
                   AS first_arrival_ts,
               CASE WHEN i % 13 = 0 THEN 'timeout' WHEN i % 17 = 0 THEN 'dropped'
                    ELSE 'ok' END AS outcome,
               1 + i % 3 AS attempts,
               CASE WHEN i % 19 = 0 THEN 0.0
                    ELSE exp(((hash(i) % 1000) / 1000.0 - 0.5) * 4) END AS latency_s,
               hash(i * 3) % 4 <> 0 AS met_sla
        FROM range(6000) t(i)""", [T0])
    con.execute("""CREATE TABLE int_attempts AS
        SELECT l.pilot, l.phase, l.segment, l.pool, 'g' || (hash(l.logical_id) % 5) AS gpu,
               l.first_arrival_ts + to_seconds(k) AS arrival_ts,
               epoch_us(l.first_arrival_ts + to_seconds(k)) AS arrival_us,
               CASE WHEN hash(l.logical_id || k) % 23 = 0 THEN NULL
                    WHEN hash(l.logical_id || k) % 29 = 0 THEN 0.0
                    ELSE ((hash(l.logical_id || k) % 100000) / 1000.0) END AS queue_wait_s,
               hash(l.logical_id || k) % 9 = 0 AS wait_censored,
               l.latency_s + 0.1 AS e2e_s, l.latency_s * 0.5 AS service_s,
               CASE WHEN k = l.attempts - 1 AND l.outcome = 'ok' THEN 'ok'
                    ELSE 'retry' END AS status,
               l.met_sla AS logical_met_sla
        FROM int_logical_requests l, range(3) r(k) WHERE k < l.attempts""")
    con.execute("""CREATE TABLE int_thresholds AS SELECT 'p' AS pilot, 10.0 AS burst_window_s""")
    # bursts: every fifth 10-second window of pool-a, and one of pool-b
    con.execute("""CREATE TABLE burst_windows AS
        SELECT 'p' AS pilot, pool, w, (w % 5 = 0 AND pool = 'pool-a') OR w = 177000000 AS is_burst
        FROM (SELECT DISTINCT pool, arrival_us // 10000000 AS w FROM int_attempts)""")
    con.close()


def _rows(t: list, phase: str, seg: str, start_us: int, blk_us: int, n: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (phase, segment) of columns t (phase, segment, µs, ...) and their blocks."""
    m = (t[0] == phase) & ((t[1] == seg) if seg != "all" else True)
    return m, np.clip((t[2] - start_us) // blk_us, 0, n - 1)


def _reference_blocks(con: duckdb.DuckDBPyConnection, cfg: BootstrapConfig
                      ) -> tuple[dict, dict, dict]:
    """load_blocks' sums, histograms and bins computed row by row in numpy, from their
    definitions."""
    ph = {p: (s, e) for p, s, e in con.execute(
        "SELECT phase, epoch_us(start_ts), epoch_us(end_ts) FROM phases").fetchall()}
    blk_us = int(block_seconds([(e - s) / 1e6 for s, e in ph.values()], cfg) * 1e6)
    # a NULL segment counts in "all" only, as any segment other than the two
    lr = con.execute("""SELECT phase, coalesce(segment, '-'), epoch_us(first_arrival_ts),
                               attempts, outcome, latency_s, met_sla
                        FROM int_logical_requests""").fetchnumpy()
    at = con.execute("""SELECT a.phase, coalesce(a.segment, '-'), a.arrival_us, a.queue_wait_s,
                               a.wait_censored, coalesce(bw.is_burst, false), a.status,
                               a.e2e_s, a.service_s, a.logical_met_sla
                        FROM int_attempts a LEFT JOIN burst_windows bw
                          ON bw.pool = a.pool AND bw.w = a.arrival_us // 10000000"""
                       ).fetchnumpy()
    lr, at = [list(d.values()) for d in (lr, at)]
    qw = np.ma.filled(at[3].astype(float), np.nan)
    lat_ok = lr[4] == "ok"
    val = {"lat": (lr, lr[5].astype(float), lat_ok), "qw": (at, qw, ~np.isnan(qw)),
           "qwc": (at, qw, ~np.isnan(qw) & ~at[4].astype(bool)),
           "bqw": (at, qw, ~np.isnan(qw) & at[5].astype(bool))}
    bins = {k: log_bins(x[m & (x > 0)].min(), x[m].max(), cfg.bins)
            for k, (_, x, m) in val.items()}
    ok = at[6] == "ok"
    stats = {"n_logical": (lr, np.ones(len(lr[0]))), "attempts": (lr, lr[3].astype(float)),
             "n_td": (lr, np.isin(lr[4], ["timeout", "dropped"]).astype(float)),
             "n_good": (lr, lr[6].astype(float)),
             "qw_ok": (at, np.where(ok, np.nan_to_num(qw), 0.0)),
             "e2e_ok": (at, np.where(ok, at[7], 0.0)),
             "productive_s": (at, np.where(ok & at[9].astype(bool), at[8], 0.0)),
             "n_att": (at, np.ones(len(at[0]))), "n_censored": (at, at[4].astype(float))}
    sums: dict = {}
    hists: dict = {}
    for p, (s, e) in ph.items():
        n = -(-(e - s) // blk_us)
        for seg in ("all", "treatment", "control"):
            for k, (t, v) in stats.items():
                m, b = _rows(t, p, seg, s, blk_us, n)
                sums[(p, seg, k)] = np.bincount(b[m], v[m], minlength=n)
            for k, (t, x, keep) in val.items():
                m, b = _rows(t, p, seg, s, blk_us, n)
                m &= keep
                h = np.zeros((n, cfg.bins + 1))
                np.add.at(h, (b[m], bins[k].index(x[m])), 1.0)
                hists[(p, seg, k)] = h
    return sums, hists, bins


@pytest.mark.parametrize("gap_s", [0, 7])
def test_blocks_equal_a_row_by_row_reference(tmp_path: Path, gap_s: int) -> None:
    """Every block sum and histogram count equals its definition applied row by row, whether
    the phases start whole blocks apart or not, and whether the queue-wait quantities share
    their bins or not (the in-burst waits here have bounds of their own)."""
    _mixed_warehouse(tmp_path / "w.duckdb", gap_s)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    cfg = BootstrapConfig()
    blocks, bins, block_s = load_blocks(con, "p", cfg)
    sums, hists, ref_bins = _reference_blocks(con, cfg)
    assert block_s == 90 and bins == ref_bins  # 40 blocks in the one-hour validation
    assert bins["qw"] == bins["qwc"] != bins["bqw"]
    for (p, seg, k), want in sums.items():
        np.testing.assert_allclose(blocks[p][seg].sums[k], want, rtol=1e-12, atol=0,
                                   err_msg=f"{p} {seg} {k}")
    for (p, seg, k), want in hists.items():
        assert np.array_equal(blocks[p][seg].hists[k], want), (p, seg, k)
    assert blocks["baseline"]["all"].hists["lat"].sum() > 1000  # not vacuous
    assert blocks["validation"]["control"].hists["bqw"].sum() > 10


def test_quantities_with_equal_bins_share_one_histogram_key(tmp_path: Path) -> None:
    """Without bursts the in-burst waits are empty, and with no censored waits all three
    queue-wait quantities have one set of bins: one shared bin key, still the right counts."""
    _mixed_warehouse(tmp_path / "w.duckdb", 0)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("UPDATE int_attempts SET wait_censored = false")
    con.execute("UPDATE burst_windows SET is_burst = true")  # every attempt in a burst
    cfg = BootstrapConfig()
    blocks, bins, _ = load_blocks(con, "p", cfg)
    sums, hists, ref_bins = _reference_blocks(con, cfg)
    assert bins == ref_bins and bins["qw"] == bins["qwc"] == bins["bqw"]
    for (p, seg, k), want in hists.items():
        assert np.array_equal(blocks[p][seg].hists[k], want), (p, seg, k)


def test_pilot_names_are_quoted_not_bound(tmp_path: Path) -> None:
    """Values are inlined as SQL literals (a bound parameter makes DuckDB's client import
    pandas): a quote in a pilot name stays a quote, and only that pilot's rows are replaced."""
    db = _warehouse(tmp_path / "w.duckdb", treat_effect=0.7, control_effect=1.0)
    con = duckdb.connect(str(db))
    for t in ("phases", "int_logical_requests", "int_attempts"):
        con.execute(f"INSERT INTO {t} SELECT * REPLACE ('o''k' AS pilot) FROM {t}")
    n = build_metrics_ci(con, "o'k", BootstrapConfig(resamples=50))
    assert build_metrics_ci(con, "p", BootstrapConfig(resamples=50)) == n > 0
    got = dict(con.execute("SELECT pilot, count(*) FROM metrics_ci GROUP BY ALL").fetchall())
    assert got == {"o'k": n, "p": n}
    a, b = (con.execute("SELECT * EXCLUDE (pilot) FROM metrics_ci WHERE pilot = ? ORDER BY ALL",
                        [p]).fetchall() for p in ("o'k", "p"))
    assert a == b


def test_the_stage_does_not_import_pandas(tmp_path: Path) -> None:
    """DuckDB's client imports pandas (~0.4 CPU s) on a bound parameter or a scan of a Python
    frame; the statistics stage does neither, in a fresh process."""
    import subprocess
    import sys

    db = _warehouse(tmp_path / "w.duckdb", treat_effect=0.7, control_effect=1.0)
    code = ("import sys, duckdb\n"
            "from pipelines.statistics import BootstrapConfig, build_metrics_ci, "
            "build_energy_latency_corr\n"
            f"con = duckdb.connect({str(db)!r})\n"
            "assert build_metrics_ci(con, 'p', BootstrapConfig(resamples=20)) > 0\n"
            "build_energy_latency_corr(con, 'p')\n"
            "print('pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"
