"""Observer-only proof: no raw identifier from the inputs sits anywhere in the warehouse.

Raw ids are never kept, so the check works backwards: every stored token is
HMAC(secret, kind, raw). For each distinct non-token text in any VARCHAR column (and each
word inside it), we compute its token under every identifier kind; if that token is stored
too, the text is a raw identifier that leaked. Only counts and column names are reported,
never the leaked value itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb

from pipelines.anonymize import COLUMN_KINDS, Anonymizer, looks_like_token

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
    report = LeakReport()
    columns = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND (data_type = 'VARCHAR' OR data_type = 'VARCHAR[]')"
    ).fetchall()
    with_pilot = {t for (t,) in con.execute(
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'pilot'"
    ).fetchall()}
    texts: dict[str, set[str]] = {}
    tokens: set[str] = set()
    for table, column, dtype in columns:
        if column == "pilot":
            continue
        where = "WHERE pilot = ?" if table in with_pilot else ""
        expr = f'unnest("{column}")' if dtype.endswith("[]") else f'"{column}"'
        rows = con.execute(
            f'SELECT DISTINCT v FROM (SELECT {expr} AS v FROM "{table}" {where}) '
            "WHERE v IS NOT NULL",
            [pilot] if where else [],
        ).fetchall()
        report.values_scanned += len(rows)
        bucket = texts.setdefault(f"{table}.{column}", set())
        for (v,) in rows:
            if looks_like_token(v):
                tokens.add(v)
            elif len(bucket) < MAX_CANDIDATES:
                bucket.add(v)
                bucket.update(w for w in WORD_RE.findall(v) if w != v)
            else:
                report.truncated = True
    report.tables_scanned = len({t for t, _, _ in columns})
    report.tokens_seen = len(tokens)
    if not tokens:
        return report  # nothing was tokenized, so no raw id can be recognized
    kinds = sorted(set(COLUMN_KINDS.values()))
    for where, candidates in texts.items():
        hits = sum(
            1 for v in candidates if any(anon.token(k, v) in tokens for k in kinds)
        )
        if hits:
            report.leaks[where] = hits
    return report
