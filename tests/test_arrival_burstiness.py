"""arrival_burstiness against an exact Python reference, on first attempts placed on the edges
its one-sort layout has to get right.

The model numbers every (scope, phase) as a slot of one integer time line, sorts it once, sums
squared gaps per burst window and takes the gap into a window from the previous non-empty
window's last arrival. The rows below put arrivals on a phase start and a phase's last
microsecond, two arrivals on the same microsecond (in one pool, and across pools), a gap that
crosses one window boundary, gaps across empty windows, gaps of 2^31 us and more (the DECIMAL
sums) inside one window (1-hour windows) and across windows, a gap across a phase start (not a
gap) and a first attempt whose phase its earlier retry decided, arriving after the last phase.
The reference takes each scope's first attempts per phase in time order with exact integers.
"""

from __future__ import annotations

from fractions import Fraction
from math import sqrt
from pathlib import Path

import duckdb
import pytest

from pipelines.config import DEFAULT_THRESHOLDS
from pipelines.sql_models import build_model
from pipelines.warehouse import SQL_DIR

ALL = "(all pools)"
MODELS = ("int_thresholds", "int_retried_requests", "int_attempts", "arrival_burstiness")
# baseline starts 5 s into a burst window (windows are aligned to the epoch, not the phase)
PHASES = (("baseline", "2025-12-31 23:59:55", "01:00:00"),
          ("validation", "01:00:00", "02:00:00"))
# id, parent, attempt, pool, arrival (2026-01-01 unless a date is given)
ROWS = (
    ("a0", None, 0, "a", "2025-12-31 23:59:55"),  # on the phase start
    ("a1", None, 0, "a", "00:00:00"),
    ("a2", None, 0, "a", "00:00:03.5"),
    ("a3", None, 0, "a", "00:00:03.5"),  # same microsecond, same pool
    ("a4", None, 0, "a", "00:00:09.999999"),  # last microsecond of window 0
    ("a5", None, 0, "a", "00:00:10"),  # gap across one window boundary
    ("a6", None, 0, "a", "00:00:39.999999"),  # across two empty windows
    ("a7", None, 0, "a", "00:00:45"),  # 1 us more than its offset in its window
    ("a8", None, 0, "a", "00:50:00"),  # 2955 s > 2^31 us, across 296 windows
    ("a9", None, 0, "a", "00:59:59.999999"),  # last microsecond of baseline
    ("a10", None, 0, "a", "01:00:00.5"),  # its gap from a9 crosses the phase start: none
    ("a11", None, 0, "a", "01:00:01.25"),
    ("b1", None, 0, "b", "00:00:03.5"),  # same microsecond as a2, a3: all-pools gaps of 0
    ("b2", None, 0, "b", "00:00:20"),
    ("b2r", "b2", 1, "b", "00:00:25"),  # a retry: not offered load
    ("b3", None, 0, "b", "00:00:21.000001"),
    ("b4", None, 0, "b", "01:00:00.5"),  # same microsecond as a10
    ("b5", None, 0, "b", "01:30:00"),
    # a first attempt after the last phase whose earlier retry makes it a validation request
    ("b6", None, 0, "b", "02:00:30"),
    ("b6r", "b6", 1, "b", "01:59:50"),
)


def _ts(t: str) -> str:
    return t if "-" in t else f"2026-01-01 {t}"


def _pilot(con: duckdb.DuckDBPyConnection, pilot: str, window_s: float) -> None:
    for name, start, end in PHASES:
        con.execute("INSERT INTO phases VALUES (?, ?, ?, ?)", [pilot, name, _ts(start), _ts(end)])
    con.execute("INSERT INTO pilot_scope VALUES (?, 'pools', ['a'], NULL, NULL)", [pilot])
    con.execute("INSERT INTO sla_targets VALUES (?, 'P0', 1000, NULL)", [pilot])
    thresholds = {**DEFAULT_THRESHOLDS, "burst_window_s": window_s}
    con.executemany("INSERT INTO thresholds VALUES (?, ?, ?)",
                    [(pilot, k, v) for k, v in thresholds.items()])
    con.executemany(
        "INSERT INTO requests VALUES (?, ?, ?, ?, ?, 'n1', 'g1', 'llm', 'P0', ?, NULL, ?, NULL,"
        " ?, 'ok', 1, 1)",
        [(pilot, i, parent, attempt, pool, _ts(t), _ts(t), _ts(t))
         for i, parent, attempt, pool, t in ROWS])
    for m in MODELS:
        build_model(con, m, pilot)


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(Path(tmp_path_factory.mktemp("burst")) / "w.duckdb"))
    for ddl in sorted((SQL_DIR / "staging").glob("*.sql")):
        c.execute(ddl.read_text())
    _pilot(c, "w10", 10)
    _pilot(c, "w3600", 3600)  # one window per phase: gaps >= 2^31 us inside a window
    return c


def _reference(con: duckdb.DuckDBPyConnection, pilot: str, win_us: int) -> dict:
    """(phase, pool) -> arrivals, gaps, CV, windows, index of dispersion, exactly."""
    firsts = con.execute(
        "SELECT phase, pool, arrival_us FROM int_attempts "
        "WHERE pilot = ? AND attempt = 0 AND phase IS NOT NULL", [pilot]).fetchall()
    bounds = {p: (s, e) for p, s, e in con.execute(
        "SELECT phase, epoch_us(start_ts), epoch_us(end_ts) FROM phases WHERE pilot = ?",
        [pilot]).fetchall()}
    scopes: dict[tuple[str, str], list[int]] = {}
    for phase, pool, t in firsts:
        scopes.setdefault((phase, pool), []).append(t)
        scopes.setdefault((phase, ALL), []).append(t)
    out = {}
    for (phase, pool), ts in scopes.items():
        ts.sort()
        gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
        n, g = len(ts), len(gaps)
        cv = None
        if g > 1 and sum(gaps) > 0:
            mean = Fraction(sum(gaps), g)
            var = Fraction(sum(x * x for x in gaps) * g - sum(gaps) ** 2, g * (g - 1))
            cv = sqrt(var) / float(mean)
        s, e = bounds[phase]
        windows = (e - 1) // win_us - s // win_us + 1
        counts: dict[int, int] = {}
        for t in ts:
            counts[t // win_us] = counts.get(t // win_us, 0) + 1
        mean_c = Fraction(n, windows)
        disp = None
        if windows > 1:
            var_c = (sum(c * c for c in counts.values()) - n * mean_c) / (windows - 1)
            disp = float(var_c / mean_c)
        out[(phase, pool)] = (n, g, cv, windows, disp)
    return out


@pytest.mark.parametrize(("pilot", "win_us"), [("w10", 10_000_000), ("w3600", 3_600_000_000)])
def test_burstiness_matches_exact_reference(con, pilot: str, win_us: int) -> None:
    # the edge rows are there: the late first attempt is validation's, after its end
    (late,) = con.execute(
        "SELECT phase FROM int_attempts WHERE pilot = ? AND attempt = 0 "
        "AND arrival_ts = TIMESTAMP '2026-01-01 02:00:30'", [pilot]
    ).fetchone()
    assert late == "validation"
    ref = _reference(con, pilot, win_us)
    got = {(ph, pool): row for ph, pool, *row in con.execute(
        "SELECT phase, pool, arrivals, inter_arrivals, interarrival_cv, windows, "
        "index_of_dispersion, gamma_shape_k FROM arrival_burstiness WHERE pilot = ?",
        [pilot]).fetchall()}
    assert set(got) == set(ref) and len(ref) == 6
    for key, (n, g, cv, windows, disp) in ref.items():
        n2, g2, cv2, windows2, disp2, k2 = got[key]
        assert (n2, g2, windows2) == (n, g, windows), key
        assert (cv2 is None, disp2 is None) == (cv is None, disp is None), key
        if cv is not None:
            assert cv2 == pytest.approx(cv, rel=1e-13), key
            assert k2 == pytest.approx(1 / cv ** 2, rel=1e-12), key
        if disp is not None:
            assert disp2 == pytest.approx(disp, rel=1e-12), key
    # the phase start splits pool a: 10 baseline arrivals (9 gaps), 2 in validation (1 gap)
    assert tuple(got[("baseline", "a")][:2]) == (10, 9)
    assert tuple(got[("validation", "a")][:2]) == (2, 1)
    assert tuple(got[("validation", "b")][:2]) == (3, 2)  # b4, b5 and the late b6
