"""Order-independent comparison of one table as two engines built it (DuckDB and Spark).

Exact columns must be equal, float columns equal to RTOL relative (ATOL around zero), JSON
columns equal after parsing (numbers to RTOL), and an approximate quantile must lie between
DuckDB's exact quantiles at q - 5 % and q + 5 % (the caller passes that band as two tables).

Columns are compared as Arrow arrays where every table holds them in one canonical type
(timestamps as epoch microseconds, integral numbers as int64, strings as large_string) and as
Python values otherwise (lists, JSON, a fraction in a column DuckDB declares exact): at the
parity test's 200 k rows the Python path took ~8 s for one table, the Arrow path well under
one.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

RTOL = 1e-9
ATOL = 1e-12  # floating noise around an exact zero (e.g. 100 * (a - a))

Column = np.ndarray | pa.ChunkedArray  # float64 / object numpy, or canonical Arrow


def kind(name: str, dtype: str) -> str:
    """float | exact | json | list, from a column's name and DuckDB type ('DECIMAL(18,3)')."""
    decimal = re.fullmatch(r"DECIMAL\(\d+,\s*(\d+)\)", dtype)
    if dtype in ("DOUBLE", "FLOAT", "REAL") or (decimal and int(decimal[1])):
        return "float"
    if dtype == "JSON" or name.endswith("_json"):
        return "json"
    return "list" if dtype.endswith("[]") else "exact"


def kinds_of(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column -> kind, from the table's declared types."""
    return {name: kind(name, dtype) for name, dtype in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall()}


# --- one column in a comparable form ------------------------------------------------------


def _canonical(col: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """An exact column in the one Arrow type its kind of value gets on every engine, or None
    where it has none (the column is then compared as Python values)."""
    t = col.type
    try:
        if pa.types.is_timestamp(t):
            return pc.cast(pc.cast(col, pa.timestamp("us")), pa.int64())
        if pa.types.is_integer(t) or pa.types.is_decimal(t) or pa.types.is_floating(t):
            # 5, 5.0 and Decimal('5') are one exact value; a safe cast refuses a fraction,
            # a NaN or an overflow, and those columns go the Python way
            return pc.cast(col, pa.int64())
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return pc.cast(col, pa.large_string())
        if pa.types.is_boolean(t):
            return col
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # refused: a fraction, NaN or overflow; compared as Python values
    return None  # dates, lists, structs...: compared as Python values


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # element-wise: lists must not become a 2-D array
        out[i] = v
    return out


def _exact(v: object) -> object:
    if isinstance(v, list):
        return tuple(_exact(x) for x in v)
    if isinstance(v, Decimal | float) and v == v and v == int(v):
        return int(v)  # 5, 5.0 and Decimal('5') are the same exact value
    return v


def _python(col: pa.ChunkedArray, kind: str) -> np.ndarray:
    """Exact Python values (timestamps as epoch microseconds, lists as tuples, integral
    numbers as int), JSON parsed."""
    if pa.types.is_timestamp(col.type):
        col = pc.cast(pc.cast(col, pa.timestamp("us")), pa.int64())
    values = col.to_pylist()
    if kind == "json":
        return _objects([None if v is None else json.loads(v) for v in values])
    return _objects([None if v is None else _exact(v) for v in values])


def _is_number(t: pa.DataType) -> bool:
    return (pa.types.is_integer(t) or pa.types.is_decimal(t) or pa.types.is_floating(t)
            or pa.types.is_boolean(t))


def _columns(tables: list[pa.Table], name: str, kind: str) -> list[Column]:
    """Column `name` of every table, in one comparable form for all of them."""
    cols = [t.column(name) for t in tables]
    if kind == "float" and all(_is_number(c.type) for c in cols):
        return [pc.cast(c, pa.float64()).to_numpy(zero_copy_only=False) for c in cols]
    if kind == "exact":
        arrow = [_canonical(c) for c in cols]
        if all(a is not None and a.type == arrow[0].type for a in arrow):
            return arrow  # type: ignore[return-value]
    return [_python(c, kind) for c in cols]


# --- row order ----------------------------------------------------------------------------


def _rounded(v: object) -> object:
    if isinstance(v, float):
        return float(f"{v:.6g}")
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    return v


def _sort_key(c: Column, kind: str) -> pa.Array | pa.ChunkedArray:
    if isinstance(c, pa.ChunkedArray):
        return c
    if c.dtype.kind == "f":
        with np.errstate(over="ignore"):
            m, e = np.frexp(np.nan_to_num(c, nan=-np.inf))
            # coarse mantissa: rows whose floats differ by engine noise sort the same way
            return pa.array(np.ldexp(np.round(m * 2**30) / 2**30, e))
    if kind == "json":
        return pa.array([json.dumps(_rounded(v), sort_keys=True) for v in c])
    return pa.array(["\x00" if v is None else str(v) for v in c])


def _normalise(tables: list[pa.Table], kinds: dict[str, str]) -> list[dict[str, Column]]:
    """Every table's columns in one comparable form, rows sorted by the exact columns then
    the floats (each table by the same rule, so equal tables line up row by row)."""
    per_col = {c: _columns(tables, c, k) for c, k in kinds.items()}
    out: list[dict[str, Column]] = []
    for i in range(len(tables)):
        cols = {c: per_col[c][i] for c in kinds}
        keys = [c for c in kinds if isinstance(cols[c], pa.ChunkedArray)
                or cols[c].dtype.kind != "f"]
        order = keys + [c for c in kinds if c not in keys]
        names = [f"k{j}" for j in range(len(order))]
        sort = pa.table([_sort_key(cols[c], kinds[c]) for c in order], names=names)
        idx = pc.sort_indices(sort, sort_keys=[(n, "ascending", "at_start") for n in names])
        out.append({c: v.take(idx) if isinstance(v, pa.ChunkedArray) else v[idx.to_numpy()]
                    for c, v in cols.items()})
    return out


# --- comparison ---------------------------------------------------------------------------


def _json_close(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _matches(a: Column, b: Column, kind: str) -> np.ndarray:
    if isinstance(a, pa.ChunkedArray) and isinstance(b, pa.ChunkedArray):
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        equal = pc.fill_null(pc.equal(a, b), False)
        return pc.or_(equal, both_null).to_numpy(zero_copy_only=False)
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        tol = RTOL if kind == "float" else 0.0
        return (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=tol, atol=ATOL if tol else 0)
    if kind == "json":
        return np.array([_json_close(x, y) for x, y in zip(a, b, strict=True)], dtype=bool)
    return np.array([x == y or (x is None and y is None) for x, y in zip(a, b, strict=True)],
                    dtype=bool)


def _value(c: Column, i: int) -> object:
    v = c[i]
    return v.as_py() if isinstance(v, pa.Scalar) else v.item() if isinstance(v, np.generic) else v


def compare(name: str, duck: pa.Table, sprk: pa.Table, kinds: dict[str, str],
            band: tuple[pa.Table, pa.Table] | None = None,
            approx: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Differences between DuckDB's and Spark's table (empty when they match). Columns in
    `approx` are checked against `band`: DuckDB's table with exact quantiles at the ranks
    -5 % and +5 % (same rows, same other columns)."""
    if duck.num_rows != sprk.num_rows:
        return [f"{name}: {duck.num_rows} rows on DuckDB, {sprk.num_rows} on Spark"]
    missing = set(kinds) - set(sprk.column_names)
    if missing:
        return [f"{name}: Spark result lacks columns {sorted(missing)}"]
    tables = [duck.select(list(kinds)), sprk.select(list(kinds))]
    if band is not None:
        tables += [band[0].select(list(kinds)), band[1].select(list(kinds))]
    d, s, *bounds = _normalise(tables, kinds)
    problems: list[str] = []
    for c, kind in kinds.items():
        a, b = d[c], s[c]
        if bounds and c in approx:
            lo, hi = bounds[0][c], bounds[1][c]
            ok = (np.isnan(b) & np.isnan(lo)) | ((b >= lo - ATOL) & (b <= hi + ATOL))
        else:
            ok = _matches(a, b, kind)
        bad = np.flatnonzero(~ok)
        if bad.size:
            i = int(bad[0])
            problems.append(f"{name}.{c}: {bad.size} of {len(ok)} rows differ, e.g. "
                            f"DuckDB {_value(a, i)!r} vs Spark {_value(b, i)!r}")
    return problems
