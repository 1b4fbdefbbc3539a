"""Thresholds the report's own rules use, from the pilot's `thresholds` table or defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from reports.types import Table


class _Reader(Protocol):
    def q(self, table: str, sql: str, *params: Any) -> pl.DataFrame: ...


# Thresholds the report's own rules use. The first names are looked up in the pilot's
# `thresholds` table (which holds METRICS.md defaults and pilot overrides); the default applies
# only when the table has none of the names, and the appendix says which source was used.
@dataclass(frozen=True)
class Rule:
    key: str
    names: tuple[str, ...]
    default: float
    meaning: str


RULES: tuple[Rule, ...] = (
    Rule("di", ("di", "di_threshold", "delay_index"), 0.5,
         "Delay Index above which queue waiting is called non-productive (METRICS.md)"),
    Rule("hcl_pp", ("hcl_pp", "hcl_threshold_pp", "hcl"), 10.0,
         "hidden capacity loss (pp) above which GPU occupancy loss is reported (METRICS.md)"),
    Rule("burst_wait_ratio", ("burst_wait_ratio",), 2.0,
         "burst queue-wait P95 ÷ overall queue-wait P95 above which bursts amplify waiting"),
    Rule("retry_amplification_max", ("retry_amplification_max",), 1.10,
         "attempts per logical request above which retries amplify load"),
    Rule("timeout_rate_max", ("timeout_rate_max",), 0.02,
         "timeout/drop rate above which timeouts are reported"),
    Rule("sla_adherence_target", ("sla_adherence_target", "sla_target"), 0.95,
         "SLA adherence below which the pilot misses its target"),
    Rule("tail_queue_share", ("tail_queue_share",), 0.5,
         "queue-wait P95 ÷ P95 latency at or above which the latency tail is called "
         "queue-dominated (conclusion, section 0)"),
    Rule("compute_saturation_util", ("compute_saturation_util",), 0.85,
         "effective utilization at or above which GPUs count as productively saturated"),
)


def read_thresholds(w: _Reader) -> tuple[dict[str, float], Table]:
    df = w.q("thresholds", "SELECT name, value FROM thresholds WHERE pilot = ? ORDER BY name")
    table_vals = {r["name"]: r["value"] for r in df.iter_rows(named=True)}
    used: dict[str, float] = {}
    rows: list[list[str]] = []
    rule_names = {n for rule in RULES for n in rule.names}
    for rule in RULES:
        hit = next((n for n in rule.names if n in table_vals), None)
        used[rule.key] = table_vals[hit] if hit else rule.default
        source = f"thresholds table ({hit})" if hit else "report default (v1)"
        rows.append([rule.key, f"{used[rule.key]:g}", rule.meaning, source])
    for name, val in table_vals.items():
        if name not in rule_names:
            rows.append([name, f"{val:g}", "pipeline threshold (METRICS.md)", "thresholds table"])
    return used, Table("Thresholds in force for this report", ["Name", "Value", "Used for",
                                                                "Source"], rows, basis=None,
                       num_cols=(1,))

