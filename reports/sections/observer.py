"""Appendices C (observer-only), D (anonymization) and data quality."""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from reports import fmt
from reports.sections.common import (
    Reader,
)
from reports.types import Part, Table


def _token_re() -> re.Pattern[str] | None:
    try:
        from pipelines.anonymize import TOKEN_RE
    except ImportError:  # the anonymizer is not part of this installation
        return None
    return TOKEN_RE


def identifier_check(w: Reader) -> tuple[Table, int, int] | None:
    """The identifier_audit table (sql/metrics/identifier_audit.sql checks every stored
    value): per column, values, how many have the token form, distinct values. None when
    the audit was not built: the report then claims nothing about the stored identifiers."""
    if not w.has("identifier_audit"):
        return None
    d = w.q("identifier_audit", """SELECT table_name, column_name, n_values, n_tokens,
                n_distinct FROM identifier_audit
                WHERE pilot = ? AND n_values > 0 ORDER BY ord""")
    rows = [[f"{r['table_name']}.{r['column_name']}", fmt.count(r["n_values"]),
             fmt.count(r["n_tokens"]), fmt.share(r["n_tokens"], r["n_values"]),
             fmt.count(r["n_distinct"])] for r in d.iter_rows(named=True)]
    total = int(d["n_values"].sum()) if d.height else 0
    tokens = int(d["n_tokens"].sum()) if d.height else 0
    return (Table("Identifier columns in the warehouse: values, keyed tokens and distinct values",
                  ["Column", "Values", "In token form", "Share", "Distinct"], rows,
                  basis=None, num_cols=(1, 2, 3, 4), empty="No identifier columns with values.",
                  note="Every stored value is checked (identifier_audit). Distinct values "
                       "are not counted for request ids (one per attempt)."),
            total, tokens)


def observer_only(w: Reader, config: dict[str, Any]) -> tuple[list[Part], list[Part]]:
    """Appendix C (what was read, dropped, tokenized) and D (the anonymization statement)."""
    log = w.q("ingest_log", """SELECT source_kind, target_table, count(*) AS files,
                sum(rows_in) AS rows_in, sum(rows_stored) AS stored,
                sum(rows_quarantined) AS quarantined, sum(bytes) AS bytes
                FROM ingest_log WHERE pilot = ? GROUP BY ALL ORDER BY source_kind, target_table""")
    read = Part("What was read", [
        "The pipeline only reads telemetry files an operator exported into the pilot's landing "
        "folder; it opens no connection to the cluster and changes nothing there. Files read, "
        "per source kind (ingest_log):"], tables=[Table(
            "Files read per source kind", ["Kind", "Table", "Files", "Bytes", "Rows in",
                                           "Stored", "Quarantined"],
            [[r["source_kind"], r["target_table"] or "—", fmt.count(r["files"]),
              fmt.count(r["bytes"]), fmt.count(r["rows_in"]), fmt.count(r["stored"]),
              fmt.count(r["quarantined"])] for r in log.iter_rows(named=True)], basis=None,
            num_cols=(2, 3, 4, 5, 6), empty="No files recorded in ingest_log.")])
    if w.has("dropped_fields"):
        dr = w.q("dropped_fields", """SELECT field, sum(count) AS n, count(DISTINCT file) AS
                    files FROM dropped_fields WHERE pilot = ? GROUP BY field
                    ORDER BY n DESC, field""")
        dropped = Part("What was dropped", [
            (f"{dr.height} field names were dropped at the adapters, {fmt.count(dr['n'].sum())}"
             f" values in all; only the field name and a count are kept, never a value.")
            if not dr.is_empty() else
            "No payload-like or unmapped field was present in the inputs, so nothing was "
            "dropped (dropped_fields is empty for this pilot)."],
            tables=[Table("Dropped fields (dropped_fields)", ["Field", "Values dropped",
                                                              "Files"],
                          [[r["field"], fmt.count(r["n"]), fmt.count(r["files"])]
                           for r in dr.iter_rows(named=True)], basis=None, num_cols=(1, 2),
                          wrap_cols=(0,))] if not dr.is_empty() else [])
    else:
        dropped = Part("What was dropped", ["Not recorded in this run: the warehouse has no "
                                            "dropped_fields table, so dropped payload fields "
                                            "cannot be listed."])
    audit = identifier_check(w)
    ids, total, tokens = audit if audit is not None else (None, 0, 0)
    rx = _token_re()
    secret_env = (config.get("anonymization") or {}).get("secret_env")
    if audit is None:
        how = ("Not checked: the identifier_audit table was not built for this pilot, so this "
               "report makes no statement about the form of the stored identifiers.")
        state = "not checked"
    elif rx is None:
        how = ("This installation has no anonymizer: identifiers are stored as received from "
               "the inputs.")
        state = "stored as received"
    elif total and tokens == total:
        how = (f"All {fmt.count(total)} identifier values in the warehouse have the "
               f"keyed-token form <kind>-<16 hex digits>: HMAC-SHA-256 keyed with the pilot's "
               f"secret" + (f" (read from the environment variable {secret_env})"
                            if secret_env else "")
               + ", truncated and prefixed by the identifier's kind.")
        state = "tokenized"
    elif total:
        how = (f"{fmt.count(total - tokens)} of {fmt.count(total)} identifier values "
               f"do not have the keyed-token form: those identifiers are stored as received "
               f"(for example because the data was loaded before anonymization was enabled).")
        state = "partly stored as received"
    else:
        how = "No identifier values are present in the warehouse."
        state = "absent"
    anon = Part("How identifiers were anonymized", [how], tables=[ids] if ids else [])
    security = Part("Data security model", [
        "The warehouse is a local DuckDB file; the report is built from it alone, embeds no "
        "external resource and contains no raw input line: quarantined records keep file, "
        "position and reason only. Text taken from telemetry (pool names, fields) is escaped "
        "before it reaches the page."])
    statement = Part("", [
        f"Identifiers in this report and its warehouse are {state}."
        + (" Keyed tokens replace the request, node, GPU and "
           "job identifiers; without the pilot's secret they cannot be turned back into the "
           "original names, and the same input always yields the same token within this "
           "pilot." if state == "tokenized" else "")
        + (" Payload-like fields were dropped and only counted (appendix C)."
           if w.has("dropped_fields") else ""),
        "Pool names, model classes and priority classes are configuration labels, not "
        "identifiers, and are shown as received."])
    return [read, dropped, anon, security], [statement]


def data_quality(w: Reader) -> list[Part]:
    parts = []
    qr = w.q("quality_results", """SELECT table_name, "check", passed, observed, expected
                FROM quality_results WHERE pilot = ? ORDER BY passed, table_name, "check" """)
    if w.has("quality_results") and not qr.is_empty():
        n, ok = qr.height, int(qr["passed"].sum())
        failed = qr.filter(~pl.col("passed"))
        per = qr.group_by("table_name").agg(pl.len().alias("n"), pl.col("passed").sum().alias(
            "ok")).sort("table_name")
        parts.append(Part("Checks run", [f"{n} checks ran, {ok} passed and {n - ok} failed "
                                         f"(quality_results)."],
                          tables=[Table("Checks per table", ["Table", "Checks", "Passed",
                                                             "Failed"],
                                        [[r["table_name"], fmt.count(r["n"]), fmt.count(r["ok"]),
                                          fmt.count(r["n"] - r["ok"])]
                                         for r in per.iter_rows(named=True)], basis=None,
                                        num_cols=(1, 2, 3)),
                                  Table("Failed checks", ["Table", "Check", "Observed",
                                                          "Expected"],
                                        [[r["table_name"], r["check"], r["observed"] or "—",
                                          r["expected"] or "—"]
                                         for r in failed.iter_rows(named=True)], basis=None,
                                        wrap_cols=(2, 3), empty="No check failed.")]))
    else:
        parts.append(Part("Checks run", ["Not in this run: no quality_results rows, so only "
                                         "the ingest reconciliation below was checked."]))
    log = w.q("ingest_log", """SELECT file, rows_in, rows_stored, rows_quarantined,
                rows_in = rows_stored + rows_quarantined AS ok FROM ingest_log
                WHERE pilot = ? ORDER BY source_index, file""")
    bad = log.filter(~pl.col("ok")) if not log.is_empty() else log
    parts.append(Part("Ingest reconciliation", [
        (f"Rows in = rows stored + rows quarantined held for {log.height - bad.height} of "
         f"{log.height} files." if not log.is_empty() else "No files in ingest_log.")],
        tables=[Table("Files that do not reconcile", ["File", "Rows in", "Stored",
                                                      "Quarantined"],
                      [[r["file"], fmt.count(r["rows_in"]), fmt.count(r["rows_stored"]),
                        fmt.count(r["rows_quarantined"])] for r in bad.iter_rows(named=True)],
                      basis=None, num_cols=(1, 2, 3), wrap_cols=(0,),
                      empty="Every file reconciles.")]))
    qd = w.q("quarantine", """SELECT coalesce(target_table, '—') AS t, reason, count(*) AS n
                FROM quarantine WHERE pilot = ? GROUP BY ALL ORDER BY n DESC, reason""")
    parts.append(Part("Rows quarantined by reason", [
        f"{fmt.count(qd['n'].sum()) if not qd.is_empty() else '0'} rows were quarantined."],
        tables=[Table("Quarantined rows by reason", ["Target table", "Reason", "Rows"],
                      [[r["t"], r["reason"], fmt.count(r["n"])]
                       for r in qd.iter_rows(named=True)], basis=None, num_cols=(2,),
                      wrap_cols=(1,), empty="No rows were quarantined.")]))
    return parts
