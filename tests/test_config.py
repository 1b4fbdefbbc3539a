"""pilot.yaml validation: a valid pilot loads; every problem gets its own clear message."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from pipelines.config import (
    DEFAULT_THRESHOLDS,
    PilotConfigError,
    load_pilot,
)

FIXTURE = Path(__file__).parent / "fixtures" / "pilot_ok"


@pytest.fixture
def pilot_dir(tmp_path: Path) -> Path:
    d = tmp_path / "fixture-a"
    shutil.copytree(FIXTURE, d)
    (d / "samples").mkdir(exist_ok=True)  # git keeps no empty folder
    (d / "samples" / "s1.parquet").write_bytes(b"not read by config validation")
    return d


def _raw(d: Path) -> dict:
    return yaml.safe_load((d / "pilot.yaml").read_text())


def _write(d: Path, doc: dict) -> None:
    (d / "pilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def _problems(d: Path, **changes: object) -> list[str]:
    doc = _raw(d)
    for k, v in changes.items():
        if v is _DELETE:
            doc.pop(k, None)
        else:
            doc[k] = v
    _write(d, doc)
    with pytest.raises(PilotConfigError) as ei:
        load_pilot(d)
    return ei.value.problems


_DELETE = object()


def test_valid_pilot_loads(pilot_dir: Path) -> None:
    cfg = load_pilot(pilot_dir / "pilot.yaml")
    assert cfg.pilot == "fixture-a"
    assert cfg.title == "Fixture pilot A"
    assert cfg.timezone == "Europe/Berlin"
    assert set(cfg.phases) == {"baseline", "validation", "burn-in"}
    assert cfg.phases["baseline"].start == datetime(2026, 3, 2)
    assert cfg.phases["baseline"].start.tzinfo is None  # naive UTC
    assert cfg.scope.kind == "pools" and cfg.scope.pools == ("pool-a",)
    assert cfg.sla["P0"].e2e_ms == 200 and cfg.sla["P0"].ttft_ms == 100
    assert cfg.sla["P1"].ttft_ms is None
    assert cfg.timeout_ms == 30000.0
    assert cfg.adjustments == ["inference_batch_separation", "priority_scheduling"]
    assert cfg.thresholds["burst_factor"] == 3.0  # override
    assert cfg.thresholds["wave_lag_s"] == DEFAULT_THRESHOLDS["wave_lag_s"]  # default kept
    assert set(cfg.thresholds) == set(DEFAULT_THRESHOLDS)
    assert [s.table for s in cfg.sources] == ["requests", "jobs", "samples"]
    assert cfg.anonymization.secret_env == "STABILIS_SECRET"
    assert cfg.root == pilot_dir.resolve()
    assert cfg.raw["owner"] == "ops-team" and cfg.extra == {"owner": "ops-team"}
    assert cfg.source_files(0) == [pilot_dir.resolve() / "requests" / "part-1.csv"]
    assert '"owner": "ops-team"' in cfg.to_json()


def test_naive_phase_times_are_read_in_the_pilot_timezone(pilot_dir: Path) -> None:
    doc = _raw(pilot_dir)
    doc["phases"]["baseline"] = {"start": "2026-03-02T01:00:00", "end": "2026-03-03T01:00:00"}
    _write(pilot_dir, doc)
    cfg = load_pilot(pilot_dir)
    assert cfg.phases["baseline"].start == datetime(2026, 3, 2, 0, 0)  # Berlin is UTC+1 in March


def test_scope_variants(pilot_dir: Path) -> None:
    for scope, kind in [("all", "all"), ({"share": 0.35}, "share"), ({"priorities": ["P0"]}, None)]:
        doc = _raw(pilot_dir)
        doc["scope"] = scope
        _write(pilot_dir, doc)
        cfg = load_pilot(pilot_dir)
        assert cfg.scope.kind == (kind or "priorities")
    assert cfg.scope.priorities == ("P0",)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"pilot": "Demo_1"},
            "pilot: 'Demo_1' is not a valid slug; expected [a-z0-9][a-z0-9-]{0,62}",
        ),
        (
            {"timezone": "Mars/Olympus"},
            "timezone: 'Mars/Olympus' is not a known IANA time zone",
        ),
        (
            {"timeout_ms": 0},
            "timeout_ms: 0 is not a timeout; expected a number of milliseconds > 0",
        ),
        ({"timeout_ms": -5}, "timeout_ms: -5 is not a timeout"),
        (
            {"sla": {"P7": {"e2e_ms": 100}}},
            "sla: unknown priority class 'P7'; allowed P0, P1, P2, P3",
        ),
        (
            {"sla": {"P0": {"e2e_ms": -1}}},
            "sla.P0.e2e_ms: -1 is not a latency; expected a number > 0",
        ),
        (
            {"adjustments": ["warp_drive"]},
            "adjustments: unknown adjustment 'warp_drive'; allowed inference_batch_separation, "
            "priority_scheduling, burst_buffering, resource_segmentation, "
            "latency_aware_load_distribution",
        ),
        (
            {"thresholds": {"bogus": 1}},
            "thresholds: unknown threshold 'bogus'; allowed burst_factor",
        ),
        ({"thresholds": {"burst_window_s": 3601}},
         "thresholds.burst_window_s: 3601 is too long for a burst window; expected 0 < x <= 1800"),
        ({"scope": "most"}, "scope: 'most' is not a valid rule; expected 'all', {pools: [..]}"),
        ({"scope": {"share": 1.5}}, "scope.share: 1.5 is not a share; expected a number 0 < x < 1"),
        ({"scope": {"share": 0}}, "scope.share: 0 is not a share"),
        (
            {"scope": {"priorities": ["P9"]}},
            "scope.priorities: unknown priority class 'P9'; allowed P0, P1, P2, P3",
        ),
        ({"scope": {"pools": []}}, "scope.pools: expected a non-empty list of pool names"),
        ({"scope": {"tenants": ["a"]}}, "scope: unknown rule 'tenants'"),
        ({"scope": _DELETE}, "scope: is required"),
        ({"anonymization": {"secret_env": "s3cr3t value!"}}, "anonymization.secret_env: expected"),
    ],
)
def test_each_problem_has_its_message(
    pilot_dir: Path, changes: dict[str, object], expected: str
) -> None:
    problems = _problems(pilot_dir, **changes)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_phase_problems(pilot_dir: Path) -> None:
    doc = _raw(pilot_dir)
    doc["phases"] = {
        "baseline": {"start": "2026-03-02T00:00:00Z", "end": "2026-03-05T00:00:00Z"},
        "burn-in": {"start": "2026-03-10T00:00:00Z", "end": "2026-03-09T00:00:00Z"},
        "extra": {"start": "not a date", "end": "2026-03-09T00:00:00Z"},
    }
    _write(pilot_dir, doc)
    with pytest.raises(PilotConfigError) as ei:
        load_pilot(pilot_dir)
    p = ei.value.problems
    assert "phases: 'validation' is required (required phases: baseline, validation)" in p
    assert (
        "phases.burn-in: end 2026-03-09T00:00:00Z is not after start 2026-03-10T00:00:00Z; "
        "expected end > start" in p
    )
    assert any(x.startswith("phases.extra.start: expected an ISO-8601 timestamp") for x in p)
    assert len(p) == 3

    doc["phases"] = {
        "baseline": {"start": "2026-03-02T00:00:00Z", "end": "2026-03-05T00:00:00Z"},
        "validation": {"start": "2026-03-04T00:00:00Z", "end": "2026-03-09T00:00:00Z"},
    }
    _write(pilot_dir, doc)
    with pytest.raises(PilotConfigError) as ei:
        load_pilot(pilot_dir)
    assert ei.value.problems == [
        "phases: 'baseline' [2026-03-02T00:00:00Z, 2026-03-05T00:00:00Z) overlaps "
        "'validation' [2026-03-04T00:00:00Z, 2026-03-09T00:00:00Z); phases must not overlap"
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"kind": "csvv", "path": "jobs.jsonl"},
            "sources[1].kind: unknown kind 'csvv'; allowed canonical, tabular, otlp-json, "
            "prometheus-text, prometheus-json, sacct, nvidia-smi, arrival-trace",
        ),
        (
            {"kind": "canonical", "path": "jobs.jsonl"},
            "sources[1].table: is required for kind 'canonical'; allowed requests, jobs, samples",
        ),
        (
            {"kind": "canonical", "table": "gpus", "path": "jobs.jsonl"},
            "sources[1].table: unknown table 'gpus'; allowed requests, jobs, samples",
        ),
        (
            {"kind": "sacct", "table": "requests", "path": "jobs.jsonl"},
            "sources[1].table: kind 'sacct' fills 'jobs', not 'requests'",
        ),
        (
            {"kind": "sacct", "path": "slurm/*.txt"},
            "sources[1].path: no file matches 'slurm/*.txt' under ",
        ),
        (
            {"kind": "canonical", "table": "jobs", "path": "../other/jobs.jsonl"},
            "sources[1].path: '../other/jobs.jsonl' leaves the pilot folder",
        ),
        (
            {"kind": "canonical", "table": "jobs", "path": "requests/../../x.csv"},
            "sources[1].path: 'requests/../../x.csv' leaves the pilot folder",
        ),
        (
            {"kind": "canonical", "table": "jobs", "path": "/etc/passwd"},
            "sources[1].path: '/etc/passwd' is absolute",
        ),
    ],
)
def test_source_problems(pilot_dir: Path, source: dict, expected: str) -> None:
    doc = _raw(pilot_dir)
    doc["sources"][1] = source
    _write(pilot_dir, doc)
    with pytest.raises(PilotConfigError) as ei:
        load_pilot(pilot_dir)
    assert len(ei.value.problems) == 1, ei.value.problems
    assert ei.value.problems[0].startswith(expected), ei.value.problems


def test_symlink_out_of_the_pilot_folder_is_not_a_match(pilot_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("x\n")
    (pilot_dir / "link.csv").symlink_to(outside)
    doc = _raw(pilot_dir)
    doc["sources"][1] = {"kind": "canonical", "table": "jobs", "path": "link.csv"}
    _write(pilot_dir, doc)
    with pytest.raises(PilotConfigError) as ei:
        load_pilot(pilot_dir)
    assert ei.value.problems[0].startswith("sources[1].path: no file matches 'link.csv'")


def test_other_kinds_get_their_table(pilot_dir: Path) -> None:
    doc = _raw(pilot_dir)
    doc["sources"][1] = {"kind": "sacct", "path": "jobs.jsonl", "options": {"delimiter": "|"}}
    _write(pilot_dir, doc)
    src = load_pilot(pilot_dir).sources[1]
    assert (src.kind, src.table, src.options) == ("sacct", "jobs", {"delimiter": "|"})


def test_yaml_syntax_error_names_the_line(pilot_dir: Path) -> None:
    (pilot_dir / "pilot.yaml").write_text("pilot: a\ntitle: b\nphases: [1,\n  2\nsla: x\n")
    with pytest.raises(PilotConfigError) as ei:
        load_pilot(pilot_dir)
    [msg] = ei.value.problems
    assert msg.startswith("pilot.yaml: YAML syntax error at line 5")


def test_top_level_must_be_a_mapping(pilot_dir: Path) -> None:
    (pilot_dir / "pilot.yaml").write_text("- pilot: a\n- title: b\n")
    with pytest.raises(PilotConfigError) as ei:
        load_pilot(pilot_dir)
    assert ei.value.problems == [
        "pilot.yaml: expected a mapping of keys at the top level, found a list"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PilotConfigError) as ei:
        load_pilot(tmp_path)
    assert ei.value.problems[0].startswith("pilot.yaml: file not found at ")


def test_several_problems_are_all_listed(pilot_dir: Path) -> None:
    doc = _raw(pilot_dir)
    doc.update(
        pilot="Bad Slug",
        timezone="Nowhere/Land",
        timeout_ms=0,
        adjustments=["teleport"],
        thresholds={"nope": 1},
    )
    doc["sla"]["P7"] = {"e2e_ms": 1}
    del doc["phases"]["validation"]
    doc["sources"].append({"kind": "csvv", "path": "x"})
    _write(pilot_dir, doc)
    with pytest.raises(PilotConfigError) as ei:
        load_pilot(pilot_dir)
    keys = [p.split(":")[0] for p in ei.value.problems]
    assert keys == [
        "pilot",
        "timezone",
        "phases",
        "sla",
        "timeout_ms",
        "adjustments",
        "thresholds",
        "sources[3].kind",
        "sources[3].path",
    ]
    assert "9 problem(s)" in str(ei.value)


# --- YAML alias bombs ("billion laughs") -------------------------------------------------------

LAUGHS = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)  # 9**9 (387 M) strings once expanded; a handful of nodes as written


@pytest.mark.parametrize("where", ["top", "pilot"])
def test_alias_bomb_is_refused_without_expanding(pilot_dir: Path, where: str) -> None:
    text = (pilot_dir / "pilot.yaml").read_text()
    if where == "top":
        text = LAUGHS + text
    else:  # the expansion reaches a key whose message would quote the value
        text = LAUGHS.replace("i: &i", "x: &i") + text.replace("pilot: fixture-a", "pilot: *i")
    (pilot_dir / "pilot.yaml").write_text(text)
    with pytest.raises(PilotConfigError) as ei:
        load_pilot(pilot_dir)
    assert len(ei.value.problems) == 1
    assert "alias bomb" in ei.value.problems[0]
    assert len(str(ei.value)) < 300 and "lol" not in str(ei.value)


def test_self_referring_alias_is_refused(pilot_dir: Path) -> None:
    text = (pilot_dir / "pilot.yaml").read_text()
    (pilot_dir / "pilot.yaml").write_text("loop: &loop [1, *loop]\n" + text)
    with pytest.raises(PilotConfigError, match="refers to a node that contains it"):
        load_pilot(pilot_dir)


def test_ordinary_anchors_and_merge_keys_still_load(pilot_dir: Path) -> None:
    text = (pilot_dir / "pilot.yaml").read_text()
    text = text.replace("sla:\n  P0: {e2e_ms: 200, ttft_ms: 100}\n  P1: {e2e_ms: 500}",
                        "sla:\n  P0: &fast {e2e_ms: 200, ttft_ms: 100}\n"
                        "  P1: {<<: *fast, e2e_ms: 500}")
    assert "&fast" in text
    (pilot_dir / "pilot.yaml").write_text(text)
    cfg = load_pilot(pilot_dir)
    assert (cfg.sla["P0"].ttft_ms, cfg.sla["P1"].e2e_ms, cfg.sla["P1"].ttft_ms) == (100, 500, 100)


def test_deeply_nested_yaml_is_refused_cleanly(pilot_dir: Path) -> None:
    (pilot_dir / "pilot.yaml").write_text("x: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(PilotConfigError, match="nested too deeply"):
        load_pilot(pilot_dir)
