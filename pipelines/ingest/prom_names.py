"""Prometheus metric families (dcgm-exporter, vLLM) -> canonical series, and labels ->
pool/node/gpu. Shared by the `prometheus-text` and `prometheus-json` adapters."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from pipelines.ingest.base import LINE, REJECT_SCHEMA

# source family -> (canonical series, factor). Unknown families keep their source name.
FAMILIES: dict[str, tuple[str, float]] = {
    "DCGM_FI_DEV_GPU_UTIL": ("gpu_util", 0.01),  # percent -> 0..1
    "DCGM_FI_PROF_SM_ACTIVE": ("sm_active", 1.0),
    "DCGM_FI_PROF_SM_OCCUPANCY": ("sm_occupancy", 1.0),
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": ("tensor_active", 1.0),
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": ("gr_engine_active", 1.0),
    "DCGM_FI_DEV_POWER_USAGE": ("power_w", 1.0),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": ("energy_j", 0.001),  # mJ -> J
    "DCGM_FI_DEV_FB_USED": ("mem_used_bytes", 1024.0**2),  # MiB -> bytes
    "vllm:num_requests_waiting": ("queue_waiting", 1.0),
    "vllm:num_requests_running": ("queue_running", 1.0),
    "vllm:request_success_total": ("request_success_total", 1.0),
    "vllm:num_preemptions_total": ("preemptions_total", 1.0),
}
# Histogram families: source base -> canonical base (suffix _bucket/_sum/_count kept).
HISTOGRAMS: dict[str, str] = {
    "vllm:e2e_request_latency_seconds": "e2e_latency_s",
    "vllm:request_queue_time_seconds": "queue_time_s",
    "vllm:time_to_first_token_seconds": "ttft_s",
    "vllm:time_per_output_token_seconds": "tpot_s",
}
SUFFIXES = ("_bucket", "_sum", "_count")
Opt = str | None
NODE_LABELS = ("Hostname", "hostname", "node", "kubernetes_node", "host", "instance")
GPU_LABELS = ("UUID", "gpu_uuid", "uuid", "gpu")
POOL_LABELS = ("pool",)
NO_INF_BUCKET = "histogram without +Inf bucket"
HISTOGRAM_KEY = ("series", "pool", "node", "gpu", "ts")  # one histogram at one time


def series_of(name: str) -> tuple[str, float]:
    """Canonical series name and scale factor for a sample name."""
    hit = FAMILIES.get(name)
    if hit is not None:
        return hit
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            base = HISTOGRAMS.get(name[: -len(suffix)])
            if base is not None:
                return base + suffix, 1.0
    return name, 1.0


class LabelMapper:
    """Picks pool/node/gpu from a sample's labels (options may name the labels); counts the
    labels it does not keep, by name, for the dropped-fields table."""

    def __init__(self, opts: dict[str, Any]) -> None:
        self.node_labels = _names(opts.get("node_label"), NODE_LABELS)
        self.gpu_labels = _names(opts.get("gpu_label"), GPU_LABELS)
        self.pool_labels = _names(opts.get("pool_label"), POOL_LABELS)
        self.pool_default = None if opts.get("pool") is None else str(opts["pool"])
        self.node_default = None if opts.get("node") is None else str(opts["node"])
        self.dropped: dict[str, int] = {}

    def map(self, labels: dict[str, str]) -> tuple[Opt, Opt, Opt, float | None]:
        """(pool, node, gpu, le) of one sample."""
        used: set[str] = set()
        pool = _first(labels, self.pool_labels, used) or self.pool_default
        node = _first(labels, self.node_labels, used) or self.node_default
        gpu = _first(labels, self.gpu_labels, used)
        le: float | None = None
        if "le" in labels:
            used.add("le")
            le = parse_le(labels["le"])
        for k in labels:
            if k not in used:
                key = f"label:{k}"
                self.dropped[key] = self.dropped.get(key, 0) + 1
        return pool, node, gpu, le


def parse_le(text: str) -> float:
    t = text.strip()
    if t in ("+Inf", "Inf", "inf", "+inf"):
        return math.inf
    return float(t)  # ValueError -> the caller refuses the sample


def _names(option: Any, defaults: tuple[str, ...]) -> tuple[str, ...]:
    if option is None:
        return defaults
    return (str(option),) if isinstance(option, str) else tuple(str(x) for x in option)


def _first(labels: dict[str, str], names: tuple[str, ...], used: set[str]) -> str | None:
    found = None
    for n in names:
        if n in labels:
            used.add(n)  # every candidate label is consumed, even when a better one won
            if found is None and labels[n] != "":
                found = labels[n]
    return found


def refuse_open_histograms(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split off the bucket rows (`le` set) of every histogram that has no `+Inf` bucket at
    its time: without it the count above the last bound is unknown, so no quantile can be
    read from it. Returns (kept rows, rejects with field `le`)."""
    has_inf = (pl.col("le") == math.inf).any().over(list(HISTOGRAM_KEY))
    open_ = pl.col("le").is_not_null() & ~has_inf.fill_null(False)
    flagged = frame.with_columns(open_.alias("__open"))
    rejects = flagged.filter(pl.col("__open")).select(
        pl.col(LINE).alias("line"),
        pl.lit("le", dtype=pl.String).alias("field"),
        pl.lit(NO_INF_BUCKET, dtype=pl.String).alias("reason"),
        pl.col("le").cast(pl.String).alias("value"),
    )
    kept = flagged.filter(~pl.col("__open")).drop("__open")
    return kept, rejects.cast(REJECT_SCHEMA)  # type: ignore[arg-type]
