"""Score the 9 pattern detectors against a simulated pilot's ground truth (table detector_scores).

Usage: ``python -m pipelines.analytics.scoring PILOT_DIR WAREHOUSE`` (after the pilot's run),
or ``score_pilot(pilot_dir, con)``. The ground truth is the landing folder's
``ground_truth.parquet`` (pipelines/analytics/ground_truth.py: one row per injected event and
what it truly caused, from the simulator's own state); it is never ingested as telemetry.

Each detector is scored at the level it reports, against ONE reference set used for both
precision (matched detections / detections) and recall (matched reference events /
reference events):

- job level (batch_scheduling_conflict, priority_inversion): a detection is a finding's job,
  the reference the injected jobs whose counterfactual says they delayed inference
  (`conflict`, `inversion`); a detection matches the job with the same pool and start (to 1 s).
- episode level (burst_amplification, idle_overload_oscillation, retry_timeout_amplification,
  legitimate_vs_amplifying_queueing): a detection is a finding's interval, the reference the
  injected events with the effect the pattern names; they match when in the same pool and
  overlapping once each is widened by `tolerance_s` (default 60 s: the detectors work in
  1-minute cells). Events whose overload lies within the arrival noise (`marginal`) are
  "don't care": not in the reference, and a detection matching only them is not counted.
- phase level (energy_latency_mismatch, non_productive_queue_waiting and
  hidden_gpu_occupancy_loss, each per pool x phase): a detection is a finding's unit, the
  reference the units the ground truth marks for that pattern (rows of type `unit:<pattern>`).

Chance baseline: the same detections moved at random (episodes: a uniform new start within
the pilot span in the same pool, same length; jobs: the same pool's job starting nearest a
uniform random time; phase units: a random unit among all the pattern's pool x phase units --
a unit's pool is its identity, so moving it "within its pool" would only change its phase),
scored the same way and averaged over `shifts` draws from a fixed seed, so the table is
deterministic.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import yaml

US = 1_000_000
SHIFTS = 20
SEED = 20261204
JOB_TOLERANCE_US = 1_000_000  # a finding's job and the injected job: same start to 1 s


@dataclass(frozen=True)
class Score:
    pattern: str
    level: str  # job | episode | phase
    tp: int  # matched detections
    fp: int
    fn: int  # unmatched reference events
    precision: float | None
    recall: float | None
    chance_precision: float | None
    chance_recall: float | None
    reference: str


# pattern -> (level, reference filter on the ground truth, reference in words)
SPECS: dict[str, tuple[str, pl.Expr, str]] = {
    "batch_scheduling_conflict": (
        "job", (pl.col("type") == "batch_job") & pl.col("conflict"),
        "injected jobs that delayed (>= sched_delay_target_s) or failed >= "
        "conflict_min_attempts first attempts vs a job-free re-run"),
    "burst_amplification": (
        "episode", (pl.col("type") == "burst") & pl.col("overload"),
        "injected bursts that overloaded the pool (offered load above capacity long enough "
        "to add >= sched_delay_target_s of queue wait, beyond the arrival noise; marginal "
        "ones are don't care)"),
    "priority_inversion": (
        "job", (pl.col("type") == "batch_job") & pl.col("inversion"),
        "injected jobs held > long_job_s that delayed or failed >= conflict_min_attempts "
        "P0/P1 first attempts vs a job-free re-run"),
    "idle_overload_oscillation": (
        "episode", (pl.col("type") == "oscillation") & pl.col("oscillation"),
        "injected lull-then-surge episodes (pool idle in the lull, overloaded in the surge)"),
    "retry_timeout_amplification": (
        "episode", pl.col("type").is_in(["burst", "oscillation", "slowdown", "batch_job"])
        & pl.col("retry_storm"),
        "injected events whose timed-out or dropped attempts were retried >= 10 times and "
        ">= 2 % of their attempts"),
    "energy_latency_mismatch": (
        "phase", (pl.col("type") == "unit:energy_latency_mismatch") & pl.col("flagged"),
        "pool x phase units in which the simulator held the pool's GPU power fixed, "
        "whatever the load, for at least half of the phase"),
    "non_productive_queue_waiting": (
        "phase", (pl.col("type") == "unit:non_productive_queue_waiting") & pl.col("flagged"),
        "pool x phase units whose delay index, from the simulator's event times, "
        "exceeds di"),
    "hidden_gpu_occupancy_loss": (
        "phase", (pl.col("type") == "unit:hidden_gpu_occupancy_loss") & pl.col("flagged"),
        "pool x phase units whose hidden loss, from the simulator's efficiencies and "
        "busy times, exceeds hcl_pp"),
    "legitimate_vs_amplifying_queueing": (
        "episode", pl.col("type").is_in(["burst", "oscillation", "slowdown", "batch_job"])
        & pl.col("overload"),
        "injected events that overloaded their pool (an amplifying queue: offered load "
        "above capacity adding >= sched_delay_target_s of wait, beyond the arrival noise; "
        "marginal ones are don't care); other queues are legitimate"),
}


# "Don't care" events per pattern: an overload only within the arrival noise (`marginal`,
# pipelines/analytics/ground_truth.py) is neither required nor forbidden.
IGNORE: dict[str, pl.Expr] = {
    "burst_amplification": (pl.col("type") == "burst") & pl.col("marginal"),
    "legitimate_vs_amplifying_queueing":
        pl.col("type").is_in(["burst", "oscillation", "slowdown", "batch_job"])
        & pl.col("marginal"),
}


def _us(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Datetime("us")).cast(pl.Int64)


def _pairs(det: pl.DataFrame, ref: pl.DataFrame, level: str, tol_us: int) -> pl.DataFrame:
    """Matching (di, gi) pairs; frames hold di/gi, pool (or unit), s, e (us)."""
    if det.is_empty() or ref.is_empty():
        return pl.DataFrame(schema={"di": pl.UInt32, "gi": pl.UInt32})
    j = det.join(ref, on="pool", suffix="_g")
    if level == "job":
        # a job is its pool and start (its end may be cut at the pilot's end)
        j = j.filter((pl.col("s") - pl.col("s_g")).abs() <= JOB_TOLERANCE_US)
    elif level == "phase":  # the unit whose phase holds the finding's start
        j = j.filter((pl.col("s") >= pl.col("s_g")) & (pl.col("s") < pl.col("e_g")))
    else:
        j = j.filter((pl.col("s") - tol_us < pl.col("e_g"))
                     & (pl.col("e") + tol_us > pl.col("s_g")))
    return j.select("di", "gi")


def _pr(det: pl.DataFrame, ref: pl.DataFrame, level: str, tol_us: int,
        ignore: pl.DataFrame | None = None) -> tuple[int, int, int, int]:
    """(matched detections, detections, matched references, references). A detection that
    matches no reference event but an `ignore` one ("don't care") is not counted."""
    m = _pairs(det, ref, level, tol_us)
    hit = m["di"].unique()
    n = det.height
    if ignore is not None and not ignore.is_empty():
        dc = _pairs(det, ignore, level, tol_us)["di"].unique()
        n -= int((~dc.is_in(hit.implode())).sum())
    return hit.len(), n, m["gi"].n_unique(), ref.height


def _shifted(det: pl.DataFrame, level: str, span: tuple[int, int], universe: pl.DataFrame,
             rng: np.random.Generator) -> pl.DataFrame:
    """The detections moved at random (per level: see the module docstring)."""
    if det.is_empty():
        return det
    lo, hi = span
    if level == "episode":
        dur = (det["e"] - det["s"]).to_numpy()
        s = lo + rng.random(det.height) * np.maximum(hi - lo - dur, 0)
        s = np.rint(s).astype(np.int64)
        return det.with_columns(s=pl.Series(s), e=pl.Series(s + dur))
    if level == "phase":  # a random unit among all the pattern's units
        if universe.is_empty():
            return det
        pick = universe[rng.integers(0, universe.height, det.height).tolist()]
        return det.with_columns(pool=pick["pool"], s=pick["s"], e=pick["e"])
    out = []  # jobs: the pool's job starting nearest a uniform random time
    for pool, d in det.partition_by("pool", as_dict=True, maintain_order=True).items():
        u = universe.filter(pl.col("pool") == pool[0]).sort("s")
        us = u["s"].to_numpy()
        if len(us) == 0:
            out.append(d)
            continue
        t = lo + rng.random(d.height) * (hi - lo)
        k = np.zeros(d.height, dtype=np.int64)
        if len(us) > 1:
            k = np.clip(np.searchsorted(us, t), 1, len(us) - 1)
            k = np.where(np.abs(us[k - 1] - t) <= np.abs(us[k] - t), k - 1, k)
        pick = u[k.tolist()]
        out.append(d.with_columns(s=pick["s"], e=pick["e"]))
    return pl.concat(out)


def score_detector(pattern: str, det: pl.DataFrame, ref: pl.DataFrame, level: str,
                   span: tuple[int, int], universe: pl.DataFrame, reference: str,
                   tol_us: int, shifts: int = SHIFTS, seed: int = SEED,
                   ignore: pl.DataFrame | None = None) -> Score:
    """Precision / recall of `det` against `ref` and their chance baseline (pool, s, e in us);
    detections matching only `ignore` events ("don't care") count in neither."""
    det = det.select("pool", "s", "e").with_row_index("di")
    ref = ref.select("pool", "s", "e").with_row_index("gi")
    ign = ignore.select("pool", "s", "e").with_row_index("gi") if ignore is not None else None
    md, nd, mg, ng = _pr(det, ref, level, tol_us, ign)
    cp, cr = [], []
    rng = np.random.default_rng([seed, sum(map(ord, pattern))])
    # phase units are few (10 on the demo): more draws for a stable mean (they are cheap)
    for _ in range((shifts * 25 if level == "phase" else shifts) if nd and ng else 0):
        sd, sn, sg, _ = _pr(_shifted(det, level, span, universe, rng), ref, level, tol_us, ign)
        cp.append(sd / sn if sn else 0.0)
        cr.append(sg / ng)
    return Score(pattern, level, md, nd - md, ng - mg, md / nd if nd else None,
                 mg / ng if ng else None, float(np.mean(cp)) if cp else None,
                 float(np.mean(cr)) if cr else None, reference)


def _detections(con: duckdb.DuckDBPyConnection, pilot: str, pattern: str) -> pl.DataFrame:
    """A pattern's detected findings as pool (or unit key), s, e in us."""
    return con.execute(
        "SELECT coalesce(scope_pool, 'all') AS pool, epoch_us(start_ts) AS s, "
        "epoch_us(end_ts) AS e "
        "FROM findings WHERE pilot = ? AND pattern = ? AND detected ORDER BY s, pool",
        [pilot, pattern]).pl()


def score_pilot(pilot_dir: Path, con: duckdb.DuckDBPyConnection, pilot: str | None = None,
                tolerance_s: float = 60.0, shifts: int = SHIFTS, write: bool = True
                ) -> list[Score]:
    """Score every pattern of `SPECS` on a pilot whose landing folder has a ground truth."""
    pilot_dir = Path(pilot_dir)
    pilot = pilot or yaml.safe_load((pilot_dir / "pilot.yaml").read_text())["pilot"]
    gt = pl.read_parquet(pilot_dir / "ground_truth.parquet").with_columns(
        s=_us("start_ts"), e=_us("end_ts"))
    lo, hi = con.execute("SELECT min(epoch_us(start_ts)), max(epoch_us(end_ts)) FROM phases "
                         "WHERE pilot = ?", [pilot]).fetchone()
    tol = int(tolerance_s * US)
    scores = []
    for pattern, (level, flt, words) in SPECS.items():
        ref = gt.filter(flt)
        if level == "job":
            universe = gt.filter(pl.col("type") == "batch_job")
        elif level == "phase":
            universe = gt.filter(pl.col("type") == f"unit:{pattern}")
        else:
            universe = gt.head(0)
        det = _detections(con, pilot, pattern)
        ignore = gt.filter(IGNORE[pattern]) if pattern in IGNORE and "marginal" in gt.columns \
            else None
        scores.append(score_detector(pattern, det, ref, level, (lo, hi), universe, words, tol,
                                     shifts, ignore=ignore))
    if write:
        write_scores(con, pilot, scores)
    return scores


def score_landed_pilot(con: duckdb.DuckDBPyConnection, pilot: str, pilot_dir: Path) -> int:
    """For the pipeline: score the pilot when its landing folder holds a ground truth (a
    simulated pilot), else clear its rows (a real pilot has none). Returns the rows written."""
    if not (Path(pilot_dir) / "ground_truth.parquet").is_file():
        write_scores(con, pilot, [])
        return 0
    return len(score_pilot(pilot_dir, con, pilot=pilot))


COLUMNS = ("pilot VARCHAR, pattern VARCHAR, level VARCHAR, tp BIGINT, fp BIGINT, fn BIGINT, "
           "precision DOUBLE, recall DOUBLE, chance_precision DOUBLE, chance_recall DOUBLE, "
           "reference VARCHAR")


def write_scores(con: duckdb.DuckDBPyConnection, pilot: str, scores: list[Score]) -> None:
    """Replace the pilot's rows of detector_scores (the table is created, or widened from its
    older 8-column form, when needed)."""
    cols = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = "
        "'detector_scores'").fetchall()}
    con.execute("BEGIN TRANSACTION")
    if cols and "chance_precision" not in cols:
        con.execute("DROP TABLE detector_scores")
    con.execute(f"CREATE TABLE IF NOT EXISTS detector_scores ({COLUMNS})")
    con.execute("DELETE FROM detector_scores WHERE pilot = ?", [pilot])
    if scores:  # a real pilot has no ground truth: its rows are only cleared
        con.executemany(
            "INSERT INTO detector_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(pilot, s.pattern, s.level, s.tp, s.fp, s.fn, s.precision, s.recall,
              s.chance_precision, s.chance_recall, s.reference) for s in scores])
    con.execute("COMMIT")


def main() -> None:  # pragma: no cover - command line
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pilot_dir", type=Path)
    ap.add_argument("warehouse", type=Path)
    ap.add_argument("--tolerance-s", type=float, default=60.0)
    a = ap.parse_args()
    with duckdb.connect(str(a.warehouse)) as con:
        for s in score_pilot(a.pilot_dir, con, tolerance_s=a.tolerance_s):
            def f(x: float | None) -> str:
                return "n/a" if x is None else f"{x:.3f}"
            print(f"{s.pattern:34s} {s.level:7s} tp={s.tp:4d} fp={s.fp:4d} fn={s.fn:4d} "
                  f"P={f(s.precision)} R={f(s.recall)} chance P={f(s.chance_precision)} "
                  f"R={f(s.chance_recall)}")


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ["SPECS", "Score", "score_detector", "score_landed_pilot", "score_pilot",
           "write_scores"]
