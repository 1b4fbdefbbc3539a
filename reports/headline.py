"""Before/after tables: section 0's headline table and section 8's validated results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.metric_catalog import BY_NAME, CATALOG, HEADLINE, Metric
from reports import fmt, sections
from reports.cells import bases, label_of, metric_of, overall_row
from reports.coverage import Coverage
from reports.sections.common import Reader
from reports.types import Table


@dataclass
class Results:
    available: bool
    tables: list[Table]
    did: Table | None
    sentences: list[str]
    intro: str = ""
    predicted_note: str = ""


def before_after(w: Reader) -> tuple[dict[tuple[str, str], dict], dict[str, dict]]:
    ba = w.q("metrics_before_after", """SELECT segment, metric, baseline, validation,
                abs_change, rel_change, unit FROM metrics_before_after WHERE pilot = ?""")
    did = w.q("metrics_did", """SELECT metric, treatment_change, control_change, did
                FROM metrics_did WHERE pilot = ?""")
    return ({(r["segment"], r["metric"]): r for r in ba.iter_rows(named=True)},
            {r["metric"]: r for r in did.iter_rows(named=True)})


def has_control(ba: dict[tuple[str, str], dict]) -> bool:
    return any(seg == "control" and r["baseline"] is not None for (seg, _), r in ba.items())


def _summary_change(r: dict | None, m: Metric) -> str:
    # shares move in pp (a relative % of a share reads ambiguously); other units relatively
    if r is None:
        return "—"
    unit = r["unit"] or m.unit
    return fmt.change(r["abs_change"], unit) if unit in ("share", "pp") else fmt.rel(
        r["rel_change"])


def _why_not(hx: dict, m: Metric, cov: Coverage) -> str:
    """The pipeline's reason a metric has no value (its note), else the coverage's."""
    notes = sorted({r["note"] for k, r in hx.items() if k[4] == m.name and k[2] == "overall"
                    and r["value"] is None and r.get("note")})
    if notes:
        return "; ".join(notes)
    return cov.for_metric(m.name)


def _has_values(rows: Sequence[dict | None]) -> bool:
    return any(r is not None and (r.get("baseline") is not None
                                  or r.get("validation") is not None) for r in rows)


def missing_note(hx: dict, ba: dict, cov: Coverage, shown: Sequence[str] = ()) -> str:
    """Headline metrics left out of a before/after table (no value in either phase), grouped
    by what would unlock them: 'Not measured — needs X: A, B; needs Y: C.'"""
    by_reason: dict[str, list[str]] = {}
    for m in HEADLINE:
        rows = [r for (_, name), r in ba.items() if name == m.name]
        partial = rows and any(r["baseline"] is None or r["validation"] is None for r in rows)
        if m.name in shown and not partial:
            continue
        if m.name not in shown or partial:
            why = _why_not(hx, m, cov).removeprefix(fmt.NOT_MEASURED).lstrip(": —")
            by_reason.setdefault(why or "no reason recorded", []).append(m.label)
    if not by_reason:
        return ""
    return " Not measured — " + "; ".join(f"{why}: {', '.join(labels)}"
                                         for why, labels in by_reason.items()) + "."


def _verdict(r: dict | None, control: bool, m: Metric) -> str:
    """The result column: significance as the printed interval shows it."""
    if r is None:
        return "no interval"
    return fmt.verdict(sections.is_significant(r, m, "did_significant" if control
                                               else "significant"))


MIN_HEADLINE_ROWS = 3  # below this, the further metrics the telemetry allowed are shown too


def with_values(ba: dict, segs: Sequence[str]) -> list[Metric]:
    """Headline metrics with a value in some phase of these segments: a row of 'not measured'
    cells says less than one line naming what they need (the table's note). When partial
    telemetry leaves fewer than three, the other metrics with values follow (request rate of
    a trace, GPU energy and memory of a GPU-only pilot, series aggregates)."""
    shown = [m for m in HEADLINE if _has_values([ba.get((s_, m.name)) for s_ in segs])]
    if len(shown) >= MIN_HEADLINE_ROWS:
        return shown
    order = {m.name: i for i, m in enumerate(CATALOG)}
    names = {n for (s_, n) in ba if s_ in segs and n not in {m.name for m in HEADLINE}}
    return shown + [metric_of(n, ba.get((segs[0], n))) for n in sorted(
        names, key=lambda n: (order.get(n, len(order)), n))
        if _has_values([ba.get((s_, n)) for s_ in segs])]


def headline_table(ba: dict, did: dict, hx: dict, ci: dict, cov: Coverage) -> Table:
    """Section 0: per metric, treatment (and control) change with 95 % interval, and the DiD."""
    control = has_control(ba)
    seg = "treatment" if control else "all"
    rows = []
    shown = with_values(ba, (seg, "control") if control else (seg,))
    for m in shown:
        r = ba.get((seg, m.name))
        unit = (r or {}).get("unit") or m.unit
        c = ci.get((seg, m.name))
        before_after = (f"{fmt.value((r or {}).get('baseline'), unit)} → "
                        f"{fmt.value((r or {}).get('validation'), unit)}")
        change = sections.change_text(c, m) if c else _summary_change(r, m)
        row = [label_of(m, overall_row(hx, m.name)), before_after, change]
        if control:
            cc = ci.get(("control", m.name))
            row.append(sections.change_text(cc, m) if cc else _summary_change(
                ba.get(("control", m.name)), m))
            row.append(sections.did_text(c, m) if c else fmt.change(
                (did.get(m.name) or {}).get("did"), m.unit))
        row.append(_verdict(c, control, m) if ci else "no interval")
        rows.append(row)
    cols = ["Metric", "Treatment: baseline → validation" if control else
            "Baseline → validation", "Treatment change [95 % CI]" if control else
            "Change [95 % CI]"]
    if control:
        cols += ["Control change [95 % CI]", "DiD [95 % CI]"]
    cols.append("Result (DiD)" if control else "Result")
    note = ("Change: relative for latencies, rates and energy; in percentage points for "
            "shares. DiD = treatment change − control change, in the metric's unit. "
            "Intervals: 95 % block bootstrap (appendix B); a change whose interval spans zero "
            "is reported as “no significant change”.")
    if not ci:
        note += " No confidence intervals in the warehouse for this pilot (metrics_ci)."
    if not control:
        note += " No control segment, so no difference-in-differences."
    note += missing_note(hx, ba, cov, [m.name for m in shown])
    scope = ("treatment segment; control change and DiD against the control segment"
             if control else "all traffic")
    return Table(f"Headline metrics before and after — {scope}", cols, rows,
                 basis=bases([overall_row(hx, m.name) for m in shown]),
                 num_cols=tuple(range(1, len(cols) - 1)), note=note,
                 nowrap_cols=(len(cols) - 1,),
                 empty="No headline metric has a value for this pilot."
                       + missing_note(hx, ba, cov))


def results(ba: dict, did: dict, hx: dict, ci: dict,
             predicted: dict[str, dict], policy: str, cov: Coverage) -> Results:
    if not ba:
        return Results(False, [], None, [])
    names = {"all": "All traffic", "treatment": "Treatment segment",
             "control": "Control segment"}
    control = has_control(ba)
    tables = []
    for seg in ("all", "treatment", "control"):
        rows = []
        shown = with_values(ba, (seg,))
        for m in shown:
            r = ba[(seg, m.name)]
            unit = r["unit"] or m.unit
            c = ci.get((seg, m.name)) or {}
            rows.append([
                label_of(m, overall_row(hx, m.name)),
                fmt.two_lines(fmt.value(r["baseline"], unit),
                              fmt.interval(c.get("baseline_lo"), c.get("baseline_hi"), unit)),
                fmt.two_lines(fmt.value(r["validation"], unit),
                              fmt.interval(c.get("validation_lo"), c.get("validation_hi"),
                                           unit)),
                fmt.two_lines(fmt.change(r["abs_change"], unit),
                              fmt.change_interval(c.get("change_lo"), c.get("change_hi"),
                                                  unit)),
                fmt.two_lines(fmt.rel(r["rel_change"]),
                              fmt.rel_interval(c.get("rel_change_lo"), c.get("rel_change_hi"))),
                _verdict(c, False, m) if c else "no interval"])
        if any(k[0] == seg for k in ba):
            tables.append(Table(f"{names[seg]}: baseline vs validation",
                                ["Metric", "Baseline", "Validation", "Change", "Relative",
                                 "Result"],
                                rows, basis=bases([overall_row(hx, m.name) for m in shown]),
                                num_cols=(1, 2, 3, 4), anchor=f"res-{seg}", nowrap_cols=(5,),
                                note=missing_note(hx, {k: r for k, r in ba.items()
                                                        if k[0] == seg}, cov,
                                                   [m.name for m in shown]).strip(),
                                empty="No headline metric has a value in this segment."
                                      + missing_note(hx, {k: r for k, r in ba.items()
                                                           if k[0] == seg}, cov)))
    did_table = None
    if control:
        rows = []
        for m in with_values(ba, ("treatment", "control")):
            d = did.get(m.name)
            if d is None:
                continue
            c = ci.get(("treatment", m.name))
            row = [m.label, fmt.change(d["treatment_change"], m.unit),
                   fmt.change(d["control_change"], m.unit),
                   sections.did_text(c, m) if c else fmt.change(d["did"], m.unit),
                   _verdict(c, True, m) if c else "no interval"]
            if predicted:
                p = predicted.get(m.name)
                row.append(fmt.change(p.get("predicted_change"), m.unit) if p else "—")
            rows.append(row)
        cols = ["Metric", "Treatment change", "Control change", "DiD [95 % CI]", "Result"]
        if predicted:
            cols.append("Predicted change (modeled)")
        did_table = Table("Difference-in-differences with 95 % intervals", cols, rows,
                          basis="measured, modeled" if predicted else "measured",
                          num_cols=(1, 2, 3) + ((5,) if predicted else ()),
                          empty="No rows in metrics_did.", anchor="res-did",
                          nowrap_cols=(4,))
    seg = "treatment" if control else "all"
    moved = sorted((r for (s_, _), r in ba.items() if s_ == seg and r["rel_change"] is not None
                    and r["metric"] in BY_NAME and BY_NAME[r["metric"]].headline),
                   key=lambda r: -abs(r["rel_change"]))[:3]
    sentences = []
    for r in moved:
        m = BY_NAME[r["metric"]]
        c = ci.get((seg, m.name))
        where = "treatment segment" if control else "pilot"
        if c and c.get("significant") is not None:
            s_ = f"In the {where}, {m.label} {sections.change_words(c, m, 'change')}"
            if control:
                s_ += (f"; difference-in-differences {fmt.change(c.get('did'), m.unit)} "
                       f"{fmt.change_interval(c.get('did_lo'), c.get('did_hi'), m.unit)}, "
                       f"{_verdict(c, True, m)} relative to the control")
        else:
            unit = r["unit"] or m.unit
            s_ = (f"{m.label} {fmt.moved(r['rel_change'], r['abs_change'], unit)} in the "
                  f"{where} ({fmt.value(r['baseline'], unit)} → "
                  f"{fmt.value(r['validation'], unit)}; no interval)")
        sentences.append(s_ + ".")
    intro = ("Each value comes with its 95 % block-bootstrap interval (second line); the "
             "result column says whether the change's interval excludes zero."
             if ci else "No confidence intervals in the warehouse for this pilot: changes are "
                        "described, not judged significant.")
    pnote = (f"Predicted changes are the what-if simulator's (modeled) figures for policy "
             f"“{policy.replace('_', ' ')}”, which matches the adjustments applied."
             if predicted else "Predicted (modeled) changes: no what-if policy in the warehouse "
                               "matches the adjustments applied, so none is shown beside the "
                               "measured ones.")
    return Results(True, tables, did_table, sentences, intro, pnote)

