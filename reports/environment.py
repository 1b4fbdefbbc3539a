"""Section 1: investigation environment (sources, spans, inventory, workload mix, jobs)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from reports import fmt
from reports.coverage import Coverage
from reports.sections.common import Reader
from reports.types import Table


@dataclass
class Environment:
    sources: Table
    quarantine: Table
    spans: Table
    table_rows: Table
    inventory: Table
    mix_class: Table
    mix_priority: Table
    jobs: Table


def environment(w: Reader, cov: Coverage) -> Environment:
    src = w.q("ingest_log", """SELECT source_index, source_kind, target_table, file, sha256,
                rows_in, rows_stored, rows_quarantined FROM ingest_log WHERE pilot = ?
                ORDER BY source_index, file""")
    src_rows = [[str(r["source_index"]), r["source_kind"], r["target_table"] or "—", r["file"],
                 r["sha256"][:12] + "…", fmt.count(r["rows_in"]), fmt.count(r["rows_stored"]),
                 fmt.count(r["rows_quarantined"])] for r in src.iter_rows(named=True)]
    if src_rows:
        src_rows.append(["", "all sources", "", f"{src.height} files", "",
                         fmt.count(src["rows_in"].sum()), fmt.count(src["rows_stored"].sum()),
                         fmt.count(src["rows_quarantined"].sum())])
    sources = Table("Telemetry sources (ingest log; full checksums in the provenance block)",
                    ["#", "Kind", "Table", "File", "sha256", "Rows in", "Stored",
                     "Quarantined"], src_rows, basis=None, num_cols=(5, 6, 7), wrap_cols=(3,),
                    empty="No ingest log rows for this pilot.")

    qdf = w.q("quarantine", """SELECT coalesce(target_table, '—') AS t, reason, count(*) AS n
                FROM quarantine WHERE pilot = ? GROUP BY ALL ORDER BY n DESC, reason""")
    quarantine = Table("Quarantined rows by reason", ["Target table", "Reason", "Rows"],
                       [[r["t"], r["reason"], fmt.count(r["n"])] for r in qdf.iter_rows(
                           named=True)], basis=None, num_cols=(2,),
                       empty="No rows were quarantined.")

    # the large tables' rows, spans, inventory and mix come from staging_inventory, built by
    # the pipeline (sql/metrics/staging_inventory.sql): no scan of them here
    inv = w.q("staging_inventory", "SELECT item, key, n, n_first, lo, hi FROM "
                                   "staging_inventory WHERE pilot = ?")
    built = not inv.is_empty()
    if not built:  # the same columns, no rows: every lookup below finds nothing
        inv = pl.DataFrame(schema={"item": pl.String, "key": pl.String, "n": pl.Int64,
                                   "n_first": pl.Int64, "lo": pl.Datetime, "hi": pl.Datetime})

    def items(item: str) -> pl.DataFrame:
        return inv.filter(pl.col("item") == item)

    table_n = {r["key"]: r for r in items("rows").iter_rows(named=True)}
    not_built = "not measured: needs the staging_inventory table"
    spans: list[list[str]] = []
    ph = w.q("phases", "SELECT min(start_ts) AS lo, max(end_ts) AS hi FROM phases "
                       "WHERE pilot = ?")
    span_of = {"phases": None if ph.is_empty() else ph.row(0, named=True), **table_n}
    for label, table in (("Phases", "phases"), ("Requests (per-request rows)", "requests"),
                         ("Arrival trace (arrivals)", "arrivals"),
                         ("Time-series samples", "samples"), ("Scheduler jobs", "jobs")):
        d = span_of.get(table)
        if d is None and table != "phases" and not built:
            spans.append([label, "—", "—", not_built])
        elif d is None or d["lo"] is None:
            spans.append([label, "—", "—", "no rows"])
        else:
            spans.append([label, fmt.ts(d["lo"]), fmt.ts(d["hi"]),
                          fmt.duration(d["hi"] - d["lo"])])
    span_table = Table("Time span covered", ["Data", "From", "To", "Span"], spans, basis=None)

    counts = []
    for t in ("requests", "arrivals", "jobs", "samples", "quarantine", "ingest_log", "phases",
              "sla_targets", "thresholds"):
        if t in ("requests", "arrivals", "jobs", "samples"):
            counts.append([t, fmt.count(table_n[t]["n"]) if t in table_n else not_built])
            continue
        d = w.q(t, f"SELECT count(*) AS n FROM {t} WHERE pilot = ?")
        counts.append([t, "table not built" if d.is_empty() else fmt.count(d["n"][0])])
    table_rows = Table("Rows per staging table", ["Table", "Rows"], counts, basis=None,
                       num_cols=(1,))

    mixes = inv.filter(pl.col("item").is_in(["model_class", "priority"]))
    prio_names = sorted(k for k in items("priority")["key"].to_list() if k is not None)
    pools = sorted(items("pool")["key"].to_list())
    one = {r["item"]: r["n"] for r in inv.iter_rows(named=True) if r["key"] == "*"}
    arrival_sources = items("arrival_source")
    n_arrivals = table_n["arrivals"]["n"] if "arrivals" in table_n else 0
    inv_rows: list[list[str]] = []
    if built:
        p = ", ".join(prio_names)
        inv_rows = [["Pools", fmt.count(len(pools)), ", ".join(pools) or "—"],
                    ["Nodes", fmt.count(one.get("nodes") or 0), "requests, samples and jobs"],
                    ["GPUs", fmt.count(one.get("gpus") or 0), "distinct (node, gpu) in "
                     "requests and samples"],
                    ["Priority classes", str(len(prio_names)), p or "— (no per-request rows)"]]
    if n_arrivals:
        src = ", ".join(sorted(arrival_sources["key"].to_list()))
        inv_rows.append(["Arrivals (trace)", fmt.count(n_arrivals),
                         f"arrival trace ({src or 'source not named'}): timestamps "
                         "and token counts only, no pool, node or GPU"])
    inventory = Table("Inventory (distinct values in the staging tables)",
                      ["Entity", "Count", "Values / source"], inv_rows, basis=None,
                      num_cols=(1,), empty=("No requests, arrivals, samples or jobs for this "
                                            "pilot." if built else
                                            "Not measured: needs the staging_inventory table."))

    def mix(col: str, caption: str) -> Table:
        d = mixes.filter(pl.col("item") == col).sort(["n", "key"], descending=[True, False])
        tot = float(d["n"].sum())
        return Table(caption, [col.replace("_", " ").capitalize(), "Attempts",
                               "First attempts", "Share of attempts"],
                     [[r["key"], fmt.count(r["n"]), fmt.count(r["n_first"]),
                       fmt.share(r["n"], tot)] for r in d.iter_rows(named=True)],
                     basis=None, num_cols=(1, 2, 3),
                     empty=(f"No per-request rows (requests): the mix by "
                            f"{col.replace('_', ' ')} is not measured." if built else
                            "Not measured: needs the staging_inventory table."))

    return Environment(sources, quarantine, span_table, table_rows, inventory,
                       mix("model_class", "Workload mix by model class"),
                       mix("priority", "Workload mix by priority class"), _jobs_table(w))


def _jobs_table(w: Reader) -> Table:
    """The scheduler jobs sharing the GPUs, per pool and phase (job_timeline)."""
    jt = w.q("job_timeline", """SELECT coalesce(pool, '(no pool)') AS pool,
                coalesce(phase, '(outside the phases)') AS phase, count(*) AS jobs,
                count(*) FILTER (WHERE start_ts IS NOT NULL) AS started,
                count(*) FILTER (WHERE NOT end_known AND start_ts IS NOT NULL) AS running,
                median(wait_s) AS wait_p50, max(duration_s) AS longest,
                sum(gpu_hours) AS gpu_hours, count(gpu_hours) AS with_gpus
                FROM job_timeline WHERE pilot = ? GROUP BY ALL ORDER BY 1, 2""")
    rows = [[r["pool"], r["phase"], fmt.count(r["jobs"]), fmt.count(r["started"]),
             fmt.count(r["running"]),
             "—" if r["wait_p50"] is None else fmt.long_duration(r["wait_p50"]),
             "—" if r["longest"] is None else fmt.long_duration(r["longest"]),
             "not measured: needs GPU counts (AllocTRES gres/gpu)" if not r["with_gpus"]
             else f"{r['gpu_hours']:,.1f}"] for r in jt.iter_rows(named=True)]
    return Table("Scheduler jobs sharing the GPUs, by pool and the phase each started in "
                 "(job_timeline)",
                 ["Pool", "Phase", "Jobs", "Started", "Still running", "Wait P50",
                  "Longest run", "GPU-hours"], rows, num_cols=(2, 3, 4, 5, 6, 7),
                 empty="No scheduler jobs (jobs): batch occupancy and the job timeline are not "
                       "measured; they need a sacct export.")

