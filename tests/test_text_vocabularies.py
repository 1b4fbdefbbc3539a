"""A warehouse made before `requests` and `sla_targets` stored their fixed vocabularies as
ENUMs (sql/staging/requests.sql) keeps them as VARCHAR (CREATE TABLE IF NOT EXISTS): every
model must build the same rows from it, with the priority-scoped segments too."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import duckdb
import numpy as np
import pytest

from pipelines.sql_models import MODELS, build_all
from pipelines.warehouse import SQL_DIR
from tests.simulated_pilot import write_simulated_pilot
from tests.table_compare import compare, kinds_of

PILOT = "vocab"
ENUM = re.compile(r"ENUM\([^)]*\)")


def _warehouse(path: Path, text_vocabularies: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("SET threads = 1")  # one summation order on both sides
    if text_vocabularies:  # the staging tables as an older version created them
        for ddl in sorted((SQL_DIR / "staging").glob("*.sql")):
            con.execute(ENUM.sub("VARCHAR", ddl.read_text(encoding="utf-8")))
    write_simulated_pilot(con, PILOT, 3, 0.02)
    # segments drawn by priority: list_contains over the ENUM against the VARCHAR list
    con.execute("UPDATE pilot_scope SET kind = 'priorities', pools = NULL, "
                "priorities = ['P0', 'P2'] WHERE pilot = ?", [PILOT])
    build_all(con, PILOT)
    return con


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:
    d = tmp_path_factory.mktemp("vocab")
    return _warehouse(d / "enum.duckdb", False), _warehouse(d / "text.duckdb", True)


def test_the_older_warehouse_holds_text(pair) -> None:
    enum, text = pair
    types = ("SELECT data_type FROM information_schema.columns WHERE table_name = 'requests' "
             "AND column_name = 'status'")
    assert enum.execute(types).fetchone()[0].startswith("ENUM(")
    assert text.execute(types).fetchone()[0] == "VARCHAR"


@pytest.mark.parametrize("name", [m.name for m in MODELS])
def test_every_model_builds_the_same_rows(pair, name: str) -> None:
    enum, text = pair
    q = f'SELECT * FROM "{name}" WHERE pilot = $p'
    a = enum.execute(q, {"p": PILOT}).to_arrow_table()
    b = text.execute(q, {"p": PILOT}).to_arrow_table()
    assert a.column_names == b.column_names
    problems = compare(name, a, b, kinds_of(text, name), None, set())
    assert not problems, "\n".join(problems)


def test_the_replay_input_is_the_same(pair) -> None:
    """The what-if replay orders arrivals and service donors by model class among other
    columns: an ENUM sorts in declaration order, text alphabetically, and the draws follow the
    order. Both read the columns as text."""
    from pipelines.whatif.replay import load_replay

    enum, text = (load_replay(c, PILOT, "baseline") for c in pair)
    assert enum.arrivals.height > 0 and enum.arrivals.equals(text.arrivals)
    assert enum.arrivals.schema["model_class"] == text.arrivals.schema["model_class"]
    for f in dataclasses.fields(enum.donors):
        a, b = getattr(enum.donors, f.name), getattr(text.donors, f.name)
        assert _same(a, b), f.name
    assert enum.client == text.client and enum.pool_specs == text.pool_specs


def _same(a: object, b: object) -> bool:
    """Equal, arrays element by element and in order (dicts in key order too)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")  # type: ignore[union-attr]
    return a == b
