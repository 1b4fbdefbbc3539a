"""Observer-only proof: no raw identifier from the inputs sits anywhere in the warehouse.

Raw ids are never kept, so the check works backwards: every stored token is
HMAC(secret, kind, raw). For each distinct non-token text in any VARCHAR column (and each
word inside it), we compute its token under every identifier kind; if that token is stored
too, the text is a raw identifier that leaked. Only counts and column names are reported,
never the leaked value itself.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

import duckdb
import polars as pl

from pipelines.anonymize import COLUMN_KINDS, TOKEN_RE, Anonymizer
from pipelines.warehouse import stored_columns

WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,127}")
MAX_CANDIDATES = 500_000  # distinct texts examined; beyond that the check says it sampled


@dataclass
class LeakReport:
    tables_scanned: int = 0
    values_scanned: int = 0
    tokens_seen: int = 0
    leaks: dict[str, int] = field(default_factory=dict)  # "table.column" -> leaked values
    truncated: bool = False

    @property
    def passed(self) -> bool:
        return not self.leaks


def scan_for_raw_ids(con: duckdb.DuckDBPyConnection, pilot: str, anon: Anonymizer
                     ) -> LeakReport:
    """Set-based: token-form values never leave DuckDB (the demo stores ~2 M of them); only
    the few non-token texts come to Python, are hashed under every kind, and their tokens are
    looked up in the stored ones with one semi-join."""
    report = LeakReport()
    stored = stored_columns(con)  # a view would show its tables' values a second time
    columns = [(t, c, d) for t, c, d in stored if d in ("VARCHAR", "VARCHAR[]")]
    with_pilot = {t for t, c, _ in stored if c == "pilot"}
    texts: dict[str, set[str]] = {}
    seen = f"__leak_tokens_{uuid.uuid4().hex}"  # connection-local temp table, dropped below
    con.execute(f"CREATE TEMP TABLE {seen} (v VARCHAR)")
    try:
        for table, column, dtype in columns:
            if column == "pilot":
                continue
            where = "WHERE pilot = $p" if table in with_pilot else ""
            expr = f'unnest("{column}")' if dtype.endswith("[]") else f'"{column}"'
            # distinct values once, each tested for the token form once
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {seen}_col AS SELECT v, "
                f"regexp_full_match(v, $re) AS tok FROM (SELECT DISTINCT v FROM (SELECT {expr} "
                f'AS v FROM "{table}" {where}) WHERE v IS NOT NULL)',
                {"p": pilot, "re": TOKEN_RE.pattern} if where else {"re": TOKEN_RE.pattern})
            n = con.execute(f"INSERT INTO {seen} SELECT v FROM {seen}_col WHERE tok"
                            ).fetchone()[0]
            rows = con.execute(f"SELECT v FROM {seen}_col WHERE NOT tok "
                               f"LIMIT {MAX_CANDIDATES + 1}").fetchall()
            report.values_scanned += n + len(rows)
            bucket = texts.setdefault(f"{table}.{column}", set())
            for (v,) in rows:
                if len(bucket) < MAX_CANDIDATES:
                    bucket.add(v)
                    bucket.update(w for w in WORD_RE.findall(v) if w != v)
                else:
                    report.truncated = True
        report.tables_scanned = len({t for t, _, _ in columns})
        report.tokens_seen = con.execute(f"SELECT count(DISTINCT v) FROM {seen}").fetchone()[0]
        if not report.tokens_seen:
            return report  # nothing was tokenized, so no raw id can be recognized
        kinds = sorted(set(COLUMN_KINDS.values()))
        cand = [(where, i, anon.token(k, v)) for where, vs in texts.items()
                for i, v in enumerate(vs) for k in kinds]
        if cand:
            df = pl.DataFrame(cand, schema={"col": pl.String, "i": pl.Int64, "tok": pl.String},
                              orient="row")
            con.register(f"{seen}_cand", df)
            try:
                hits = con.execute(
                    f"SELECT col, count(DISTINCT i) FROM {seen}_cand c "
                    f"SEMI JOIN {seen} s ON s.v = c.tok GROUP BY col").fetchall()
            finally:
                con.unregister(f"{seen}_cand")
            report.leaks = {where: int(n) for where, n in hits if n}
        return report
    finally:
        con.execute(f"DROP TABLE IF EXISTS {seen}")
        con.execute(f"DROP TABLE IF EXISTS {seen}_col")
