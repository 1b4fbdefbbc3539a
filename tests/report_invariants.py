"""Invariants over a built ReportModel: what the report prints must agree with itself.

Each checker reads only printed strings (the model's tables and sentences) and returns a list of
problems, one line each quoting the offending text, so a test can assert the list is empty and a
negative test can break one cell and see it flagged. Tolerances are the printed rounding: half a
unit of the last printed digit of every number involved.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator

from reports.types import Table

NUM = r"[−+-]?\d[\d,]*(?:\.\d+)?"
UNIT = r"(?:\s?(?:ms|s|%|pp|×|req/s/GPU|req/s|J|W|h|min))?"
QTY = rf"{NUM}{UNIT}"
INTERVAL_RE = re.compile(rf"(?P<pt>{QTY})\s*\[(?P<lo>{QTY}), (?P<hi>{QTY})\]")
CHANGE_RE = re.compile(rf"(?P<a>{QTY}) → (?P<b>{QTY})(?: \(|, change | \| )(?P<c>{QTY})")
VERDICT_RE = re.compile(rf"\[(?P<lo>{QTY}), (?P<hi>{QTY})\]\)?\s*[:,—]?\s*"
                        r"(?P<word>no significant change|not separable|improved|worsened"
                        r"|significant)")
CLAIM_FIRST_RE = re.compile(  # "X improved significantly (a → b, change c [lo, hi])"
    r"(?P<word>showed no significant change|improved|worsened)(?: significantly)? "
    rf"\([^()\[\]]*?\[(?P<lo>{QTY}), (?P<hi>{QTY})\]")
SCALE = {"ms": ("s", 1e-3), "s": ("s", 1.0)}


@dataclasses.dataclass(frozen=True)
class Qty:
    value: float
    tol: float  # half a unit of the last printed digit, in the canonical unit
    unit: str  # canonical: s, %, pp, ×, req/s, J, W, h, ... or "" for a bare number


def qty(text: str) -> Qty:
    m = re.fullmatch(rf"\s*({NUM})\s?(\S*)\s*", text)
    if not m:
        raise ValueError(f"not a quantity: {text!r}")
    num, unit = m.group(1).replace("−", "-").replace(",", ""), m.group(2)
    decimals = len(num.split(".")[1]) if "." in num else 0
    canon, factor = SCALE.get(unit, (unit, 1.0))
    return Qty(float(num) * factor, 0.5 * 10 ** -decimals * factor, canon)


def walk(obj: object, path: str = "model") -> Iterator[tuple[str, object]]:
    """Every Table and every str in the model (SVG chart bodies skipped), with its path."""
    if isinstance(obj, Table):
        yield path, obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from walk(getattr(obj, f.name), f"{path}.{f.name}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk(v, f"{path}[{k}]")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from walk(v, f"{path}[{i}]")
    elif isinstance(obj, str) and obj and "<svg" not in obj:
        yield path, obj


def tables(model: object) -> list[Table]:
    return [t for _, t in walk(model) if isinstance(t, Table)]


def texts(model: object) -> list[tuple[str, str]]:
    """Sentences, plus each table row joined with ' | ' (a column headed '95 % interval' is
    glued to the column before it, so a point and its interval read as one phrase)."""
    out: list[tuple[str, str]] = []
    for path, item in walk(model):
        if isinstance(item, str):
            out.append((path, item))
            continue
        glue = {i for i, c in enumerate(item.columns) if c.startswith("95 % interval") and i}
        for r, row in enumerate(item.rows):
            cells: list[str] = []
            for i, cell in enumerate(row):
                if i in glue and cells:
                    cells[-1] = f"{cells[-1]} {cell}"
                else:
                    cells.append(str(cell))
            out.append((f"{path}.rows[{r}] ({item.caption})", " | ".join(cells)))
    return out


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def interval_problems(model: object) -> list[str]:
    """Every printed 'point [lo, hi]' has lo <= point <= hi (within rounding)."""
    bad = []
    for path, text in texts(model):
        for m in INTERVAL_RE.finditer(text):
            pt, lo, hi = qty(m["pt"]), qty(m["lo"]), qty(m["hi"])
            if not (pt.unit == lo.unit == hi.unit):
                bad.append(f"{path}: units differ in {_flat(m[0])!r}")
            elif not (lo.value - lo.tol - pt.tol <= pt.value <= hi.value + hi.tol + pt.tol):
                bad.append(f"{path}: point outside its interval: {_flat(m[0])!r}")
    return bad


def _expected_change(a: Qty, b: Qty, c: Qty, relative: bool = False
                     ) -> tuple[float, float] | None:
    """The range of the change c can be, given a -> b as printed, or None if not comparable."""
    corners = list(itertools.product((a.value - a.tol, a.value + a.tol),
                                     (b.value - b.tol, b.value + b.tol)))
    if relative or c.unit == "%":  # relative change (a "%" change of a share is relative too)
        if abs(a.value) <= a.tol:
            return None
        vals = [(y / x - 1) * 100 for x, y in corners]
    elif (c.unit == "pp" and a.unit == "%") or c.unit == a.unit:  # difference
        vals = [y - x for x, y in corners]
    else:
        return None
    return min(vals) - c.tol, max(vals) + c.tol


def _change_problem(where: str, phrase: str, a: Qty, b: Qty, c: Qty,
                    relative: bool = False) -> str | None:
    rng = _expected_change(a, b, c, relative)
    if rng is not None and not rng[0] - 1e-9 <= c.value <= rng[1] + 1e-9:
        return f"{where}: change does not match its values: {_flat(phrase)!r}"
    return None


def change_problems(model: object) -> list[str]:
    """'x → y (±z %)' / '+z pp' phrases, and baseline/validation/change/relative table rows."""
    bad = []
    for path, text in texts(model):
        for m in CHANGE_RE.finditer(text):
            p = _change_problem(path, m[0], qty(m["a"]), qty(m["b"]), qty(m["c"]))
            if p:
                bad.append(p)
    for t in tables(model):
        cols = t.columns
        if not {"Baseline", "Validation"} <= set(cols):
            continue
        for row in t.rows:
            pts = {c: INTERVAL_RE.search(row[i]) or re.fullmatch(rf"\s*({QTY})\s*", row[i])
                   for i, c in enumerate(cols)}
            if not (pts["Baseline"] and pts["Validation"]):
                continue
            a, b = qty(pts["Baseline"][1]), qty(pts["Validation"][1])
            for col in ("Change", "Relative"):
                if pts.get(col):
                    p = _change_problem(f"{t.caption} / {row[0]} / {col}",
                                        " | ".join(row), a, b, qty(pts[col][1]),
                                        relative=col == "Relative")
                    if p:
                        bad.append(p)
    return bad


def did_problems(model: object) -> list[str]:
    """DiD = treatment change − control change where all three are printed in one unit."""
    bad = []
    for t in tables(model):
        idx = {c.split(" [")[0]: i for i, c in enumerate(t.columns)}
        if not {"Treatment change", "Control change", "DiD"} <= set(idx):
            continue
        for row in t.rows:
            try:
                tc, cc = qty(row[idx["Treatment change"]]), qty(row[idx["Control change"]])
                m = INTERVAL_RE.search(row[idx["DiD"]]) or re.fullmatch(
                    rf"\s*({QTY})\s*", row[idx["DiD"]])
                d = qty(m[1]) if m else None
            except ValueError:
                continue
            if d is None or not tc.unit == cc.unit == d.unit:
                continue
            if abs(tc.value - cc.value - d.value) > tc.tol + cc.tol + d.tol + 1e-9:
                bad.append(f"{t.caption} / {row[0]}: DiD is not treatment − control: "
                           f"{_flat(' | '.join(row))!r}")
    return bad


def did_significant(model: object) -> tuple[int, int]:
    """(rows whose DiD interval excludes zero, rows with a DiD interval) in the DiD table."""
    for t in tables(model):
        did = [i for i, c in enumerate(t.columns) if c.startswith("DiD [")]
        if did and "Treatment change" in t.columns:
            ivs = [m for row in t.rows if (m := INTERVAL_RE.search(row[did[0]]))]
            return sum(_excludes_zero(qty(m["lo"]), qty(m["hi"])) for m in ivs), len(ivs)
    return 0, 0


def _excludes_zero(lo: Qty, hi: Qty) -> bool:
    return lo.value > 0 or hi.value < 0


def _claim_ok(word: str, lo: Qty, hi: Qty) -> bool:
    word = word.lower()
    if "no significant" in word or "not separable" in word:
        return not _excludes_zero(lo, hi)
    if any(w in word for w in ("improved", "worsened", "significant")):
        return _excludes_zero(lo, hi)
    return True


def significance_problems(model: object) -> list[str]:
    """'significant' / 'improved' / 'worsened' only where the printed interval excludes zero,
    'no significant change' only where it includes zero."""
    bad = []
    for path, text in texts(model):
        for rx in (VERDICT_RE, CLAIM_FIRST_RE):
            for m in rx.finditer(text):
                if not _claim_ok(m["word"], qty(m["lo"]), qty(m["hi"])):
                    bad.append(f"{path}: {m['word']!r} does not fit {_flat(m[0])!r}")
    for t in tables(model):
        res = [i for i, c in enumerate(t.columns) if c.startswith("Result")]
        did = [i for i, c in enumerate(t.columns) if c.startswith("DiD")]
        change = [i for i, c in enumerate(t.columns) if c == "Change"]
        if not res or not (did or change):
            continue
        ci = did[0] if did else change[0]
        for row in t.rows:
            m = INTERVAL_RE.search(row[ci])
            if m and not _claim_ok(row[res[0]], qty(m["lo"]), qty(m["hi"])):
                bad.append(f"{t.caption} / {row[0]}: {row[res[0]]!r} does not fit "
                           f"{_flat(row[ci])!r}")
    return bad + verdict_list_problems(model)


def verdict_list_problems(model: object) -> list[str]:
    """The segment verdict's "N headline metrics improved (names) and M worsened (names)"
    names exactly the headline rows whose printed treatment-change interval excludes zero."""
    ex = getattr(model, "executive", None)
    verdict = getattr(ex, "verdict", None)
    if verdict is None:
        return []
    t = ex.headline
    col = next((i for i, c in enumerate(t.columns) if c.startswith("Treatment change")), None)
    if col is None:
        return []
    moved = {r[0] for r in t.rows if (m := INTERVAL_RE.search(r[col]))
             and _excludes_zero(qty(m["lo"]), qty(m["hi"]))}
    bad = []
    for seg in getattr(verdict, "segments", []):
        if getattr(seg, "segment", "") != "treatment":
            continue
        named: set[str] = set()
        for m in re.finditer(r"(?<![\w.])\d+ (?:headline metrics? )?(?:improved|worsened) \(",
                             seg.answer):
            named |= set(_paren_list(seg.answer, m.end()))
        # headline rows carry a suffix ("Effective utilization (sm_active)"): match by prefix
        rows = {r for r in moved if not any(r.startswith(n) for n in named)}
        extra = {n for n in named if not any(r.startswith(n) for r in moved)}
        if rows or extra:
            bad.append(f"treatment verdict names {sorted(extra)} without an interval "
                       f"excluding zero and omits {sorted(rows)}: {seg.answer!r}")
    return bad


def _names(listed: str) -> list[str]:
    return [] if listed.strip() in ("", "none") else [s for s in listed.split(", ") if s]


COUNT_LIST_RES = (  # "N <things> (name, name, ...)": N must be the number of names listed
    re.compile(r"(?<![\w.])(?<!of )(\d+) headline metrics? (?:improved|worsened)[^(;]* \("),
    re.compile(r"(?<![\w.])(\d+) of \d+ headline metrics? (?:improved|worsened)[^(;]* \("),
    re.compile(r"(?<![\w.])(\d+) (?:worsened|improved|showed no significant change) \("),
    re.compile(r"(?<![\w.])(\d+) of \d+ report items are not measured \("),
    re.compile(r"in (\d+) pools? \((?!\d+ in )"),
)
PHASE_SPLIT_RE = re.compile(  # "N things [in K pools] (a in baseline, b in validation)"
    r"(?<![\w.])(\d+) [a-z][a-z ]*?(?: in \d+ pools?)? "
    r"\((\d+) in baseline, (\d+) in validation\)")
CHART_DID_RE = re.compile(r"(?<![\w.])(\d+) of (\d+) headline metrics with intervals changed "
                          r"beyond the control \(DiD interval excludes zero\)(?:: (.*?))? "
                          r"\((?:measured|modeled)")


def _paren_list(text: str, start: int) -> list[str]:
    """The comma-separated names from text[start] (just after an opening parenthesis) to its
    matching close; a name may hold its own parentheses ("Delay Index (DI)")."""
    depth, i = 1, start
    while i < len(text) and depth:
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
    return _names(text[start:i - 1].split("; ")[0])


OF_CAPTION_RE = re.compile(r"(?P<upto>up to )?(?P<n>\d+) of (?P<m>[\d,]+)")


def count_problems(model: object) -> list[str]:
    """Counts quoted in text equal the lists and tables they describe."""
    bad = []
    for path, text in texts(model):
        for rx in COUNT_LIST_RES:
            for m in rx.finditer(text):
                names = _paren_list(text, m.end())
                if int(m[1]) != len(names):
                    bad.append(f"{path}: {m[1]} but {len(names)} listed: "
                               f"{text[m.start():m.end() + 120]!r}")
        for m in PHASE_SPLIT_RE.finditer(text):
            if int(m[1]) != int(m[2]) + int(m[3]):
                bad.append(f"{path}: the per-phase counts do not add up: {m[0]!r}")
        for m in CHART_DID_RE.finditer(text):
            names = _names(m[3] or "")
            sig = did_significant(model)
            if int(m[1]) != len(names) or (int(m[1]), int(m[2])) != sig:
                bad.append(f"{path}: {m[1]} of {m[2]} but {len(names)} named and the DiD "
                           f"table has {sig}: {_flat(m[0])!r}")
    # "N of M" in a table caption: the table lists N rows (at most N with "up to")
    for t in tables(model):
        m = OF_CAPTION_RE.search(t.caption)
        if m:
            n, total = int(m["n"]), int(m["m"].replace(",", ""))
            want = min(n, total)
            if len(t.rows) != want or n > total:
                bad.append(f"caption {t.caption!r} but the table has {len(t.rows)} rows")
    bad += _quoted_total_problems(model)
    all_texts, all_tables = texts(model), tables(model)
    ex = getattr(model, "executive", None)
    n_headline = len(ex.headline.rows) if ex is not None else None
    for path, text in all_texts:
        for m in re.finditer(r"Of (\d+) headline metrics, (\d+) improved[^;]*; (\d+) worsened"
                             r"(?:; (\d+) showed no significant change)?", text):
            parts = sum(int(g) for g in m.groups()[1:] if g)
            # N counts the catalog's headline metrics, measured or not; the table shows the
            # measured ones (the rest are named in its note), so N >= rows >= the parts
            if n_headline is None or not parts <= n_headline <= int(m[1]):
                bad.append(f"{path}: {_flat(m[0])!r} against {n_headline} rows in the "
                           "headline table")
    # "N of M report items are not measured (names; section 11)" against section 11's table
    missing = next((t for t in all_tables if t.caption.startswith("Missing telemetry")), None)
    if missing is not None and "Would measure" in missing.columns:
        col = missing.columns.index("Would measure")
        in_table = {n for r in missing.rows for n in _names(r[col])}
        for path, text in all_texts:
            for m in re.finditer(r"(?<![\w.])\d+ of \d+ report items are not measured \(", text):
                named = set(_paren_list(text, m.end()))
                if named != in_table:
                    bad.append(f"{path}: names {sorted(named)}, section 11's table "
                               f"{sorted(in_table)}")
    # the executive findings: the note's count of shown findings, and each finding's count
    # against its evidence table (listed rows + "N further findings not listed")
    if ex is not None:
        m = re.search(r"the (\d+) largest", ex.findings_note)
        if m and int(m[1]) != len(ex.findings):
            bad.append(f"findings note says {m[1]} shown, {len(ex.findings)} are: "
                       f"{ex.findings_note!r}")
        evidence = {t.caption.removeprefix("Evidence: "): t for t in all_tables
                    if t.caption.startswith("Evidence: ")}
        for f in ex.findings:
            m = re.match(r"(\d+) findings", f.sentence)
            t = evidence.get(f.title)
            if not (m and t):
                continue
            more = re.search(r"(\d+) further findings? not listed", t.note)
            listed = len(t.rows) + (int(more[1]) if more else 0)
            if listed != int(m[1]):
                bad.append(f"finding {f.title!r}: text says {m[1]}, evidence table lists "
                           f"{listed}: {f.sentence!r}")
    return bad


TOTAL_RES = {  # one total quoted in several places: every quote must agree
    "burst episodes": (
        re.compile(r"(?<![\w.])(\d+) burst episodes in \d+ pools?"),
        re.compile(r"(?<![\w.])(\d+) burst episodes in baseline, "
                   r"(\d+) burst episodes in validation"),
        re.compile(r"burst episodes \(\d+ of ([\d,]+);"),
        re.compile(r"baseline: \d+ of (\d+) episodes amplified[^;]*; "
                   r"validation: \d+ of (\d+) episodes amplified")),
    "cascade edges with waves": (
        re.compile(r"(?<![\w.])(\d+) pool → pool edges carried"),
        re.compile(r"pool → pool edges carried[^:]*: (\d+) in the baseline phase, "
                   r"(\d+) in the validation phase"),
        re.compile(r"Cascade edges with waves, \d+ of ([\d,]+)")),
    "baseline cascade edges": (
        re.compile(r"(?<![\w.])(\d+) baseline cascade edges"),
        re.compile(r"pool → pool edges carried[^:]*: (\d+) in the baseline phase")),
}


def _quoted_total_problems(model: object) -> list[str]:
    """Totals quoted in text, captions and chart readings agree (a quote of two numbers is
    their sum: baseline + validation)."""
    all_texts, all_tables = texts(model), tables(model)
    sources = all_texts + [(f"caption of {t.caption}", t.caption) for t in all_tables]
    bad = []
    for what, regexes in TOTAL_RES.items():
        seen: dict[int, str] = {}
        for path, text in sources:
            for rx in regexes:
                for m in rx.finditer(text):
                    seen.setdefault(sum(int(g.replace(",", "")) for g in m.groups()),
                                    f"{path}: {_flat(m[0])!r}")
        if len(seen) > 1:
            bad.append(f"{what} quoted as {sorted(seen)}: " + "; ".join(seen.values()))
    # the cascade table lists as many rows as its paragraph says
    cascade = next((t for t in all_tables if t.caption.startswith("Cascade edges")), None)
    for path, text in all_texts:
        m = re.search(r"The table lists (\d+) of them", text)
        t = cascade
        if m and t and int(m[1]) != len(t.rows):
            bad.append(f"{path}: says the table lists {m[1]}, it has {len(t.rows)} rows")
    # segments are not pools: "in 2 pools (segment:control, ...)"
    for path, text in all_texts:
        for m in re.finditer(r"pools? \((segment[:=][^)]*)\)", text):
            bad.append(f"{path}: segments named as pools: {m[0]!r}")
    return bad


CHECKS = {"interval": interval_problems, "change": change_problems, "did": did_problems,
          "significance": significance_problems, "count": count_problems}


def all_problems(model: object) -> dict[str, list[str]]:
    return {name: check(model) for name, check in CHECKS.items()}
