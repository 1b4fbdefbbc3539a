"""The replay keeps slow periods where they were observed (service level per pool-minute)."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest

from pipelines.whatif.replay import service_levels

T0 = datetime(2026, 3, 2, 0, 0)


def _requests(path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE requests (pilot VARCHAR, pool VARCHAR, model_class VARCHAR, "
                "status VARCHAR, start_ts TIMESTAMP, end_ts TIMESTAMP)")
    rows = []
    for minute in range(10):
        # minute 4 of pool-a runs every service 4x slower (a slowdown); pool-b never does
        for pool, slow in (("pool-a", 4.0 if minute == 4 else 1.0), ("pool-b", 1.0)):
            for k in range(6):
                s = T0 + timedelta(minutes=minute, seconds=k * 5)
                rows.append(("p", pool, "llm", "ok", s, s + timedelta(seconds=2 * slow)))
    # a minute with too few attempts to estimate a level is left out (level 1)
    s = T0 + timedelta(minutes=20)
    rows.append(("p", "pool-a", "llm", "ok", s, s + timedelta(seconds=20)))
    con.executemany("INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?)", rows)
    return con


def test_a_slow_minute_gets_its_level_and_typical_minutes_stay_at_one(tmp_path):
    con = _requests(tmp_path / "w.duckdb")
    lv = service_levels(con, "p", T0, T0 + timedelta(hours=1))
    by = {(r["pool"], r["m"]): r["factor"] for r in lv.iter_rows(named=True)}
    m0 = int((T0 - datetime(1970, 1, 1)).total_seconds()) // 60  # epoch minute of T0
    assert by[("pool-a", m0 + 4)] == pytest.approx(4.0)
    assert by[("pool-a", m0 + 3)] == pytest.approx(1.0)
    assert all(by[("pool-b", m0 + i)] == pytest.approx(1.0) for i in range(10))
    assert ("pool-a", m0 + 20) not in by  # 1 attempt: below the minimum, level 1
    con.close()
