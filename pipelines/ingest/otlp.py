"""Adapter for `otlp-json`: OpenTelemetry OTLP/JSON trace exports (`resourceSpans`).

A file is one ExportTraceServiceRequest, or JSON Lines of them (what the collector's file
exporter writes; streamed line by line). A span is a request attempt when it carries GenAI
semantic-convention attributes (`gen_ai.*`), or when `options.all_spans` is true.

- times: span start = arrival; vLLM `gen_ai.latency.time_in_queue` gives dispatch/start,
  `gen_ai.latency.time_to_first_token` the first token, span end (else `.e2e`) the end;
- tokens: `gen_ai.usage.input_tokens`/`output_tokens` (or the older prompt/completion names);
- status: span status ERROR -> error, or timeout/cancelled when `error.type` or the status
  message says so; UNSET/OK -> ok;
- node/gpu: from span or resource attributes named in options (`node_attr`, `gpu_attr`);
  `model_class` from options (default llm);
- pool, first found of: (1) the attribute named by `options.pool_attr` (default
  `stabilis.pool`), on the span, else on its resource; (2) `options.pool`; (3) the resource
  attribute `k8s.deployment.name`; (4) the resource attribute `service.name` (not the SDK's
  `unknown_service*` default);
- priority, first found of: (1) the attribute named by `options.priority_attr` (default
  `stabilis.priority`), span then resource; (2) `options.priority`; (3) a `priority`
  attribute, span then resource; then mapped through `options.priority_map`;
  when a value comes from (3)/(4) resp. (3), the file's ingest_log warnings say which
  attribute gave it; when nothing gives one, the span is quarantined (missing required value)
  as before and the warnings say once which option to set;
- request_id: `options.request_id_attr`, else traceId:spanId; attempt from
  `http.request.resend_count` (or `options.attempt_attr`); a retry's parent is the attempt-0
  span of the same trace.
Every other attribute (prompts, completions, messages, user attributes) is dropped and
counted by name; span events are counted as `event:<name>`. A traceId that is not 32 hex
digits, or a spanId that is not 16 (OTLP/JSON writes them as hex), is quarantined with its
field and why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from pipelines.config import Source
from pipelines.ingest.base import LINE, AdapterContext, Parsed, SourceError, rejects_frame
from pipelines.ingest.canonical import to_table
from pipelines.ingest.convert import TS_MAX, TS_MIN

STATUS_ERROR = {2, "STATUS_CODE_ERROR", "2"}
USED_ATTRS = {
    "gen_ai.latency.time_in_queue", "gen_ai.latency.time_to_first_token", "gen_ai.latency.e2e",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens", "http.request.resend_count", "error.type",
}
# Harmless descriptive attributes: read, not stored, not worth counting as dropped.
BENIGN_PREFIXES = ("gen_ai.request.", "gen_ai.response.model", "gen_ai.system",
                   "gen_ai.operation.name", "gen_ai.latency.", "service.", "telemetry.sdk.")
_LO_NS = int((TS_MIN - TS_MIN.__class__(1970, 1, 1)).total_seconds() * 1e9)
_HI_NS = int((TS_MAX - TS_MAX.__class__(1970, 1, 1)).total_seconds() * 1e9)
MAX_LINE_BYTES = 256 * 1024 * 1024
# Resource attributes that name a pool when nothing more explicit does, in this order.
POOL_RESOURCE_ATTRS = ("k8s.deployment.name", "service.name")
PRIORITY_ATTR = "priority"
ID_HEX = {"traceId": 32, "spanId": 16}  # OTLP/JSON ids: lower-case hex of 16 and 8 bytes
HEX_RE = re.compile(r"[0-9a-fA-F]+")


def read_otlp_json(path: Path, source: Source, ctx: AdapterContext) -> Iterator[Parsed]:
    builder = _Builder(source.options)
    with path.open("rb") as fh:
        head = fh.read(65536)
        if b"\x00" in head:
            raise SourceError("binary file (NUL bytes); expected OTLP/JSON")
        fh.seek(0)
        first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        if first != b"{":
            raise SourceError("expected an OTLP/JSON object starting with '{'")
        if _is_jsonl(fh):
            for n, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        builder.document(_loads(line, n), n)
                    except SourceError as e:  # one broken batch line: quarantined alone
                        builder.broken(str(e))
                if builder.records >= ctx.chunk_rows:
                    yield builder.flush()
        else:
            builder.document(_loads(fh.read(), None), None)
    yield builder.flush()


def _is_jsonl(fh: BinaryIO) -> bool:
    """JSON Lines when the first line is a whole object by itself and more lines follow."""
    first = fh.readline(MAX_LINE_BYTES)
    more = any(line.strip() for line in iter(lambda: fh.readline(1 << 16), b""))
    fh.seek(0)
    if not more:
        return False
    try:
        return isinstance(json.loads(first.lstrip(b"\xef\xbb\xbf")), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def _loads(raw: bytes, line: int | None) -> Any:
    where = f"line {line}" if line else "document"
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise SourceError(f"{where}: not UTF-8 text (byte offset {e.start})") from e
    except json.JSONDecodeError as e:
        raise SourceError(f"{where}: invalid JSON at line {e.lineno}, column {e.colno}: "
                          f"{e.msg}") from e


def attr_value(v: Any) -> Any:
    """OTLP AnyValue -> Python value (ints arrive as JSON strings in OTLP/JSON)."""
    if not isinstance(v, dict):
        return v
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return v["intValue"]
    if "arrayValue" in v:
        return [attr_value(x) for x in (v["arrayValue"] or {}).get("values", []) or []]
    if "kvlistValue" in v:
        return {str(kv.get("key")): attr_value(kv.get("value"))
                for kv in (v["kvlistValue"] or {}).get("values", []) or [] if isinstance(kv, dict)}
    return None


def attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {str(kv["key"]): attr_value(kv.get("value")) for kv in items
            if isinstance(kv, dict) and "key" in kv}


class _Builder:
    def __init__(self, opts: dict[str, Any]) -> None:
        self.opts = opts
        self.all_spans = bool(opts.get("all_spans", False))
        self.rows: list[dict[str, Any]] = []
        self.bad: list[tuple[int, str | None, str, str | None]] = []
        self.dropped: dict[str, int] = {}
        self.records = 0
        self.seq = 0  # span ordinal in the file: the record number quarantine points at
        self.notes: list[str] = []  # about the file as a whole (ingest_log warnings)

    def document(self, doc: Any, line: int | None) -> None:
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceSpans", []), list):
            raise SourceError(f"{'line ' + str(line) if line else 'document'}: expected an "
                              "object with a resourceSpans list (OTLP/JSON trace export)")
        first_attempt: dict[str, str] = {}
        doc_rows: list[dict[str, Any]] = []
        for rs in doc.get("resourceSpans") or []:
            if not isinstance(rs, dict):
                continue
            res = attributes((rs.get("resource") or {}).get("attributes"))
            for ss in (rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []):
                if not isinstance(ss, dict):
                    continue
                for span in ss.get("spans") or []:
                    row = self.span(span, res)
                    if row is not None:
                        doc_rows.append(row)
                        if row.get("attempt") == 0 and row.get("__trace"):
                            first_attempt.setdefault(row["__trace"], row["request_id"])
        for row in doc_rows:  # a retry points at the first attempt of its trace
            if (row.get("attempt") or 0) > 0 and row.get("parent_request_id") is None:
                row["parent_request_id"] = first_attempt.get(row.get("__trace") or "")
            row.pop("__trace", None)
        self.rows.extend(doc_rows)

    def broken(self, reason: str) -> None:
        self.seq += 1
        self.records += 1
        self.bad.append((self.seq, None, reason[:300], None))

    def _count(self, key: str) -> None:
        self.dropped[key] = self.dropped.get(key, 0) + 1

    def span(self, span: Any, res: dict[str, Any]) -> dict[str, Any] | None:
        if not isinstance(span, dict):
            self.seq += 1
            self.records += 1
            self.bad.append((self.seq, None, "span is not an object", None))
            return None
        attrs = attributes(span.get("attributes"))
        if not self.all_spans and not any(k.startswith("gen_ai.") for k in attrs):
            return None  # not a request span (e.g. an internal child span)
        self.seq += 1
        self.records += 1
        n, o = self.seq, self.opts
        both = {**res, **attrs}
        start = _nanos(span.get("startTimeUnixNano"))
        end = _nanos(span.get("endTimeUnixNano"))
        trace, sid = str(span.get("traceId") or ""), str(span.get("spanId") or "")
        problems = [(n, f, why, None) for f, why in _id_problems(trace, sid)]
        if start is None:
            problems.insert(0, (n, "arrival_ts", "expected startTimeUnixNano (Unix nanoseconds)",
                                _short(span.get("startTimeUnixNano"))))
        if problems:
            self.bad += problems
            return None
        rid_attr = o.get("request_id_attr")
        rid = both.get(rid_attr) if rid_attr else None
        rid = str(rid) if rid not in (None, "") else (f"{trace}:{sid}" if trace or sid else None)
        q = _seconds(attrs.get("gen_ai.latency.time_in_queue"))
        ttft = _seconds(attrs.get("gen_ai.latency.time_to_first_token"))
        e2e = _seconds(attrs.get("gen_ai.latency.e2e"))
        if end is None and e2e is not None:
            end = start + int(e2e * 1e9)
        prio = self._priority(attrs, res)
        prio = (o.get("priority_map") or {}).get(prio, prio)
        used = {rid_attr, o.get("priority_attr", "stabilis.priority"),
                o.get("pool_attr", "stabilis.pool"), o.get("node_attr", "host.name"),
                o.get("gpu_attr", "gpu.id"), o.get("attempt_attr", "http.request.resend_count"),
                PRIORITY_ATTR}
        for k in attrs:
            if k not in USED_ATTRS and k not in used and not k.startswith(BENIGN_PREFIXES):
                self._count(k)
        for ev in span.get("events") or []:
            self._count(f"event:{ev.get('name', '?') if isinstance(ev, dict) else '?'}")
        return {
            LINE: n,
            "__trace": trace,
            "request_id": rid,
            "parent_request_id": None,
            "attempt": _int(both.get(o.get("attempt_attr", "http.request.resend_count"), 0)),
            "pool": _str(self._pool(attrs, res)),
            "node": _str(both.get(o.get("node_attr", "host.name"),
                                  both.get("k8s.node.name", o.get("node")))),
            "gpu": _str(both.get(o.get("gpu_attr", "gpu.id"))),
            "model_class": _str(o.get("model_class", "llm")),
            "priority": _str(prio),
            "arrival_ts": start // 1000,
            "dispatch_ts": None if q is None else (start + int(q * 1e9)) // 1000,
            "start_ts": None if q is None else (start + int(q * 1e9)) // 1000,
            "first_token_ts": None if ttft is None else (start + int(ttft * 1e9)) // 1000,
            "end_ts": None if end is None else end // 1000,
            "status": _status(span.get("status"), attrs),
            "input_tokens": _str(attrs.get("gen_ai.usage.input_tokens",
                                           attrs.get("gen_ai.usage.prompt_tokens"))),
            "output_tokens": _str(attrs.get("gen_ai.usage.output_tokens",
                                            attrs.get("gen_ai.usage.completion_tokens"))),
        }

    def _pool(self, attrs: dict[str, Any], res: dict[str, Any]) -> Any:
        """Pool by the order in the module docstring; notes where it came from, or not."""
        o = self.opts
        named = _first_of(o.get("pool_attr", "stabilis.pool"), attrs, res)
        if named is not None:
            return named
        if o.get("pool") is not None:
            return o["pool"]
        for key in POOL_RESOURCE_ATTRS:
            v = res.get(key)
            if v not in (None, "") and not str(v).startswith("unknown_service"):
                self._note(f"pool taken from the resource attribute {key!r} (no options.pool "
                           f"and no {o.get('pool_attr', 'stabilis.pool')!r} attribute)")
                return v
        self._note("pool: some spans name no pool (no options.pool, no "
                   f"{o.get('pool_attr', 'stabilis.pool')!r}, k8s.deployment.name or "
                   "service.name attribute) and are quarantined as missing a pool; set "
                   "options.pool (one pool for the source) or options.pool_attr")
        return None

    def _priority(self, attrs: dict[str, Any], res: dict[str, Any]) -> Any:
        """Priority by the order in the module docstring; notes where it came from, or not."""
        o = self.opts
        named = _first_of(o.get("priority_attr", "stabilis.priority"), attrs, res)
        if named is not None:
            return named
        if o.get("priority") is not None:
            return o["priority"]
        found = _first_of(PRIORITY_ATTR, attrs, res)
        if found is not None:
            self._note(f"priority taken from the {PRIORITY_ATTR!r} attribute (no "
                       "options.priority and no "
                       f"{o.get('priority_attr', 'stabilis.priority')!r} attribute)")
            return found
        self._note("priority: some spans name no priority (no options.priority, no "
                   f"{o.get('priority_attr', 'stabilis.priority')!r} or {PRIORITY_ATTR!r} "
                   "attribute) and are quarantined as missing a priority; set "
                   "options.priority (P0..P3 for the source) or options.priority_attr "
                   "(with options.priority_map)")
        return None

    def _note(self, text: str) -> None:
        if text not in self.notes:  # once per file; the load gives it once per source
            self.notes.append(text)

    def flush(self) -> Parsed:
        ts_cols = ("arrival_ts", "dispatch_ts", "start_ts", "first_token_ts", "end_ts")
        str_cols = ("request_id", "parent_request_id", "pool", "node", "gpu", "model_class",
                    "priority", "status", "input_tokens", "output_tokens")
        rows = self.rows
        raw = pl.DataFrame(
            {
                LINE: pl.Series([r[LINE] for r in rows], dtype=pl.Int64),
                "attempt": pl.Series([r["attempt"] for r in rows], dtype=pl.Int64),
                **{c: pl.Series([r[c] for r in rows], dtype=pl.String) for c in str_cols},
                **{c: pl.Series([r[c] for r in rows], dtype=pl.Int64) for c in ts_cols},
            }
        ).with_columns(pl.from_epoch(c, time_unit="us") for c in ts_cols)
        parsed = to_table(raw, rejects_frame(self.bad), "requests")
        parsed.dropped = self.dropped
        parsed.notes = list(self.notes)
        self.rows, self.bad, self.dropped, self.records = [], [], {}, 0
        return parsed


def _first_of(key: Any, attrs: dict[str, Any], res: dict[str, Any]) -> Any:
    """The attribute `key` of the span, else of its resource (None when empty or absent)."""
    if not key:
        return None
    for where in (attrs, res):
        v = where.get(str(key))
        if v not in (None, ""):
            return v
    return None


def _id_problems(trace: str, span_id: str) -> list[tuple[str, str]]:
    """(field, why) for a given traceId/spanId that is not hex of the right length."""
    out = []
    for field, value in (("traceId", trace), ("spanId", span_id)):
        size = ID_HEX[field]
        if not value:
            continue  # absent: request_id comes from options.request_id_attr, or is missing
        if len(value) != size:
            out.append((field, f"expected {size} hex digits, found {len(value)} characters"))
        elif not HEX_RE.fullmatch(value):
            out.append((field, f"expected {size} hex digits, found a non-hex character"))
        elif not value.strip("0"):
            out.append((field, f"expected {size} hex digits, not all zero (an invalid id)"))
    return out


def _nanos(v: Any) -> int | None:
    try:
        n = int(v)
    except (TypeError, ValueError):
        return None
    return n if _LO_NS <= n <= _HI_NS else None


def _seconds(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if 0 <= f < 1e7 else None


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _str(v: Any) -> str | None:
    return None if v is None or isinstance(v, dict | list) else str(v)


def _short(v: Any) -> str | None:
    return None if v is None else str(v)[:80]


def _status(status: Any, attrs: dict[str, Any]) -> str:
    st = status if isinstance(status, dict) else {}
    code = st.get("code", 0)
    if code not in STATUS_ERROR:
        return "ok"
    why = f"{attrs.get('error.type', '')} {st.get('message', '')}".lower()
    if "timeout" in why or "deadline" in why:
        return "timeout"
    if "cancel" in why or "abort" in why:
        return "cancelled"
    return "error"
