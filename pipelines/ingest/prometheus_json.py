"""Adapter for `prometheus-json`: Prometheus HTTP API responses of `query_range` (matrix) and
`query` (vector). One record = one point.

Accepted shapes, told apart from the data: the whole response `{"status", "data":
{"resultType", "result"}}`, its bare `data` object `{"resultType", "result"}`, and the bare
`result` array that client libraries save (`[{"metric", "values": [[ts, "v"], ..]}, ..]` for
a matrix, `[{"metric", "value": [ts, "v"]}, ..]` for a vector; each series by its own key).
A response with `"status": "error"` fails the source with its errorType and error; the
response's `warnings` (and `infos`) are kept as ingest_log warnings. The bucket rows of a
histogram without a `+Inf` bucket at a time are quarantined.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.config import Source
from pipelines.ingest.base import LINE, AdapterContext, Parsed, SourceError, rejects_frame
from pipelines.ingest.convert import TS_MAX, TS_MIN
from pipelines.ingest.prom_names import LabelMapper, refuse_open_histograms, series_of

MAX_NOTES = 20  # warnings kept per response
_LO = TS_MIN.replace(tzinfo=UTC).timestamp()
_HI = TS_MAX.replace(tzinfo=UTC).timestamp()


def read_prometheus_json(path: Path, source: Source, ctx: AdapterContext) -> Iterator[Parsed]:
    data = _load(path)
    result, notes = _unwrap(data)
    mapper = LabelMapper(source.options)
    cols: dict[str, list[Any]] = {k: [] for k in ("ts", "series", "pool", "node", "gpu",
                                                  "value", "le", LINE)}
    bad: list[tuple[int, str | None, str, str | None]] = []
    record = 0
    for k, item in enumerate(result):
        if not isinstance(item, dict):
            record += 1
            bad.append((record, None, f"result[{k}]: expected an object", None))
            continue
        metric = item.get("metric") or {}
        points = item.get("values") if "values" in item else [item.get("value")]
        if not isinstance(metric, dict) or not isinstance(points, list):
            record += 1
            bad.append((record, None, f"result[{k}]: expected metric and values", None))
            continue
        labels = {str(a): str(b) for a, b in metric.items()}
        name = labels.pop("__name__", None) or str(source.options.get("series") or "")
        try:
            series, factor = series_of(name)
            pool, node, gpu, le = mapper.map(labels)
        except ValueError:
            series, factor, pool, node, gpu, le = name, 1.0, None, None, None, math.nan
        for p in points:
            record += 1
            point = _point(p)
            if isinstance(point, str):
                bad.append((record, None, f"result[{k}]: {point}", None))
                continue
            if not series:
                bad.append((record, "series", "no __name__ label and no options.series", None))
                continue
            if le is not None and math.isnan(le):
                bad.append((record, "le", "expected a number or +Inf", labels.get("le")))
                continue
            ts, value = point
            cols["ts"].append(round(ts * 1e6))
            cols["series"].append(series)
            cols["pool"].append(pool)
            cols["node"].append(node)
            cols["gpu"].append(gpu)
            cols["value"].append(value * factor)
            cols["le"].append(le)
            cols[LINE].append(record)
    frame = pl.DataFrame(
        {
            "ts": pl.Series(cols["ts"], dtype=pl.Int64),
            "series": pl.Series(cols["series"], dtype=pl.String),
            "pool": pl.Series(cols["pool"], dtype=pl.String),
            "node": pl.Series(cols["node"], dtype=pl.String),
            "gpu": pl.Series(cols["gpu"], dtype=pl.String),
            "value": pl.Series(cols["value"], dtype=pl.Float64),
            "le": pl.Series(cols["le"], dtype=pl.Float64),
            LINE: pl.Series(cols[LINE], dtype=pl.Int64),
        }
    ).with_columns(pl.from_epoch("ts", time_unit="us"))
    frame, open_buckets = refuse_open_histograms(frame)
    rejects = pl.concat([rejects_frame(bad), open_buckets])
    yield Parsed("samples", frame, rejects, record, dropped=mapper.dropped, notes=notes)


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise SourceError(f"not UTF-8 text (byte offset {e.start})") from e
    except json.JSONDecodeError as e:
        raise SourceError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e


def _unwrap(data: Any) -> tuple[list[Any], list[str]]:
    """The `result` list of any accepted shape, and the response's warnings."""
    notes: list[str] = []
    if isinstance(data, dict) and "status" in data:
        if data.get("status") != "success":
            raise SourceError(_api_error(data))
        notes = _warnings(data)
        data = data.get("data")
    if isinstance(data, list):
        if data and not any(isinstance(x, dict) for x in data):
            raise SourceError("a bare [timestamp, \"value\"] scalar or string result; expected "
                              "a list of {metric, values} (matrix) or {metric, value} (vector)")
        return data, notes
    if not isinstance(data, dict) or "resultType" not in data:
        raise SourceError(
            "expected a Prometheus API response: {status, data: {resultType, result}}, "
            "{resultType, result}, or the bare result list [{metric, values|value}, ...]"
        )
    rt = data["resultType"]
    if rt not in ("matrix", "vector"):
        raise SourceError(f"resultType {rt!r} not supported; expected matrix or vector")
    result = data.get("result")
    if not isinstance(result, list):
        raise SourceError(f"data.result: expected a list, found {type(result).__name__}")
    return result, notes


def _api_error(data: dict[str, Any]) -> str:
    """One line: the response's status, errorType and error."""
    kind = data.get("errorType")
    why = " ".join(str(data.get("error") or "no error message").split())[:300]
    typed = f" (errorType {str(kind)[:60]!r})" if kind else ""
    return f"Prometheus API response status {str(data.get('status'))[:40]!r}{typed}: {why}"


def _warnings(data: dict[str, Any]) -> list[str]:
    """The response's warnings and infos, as notes (at most MAX_NOTES)."""
    out = []
    for key in ("warnings", "infos"):
        items = data.get(key)
        for w in items if isinstance(items, list) else []:
            out.append(f"Prometheus API {key[:-1]}: {' '.join(str(w).split())}")
    return out[:MAX_NOTES]


def _point(p: Any) -> tuple[float, float] | str:
    """[unix seconds, "value"] -> (ts, value), or why it is refused."""
    if not isinstance(p, list) or len(p) != 2:
        return "expected a [timestamp, \"value\"] pair"
    try:
        ts, value = float(p[0]), float(p[1])
    except (TypeError, ValueError):
        return "expected a numeric timestamp and value"
    if not (math.isfinite(ts) and _LO <= ts <= _HI):
        return "timestamp out of range (expected Unix seconds)"
    return ts, value
