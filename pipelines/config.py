"""pilot.yaml: load, validate, and expose a typed PilotConfig (TELEMETRY.md "A pilot").

A bad pilot.yaml is refused before anything is read: every problem is collected and reported
at once, one message each, naming the key and what was expected.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

PILOT_FILE = "pilot.yaml"
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

PRIORITIES = ("P0", "P1", "P2", "P3")
REQUIRED_PHASES = ("baseline", "validation")
CANONICAL_TABLES = ("requests", "jobs", "samples")
SOURCE_KINDS = (
    "canonical",
    "tabular",
    "otlp-json",
    "prometheus-text",
    "prometheus-json",
    "sacct",
    "nvidia-smi",
    "arrival-trace",
    "prometheus-api",
)
# Kinds whose target table is fixed by the format; `canonical` and `tabular` must name one.
KIND_TABLES: dict[str, str | None] = {
    "otlp-json": "requests",
    "prometheus-text": "samples",
    "prometheus-json": "samples",
    "sacct": "jobs",
    "nvidia-smi": "samples",
    "arrival-trace": None,
    "prometheus-api": "samples",
}
# A live source (pulled from a server) has no files to name: `path` is its snapshot folder,
# written by `stabilis pull` (pipelines/ingest/prometheus_api.py), and may not exist yet.
LIVE_KINDS = ("prometheus-api",)
DEFAULT_SNAPSHOT_DIR = "pulled"
ADJUSTMENTS = (
    "inference_batch_separation",
    "priority_scheduling",
    "burst_buffering",
    "resource_segmentation",
    "latency_aware_load_distribution",
)
# METRICS.md defaults; pilot.yaml `thresholds` may override any of them (and nothing else).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "burst_factor": 2.0,
    "burst_min_count": 20,
    "burst_window_s": 10,
    "burst_trailing_s": 900,
    "wave_factor": 1.5,
    "wave_lag_s": 300,
    "long_job_s": 60,
    "sla_target": 0.95,
    "hcl_pp": 10,
    "di": 0.5,
    "sched_delay_target_s": 1.0,
    # report rules that pick the executive summary's findings and conclusion
    "burst_wait_ratio": 2.0,
    "retry_amplification_max": 1.10,
    "timeout_rate_max": 0.02,
    "compute_saturation_util": 0.85,
    # pattern detectors (issue #4; METRICS.md Patterns / Topology)
    "idle_util": 0.3,  # a pool-minute is idle below this nominal utilisation with no queue
    "flip_window_s": 300,  # idle <-> overload within this span is an oscillation flip
    "conflict_min_attempts": 5,  # queued attempts a batch job must overlap to be a conflict
    "energy_rho_max": 0.3,  # energy-latency mismatch when |rho| below this ...
    "latency_cv_min": 0.5,  # ... while the window P95 latency CV is above this
    "legit_clear_s": 120,  # a legitimate queue episode clears within this
    "disruption_recover_s": 600,  # a disruption ends after this long above the SLA target
    "retry_spike_ratio": 2.0,  # retry share in timeout-spike minutes vs outside
}
MAX_BURST_WINDOW_S = 1800
DEFAULT_SECRET_ENV = "STABILIS_SECRET"
KNOWN_KEYS = (
    "pilot",
    "title",
    "timezone",
    "phases",
    "scope",
    "sla",
    "timeout_ms",
    "adjustments",
    "thresholds",
    "sources",
    "anonymization",
    "whatif",
)
SCOPE_HINT = "expected 'all', {pools: [..]}, {priorities: [..]} or {share: 0 < x < 1}"


class PilotConfigError(ValueError):
    """pilot.yaml was refused; `.problems` holds one message per problem."""

    def __init__(self, problems: list[str], path: Path | None = None) -> None:
        self.problems = list(problems)
        self.path = path
        where = f" ({path})" if path else ""
        super().__init__(
            f"pilot.yaml refused{where}, {len(problems)} problem(s):\n"
            + "\n".join(f"- {p}" for p in problems)
        )


@dataclass(frozen=True)
class Phase:
    start: datetime  # naive UTC
    end: datetime  # naive UTC, exclusive


@dataclass(frozen=True)
class Scope:
    kind: Literal["all", "pools", "priorities", "share"]
    pools: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    share: float | None = None


@dataclass(frozen=True)
class Sla:
    e2e_ms: float
    ttft_ms: float | None = None


@dataclass(frozen=True)
class Source:
    kind: str
    path: str  # glob relative to the pilot folder (validated: no escape)
    table: str | None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Anonymization:
    secret_env: str = DEFAULT_SECRET_ENV


SERVICE_DISTRIBUTIONS = ("exponential", "lognormal", "gamma", "deterministic")
# the coefficient of variation a distribution fixes (None: lognormal and gamma take any > 0)
FIXED_CV: dict[str, float | None] = {"exponential": 1.0, "lognormal": None, "gamma": None,
                                     "deterministic": 0.0}
WHATIF_KEYS = ("service", "gpus", "pools", "concurrency_per_gpu", "priority")
SERVICE_KEYS = ("distribution", "mean_s", "cv", "scale_by_tokens")
DEFAULT_WHATIF_POOL = "trace"  # the pool of a trace's arrivals when `pools` is not given
MAX_WHATIF_SLOTS = 100_000  # gpus x concurrency_per_gpu: the simulator keeps state per slot


@dataclass(frozen=True)
class ServiceModel:
    """Declared service time of one request: distribution, mean (s), coefficient of
    variation; optionally proportional to the request's tokens (same mean)."""

    distribution: str
    mean_s: float
    cv: float
    scale_by_tokens: bool = False


@dataclass(frozen=True)
class WhatIfModel:
    """pilot.yaml `whatif:`: the service model a what-if needs when the pilot has arrivals
    (a trace) but no per-request rows to resample service times from."""

    service: ServiceModel
    pools: tuple[tuple[str, int], ...]  # (pool, GPUs); arrivals split in proportion
    concurrency_per_gpu: int = 1
    # the priority class every arrival is given; None: the what-if picks the lowest class
    # with an SLA target (so SLA adherence has a target), else P2
    priority: str | None = None

    @property
    def gpus(self) -> int:
        return sum(n for _, n in self.pools)

    def to_dict(self) -> dict[str, Any]:
        return {"service": {"distribution": self.service.distribution,
                            "mean_s": self.service.mean_s, "cv": self.service.cv,
                            "scale_by_tokens": self.service.scale_by_tokens},
                "gpus": self.gpus, "pools": dict(self.pools),
                "concurrency_per_gpu": self.concurrency_per_gpu, "priority": self.priority}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WhatIfModel:
        """Back from `to_dict` (the validated block stored in pilots.config_json)."""
        s = d["service"]
        return cls(ServiceModel(str(s["distribution"]), float(s["mean_s"]), float(s["cv"]),
                                bool(s.get("scale_by_tokens", False))),
                   tuple((str(p), int(n)) for p, n in d["pools"].items()),
                   int(d.get("concurrency_per_gpu", 1)), d.get("priority"))


@dataclass(frozen=True)
class PilotConfig:
    pilot: str
    title: str
    timezone: str
    phases: dict[str, Phase]
    scope: Scope
    sla: dict[str, Sla]
    timeout_ms: float
    adjustments: list[str]
    thresholds: dict[str, float]
    sources: list[Source]
    anonymization: Anonymization
    root: Path
    raw: dict[str, Any]
    whatif: WhatIfModel | None = None

    @property
    def extra(self) -> dict[str, Any]:
        """Top-level keys beyond the contract's; kept untouched."""
        return {k: v for k, v in self.raw.items() if k not in KNOWN_KEYS}

    def source_files(self, i: int) -> list[Path]:
        src = self.sources[i]
        if src.kind in LIVE_KINDS:  # the snapshot: manifest.json, then 1.json, 2.json, ...
            from pipelines.ingest.prometheus_api import snapshot_files

            return snapshot_files(self.root, src.path)
        return _glob_inside(self.root, src.path)

    def to_json(self) -> str:
        """The validated config (plus extra keys) as stable JSON, for the `pilots` table."""

        def ts(d: datetime) -> str:
            return d.isoformat() + "Z"

        doc: dict[str, Any] = {
            "pilot": self.pilot,
            "title": self.title,
            "timezone": self.timezone,
            "phases": {n: {"start": ts(p.start), "end": ts(p.end)} for n, p in self.phases.items()},
            "scope": {
                "kind": self.scope.kind,
                "pools": list(self.scope.pools),
                "priorities": list(self.scope.priorities),
                "share": self.scope.share,
            },
            "sla": {k: {"e2e_ms": v.e2e_ms, "ttft_ms": v.ttft_ms} for k, v in self.sla.items()},
            "timeout_ms": self.timeout_ms,
            "adjustments": self.adjustments,
            "thresholds": self.thresholds,
            "sources": [
                {"kind": s.kind, "path": s.path, "table": s.table, "options": s.options}
                for s in self.sources
            ],
            "anonymization": {"secret_env": self.anonymization.secret_env},
            "whatif": None if self.whatif is None else self.whatif.to_dict(),
            "extra": self.extra,
        }
        return json.dumps(doc, sort_keys=True, default=str)


def load_pilot(path: Path) -> PilotConfig:
    """Load `path` (a pilot folder or its pilot.yaml); raise PilotConfigError listing every
    problem found."""
    path = Path(path)
    yaml_path = path / PILOT_FILE if path.is_dir() else path
    root = yaml_path.parent.resolve()
    if not yaml_path.is_file():
        raise PilotConfigError([f"pilot.yaml: file not found at {yaml_path}"], yaml_path)
    try:
        raw = _read_yaml(yaml_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise PilotConfigError([f"pilot.yaml: not UTF-8 text ({e.reason})"], yaml_path) from e
    except yaml.YAMLError as e:
        raise PilotConfigError([_yaml_error_message(e)], yaml_path) from e
    except _YamlTooBig as e:
        raise PilotConfigError([f"pilot.yaml: {e}"], yaml_path) from None
    except RecursionError:
        raise PilotConfigError(["pilot.yaml: nested too deeply to be a pilot.yaml"],
                               yaml_path) from None
    if not isinstance(raw, dict):
        found = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise PilotConfigError(
            [f"pilot.yaml: expected a mapping of keys at the top level, found {found}"], yaml_path
        )
    v = _Validator(raw, root)
    cfg = v.build()
    if v.problems:
        raise PilotConfigError(v.problems, yaml_path)
    assert cfg is not None
    return cfg


# A pilot.yaml is a few hundred values; anchors/aliases may not expand it past this.
MAX_YAML_VALUES = 100_000


class _YamlTooBig(Exception):
    """The document would expand past MAX_YAML_VALUES (an alias bomb) or into itself."""


def _read_yaml(text: str) -> Any:
    """yaml.safe_load, refusing before construction a document whose aliases expand past
    MAX_YAML_VALUES values or refer to themselves ("billion laughs"): the node graph is
    measured with each anchored node counted once per use, memoized, so the refusal costs
    the size of the file, not of its expansion. Ordinary anchors and merge keys still work."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node) -> None:
    size: dict[int, int] = {}  # id(node) -> values in its expansion
    path: set[int] = set()  # the nodes being expanded (ancestors of the current one)
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        kids = _yaml_children(node)
        if children_done:
            path.discard(id(node))
            size[id(node)] = 1 + sum(size[id(k)] for k in kids)
            if size[id(node)] > MAX_YAML_VALUES:
                raise _YamlTooBig(f"aliases expand to more than {MAX_YAML_VALUES} values "
                                  "(an alias bomb?); refused without expanding it")
        elif id(node) in path:
            raise _YamlTooBig("an alias refers to a node that contains it; refused")
        elif id(node) not in size:
            path.add(id(node))
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in size)


def _yaml_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _yaml_error_message(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x)
    return f"pilot.yaml: YAML syntax error{where}: {what or e}"


def _glob_inside(root: Path, pattern: str) -> list[Path]:
    # Symlinks that resolve outside the pilot folder are ignored, like `..` in the pattern.
    root = root.resolve()
    return sorted(p for p in root.glob(pattern) if p.is_file() and p.resolve().is_relative_to(root))


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _fmt_ts(d: datetime) -> str:
    return d.isoformat() + "Z"


class _Validator:
    """Walks the raw mapping, collecting problems instead of stopping at the first."""

    def __init__(self, raw: dict[str, Any], root: Path) -> None:
        self.raw = raw
        self.root = root
        self.problems: list[str] = []
        self.tz: ZoneInfo | None = None

    def fail(self, msg: str) -> None:
        self.problems.append(msg)

    def build(self) -> PilotConfig | None:
        r = self.raw
        pilot = self._pilot(r.get("pilot"))
        tz = self._timezone(r.get("timezone"))
        self.tz = tz
        title = r.get("title", pilot)
        if not isinstance(title, str):
            self.fail(f"title: expected a string, found {type(title).__name__}")
        phases = self._phases(r.get("phases"), tz)
        scope = self._scope(r.get("scope", _MISSING))
        sla = self._sla(r.get("sla"))
        timeout_ms = self._timeout(r.get("timeout_ms"))
        adjustments = self._adjustments(r.get("adjustments", []))
        thresholds = self._thresholds(r.get("thresholds") or {})
        sources = self._sources(r.get("sources"))
        anonymization = self._anonymization(r.get("anonymization", {}))
        whatif = self._whatif(r.get("whatif"))
        if self.problems:
            return None
        return PilotConfig(
            pilot=pilot,
            title=str(title),
            timezone=str(r["timezone"]),
            phases=phases,
            scope=scope,
            sla=sla,
            timeout_ms=timeout_ms,
            adjustments=adjustments,
            thresholds=thresholds,
            sources=sources,
            anonymization=anonymization,
            root=self.root,
            raw=r,
            whatif=whatif,
        )

    def _pilot(self, v: Any) -> str:
        if v is None:
            self.fail("pilot: is required; expected a slug [a-z0-9][a-z0-9-]{0,62}")
        elif not isinstance(v, str) or not SLUG_RE.fullmatch(v):
            self.fail(f"pilot: {v!r} is not a valid slug; expected [a-z0-9][a-z0-9-]{{0,62}}")
        return str(v)

    def _timezone(self, v: Any) -> ZoneInfo | None:
        if v is None:
            self.fail("timezone: is required; expected an IANA name such as 'Europe/Berlin'")
            return None
        try:
            if not isinstance(v, str) or not v:
                raise ValueError
            return ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(
                f"timezone: {v!r} is not a known IANA time zone; "
                "expected a name such as 'Europe/Berlin' or 'UTC'"
            )
            return None

    def _timestamp(self, key: str, v: Any, tz: ZoneInfo | None) -> datetime | None:
        """Aware values are converted to UTC; naive ones are read in the pilot's time zone."""
        if isinstance(v, str):
            try:
                v = datetime.fromisoformat(v.strip())
            except ValueError:
                v = None
        elif isinstance(v, date) and not isinstance(v, datetime):
            v = datetime.combine(v, time())
        if not isinstance(v, datetime):
            self.fail(f"{key}: expected an ISO-8601 timestamp such as 2026-03-02T00:00:00Z")
            return None
        if v.tzinfo is None:
            v = v.replace(tzinfo=tz or UTC)
        return v.astimezone(UTC).replace(tzinfo=None)

    def _phases(self, v: Any, tz: ZoneInfo | None) -> dict[str, Phase]:
        if not isinstance(v, dict):
            self.fail(
                "phases: is required; expected a mapping of phase name to {start, end} "
                "with at least 'baseline' and 'validation'"
            )
            return {}
        phases: dict[str, Phase] = {}
        for name, body in v.items():
            key = f"phases.{name}"
            if not isinstance(body, dict) or "start" not in body or "end" not in body:
                self.fail(f"{key}: expected a mapping with 'start' and 'end'")
                continue
            start = self._timestamp(f"{key}.start", body["start"], tz)
            end = self._timestamp(f"{key}.end", body["end"], tz)
            if start is None or end is None:
                continue
            if end <= start:
                self.fail(
                    f"{key}: end {_fmt_ts(end)} is not after start {_fmt_ts(start)}; "
                    "expected end > start"
                )
                continue
            phases[str(name)] = Phase(start, end)
        for req in REQUIRED_PHASES:
            if req not in v:
                self.fail(f"phases: {req!r} is required (required phases: baseline, validation)")
        ordered = sorted(phases.items(), key=lambda kv: kv[1].start)
        # Ranges are half-open [start, end): a phase may start exactly where another ends.
        for i, (a, pa) in enumerate(ordered):
            for b, pb in ordered[i + 1 :]:
                if pb.start < pa.end:
                    self.fail(
                        f"phases: {a!r} [{_fmt_ts(pa.start)}, {_fmt_ts(pa.end)}) overlaps "
                        f"{b!r} [{_fmt_ts(pb.start)}, {_fmt_ts(pb.end)}); "
                        "phases must not overlap"
                    )
        return phases

    def _scope(self, v: Any) -> Scope:
        if v is _MISSING:
            self.fail(f"scope: is required; {SCOPE_HINT}")
            return Scope("all")
        if v == "all" or v == {"all": True}:
            return Scope("all")
        if not isinstance(v, dict) or len(v) != 1:
            self.fail(f"scope: {v!r} is not a valid rule; {SCOPE_HINT}")
            return Scope("all")
        ((kind, val),) = v.items()
        if kind == "pools":
            if (
                not isinstance(val, list)
                or not val
                or not all(isinstance(p, str) and p for p in val)
            ):
                self.fail(f"scope.pools: expected a non-empty list of pool names, found {val!r}")
                return Scope("all")
            return Scope("pools", pools=tuple(val))
        if kind == "priorities":
            if not isinstance(val, list) or not val:
                self.fail(f"scope.priorities: expected a non-empty list of {', '.join(PRIORITIES)}")
                return Scope("all")
            bad = [p for p in val if p not in PRIORITIES]
            if bad:
                self.fail(
                    f"scope.priorities: unknown priority class {bad[0]!r}; "
                    f"allowed {', '.join(PRIORITIES)}"
                )
                return Scope("all")
            return Scope("priorities", priorities=tuple(val))
        if kind == "share":
            if not _is_number(val) or not 0 < val < 1:
                self.fail(f"scope.share: {val!r} is not a share; expected a number 0 < x < 1")
                return Scope("all")
            return Scope("share", share=float(val))
        self.fail(f"scope: unknown rule {kind!r}; {SCOPE_HINT}")
        return Scope("all")

    def _sla(self, v: Any) -> dict[str, Sla]:
        if not isinstance(v, dict) or not v:
            self.fail(
                "sla: is required; expected a mapping of priority class "
                f"({', '.join(PRIORITIES)}) to {{e2e_ms, ttft_ms}}"
            )
            return {}
        out: dict[str, Sla] = {}
        for cls, body in v.items():
            if cls not in PRIORITIES:
                self.fail(f"sla: unknown priority class {cls!r}; allowed {', '.join(PRIORITIES)}")
                continue
            if not isinstance(body, dict) or "e2e_ms" not in body:
                self.fail(f"sla.{cls}: expected a mapping with 'e2e_ms' (and optional 'ttft_ms')")
                continue
            e2e, ttft = body["e2e_ms"], body.get("ttft_ms")
            ok = True
            if not _is_number(e2e) or e2e <= 0:
                self.fail(f"sla.{cls}.e2e_ms: {e2e!r} is not a latency; expected a number > 0")
                ok = False
            if ttft is not None and (not _is_number(ttft) or ttft <= 0):
                self.fail(f"sla.{cls}.ttft_ms: {ttft!r} is not a latency; expected a number > 0")
                ok = False
            for extra in set(body) - {"e2e_ms", "ttft_ms"}:
                self.fail(f"sla.{cls}: unknown key {extra!r}; allowed e2e_ms, ttft_ms")
                ok = False
            if ok:
                out[cls] = Sla(float(e2e), None if ttft is None else float(ttft))
        return out

    def _timeout(self, v: Any) -> float:
        if v is None:
            self.fail("timeout_ms: is required; expected a number of milliseconds > 0")
            return 0.0
        if not _is_number(v) or v <= 0:
            self.fail(f"timeout_ms: {v!r} is not a timeout; expected a number of milliseconds > 0")
            return 0.0
        return float(v)

    def _adjustments(self, v: Any) -> list[str]:
        if v is None:
            return []
        if not isinstance(v, list):
            self.fail(f"adjustments: expected a list of {', '.join(ADJUSTMENTS)}")
            return []
        out: list[str] = []
        for a in v:
            if a not in ADJUSTMENTS:
                self.fail(
                    f"adjustments: unknown adjustment {a!r}; allowed {', '.join(ADJUSTMENTS)}"
                )
            elif a not in out:
                out.append(a)
        return out

    def _thresholds(self, v: Any) -> dict[str, float]:
        merged = dict(DEFAULT_THRESHOLDS)
        if not isinstance(v, dict):
            self.fail("thresholds: expected a mapping of threshold name to number")
            return merged
        for name, val in v.items():
            if name not in DEFAULT_THRESHOLDS:
                self.fail(
                    f"thresholds: unknown threshold {name!r}; "
                    f"allowed {', '.join(DEFAULT_THRESHOLDS)}"
                )
            elif not _is_number(val) or val <= 0:
                self.fail(f"thresholds.{name}: {val!r} is not valid; expected a number > 0")
            elif name == "sla_target" and val > 1:
                self.fail(f"thresholds.sla_target: {val!r} is not a share; expected 0 < x <= 1")
            elif name == "burst_window_s" and val > MAX_BURST_WINDOW_S:
                # a burst is seconds to minutes; arrival_burstiness sums squared gaps per
                # window in BIGINT on Spark, exact only for windows up to ~50 minutes
                self.fail(f"thresholds.burst_window_s: {val!r} is too long for a burst "
                          f"window; expected 0 < x <= {MAX_BURST_WINDOW_S} seconds")
            else:
                merged[name] = float(val)
        return merged

    def _sources(self, v: Any) -> list[Source]:
        if not isinstance(v, list) or not v:
            self.fail("sources: is required; expected a non-empty list of {kind, path, ...}")
            return []
        out: list[Source] = []
        for i, s in enumerate(v):
            key = f"sources[{i}]"
            if not isinstance(s, dict):
                self.fail(f"{key}: expected a mapping with 'kind' and 'path'")
                continue
            n = len(self.problems)
            kind, table = s.get("kind"), s.get("table")
            if kind is None:
                self.fail(f"{key}.kind: is required; allowed {', '.join(SOURCE_KINDS)}")
            elif kind not in SOURCE_KINDS:
                self.fail(f"{key}.kind: unknown kind {kind!r}; allowed {', '.join(SOURCE_KINDS)}")
            elif kind in ("canonical", "tabular"):
                if table is None:
                    self.fail(
                        f"{key}.table: is required for kind {kind!r}; "
                        f"allowed {', '.join(CANONICAL_TABLES)}"
                    )
                elif table not in CANONICAL_TABLES:
                    self.fail(
                        f"{key}.table: unknown table {table!r}; "
                        f"allowed {', '.join(CANONICAL_TABLES)}"
                    )
            elif table is not None and table != KIND_TABLES[kind]:
                self.fail(f"{key}.table: kind {kind!r} fills {KIND_TABLES[kind]!r}, not {table!r}")
            else:
                table = KIND_TABLES[kind]
            live = kind in LIVE_KINDS
            path = (self._snapshot_path(key, s.get("path", DEFAULT_SNAPSHOT_DIR), out) if live
                    else self._source_path(key, s.get("path")))
            options = s.get("options", {})
            if options is None:
                options = {}
            if not isinstance(options, dict):
                self.fail(f"{key}.options: expected a mapping, found {type(options).__name__}")
            elif live:
                options = self._live_options(f"{key}.options", options)
            if len(self.problems) == n and path is not None:
                out.append(Source(str(kind), path, table, dict(options)))
        return out

    def _source_path(self, key: str, p: Any) -> str | None:
        if not isinstance(p, str) or not p.strip():
            self.fail(f"{key}.path: is required; expected a file or glob relative to {self.root}")
            return None
        norm = posixpath.normpath(p.replace("\\", "/"))
        if p.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", p) or Path(p).is_absolute():
            self.fail(f"{key}.path: {p!r} is absolute; expected a path inside the pilot folder")
            return None
        if norm == ".." or norm.startswith("../"):
            self.fail(f"{key}.path: {p!r} leaves the pilot folder; expected a path inside it")
            return None
        if not _glob_inside(self.root, norm):
            self.fail(f"{key}.path: no file matches {p!r} under {self.root}")
            return None
        return norm

    def _snapshot_path(self, key: str, p: Any, earlier: list[Source]) -> str | None:
        """A live source's snapshot folder: inside the pilot folder, one per source."""
        if not isinstance(p, str) or not p.strip():
            self.fail(f"{key}.path: expected a folder relative to {self.root} for the pulled "
                      f"snapshot (default {DEFAULT_SNAPSHOT_DIR!r})")
            return None
        norm = posixpath.normpath(p.replace("\\", "/"))
        if (p.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", p) or Path(p).is_absolute()
                or norm in (".", "..") or norm.startswith("../") or norm == PILOT_FILE):
            self.fail(f"{key}.path: {p!r} is not a folder inside the pilot folder; expected "
                      f"e.g. {DEFAULT_SNAPSHOT_DIR!r}")
            return None
        if any(c in norm for c in "*?["):
            self.fail(f"{key}.path: {p!r} is a glob; expected the folder the pull writes its "
                      f"snapshot to (default {DEFAULT_SNAPSHOT_DIR!r})")
            return None
        if any(s.kind in LIVE_KINDS and s.path == norm for s in earlier):
            self.fail(f"{key}.path: {norm!r} is the snapshot folder of another source; "
                      "give each prometheus-api source its own path")
            return None
        return norm

    def _live_options(self, key: str, options: dict[str, Any]) -> dict[str, Any]:
        """prometheus-api options checked; `range` normalised to UTC ISO strings."""
        from pipelines.ingest.prometheus_api import option_problems

        for problem in option_problems(key, options):
            self.fail(problem)
        rng = options.get("range")
        if rng is None:
            return dict(options)
        if not isinstance(rng, dict) or set(rng) - {"start", "end"} or not rng:
            self.fail(f"{key}.range: expected {{start, end}} (ISO-8601); default: the "
                      "pilot's phases")
            return dict(options)
        out: dict[str, str] = {}
        for edge in ("start", "end"):
            if edge in rng:
                t = self._timestamp(f"{key}.range.{edge}", rng[edge], self.tz)
                if t is not None:
                    out[edge] = _fmt_ts(t)
        if "start" in out and "end" in out and out["end"] <= out["start"]:
            self.fail(f"{key}.range: end {out['end']} is not after start {out['start']}")
        return {**options, "range": out}

    def _anonymization(self, v: Any) -> Anonymization:
        if v is None or v == {}:
            return Anonymization()
        env = v.get("secret_env") if isinstance(v, dict) else None
        if not isinstance(env, str) or not ENV_NAME_RE.fullmatch(env):
            self.fail(
                "anonymization.secret_env: expected the name of an environment variable "
                "([A-Za-z_][A-Za-z0-9_]*) holding the secret, never the secret itself"
            )
            return Anonymization()
        return Anonymization(env)

    def _whatif(self, v: Any) -> WhatIfModel | None:
        if v is None:
            return None
        if not isinstance(v, dict):
            self.fail("whatif: expected a mapping with service {distribution, mean_s, cv} and "
                      "gpus (or pools)")
            return None
        n = len(self.problems)
        for extra in v.keys() - set(WHATIF_KEYS):
            self.fail(f"whatif: unknown key {extra!r}; allowed {', '.join(WHATIF_KEYS)}")
        service = self._service(v.get("service"))
        pools = self._whatif_pools(v.get("gpus"), v.get("pools"))
        conc = v.get("concurrency_per_gpu", 1)
        if not isinstance(conc, int) or isinstance(conc, bool) or conc < 1:
            self.fail(f"whatif.concurrency_per_gpu: {conc!r} is not valid; expected a whole "
                      "number >= 1 (requests one GPU serves at once)")
        elif pools and sum(pools.values()) * conc > MAX_WHATIF_SLOTS:
            self.fail(f"whatif: gpus x concurrency_per_gpu = {sum(pools.values()) * conc}; "
                      f"expected at most {MAX_WHATIF_SLOTS}")
        priority = v.get("priority")
        if priority is not None and priority not in PRIORITIES:
            self.fail(f"whatif.priority: unknown priority class {priority!r}; "
                      f"allowed {', '.join(PRIORITIES)}")
        if len(self.problems) > n or service is None or not pools:
            return None
        return WhatIfModel(service, tuple(pools.items()), int(conc), priority)

    def _service(self, v: Any) -> ServiceModel | None:
        if not isinstance(v, dict):
            self.fail("whatif.service: is required; expected a mapping {distribution, mean_s, "
                      f"cv}} with distribution one of {', '.join(SERVICE_DISTRIBUTIONS)}")
            return None
        n = len(self.problems)
        for extra in v.keys() - set(SERVICE_KEYS):
            self.fail(f"whatif.service: unknown key {extra!r}; allowed {', '.join(SERVICE_KEYS)}")
        dist, mean, cv = v.get("distribution"), v.get("mean_s"), v.get("cv")
        if dist not in SERVICE_DISTRIBUTIONS:
            self.fail(f"whatif.service.distribution: {dist!r} is not supported; "
                      f"allowed {', '.join(SERVICE_DISTRIBUTIONS)}")
        if not _is_number(mean) or mean <= 0:
            self.fail(f"whatif.service.mean_s: {mean!r} is not a service time; "
                      "expected a number of seconds > 0")
        fixed = FIXED_CV.get(dist) if isinstance(dist, str) else None
        if fixed is not None:
            if cv is not None and (not _is_number(cv) or cv != fixed):
                self.fail(f"whatif.service.cv: {cv!r} does not fit the {dist} distribution "
                          f"(its CV is {fixed:g}); omit cv, or choose lognormal or gamma")
            cv = fixed
        elif dist in SERVICE_DISTRIBUTIONS and (not _is_number(cv) or cv <= 0):
            what = "is required" if cv is None else f"{cv!r} is not a coefficient of variation"
            self.fail(f"whatif.service.cv: {what} for {dist}; expected a number > 0 "
                      "(standard deviation / mean of the service time)")
        scale = v.get("scale_by_tokens", False)
        if not isinstance(scale, bool):
            self.fail(f"whatif.service.scale_by_tokens: {scale!r}; expected true or false")
        if len(self.problems) > n:
            return None
        return ServiceModel(str(dist), float(mean), float(cv), scale)

    def _whatif_pools(self, gpus: Any, pools: Any) -> dict[str, int]:
        def whole(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool) and x >= 1

        if gpus is None and pools is None:
            self.fail("whatif.gpus: is required (or whatif.pools); expected the number of "
                      "GPUs that serve the traffic, a whole number >= 1")
            return {}
        if gpus is not None and not whole(gpus):
            self.fail(f"whatif.gpus: {gpus!r} is not a GPU count; expected a whole number >= 1")
            return {}
        if pools is None:
            return {DEFAULT_WHATIF_POOL: int(gpus)}
        if not isinstance(pools, dict) or not pools:
            self.fail("whatif.pools: expected a mapping of pool name to its GPU count")
            return {}
        out: dict[str, int] = {}
        for name, n in pools.items():
            if not isinstance(name, str) or not name:
                self.fail(f"whatif.pools: {name!r} is not a pool name")
            elif not whole(n):
                self.fail(f"whatif.pools.{name}: {n!r} is not a GPU count; "
                          "expected a whole number >= 1")
            else:
                out[name] = n
        if len(out) != len(pools):
            return {}
        if gpus is not None and gpus != sum(out.values()):
            self.fail(f"whatif.gpus: {gpus} is not the sum of whatif.pools "
                      f"({sum(out.values())}); give one or make them agree")
            return {}
        return out


_MISSING = object()
