"""What the control room knows of each pilot: landing folder, Dagster partition, last run,
report; and removing a pilot (partition and warehouse rows) in one go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.config import PILOT_FILE
from pipelines.partitions import PILOT_PARTITIONS_NAME
from pipelines.resources import default_warehouse_path
from pipelines.runner import instance
from pipelines.warehouse import stored_columns


@dataclass(frozen=True)
class PilotRow:
    pilot: str
    landing: bool
    registered: bool
    last_run: str | None
    status: str | None
    report: Path | None


def _landed(data: Path) -> set[str]:
    landing = data / "landing"
    return {p.parent.name for p in landing.glob(f"*/{PILOT_FILE}")} if landing.is_dir() else set()


def pilot_rows(data: Path) -> list[PilotRow]:
    inst = instance()
    registered = set(inst.get_dynamic_partitions(PILOT_PARTITIONS_NAME))
    out = []
    for pilot in sorted(_landed(data) | registered):
        runs = inst.get_runs(dg.RunsFilter(tags={"stabilis/pilot": pilot}), limit=1)
        last = runs[0] if runs else None
        started = None
        if last is not None:
            record = inst.get_run_record_by_id(last.run_id)
            when = record.start_time if record else None
            started = (datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")
                       if when else None)
        report = data / "reports" / pilot / "report.html"
        out.append(PilotRow(pilot, pilot in _landed(data), pilot in registered, started,
                            last.status.value.lower() if last else None,
                            report if report.is_file() else None))
    return out


def remove_pilot(data: Path, pilot: str) -> tuple[int, bool]:
    """Delete the pilot's rows from every warehouse table (one transaction) and its
    partition; returns (rows deleted, whether a partition was removed)."""
    rows = 0
    path = Path(default_warehouse_path())
    if path.is_file():
        con = duckdb.connect(str(path))
        try:
            tables = [t for t, column, _ in stored_columns(con) if column == "pilot"]
            con.execute("BEGIN")
            for t in tables:
                (n,) = con.execute(f'SELECT count(*) FROM "{t}" WHERE pilot = ?',  # noqa: S608
                                   [pilot]).fetchone()
                if n:
                    con.execute(f'DELETE FROM "{t}" WHERE pilot = ?', [pilot])  # noqa: S608
                    rows += n
            con.execute("COMMIT")
        finally:
            con.close()
    inst = instance()
    partition = inst.has_dynamic_partition(PILOT_PARTITIONS_NAME, pilot)
    if partition:
        inst.delete_dynamic_partition(PILOT_PARTITIONS_NAME, pilot)
    return rows, partition
