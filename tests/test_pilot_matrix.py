"""Every kind of pilot reaches an honest report (issue 13): each telemetry source kind alone, and
three mixes, run end to end through Dagster (`pipelines.runner.run_pilot`, what `stabilis run`
calls) to an HTML and a PDF report.

One pilot per source kind keeps the suite inside its time budget: the other pilots of
tests/pilot_kinds.py are covered elsewhere — dcgm-scrape by the gpu-sched and hist-gpu mixes
and tests/test_report_partial.py, the Mooncake trace by trace-jobs, Prometheus instant vectors
by tests/test_adapters_formats.py.

The PDF is laid out for one kind (PDF_KIND): it is made from the same HTML string as the
HTML report, whose text every kind checks below, and weasyprint's layout was a quarter of each
run's time; the other kinds stop at a placeholder file (the report step still writes it).
tests/test_dagster.py and tests/test_prometheus_api.py lay out theirs too.

For each pilot: the run succeeds, `measurement_coverage` labels each item as the data allows
(measured / approximate / aggregate / not measured), the report names what every missing item
needs, and no absence is phrased as a measured finding.
"""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

import duckdb
import pytest
import weasyprint

from pipelines.runner import run_pilot
from tests.pilot_kinds import make_pilot

M, A, G, N = "measured", "approximate", "aggregate", "not_measured"
LATENCY_ITEMS = ("latency_quantiles", "queue_wait")
GPU_ITEMS = ("gpu_nominal_util",)

# kind -> {item: status}; items not listed are not asserted for that kind
EXPECTED: dict[str, dict[str, str]] = {
    "vllm-scrape": {"latency_quantiles": A, "queue_wait": A, "ttft": A, "tpot": A,
                    "queue_depth": M, "running_requests": M, "preemptions": M,
                    "request_rate": M, "gpu_nominal_util": N, "batch_occupancy": N},
    # prom-range (Prometheus API results) reaches a report in test_prometheus_api.py, from a
    # real server's responses, with the same coverage assertions
    "sacct-only": {"batch_occupancy": M, "job_timeline": M, "gpu_nominal_util": N,
                   "latency_quantiles": N},
    "nvidia-smi": {"gpu_nominal_util": M, "gpu_power": M, "gpu_memory": M,
                   "idle_overload_states": M, "gpu_effective_util": N, "latency_quantiles": N},
    "azure-trace": {"request_rate": M, "arrival_burstiness": M, "burst_episodes": M,
                    "latency_quantiles": N, "gpu_nominal_util": N},
    "aggregated": {"latency_quantiles": G, "queue_wait": G, "request_rate": G,
                   # per pool and minute, no GPU ids: an aggregate, not per-GPU samples
                   "gpu_nominal_util": G, "gpu_memory": G, "gpu_effective_util": N},
    "gpu-sched": {"gpu_nominal_util": M, "batch_occupancy": M, "latency_quantiles": N},
    "hist-gpu": {"latency_quantiles": A, "gpu_nominal_util": M, "batch_occupancy": N},
    "trace-jobs": {"arrival_burstiness": M, "batch_occupancy": M, "latency_quantiles": N},
}
# what-if status per kind: modeled only from per-request rows or a trace plus a declared model
WHATIF: dict[str, tuple[str, str]] = {
    "azure-trace": ("modeled", "arrival trace + declared service model"),
    "trace-jobs": ("not_modeled", "service model"),
    "nvidia-smi": ("not_modeled", "needs per-request rows"),
}
PDF_KIND = "hist-gpu"  # two source kinds, so latency and GPU sections both have content
PLACEHOLDER = b"%PDF- not laid out: tests/test_pilot_matrix.py lays out PDF_KIND only"


def placeholder_pdf(self: weasyprint.HTML, target: Path | None = None, **_: object) -> bytes:
    if target is not None:
        Path(target).write_bytes(PLACEHOLDER)
    return PLACEHOLDER


# a sentence that reports the absence of something as a measured result
ABSENCE_AS_FINDING = re.compile(r"\bNo\b[^.<>]{0,240}\(measured\)")


def _text(path: Path) -> str:
    """The report's visible text: tags dropped, entities decoded, spaces collapsed."""
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", path.read_text(encoding="utf-8"), flags=re.S)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", raw)))


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_pilot_kind_reaches_an_honest_report(kind: str, tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("STABILIS_DATA_DIR", str(data))
    monkeypatch.setenv("STABILIS_WHATIF_SEEDS", "1")
    if kind != PDF_KIND:
        monkeypatch.setattr(weasyprint.HTML, "write_pdf", placeholder_pdf)
    make_pilot(data / "landing", kind)

    result = run_pilot(kind)
    assert result.success

    report_dir = data / "reports" / kind
    pdf = (report_dir / "report.pdf").read_bytes()
    assert len(pdf) > 10_000 if kind == PDF_KIND else pdf == PLACEHOLDER
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        coverage = dict(con.execute(
            "SELECT item, status FROM measurement_coverage WHERE pilot = ?", [kind]).fetchall())
        whatif = con.execute("SELECT status, coalesce(basis, ''), coalesce(reason, '') "
                             "FROM whatif_status WHERE pilot = ?", [kind]).fetchone()
        needs = {r[0] for r in con.execute(
            "SELECT DISTINCT needs FROM measurement_coverage WHERE pilot = ? AND status = ?",
            [kind, N]).fetchall()}
    wrong = {item: (coverage.get(item), want) for item, want in EXPECTED[kind].items()
             if coverage.get(item) != want}
    assert not wrong, f"{kind}: item -> (labelled, expected): {wrong}"

    if kind in WHATIF:
        status, words = WHATIF[kind]
        assert whatif[0] == status and words in whatif[1] + whatif[2], whatif

    text = _text(report_dir / "report.html")
    missing_needs = [n for n in needs if n and n not in text]
    assert not missing_needs, f"{kind}: the report never names what these need: {missing_needs}"
    # section 1.5 shows the scheduler jobs where the pilot has them, else says what it needs
    jobs_line = "No scheduler jobs (jobs): batch occupancy and the job timeline are not measured"
    assert (jobs_line in text) == (coverage.get("job_timeline") == N), kind
    if coverage.get("latency_quantiles") == N:
        assert not ABSENCE_AS_FINDING.findall(text), ABSENCE_AS_FINDING.findall(text)[:3]


def test_one_kind_lays_out_its_pdf() -> None:
    assert PDF_KIND in EXPECTED  # else no kind of the matrix would check a real PDF
