"""The peers' comparison with the SQL tables (benchmarks/peer_common.py) can fail: a value
off, a group missing on either side. The peers themselves are checked equal to the SQL
tables at 8 k attempts in tests/test_bench_suite.py (both peers, every peer table)."""

from __future__ import annotations

import math

import pandas as pd

from benchmarks.peer_common import max_rel_diff

KEYS = ["phase", "pool"]


def _sql() -> pd.DataFrame:
    return pd.DataFrame({"phase": ["baseline", "baseline", "validation"],
                         "pool": ["p0", "(all pools)", "p0"],
                         "interarrival_cv": [1.5, 1.2, float("nan")], "arrivals": [10, 20, 3]})


def test_equal_answers_differ_by_nothing_whatever_the_key_types():
    mine = _sql().astype({"pool": "category"}).iloc[::-1]
    assert max_rel_diff(mine, _sql(), KEYS) == 0.0  # NaN = NaN (both NULL)


def test_a_value_off_shows_as_its_relative_difference():
    mine = _sql()
    mine.loc[0, "interarrival_cv"] = 1.5 * (1 + 1e-6)
    assert math.isclose(max_rel_diff(mine, _sql(), KEYS), 1e-6, rel_tol=1e-6)
    mine.loc[2, "interarrival_cv"] = 0.7  # NULL in SQL, a value in the peer
    assert max_rel_diff(mine, _sql(), KEYS) == math.inf


def test_a_group_missing_on_either_side_is_not_the_same_answer():
    assert max_rel_diff(_sql().iloc[:2], _sql(), KEYS) == math.inf
    assert max_rel_diff(_sql(), _sql().iloc[1:], KEYS) == math.inf


def test_the_peers_agree_on_burstiness_when_window_counts_are_large():
    # 140 k first attempts in two 10 s windows: the sum of squared window counts (~1e10)
    # overflows 32-bit integers (Polars counts are UInt32), which the peers must not
    import numpy as np
    import polars as pl

    from benchmarks import pandas_peer, polars_peer

    n = 140_000
    att = pl.DataFrame({"phase": ["baseline"] * n, "pool": ["p0"] * n,
                        "arrival_us": np.arange(n, dtype=np.int64) * 100 + np.arange(n) % 7,
                        "attempt": [0] * n})
    small = {"phases": [("baseline", 0, 20_000_000)], "win_us": 10_000_000}
    pdf = att.to_pandas().astype({"phase": "category", "pool": "category"})
    mine = polars_peer.burstiness({"att": att, **small}).to_pandas()
    theirs = pandas_peer.burstiness({"att": pdf, **small})
    assert max_rel_diff(mine, theirs, KEYS) < 1e-9
    counts = np.bincount(att["arrival_us"].to_numpy() // 10_000_000, minlength=2)
    assert counts.tolist() == [100_000, 40_000]  # two windows, each count^2 > 2^32 / 2
    iod = theirs.set_index("pool").loc["p0", "index_of_dispersion"]
    assert math.isclose(iod, ((counts**2).sum() - n * n / 2) / 1 / (n / 2))
