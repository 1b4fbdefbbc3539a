"""Helpers shared by the adapter tests: run one adapter on one file, concatenating chunks."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.config import Source
from pipelines.ingest.base import AdapterContext, Parsed, add_counts
from pipelines.ingest.registry import ADAPTERS

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parent / "fixtures" / "public"  # public samples, PROVENANCE.md
FORMATS = Path(__file__).resolve().parent / "fixtures" / "formats"  # our corner cases
ANCHOR = datetime(2026, 3, 2)
CTX = AdapterContext(pilot="t", timezone="UTC", anchor=ANCHOR)


def run(kind: str, path: Path, table: str | None = None, ctx: AdapterContext = CTX,
        **options: Any) -> Parsed:
    """All chunks of one file as one Parsed (rows_in summed, dropped counts merged)."""
    result = ADAPTERS[kind](path, Source(kind, path.name, table, options), ctx)
    chunks = [result] if isinstance(result, Parsed) else list(result)
    dropped: dict[str, int] = {}
    for c in chunks:
        add_counts(dropped, c.dropped)
    return Parsed(
        chunks[0].table,
        pl.concat([c.frame for c in chunks]),
        pl.concat([c.rejects for c in chunks]),
        sum(c.rows_in for c in chunks),
        chunks[0].ignored_columns,
        dropped,
    )


def reconciles(p: Parsed) -> bool:
    """rows in = records stored + records quarantined (a record may give several rows)."""
    bad = p.rejects.get_column("line").unique()
    lines = p.frame.get_column("__line")
    stored = lines.filter(~lines.is_in(bad.implode())).n_unique()
    return p.rows_in == stored + bad.len()
