"""Source kind `prometheus-api`: pull a pilot's series straight from a running Prometheus.

Observer-only: the one endpoint called is `GET /api/v1/query_range` (read-only). A pull
saves every response, byte for byte as the server sent it, into the pilot's snapshot folder
(`pulled/` by default) as `<n>.json`, with `manifest.json` naming the server, the queries,
each response's window, step and the pull time (never a credential). Ingestion reads the
snapshot, not the server: the responses go through the `prometheus-json` adapter unchanged,
so a pull ingests to exactly the rows its saved files give as files, and a re-run reads the
same snapshot until `stabilis pull` / `stabilis run --refresh` replaces it.

Pulling is robust on purpose: a range is split in windows of at most `max_points` points per
series (Prometheus refuses more than 11,000); each request has a timeout and bounded retries
with exponential backoff on 5xx, 429 and connection errors. A 4xx ends the pull with one line
naming the query; a window still failing after its retries is recorded (quarantined with
the reason) while the others are kept; a server that cannot be reached fails the source.
A failed pull never leaves half a snapshot: the new one is written aside and swapped in whole.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import os
import re
import shutil
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pipelines.ingest.base import LINE, AdapterContext, Parsed, SourceError, rejects_frame
from pipelines.ingest.prom_names import FAMILIES, HISTOGRAMS, SUFFIXES
from pipelines.ingest.prometheus_json import read_prometheus_json

if TYPE_CHECKING:
    from pipelines.config import PilotConfig, Source

KIND = "prometheus-api"
DEFAULT_SNAPSHOT = "pulled"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
QUERY_RANGE = "/api/v1/query_range"
MAX_POINTS = 11_000  # Prometheus refuses a query_range of more points per series
DEFAULT_STEP_S = 60.0
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
RETRY_STATUS = (429, 500, 502, 503, 504)
PROVENANCE_PREFIX = "pulled from "  # the ingest_log note the report's provenance reads
# Every series the vLLM and DCGM adapters map (pipelines/ingest/prom_names.py).
PRESETS: dict[str, tuple[str, ...]] = {
    "vllm+dcgm": (*FAMILIES, *(f"{h}{s}" for h in HISTOGRAMS for s in SUFFIXES)),
}
OPTION_KEYS = ("url", "queries", "preset", "step", "range", "timeout_s", "retries",
               "backoff_s", "max_points", "bearer_token_env", "basic_auth",
               "insecure_skip_verify",
               # label options of the prometheus-json adapter that reads the responses
               "pool_label", "node_label", "gpu_label", "pool", "node", "series")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


class PullError(Exception):
    """The pull of one source failed as a whole; the message is one line."""


# --- options ---------------------------------------------------------------------------------

def parse_duration(v: Any) -> float:
    """Seconds from a number or a Prometheus duration ('30s', '1m', '1h30m', '7d')."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        if math.isfinite(v) and v > 0:
            return float(v)
        raise ValueError(f"{v!r} is not a duration > 0")
    text = str(v).strip()
    parts = DURATION_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{v!r} is not a duration; expected e.g. 30s, 5m, 1h30m, 7d")
    seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{v!r} is not a duration > 0")
    return seconds


@dataclass(frozen=True)
class Query:
    promql: str
    series: str | None = None  # canonical name for results without __name__ (e.g. rate())


@dataclass(frozen=True)
class ApiSpec:
    """A validated `prometheus-api` source."""

    url: str  # base URL, no trailing slash
    queries: tuple[Query, ...]
    step_s: float
    start: datetime | None  # naive UTC; None: the pilot's first phase start
    end: datetime | None  # naive UTC, exclusive; None: its last phase end
    preset: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    backoff_s: float = DEFAULT_BACKOFF_S
    max_points: int = MAX_POINTS
    bearer_token_env: str | None = None
    basic_auth: tuple[str, str] | None = None  # (username env, password env)
    insecure_skip_verify: bool = False


def option_problems(key: str, o: dict[str, Any]) -> list[str]:
    """Every problem of a prometheus-api source's options (`range` is checked by config)."""
    out: list[str] = []
    for extra in sorted(set(o) - set(OPTION_KEYS)):
        out.append(f"{key}: unknown option {extra!r}; allowed {', '.join(OPTION_KEYS)}")
    url = o.get("url")
    if not isinstance(url, str) or not url.strip():
        out.append(f"{key}.url: is required; expected the server's base URL, e.g. "
                   "http://prometheus:9090")
    else:
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            out.append(f"{key}.url: {url!r} is not an http(s) URL with a host")
        elif parts.username or parts.password:
            out.append(f"{key}.url: credentials in the URL are refused; name environment "
                       "variables in options.basic_auth or options.bearer_token_env")
        elif parts.query or parts.fragment:
            out.append(f"{key}.url: {url!r} has a query or fragment; expected a base URL")
    preset, queries = o.get("preset"), o.get("queries")
    if preset is None and queries is None:
        out.append(f"{key}: expected queries (a list of PromQL) or preset "
                   f"({', '.join(PRESETS)})")
    if preset is not None and preset not in PRESETS:
        out.append(f"{key}.preset: unknown preset {preset!r}; allowed {', '.join(PRESETS)}")
    if queries is not None:
        if not isinstance(queries, list) or not queries:
            out.append(f"{key}.queries: expected a non-empty list of PromQL strings or "
                       "{query, series} mappings")
        else:
            for n, q in enumerate(queries):
                if isinstance(q, dict):
                    ok = (isinstance(q.get("query"), str) and q["query"].strip()
                          and set(q) <= {"query", "series"}
                          and (q.get("series") is None or isinstance(q["series"], str)))
                else:
                    ok = isinstance(q, str) and q.strip()
                if not ok:
                    out.append(f"{key}.queries[{n}]: expected a PromQL string or "
                               "{query, series}")
    for name, lo, hi in (("step", 0.001, 86400.0), ("timeout_s", 0.001, 3600.0),
                         ("backoff_s", 0.0, 60.0)):
        if name in o:
            try:
                v = parse_duration(o[name]) if name == "step" else float(o[name])
                if not lo <= v <= hi or isinstance(o[name], bool):
                    raise ValueError
            except (TypeError, ValueError):
                out.append(f"{key}.{name}: {o[name]!r}; expected a duration between {lo:g} "
                           f"and {hi:g} s")
    for name, lo, hi in (("retries", 0, 10), ("max_points", 2, MAX_POINTS)):
        v = o.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi):
            out.append(f"{key}.{name}: {v!r}; expected a whole number from {lo} to {hi}")
    env = o.get("bearer_token_env")
    if env is not None and not (isinstance(env, str) and ENV_NAME_RE.fullmatch(env)):
        out.append(f"{key}.bearer_token_env: expected the NAME of an environment variable "
                   "holding the token, never the token itself")
    auth = o.get("basic_auth")
    if auth is not None:
        if (not isinstance(auth, dict) or set(auth) != {"username_env", "password_env"}
                or not all(isinstance(v, str) and ENV_NAME_RE.fullmatch(v)
                           for v in auth.values())):
            out.append(f"{key}.basic_auth: expected {{username_env, password_env}}: the NAMES "
                       "of environment variables, never the credentials themselves")
        elif env is not None:
            out.append(f"{key}: give basic_auth or bearer_token_env, not both")
    skip = o.get("insecure_skip_verify", False)
    if not isinstance(skip, bool):
        out.append(f"{key}.insecure_skip_verify: {skip!r}; expected true or false")
    return out


def api_spec(options: dict[str, Any]) -> ApiSpec:
    """The spec of validated options (config.py has checked them and normalised `range`)."""
    o = options
    queries = [Query(name) for name in PRESETS.get(str(o.get("preset")), ())]
    for q in o.get("queries") or []:
        queries.append(Query(q["query"].strip(), q.get("series")) if isinstance(q, dict)
                       else Query(str(q).strip()))
    rng = o.get("range") or {}
    auth = o.get("basic_auth")
    return ApiSpec(
        url=str(o["url"]).strip().rstrip("/"),
        queries=tuple(dict.fromkeys(queries)),  # a query listed twice is pulled once
        step_s=parse_duration(o.get("step", DEFAULT_STEP_S)),
        start=_naive(rng.get("start")), end=_naive(rng.get("end")),
        preset=o.get("preset"),
        timeout_s=float(o.get("timeout_s", DEFAULT_TIMEOUT_S)),
        retries=int(o.get("retries", DEFAULT_RETRIES)),
        backoff_s=float(o.get("backoff_s", DEFAULT_BACKOFF_S)),
        max_points=int(o.get("max_points", MAX_POINTS)),
        bearer_token_env=o.get("bearer_token_env"),
        basic_auth=(auth["username_env"], auth["password_env"]) if auth else None,
        insecure_skip_verify=bool(o.get("insecure_skip_verify", False)),
    )


def _naive(v: Any) -> datetime | None:
    if v is None:
        return None
    d = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    return d.astimezone(UTC).replace(tzinfo=None) if d.tzinfo else d


def _iso(d: datetime) -> str:
    frac = f".{d.microsecond:06d}" if d.microsecond else ""
    return f"{d:%Y-%m-%dT%H:%M:%S}{frac}Z"


def _unix(d: datetime) -> float:
    return d.replace(tzinfo=UTC).timestamp()


# --- windows ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """Points k in [first, last] of the grid start + k * step, k counted from the range start."""

    index: int
    first: int
    last: int


def windows(points: int, max_points: int) -> list[Window]:
    """The grid's points 0..points-1 in windows of at most `max_points` points each."""
    return [Window(j, k, min(k + max_points, points) - 1)
            for j, k in enumerate(range(0, points, max_points))]


def grid_points(start: datetime, end: datetime, step_s: float) -> int:
    """Evaluation times start + k * step that fall in [start, end)."""
    span = (end - start).total_seconds()
    return max(0, math.ceil(span / step_s - 1e-9))


# --- HTTP ------------------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the Authorization header to another address: refuse it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ARG002
        raise urllib.error.HTTPError(req.full_url, code, f"redirected to {newurl}; set "
                                     "options.url to the final address", headers, fp)


@dataclass
class _Client:
    spec: ApiSpec
    headers: dict[str, str]
    opener: urllib.request.OpenerDirector
    sleep: Callable[[float], None] = time.sleep
    requests: int = 0

    @classmethod
    def of(cls, spec: ApiSpec) -> _Client:
        ctx = ssl.create_default_context()
        if spec.insecure_skip_verify:  # an explicit opt-out in pilot.yaml
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                             _NoRedirect())
        return cls(spec, _auth_headers(spec), opener)

    def query_range(self, q: Query, start: float, end: float) -> bytes:
        """The response body of one window (status success), after bounded retries.

        Raises PullError for a 4xx (names the query) and for a server that cannot be
        reached; _WindowFailed for a window the server could not execute (422) or that
        still fails with 5xx/429 after the retries."""
        params = urllib.parse.urlencode({"query": q.promql, "start": f"{start:.3f}",
                                         "end": f"{end:.3f}", "step": f"{self.spec.step_s:g}"})
        url = f"{self.spec.url}{QUERY_RANGE}?{params}"
        last = ""
        for attempt in range(self.spec.retries + 1):
            if attempt:
                self.sleep(min(self.spec.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
            self.requests += 1
            req = urllib.request.Request(url, headers={"Accept": "application/json",
                                                        **self.headers})
            try:
                with self.opener.open(req, timeout=self.spec.timeout_s) as resp:
                    body = resp.read()
                doc = json.loads(body)
            except urllib.error.HTTPError as e:
                detail = _error_detail(e)
                if e.code == 422:  # the query is valid; this window could not be executed
                    raise _WindowFailed(f"HTTP 422{detail}") from None
                if e.code in RETRY_STATUS:
                    last = f"HTTP {e.code}{detail}"
                    continue
                raise PullError(f"query {_short(q.promql)!r}: HTTP {e.code}{detail}"
                                f"{_auth_hint(e.code, self.spec)}") from None
            except (urllib.error.URLError, OSError, json.JSONDecodeError, ValueError) as e:
                last = _conn_reason(e)  # refused, reset, timed out, cut short mid-body
                if attempt == self.spec.retries:
                    raise PullError(f"server {self.spec.url} unreachable after "
                                    f"{attempt + 1} attempts: {last}") from None
                continue
            if not isinstance(doc, dict) or doc.get("status") != "success":
                raise PullError(f"query {_short(q.promql)!r}: not a successful Prometheus API "
                                f"response: {_short(str(doc)[:200])}")
            return body
        raise _WindowFailed(f"{last} after {self.spec.retries + 1} attempts")


class _WindowFailed(Exception):
    pass


def _auth_headers(spec: ApiSpec) -> dict[str, str]:
    """Authorization from the environment variables pilot.yaml names (never stored)."""
    def env(name: str, what: str) -> str:
        value = os.environ.get(name)
        if not value:
            raise PullError(f"options.{what} names the environment variable {name}, "
                            "which is unset or empty")
        return value

    if spec.bearer_token_env:
        return {"Authorization": f"Bearer {env(spec.bearer_token_env, 'bearer_token_env')}"}
    if spec.basic_auth:
        user = env(spec.basic_auth[0], "basic_auth.username_env")
        password = env(spec.basic_auth[1], "basic_auth.password_env")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def _error_detail(e: urllib.error.HTTPError) -> str:
    """': errorType: error' from a Prometheus error body, else the reason phrase."""
    try:
        doc = json.loads(e.read(4096) or b"null")
    except (ValueError, OSError):
        doc = None
    if isinstance(doc, dict) and doc.get("error"):
        kind = f"{doc.get('errorType')}: " if doc.get("errorType") else ""
        return ": " + _short(f"{kind}{doc['error']}")
    return f" {e.reason}" if e.reason else ""


def _auth_hint(code: int, spec: ApiSpec) -> str:
    if code not in (401, 403):
        return ""
    if spec.basic_auth:
        return (f" (check the credentials in ${spec.basic_auth[0]} / ${spec.basic_auth[1]}, "
                "named by options.basic_auth)")
    if spec.bearer_token_env:
        return f" (check the token in ${spec.bearer_token_env}, named by options.bearer_token_env)"
    return " (the server wants credentials: name their environment variables in " \
           "options.basic_auth or options.bearer_token_env)"


def _conn_reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        e = e.reason if isinstance(e.reason, BaseException) else e
    if isinstance(e, json.JSONDecodeError):
        return "the response was cut short (invalid JSON)"
    return _short(f"{type(e).__name__}: {e}" if not str(e).startswith("[Errno") else str(e))


def _short(text: str, n: int = 240) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


# --- pulling ---------------------------------------------------------------------------------

@dataclass
class PullResult:
    source_index: int
    folder: Path
    responses: int = 0
    kept: int = 0  # responses kept from the previous snapshot (--since)
    failed_windows: int = 0
    requests: int = 0
    seconds: float = 0.0
    error: str | None = None  # the pull failed as a whole (one line)
    skipped: bool = False  # a snapshot was there and no refresh was asked
    notes: list[str] = field(default_factory=list)


def api_sources(cfg: PilotConfig) -> list[int]:
    return [i for i, s in enumerate(cfg.sources) if s.kind == KIND]


def snapshot_dir(cfg: PilotConfig, i: int) -> Path:
    return cfg.root / cfg.sources[i].path


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def ensure_snapshots(cfg: PilotConfig, *, refresh: bool = False, since_s: float | None = None,
                     now: datetime | None = None) -> list[PullResult]:
    """Pull every prometheus-api source of the pilot that has no snapshot yet, or only a
    failed one (all of them with `refresh`; with `since_s`, only the windows of the last
    `since_s` seconds)."""
    out = []
    for i in api_sources(cfg):
        folder = snapshot_dir(cfg, i)
        have = read_manifest(folder)
        # a snapshot that holds only a failed pull has nothing to read: try again
        if not refresh and since_s is None and have is not None and not have.get("error"):
            out.append(PullResult(i, folder, skipped=True))
            continue
        out.append(pull_source(cfg, i, since_s=since_s, now=now))
    return out


def pull_source(cfg: PilotConfig, i: int, *, since_s: float | None = None,
                now: datetime | None = None,
                on_response: Callable[[int], None] | None = None) -> PullResult:
    """Pull source `i` into its snapshot folder; never raises on a server's failure.

    `on_response(n)` is called after the n-th response is saved (tests stop the server
    there, mid-pull)."""
    t0 = time.perf_counter()
    folder = snapshot_dir(cfg, i)
    result = PullResult(i, folder)
    spec = api_spec(cfg.sources[i].options)
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    start, end = _pull_range(cfg, spec)
    end_now = min(end, now)  # a live pilot: nothing past now yet
    points = grid_points(start, end_now, spec.step_s)
    wins = windows(points, spec.max_points)
    pulled_at = _iso(now.replace(microsecond=0))
    header = {"version": MANIFEST_VERSION, "kind": KIND, "source_index": i,
              "server": spec.url, "preset": spec.preset,
              "queries": [{"query": q.promql, "series": q.series} for q in spec.queries],
              "step_s": spec.step_s, "max_points": spec.max_points,
              "range": {"start": _iso(start), "end": _iso(end)},
              "pulled_until": _iso(end_now), "pulled_at": pulled_at,
              "since_s": since_s}
    old = read_manifest(folder)
    keep = _kept_responses(old, header, start, spec, now, since_s)
    tmp = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    responses: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    try:
        if points == 0:
            raise PullError(f"range {_iso(start)} to {_iso(end)} has not started yet "
                            f"(now {_iso(now)}); nothing to pull")
        client = _Client.of(spec)
        for qi, q in enumerate(spec.queries):
            for w in wins:
                w_start = start + timedelta(seconds=w.first * spec.step_s)
                w_end = start + timedelta(seconds=w.last * spec.step_s)
                entry = {"query_index": qi, "query": q.promql, "series": q.series,
                         "window": w.index, "start": _iso(w_start), "end": _iso(w_end),
                         "points": w.last - w.first + 1}
                n = len(responses) + 1
                old_file = keep.get((qi, w.index, w.first, w.last))
                if old_file is not None:
                    shutil.copyfile(folder / old_file["file"], tmp / f"{n}.json")
                    responses.append({**old_file, "file": f"{n}.json"})
                    result.kept += 1
                    continue
                try:
                    body = client.query_range(q, _unix(w_start), _unix(w_end))
                except _WindowFailed as e:
                    failed.append({**entry, "error": str(e)})
                    continue
                (tmp / f"{n}.json").write_bytes(body)
                responses.append({**entry, "file": f"{n}.json", "pulled_at": pulled_at,
                                  "bytes": len(body)})
                if on_response is not None:
                    on_response(len(responses))
        result.requests = client.requests
        if not responses and failed:
            raise PullError(f"every window failed; first: query {_short(failed[0]['query'])!r} "
                            f"{failed[0]['start']} to {failed[0]['end']}: {failed[0]['error']}")
        _write_json(tmp / MANIFEST, {**header, "responses": responses,
                                     "failed_windows": failed, "error": None})
        _swap(tmp, folder)
    except PullError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        result.error = str(e)
        _record_failure(folder, old, header, str(e))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.responses = len(responses) if result.error is None else 0
    result.failed_windows = len(failed) if result.error is None else 0
    result.seconds = time.perf_counter() - t0
    return result


def _pull_range(cfg: PilotConfig, spec: ApiSpec) -> tuple[datetime, datetime]:
    starts = [p.start for p in cfg.phases.values()]
    ends = [p.end for p in cfg.phases.values()]
    return spec.start or min(starts), spec.end or max(ends)


def _kept_responses(old: dict[str, Any] | None, header: dict[str, Any], start: datetime,
                    spec: ApiSpec, now: datetime, since_s: float | None
                    ) -> dict[tuple[int, int, int, int], dict[str, Any]]:
    """With --since, the previous snapshot's complete windows that end before the cut, by
    (query, window, first point, last point); they are copied, not pulled again. Nothing
    is kept when the snapshot was made with other settings (server, queries, step, grid)."""
    if since_s is None or not old or old.get("error"):
        return {}
    same = all(old.get(k) == header[k] for k in ("server", "queries", "step_s", "max_points",
                                                   "range"))
    if not same:
        return {}
    cut = now - timedelta(seconds=since_s)
    per_window = spec.max_points * spec.step_s
    first_repulled = max(0, math.floor((cut - start).total_seconds() / per_window))
    out = {}
    for r in old.get("responses") or []:
        try:
            w, first = int(r["window"]), round((_naive(r["start"]) - start).total_seconds()
                                               / spec.step_s)
            last = first + int(r["points"]) - 1
        except (KeyError, TypeError, ValueError):
            continue
        # matched against the new grid's windows: a window cut short by the previous pull's
        # `now` no longer matches and is pulled again
        if w < first_repulled:
            out[(int(r["query_index"]), w, first, last)] = r
    return out


def _record_failure(folder: Path, old: dict[str, Any] | None, header: dict[str, Any],
                    why: str) -> None:
    """A failed pull keeps the previous snapshot (its manifest notes the failure); with no
    previous snapshot it writes one that holds only the failure, so ingestion fails this
    source with that line instead of finding nothing."""
    if old is not None and not old.get("error"):
        _write_json(folder / MANIFEST, {**old, "last_refresh": {"at": header["pulled_at"],
                                                                "error": why}})
        return
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.json"):
        stale.unlink()
    _write_json(folder / MANIFEST, {**header, "responses": [], "failed_windows": [],
                                    "error": why})


def _swap(new: Path, folder: Path) -> None:
    """Replace `folder` by `new` (the old one is removed only once the new one is in place)."""
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    new.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


# --- reading a snapshot ----------------------------------------------------------------------

def snapshot_files(root: Path, rel: str) -> list[Path]:
    """The manifest first, then the responses in pull order (1.json, 2.json, ...)."""
    folder = (root / rel).resolve()
    if not folder.is_relative_to(root.resolve()) or not folder.is_dir():
        return []
    numbered = sorted((p for p in folder.glob("*.json") if p.stem.isdigit()),
                      key=lambda p: int(p.stem))
    manifest = folder / MANIFEST
    files = ([manifest] if manifest.is_file() else []) + numbered
    return [p for p in files if p.is_file() and p.resolve().is_relative_to(root.resolve())]


def read_prometheus_api(path: Path, source: Source, ctx: AdapterContext) -> Iterator[Parsed]:
    """The adapter of `prometheus-api`: a response is read by the prometheus-json adapter
    (a query's `series` names results without __name__); the manifest gives no rows, only
    the provenance note, and one quarantined record per window that could not be pulled."""
    st = (path.parent / MANIFEST).stat() if (path.parent / MANIFEST).is_file() else None
    manifest = _cached_manifest(str(path.parent), st.st_mtime_ns if st else 0,
                                st.st_size if st else 0)
    if path.name == MANIFEST:
        yield _manifest_parsed(path, manifest)
        return
    entry = next((r for r in (manifest or {}).get("responses") or []
                  if r.get("file") == path.name), None)
    if entry and entry.get("series"):
        source = replace(source, options={**source.options, "series": entry["series"]})
    yield from read_prometheus_json(path, source, ctx)


@functools.lru_cache(maxsize=4)
def _cached_manifest(folder: str, mtime_ns: int, size: int) -> dict[str, Any] | None:
    """The manifest, read once per snapshot rather than once per response file."""
    del mtime_ns, size  # the cache key: a new pull is a new manifest
    return read_manifest(Path(folder))


def provenance_note(m: dict[str, Any]) -> str:
    """One line: server, pull time, queries, step, range, responses."""
    q = m.get("queries") or []
    what = f"preset {m['preset']}" if m.get("preset") else "listed in pilot.yaml"
    extra = len(q) - len(PRESETS.get(str(m.get("preset")), ()))
    if m.get("preset") and extra > 0:
        what += f" + {extra} listed"
    return (f"{PROVENANCE_PREFIX}{m.get('server')} at {m.get('pulled_at')}: {len(q)} queries "
            f"({what}), step {m.get('step_s'):g} s, {m.get('range', {}).get('start')} to "
            f"{m.get('pulled_until')}, {len(m.get('responses') or [])} responses")


def _manifest_parsed(path: Path, m: dict[str, Any] | None) -> Parsed:
    if m is None:
        raise SourceError(f"{MANIFEST}: unreadable; run `stabilis pull` to pull the snapshot "
                          "again")
    if m.get("error"):
        raise SourceError(f"pull failed: {m['error']}")
    notes = [provenance_note(m)]
    refresh = m.get("last_refresh")
    if isinstance(refresh, dict) and refresh.get("error"):
        notes.append(f"refresh at {refresh.get('at')} failed, this snapshot is from "
                     f"{m.get('pulled_at')}: {refresh['error']}")
    failed = m.get("failed_windows") or []
    if failed:
        notes.append(f"{len(failed)} window(s) could not be pulled; their points are missing "
                     "(quarantined, one record per window)")
    rejects = rejects_frame([
        (n, "window", f"pull failed: {_short(str(f.get('error')), 150)}",
         f"{f.get('query')} [{f.get('start')}, {f.get('end')}]")
        for n, f in enumerate(failed, start=1)])
    return Parsed("samples", _empty_samples(), rejects, len(failed), notes=notes)


def _empty_samples() -> pl.DataFrame:
    return pl.DataFrame(schema={"ts": pl.Datetime("us"), "series": pl.String,
                                "pool": pl.String, "node": pl.String, "gpu": pl.String,
                                "value": pl.Float64, "le": pl.Float64, LINE: pl.Int64})
