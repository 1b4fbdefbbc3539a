"""`prometheus-api` sources against a real Prometheus (issue 18): one server per module
(tests/prom_server.py: series backfilled by promtool, basic auth on, 127.0.0.1, a free port),
skipped with the reason where `prometheus`/`promtool` are not installed.

Covered: a pull to a report; the same rows as the saved files ingested as files; a range
split under the points-per-series limit (a lowered `max_points`, and the server's own
11,000); an incremental `--since` pull; a window the server cannot execute; the server
stopped mid-pull and a server that is down (one line, that source fails alone, nothing of
it in the warehouse); a 400 naming the query; credentials required, wrong or unset.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import weasyprint
from typer.testing import CliRunner

from pipelines.anonymize import Anonymizer
from pipelines.cli import app
from pipelines.config import PilotConfigError, load_pilot
from pipelines.ingest.load import IngestSummary, ingest_pilot
from pipelines.ingest.prometheus_api import MANIFEST, PRESETS, ensure_snapshots, pull_source
from pipelines.landing import inspect_pilot
from tests import prom_server
from tests.pilot_kinds import prom_range_bare, write_yaml
from tests.prom_server import HOUR, T0, PromServer
from tests.test_pilot_matrix import PLACEHOLDER, placeholder_pdf

USER, PASSWORD = "stabilis", "prom-test-password-7f3a9c"
AUTH = {"username_env": "PROM_USER", "password_env": "PROM_PASSWORD"}
PHASES = {"baseline": {"start": "2026-03-02T00:00:00Z", "end": "2026-03-02T00:30:00Z"},
          "validation": {"start": "2026-03-02T00:30:00Z", "end": "2026-03-02T01:00:00Z"}}
PRESET = {"preset": "vllm+dcgm", "step": "30s"}
FAST = {"retries": 1, "backoff_s": 0.01, "timeout_s": 5}  # a dead server fails quickly
SECRET = "stabilis-test-secret-not-for-real-pilots"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    why = prom_server.missing()
    if why:
        pytest.skip(why)
    if prom_server.bcrypt_hash("probe") is None:
        pytest.skip("no bcrypt in this C library's crypt(): cannot write the server's "
                    "basic_auth_users")
    s = prom_server.start_server(tmp_path_factory.mktemp("prometheus"), {USER: PASSWORD})
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROM_USER", USER)
    monkeypatch.setenv("PROM_PASSWORD", PASSWORD)
    monkeypatch.setenv("STABILIS_WHATIF_SEEDS", "1")


def api_pilot(landing: Path, slug: str, url: str, extra: list[dict[str, Any]] | None = None,
              auth: dict[str, str] | None = AUTH, **options: Any) -> Path:
    folder = landing / slug
    folder.mkdir(parents=True, exist_ok=True)
    opts = {"url": url, **({"basic_auth": auth} if auth else {}), **options}
    write_yaml(folder, slug, [{"kind": "prometheus-api", "options": opts}, *(extra or [])],
               phases=PHASES)
    return folder


def ingest(warehouse: Path, folder: Path) -> IngestSummary:
    with duckdb.connect(str(warehouse)) as con:
        return ingest_pilot(con, load_pilot(folder), Anonymizer(SECRET.encode()))


def samples_differ(warehouse: Path, a: str, b: str) -> tuple[int, int, int]:
    """(rows of a, rows of b, rows in one and not the other)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        def n(p: str) -> int:
            return con.execute("SELECT count(*) FROM samples WHERE pilot = ?", [p]).fetchone()[0]

        diff = con.execute(
            """SELECT count(*) FROM (
                 (SELECT * EXCLUDE (pilot) FROM samples WHERE pilot = $a
                  EXCEPT ALL SELECT * EXCLUDE (pilot) FROM samples WHERE pilot = $b)
                 UNION ALL
                 (SELECT * EXCLUDE (pilot) FROM samples WHERE pilot = $b
                  EXCEPT ALL SELECT * EXCLUDE (pilot) FROM samples WHERE pilot = $a))""",
            {"a": a, "b": b}).fetchone()[0]
        return n(a), n(b), diff


def manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "pulled" / MANIFEST).read_text())


@pytest.fixture(scope="module")
def pulled(server: PromServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pilot pulled once with the vLLM + DCGM preset (an hour, 30 s step)."""
    folder = api_pilot(tmp_path_factory.mktemp("data") / "landing", "prom-api", server.url,
                       **PRESET)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROM_USER", USER)
        mp.setenv("PROM_PASSWORD", PASSWORD)
        result = pull_source(load_pilot(folder), 0)
    assert result.error is None, result.error
    print(f"pull of the preset, one hour at 30 s: {result.seconds:.2f} s, "
          f"{result.requests} requests")
    return folder


def test_pull_reaches_a_report(pulled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = pulled.parent.parent
    monkeypatch.setenv("STABILIS_DATA_DIR", str(data))
    # the HTML is checked here; the PDF's layout, made from the same HTML, in
    # tests/test_pilot_matrix.py (PDF_KIND) and tests/test_report*.py
    monkeypatch.setattr(weasyprint.HTML, "write_pdf", placeholder_pdf)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    before = manifest(pulled)
    out = CliRunner().invoke(app, ["run", "prom-api", "--refresh"])  # pulls again, then runs
    assert out.exit_code == 0, out.stderr
    assert "pilot prom-api: pull: source 0 (prometheus-api): 24 responses (24 requests)" in (
        out.stdout)
    m = manifest(pulled)
    assert m["pulled_at"] >= before["pulled_at"] and m["error"] is None
    assert m["server"].startswith("http://127.0.0.1:") and not m["failed_windows"]
    assert [r["query"] for r in m["responses"]] == list(PRESETS["vllm+dcgm"])
    assert m["range"] == {"start": "2026-03-02T00:00:00Z", "end": "2026-03-02T01:00:00Z"}
    saved = "".join(p.read_text() for p in (pulled / "pulled").iterdir())
    assert PASSWORD not in saved and "PROM_PASSWORD" not in saved  # no credential, no name

    assert (data / "reports" / "prom-api" / "report.html").stat().st_size > 10_000
    assert (data / "reports" / "prom-api" / "report.pdf").read_bytes() == PLACEHOLDER
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        coverage = dict(con.execute("SELECT item, status FROM measurement_coverage "
                                    "WHERE pilot = 'prom-api'").fetchall())
        notes = con.execute("SELECT warnings FROM ingest_log WHERE pilot = 'prom-api' "
                            "AND file = 'pulled/manifest.json'").fetchone()[0]
        config = con.execute("SELECT config_json FROM pilots WHERE pilot = 'prom-api'"
                             ).fetchone()[0]
    # what the prom-range kind of the pilot matrix asserted, here from a live pull
    assert coverage["gpu_nominal_util"] == "measured"
    assert coverage["queue_depth"] == "measured"
    assert coverage["latency_quantiles"] == "approximate"
    assert notes[0].startswith(f"pulled from {m['server']} at {m['pulled_at']}: 24 queries")
    assert PASSWORD not in config


def test_same_rows_as_the_saved_files(pulled: Path, tmp_path: Path) -> None:
    twin = tmp_path / "landing" / "prom-files"
    (twin / "files").mkdir(parents=True)
    for p in (pulled / "pulled").glob("[0-9]*.json"):
        shutil.copy(p, twin / "files" / p.name)
    write_yaml(twin, "prom-files", [{"kind": "prometheus-json", "path": "files/*.json"}],
               phases=PHASES)
    wh = tmp_path / "w.duckdb"
    ingest(wh, pulled)
    ingest(wh, twin)
    a, b, diff = samples_differ(wh, "prom-api", "prom-files")
    assert a == b and a > 10_000 and diff == 0, (a, b, diff)


def test_range_split_under_the_points_limit(pulled: Path, server: PromServer,
                                            tmp_path: Path) -> None:
    # a lowered limit: 120 points of 30 s -> windows of 50, 50 and 20 points per query
    split = api_pilot(tmp_path / "landing", "prom-split", server.url, max_points=50, **PRESET)
    r = pull_source(load_pilot(split), 0)
    assert r.error is None and r.requests == 3 * 24 and r.responses == 72
    points = {len(s["values"]) for f in (split / "pulled").glob("[0-9]*.json")
              for s in json.loads(f.read_text())["data"]["result"]}
    assert max(points) == 50 and min(points) == 20
    wh = tmp_path / "w.duckdb"
    ingest(wh, pulled)
    ingest(wh, split)
    a, b, diff = samples_differ(wh, "prom-api", "prom-split")
    assert a == b and diff == 0, (a, b, diff)

    # the server's own limit: an hour at 0.25 s is 14,400 points, refused in one query
    hour = {"query": "vllm:num_requests_waiting", "start": T0.timestamp(),
            "end": (T0 + HOUR).timestamp() - 0.25, "step": 0.25}
    req = urllib.request.Request(
        f"{server.url}/api/v1/query_range?{urllib.parse.urlencode(hour)}",
        headers=server.auth_header())
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 400 and b"11,000 points" in refused.value.read()
    fine = api_pilot(tmp_path / "landing", "prom-fine", server.url, step="250ms",
                     queries=["vllm:num_requests_waiting"])
    r = pull_source(load_pilot(fine), 0)
    assert r.error is None and r.responses == 2
    windows = [(w["points"], w["start"], w["end"]) for w in manifest(fine)["responses"]]
    assert windows == [(11_000, "2026-03-02T00:00:00Z", "2026-03-02T00:45:49.750000Z"),
                       (3_400, "2026-03-02T00:45:50Z", "2026-03-02T00:59:59.750000Z")]


def test_since_pulls_only_the_tail(pulled: Path, server: PromServer, tmp_path: Path) -> None:
    live = api_pilot(tmp_path / "landing", "prom-live", server.url, max_points=50, **PRESET)
    cfg = load_pilot(live)
    # the pilot is live: at 00:45 the grid has 90 points (windows 0-49, 50-89) ...
    first = pull_source(cfg, 0, now=T0 + timedelta(minutes=45))
    assert first.error is None and first.responses == 48
    # ... at 01:00, `--since 30m` keeps window 0 and pulls 50-99 and 100-119 again
    tail = pull_source(cfg, 0, now=T0 + HOUR, since_s=1800)
    assert tail.error is None and (tail.kept, tail.requests, tail.responses) == (24, 48, 72)
    wh = tmp_path / "w.duckdb"
    ingest(wh, pulled)
    ingest(wh, live)
    a, b, diff = samples_differ(wh, "prom-api", "prom-live")
    assert a == b and diff == 0, (a, b, diff)


def test_a_window_the_server_cannot_execute_is_quarantined(server: PromServer,
                                                           tmp_path: Path) -> None:
    # stabilis_test_b joins at 00:30: the second window has two series with one label set
    q = {"query": 'rate({__name__=~"stabilis_test_.*"}[5m])', "series": "test_rate"}
    folder = api_pilot(tmp_path / "landing", "prom-window", server.url, step="30s",
                       max_points=60, queries=[q])
    r = pull_source(load_pilot(folder), 0)
    assert r.error is None and (r.responses, r.failed_windows) == (1, 1)
    summary = ingest(tmp_path / "w.duckdb", folder)
    assert not summary.failed_sources
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT series, count(*) FROM samples GROUP BY 1").fetchall()
        bad = con.execute("SELECT file, field, reason, value FROM quarantine").fetchall()
    assert rows == [("test_rate", 60)]
    assert bad == [("pulled/manifest.json", "window",
                    "pull failed: HTTP 422: execution: vector cannot contain metrics with the "
                    "same labelset", f"{q['query']} [2026-03-02T00:30:00Z, "
                    "2026-03-02T00:59:30Z]")]
    assert any("1 window(s) could not be pulled" in w for _, _, w in summary.warnings)


def _two_sources(landing: Path, slug: str, url: str) -> Path:
    """A live source plus a file source: the file must load whatever the server does."""
    folder = landing / slug
    folder.mkdir(parents=True)
    prom_range_bare(folder / "range.json")
    return api_pilot(landing, slug, url, [{"kind": "prometheus-json", "path": "range.json"}],
                     **PRESET, **FAST)


def _only_the_file_source_landed(warehouse: Path, summary: IngestSummary, why: str) -> None:
    assert summary.failed_sources == [(0, "pulled/manifest.json", f"pull failed: {why}")]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        logged = con.execute("SELECT source_index, count(*), sum(rows_stored) FROM ingest_log "
                             "GROUP BY 1").fetchall()
        series = {r[0] for r in con.execute("SELECT DISTINCT series FROM samples").fetchall()}
        bad = con.execute("SELECT source_index, file, reason FROM quarantine").fetchall()
    assert logged == [(1, 1, 1200)]  # the file source: 8 GPUs + 2 pools, 120 points each
    assert series == {"gpu_util", "queue_waiting"}
    assert bad == [(0, "pulled/manifest.json", f"pull failed: {why}")]


def test_server_stopped_mid_pull(server: PromServer, tmp_path: Path) -> None:
    folder = _two_sources(tmp_path / "landing", "prom-stop", server.url)
    url = server.url
    try:
        r = pull_source(load_pilot(folder), 0,
                        on_response=lambda n: server.stop() if n == 3 else None)
    finally:
        server.start()  # the next tests need it (on a new port)
    why = f"server {url} unreachable after 2 attempts: [Errno 111] Connection refused"
    assert r.error == why
    assert sorted(p.name for p in (folder / "pulled").iterdir()) == [MANIFEST]
    assert not list(folder.glob(".pulled*"))  # nothing half-written left aside
    wh = tmp_path / "w.duckdb"
    _only_the_file_source_landed(wh, ingest(wh, folder), why)


def test_server_down_one_line_and_the_rest_goes_on(pulled: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("STABILIS_DATA_DIR", str(data))
    url = f"http://127.0.0.1:{prom_server.free_port()}"
    folder = _two_sources(data / "landing", "prom-down", url)
    out = CliRunner().invoke(app, ["pull", "prom-down"])
    why = f"server {url} unreachable after 2 attempts: [Errno 111] Connection refused"
    assert out.exit_code == 1
    assert out.stderr.strip() == f"error: pilot prom-down: pull: source 0 (prometheus-api): {why}"
    wh = tmp_path / "w.duckdb"
    _only_the_file_source_landed(wh, ingest(wh, folder), why)

    # a refresh that fails keeps the snapshot it had, and says so in ingest_log
    shutil.rmtree(folder / "pulled")
    shutil.copytree(pulled / "pulled", folder / "pulled")
    before = {p.name: p.read_bytes() for p in (folder / "pulled").glob("[0-9]*.json")}
    out = CliRunner().invoke(app, ["pull", "prom-down"])
    assert out.exit_code == 1 and why in out.stderr
    assert {p.name: p.read_bytes() for p in (folder / "pulled").glob("[0-9]*.json")} == before
    summary = ingest(wh, folder)
    assert not summary.failed_sources
    assert any(w.startswith("refresh at ") and why in w for _, _, w in summary.warnings)


def test_bad_query_is_one_line_naming_it(server: PromServer, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("STABILIS_DATA_DIR", str(data))
    q = "sum(rate(vllm:num_requests_waiting[5m]"
    api_pilot(data / "landing", "prom-400", server.url, queries=["vllm:num_requests_running", q])
    out = CliRunner().invoke(app, ["pull", "prom-400"])
    assert out.exit_code == 1
    assert out.stderr.strip() == (
        f"error: pilot prom-400: pull: source 0 (prometheus-api): query {q!r}: HTTP 400: "
        "bad_data: 1:39: parse error: unclosed left parenthesis")
    # the first query's response is not left behind as a partial snapshot
    assert sorted(p.name for p in (data / "landing" / "prom-400" / "pulled").iterdir()) == [
        MANIFEST]


def test_credentials_required(server: PromServer, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    def pull(slug: str, auth: dict[str, str] | None = AUTH) -> str | None:
        folder = api_pilot(tmp_path / "landing", slug, server.url, auth=auth, queries=["up"])
        return pull_source(load_pilot(folder), 0).error

    assert pull("prom-noauth", auth=None) == (
        "query 'up': HTTP 401 Unauthorized (the server wants credentials: name their "
        "environment variables in options.basic_auth or options.bearer_token_env)")
    monkeypatch.setenv("PROM_PASSWORD", "wrong")
    assert pull("prom-wrong") == (
        "query 'up': HTTP 401 Unauthorized (check the credentials in $PROM_USER / "
        "$PROM_PASSWORD, named by options.basic_auth)")
    monkeypatch.delenv("PROM_PASSWORD")
    assert pull("prom-unset") == ("options.basic_auth.password_env names the environment "
                                  "variable PROM_PASSWORD, which is unset or empty")
    monkeypatch.setenv("PROM_PASSWORD", PASSWORD)
    assert pull("prom-auth") is None


def test_a_live_pilot_is_a_pilot(server: PromServer, tmp_path: Path) -> None:
    folder = api_pilot(tmp_path / "landing", "prom-sensor", server.url, **PRESET)
    state = inspect_pilot(folder, {}, settle_s=0)
    assert state.status == "ready" and list(state.files) == ["pilot.yaml"]
    assert pull_source(load_pilot(folder), 0).error is None
    (again,) = ensure_snapshots(load_pilot(folder))  # `stabilis run`: the snapshot is read
    assert again.skipped and again.requests == 0
    state = inspect_pilot(folder, {}, settle_s=0)
    assert state.status == "ready" and len(state.files) == 1 + 1 + 24
    assert "pulled/manifest.json" in state.files and "pulled/24.json" in state.files


@pytest.mark.parametrize(("options", "problem"), [
    ({"url": "http://u:p@prom:9090", "preset": "vllm+dcgm"}, "credentials in the URL"),
    ({"url": "prom:9090", "preset": "vllm+dcgm"}, "is not an http(s) URL"),
    ({"url": "http://prom:9090"}, "expected queries"),
    ({"url": "http://prom:9090", "preset": "x"}, "unknown preset 'x'"),
    ({"url": "http://prom:9090", "queries": ["up"], "bearer_token_env": "tok en"},
     "never the token itself"),
    ({"url": "http://prom:9090", "queries": ["up"], "max_points": 20_000},
     "max_points: 20000; expected a whole number from 2 to 11000"),
    ({"url": "http://prom:9090", "queries": ["up"], "step": "5 min"}, "step: '5 min'"),
    ({"url": "http://prom:9090", "queries": ["up"], "passwd": "x"}, "unknown option 'passwd'"),
    ({"url": "http://prom:9090", "queries": ["up"], "basic_auth": {"username": "me",
                                                                   "password": "pw"}},
     "never the credentials themselves"),
    ({"url": "http://prom:9090", "queries": ["up"],
      "range": {"start": "2026-03-02T01:00:00Z", "end": "2026-03-02T00:00:00Z"}},
     "is not after start"),
])
def test_options_are_checked(tmp_path: Path, options: dict[str, Any], problem: str) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    write_yaml(folder, "p", [{"kind": "prometheus-api", "options": options}], phases=PHASES)
    with pytest.raises(PilotConfigError) as e:
        load_pilot(folder)
    assert any(problem in p for p in e.value.problems), e.value.problems
