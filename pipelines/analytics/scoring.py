"""Score the pattern detectors against the demo pilot's ground truth (precision / recall).

Usage: ``python -m pipelines.analytics.scoring PILOT_DIR WAREHOUSE`` (after ingest + build_all),
or ``score_pilot(pilot_dir, con)`` which also writes table ``detector_scores``.

Matching rule (all types): a detection and a reference event *match* when they are in the same
pool and their intervals overlap once each is widened by ``tolerance_s`` (default 30 s) on both
sides: ``d.start - tol < g.end + tol`` and ``d.end + tol > g.start - tol``. Precision = matched
detections / detections; recall = matched reference events / reference events (one detection
may match several events and several fragments may match one event).

What each type is scored against, and why:

- ``burst``: detections = ``burst_episodes``; reference = injected ``burst`` events. METRICS.md
  defines a burst as a rate >= ``burst_factor`` x the trailing median, so recall counts the
  injected bursts whose rate multiplier >= burst_factor (weaker injected bursts are not bursts
  by that definition); a detection overlapping *any* injected burst is a true positive. The
  recall over all injected bursts is reported as pattern ``burst_all_injected``.
- ``batch_scheduling_conflict`` / ``priority_inversion``: the ground truth lists every batch
  job (a cause), not whether it hurt anyone. The reference is a counterfactual: the same
  simulation (same seed, same arrivals, same service times) re-run without batch jobs; a job
  is a true conflict when >= ``conflict_min_attempts`` first attempts arriving while it held
  its GPUs waited >= ``sched_delay_target_s`` longer than in the job-free run. A true
  inversion is the same restricted to P0/P1 attempts and jobs held > ``long_job_s``.
  Detections = ``findings`` rows with ``detected``.
- ``idle_overload_oscillation``: nothing injects oscillation, so there is no answer key; the
  reference is an independent re-implementation of the METRICS.md state rule (Polars, on the
  landing folder's Parquet files as the simulator wrote them), not the SQL path.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import yaml

US = 1_000_000


@dataclass(frozen=True)
class Score:
    pattern: str
    tp: int  # matched detections
    fp: int
    fn: int  # unmatched reference events
    precision: float | None
    recall: float | None
    reference: str


def _match(det: pl.DataFrame, ref: pl.DataFrame, tol_us: int) -> tuple[int, int, int, int]:
    """(matched detections, detections, matched references, references); frames hold
    pool, s (us), e (us)."""
    if det.is_empty() or ref.is_empty():
        return 0, det.height, 0, ref.height
    j = det.with_row_index("di").join(ref.with_row_index("gi"), on="pool", suffix="_g")
    j = j.filter((pl.col("s") - tol_us < pl.col("e_g") + tol_us)
                 & (pl.col("e") + tol_us > pl.col("s_g") - tol_us))
    return j["di"].n_unique(), det.height, j["gi"].n_unique(), ref.height


def _score(name: str, det: pl.DataFrame, ref: pl.DataFrame, tol_us: int, what: str) -> Score:
    md, nd, mg, ng = _match(det, ref, tol_us)
    return Score(name, md, nd - md, ng - mg, md / nd if nd else None, mg / ng if ng else None,
                 what)


def _us(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Datetime("us")).cast(pl.Int64)


def _thresholds(con: duckdb.DuckDBPyConnection, pilot: str) -> dict[str, float]:
    row = con.execute("SELECT * FROM int_thresholds WHERE pilot = ?", [pilot])
    names = [d[0] for d in row.description]
    return dict(zip(names, row.fetchone(), strict=True))


def _sim_params(pilot_dir: Path) -> tuple[int, float]:
    head = (pilot_dir / "pilot.yaml").read_text(encoding="utf-8").splitlines()[0]
    m = re.search(r"seed (\d+), scale ([0-9.]+)", head)
    if not m:
        raise ValueError("pilot.yaml does not say which simulation (seed, scale) made it")
    return int(m.group(1)), float(m.group(2))


def counterfactual_job_events(seed: int, scale: float, th: dict[str, float]) -> pl.DataFrame:
    """Jobs (pool, s, e, held_s) with the first attempts they delayed vs a job-free re-run."""
    from pipelines.simulator import demo_config, run_engine
    from pipelines.simulator.tables import epoch_us

    cfg = demo_config(seed, scale)
    cf = replace(cfg, pools=tuple(replace(p, jobs_per_hour=0.0) for p in cfg.pools))
    run, alt = run_engine(cfg), run_engine(cf)
    base = epoch_us(cfg.start)
    min_wait = th["sched_delay_target_s"] * US
    rows = []
    for p, spec in enumerate(cfg.pools):
        wl, o, a = run.workloads[p], run.outcomes[p], alt.outcomes[p]
        n = len(wl)
        arr = o.arrival_us[:n]

        def wait(out, n=n, arr=arr):
            end = np.where(out.start_us[:n] >= 0, out.start_us[:n], out.end_us[:n])
            return end - arr

        added = wait(o) - wait(a)
        hit = added >= min_wait
        hi_prio = wl.priority <= 1
        for j in range(len(o.job_start_us)):
            js, je = int(o.job_start_us[j]), int(o.job_end_us[j])
            if js < 0:
                continue
            lo, up = np.searchsorted(arr, js), np.searchsorted(arr, je)
            rows.append({"pool": spec.name, "s": base + js, "e": base + je,
                         "held_s": (je - js) / US, "delayed": int(hit[lo:up].sum()),
                         "delayed_p01": int((hit[lo:up] & hi_prio[lo:up]).sum())})
    return pl.DataFrame(rows, schema={"pool": pl.String, "s": pl.Int64, "e": pl.Int64,
                                      "held_s": pl.Float64, "delayed": pl.Int64,
                                      "delayed_p01": pl.Int64})


def reference_oscillation(pilot_dir: Path, th: dict[str, float]) -> pl.DataFrame:
    """Idle<->overload flips recomputed from the landing Parquet files (Polars)."""
    sla = {k: v["e2e_ms"] / 1e3 for k, v in
           yaml.safe_load((pilot_dir / "pilot.yaml").read_text())["sla"].items()}
    req = pl.scan_parquet(pilot_dir / "requests" / "*.parquet")
    req = req.with_columns(
        m=_us("arrival_ts") // (60 * US),
        ratio=((_us("start_ts") - _us("arrival_ts")) / US)
        / pl.col("priority").replace_strict(sla, default=None),
        wait=(_us("start_ts") - _us("arrival_ts")) / US,
    ).group_by("pool", "m").agg(
        r95=pl.col("ratio").quantile(0.95, "linear"), w95=pl.col("wait").quantile(0.95, "linear"))
    util = (pl.scan_parquet(pilot_dir / "samples" / "*.parquet")
            .filter(pl.col("series") == "gpu_util")
            .with_columns(m=_us("ts") // (60 * US))
            .group_by("pool", "m").agg(util=pl.col("value").mean()))
    st = (util.join(req, on=["pool", "m"], how="left").with_columns(
        state=pl.when(pl.col("r95").fill_null(0) > 0.5).then(pl.lit("overload"))
        .when((pl.col("util") < th["idle_util"]) & (pl.col("w95").fill_null(0) < 0.1))
        .then(pl.lit("idle")).otherwise(pl.lit("balanced")))
        .filter(pl.col("state") != "balanced").sort("pool", "m").collect())
    st = st.with_columns(pm=pl.col("m").shift(1).over("pool"),
                         ps=pl.col("state").shift(1).over("pool"))
    flips = st.filter((pl.col("state") != pl.col("ps"))
                      & ((pl.col("m") - pl.col("pm")) * 60 <= th["flip_window_s"]))
    return flips.select("pool", s=pl.col("pm") * 60 * US, e=(pl.col("m") + 1) * 60 * US)


def score_pilot(pilot_dir: Path, con: duckdb.DuckDBPyConnection, pilot: str | None = None,
                tolerance_s: float = 30.0, write: bool = True) -> list[Score]:
    pilot_dir = Path(pilot_dir)
    pilot = pilot or yaml.safe_load((pilot_dir / "pilot.yaml").read_text())["pilot"]
    th = _thresholds(con, pilot)
    tol = int(tolerance_s * US)
    gt = pl.read_parquet(pilot_dir / "ground_truth.parquet").with_columns(
        s=_us("start_ts"), e=_us("end_ts"))

    def q(sql: str) -> pl.DataFrame:
        return con.execute(sql, [pilot]).pl()

    scores = []
    det = q("SELECT pool, epoch_us(start_ts) AS s, epoch_us(end_ts) AS e FROM burst_episodes "
            "WHERE pilot = ?")
    bursts = gt.filter(pl.col("type") == "burst")
    strong = bursts.filter(pl.col("magnitude") >= th["burst_factor"])
    s_all = _score("burst_all_injected", det, bursts.select("pool", "s", "e"), tol,
                   "every injected burst")
    s_def = _score("burst", det, strong.select("pool", "s", "e"), tol,
                   f"injected bursts with multiplier >= burst_factor ({th['burst_factor']:g})")
    # precision: a detection overlapping any injected burst is true
    scores.append(replace(s_def, tp=s_all.tp, fp=s_all.fp, precision=s_all.precision))
    scores.append(s_all)

    seed, scale = _sim_params(pilot_dir)
    jobs = counterfactual_job_events(seed, scale, th)
    for pattern, ref, what in (
        ("batch_scheduling_conflict",
         jobs.filter(pl.col("delayed") >= th["conflict_min_attempts"]),
         "jobs that delayed >= conflict_min_attempts first attempts vs a job-free re-run"),
        ("priority_inversion",
         jobs.filter((pl.col("delayed_p01") >= th["conflict_min_attempts"])
                     & (pl.col("held_s") > th["long_job_s"])),
         "long jobs that delayed >= conflict_min_attempts P0/P1 attempts vs a job-free re-run"),
    ):
        det = q("SELECT scope_pool AS pool, epoch_us(start_ts) AS s, epoch_us(end_ts) AS e "
                f"FROM findings WHERE pilot = ? AND detected AND pattern = '{pattern}'")
        scores.append(_score(pattern, det, ref.select("pool", "s", "e"), tol, what))
    det = q("SELECT scope_pool AS pool, epoch_us(start_ts) AS s, epoch_us(end_ts) AS e "
            "FROM findings WHERE pilot = ? AND detected AND pattern = 'idle_overload_oscillation'")
    scores.append(_score("idle_overload_oscillation", det, reference_oscillation(pilot_dir, th),
                         tol, "independent Polars recomputation (no injected oscillation)"))
    if write:
        write_scores(con, pilot, scores)
    return scores


def write_scores(con: duckdb.DuckDBPyConnection, pilot: str, scores: list[Score]) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS detector_scores (pilot VARCHAR, pattern VARCHAR, tp BIGINT,"
        " fp BIGINT, fn BIGINT, precision DOUBLE, recall DOUBLE, reference VARCHAR)")
    con.execute("BEGIN TRANSACTION")
    con.execute("DELETE FROM detector_scores WHERE pilot = ?", [pilot])
    con.executemany("INSERT INTO detector_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(pilot, s.pattern, s.tp, s.fp, s.fn, s.precision, s.recall, s.reference)
                     for s in scores])
    con.execute("COMMIT")


def main() -> None:  # pragma: no cover - command line
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pilot_dir", type=Path)
    ap.add_argument("warehouse", type=Path)
    ap.add_argument("--tolerance-s", type=float, default=30.0)
    a = ap.parse_args()
    with duckdb.connect(str(a.warehouse)) as con:
        for s in score_pilot(a.pilot_dir, con, tolerance_s=a.tolerance_s):
            p = "n/a" if s.precision is None else f"{s.precision:.3f}"
            r = "n/a" if s.recall is None else f"{s.recall:.3f}"
            print(f"{s.pattern:28s} tp={s.tp:4d} fp={s.fp:4d} fn={s.fn:4d} "
                  f"precision={p} recall={r}  [{s.reference}]")


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ["Score", "counterfactual_job_events", "reference_oscillation", "score_pilot",
           "write_scores"]
