"""Plain display types shared by the report's model builders and the template."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[str]]
    basis: str | None = "measured"  # measured | modeled | None (inventory, not a figure)
    num_cols: tuple[int, ...] = ()  # right-aligned columns
    wrap_cols: tuple[int, ...] = ()  # long tokens (files, checksums) that may break anywhere
    nowrap_cols: tuple[int, ...] = ()  # short verdicts and names kept on one line
    empty: str = "No rows."
    note: str = ""
    anchor: str = ""  # id for links (a finding points at its evidence table)
    sortable: bool = True  # HTML only: click a header to sort (the PDF is static)


@dataclass
class Section:
    number: str
    title: str
    anchor: str
    included: bool = True
    absent: str = ""  # the one line printed when the section is not in this version


@dataclass
class Finding:
    title: str
    sentence: str
    metric: str  # the catalog label of the metric it cites
    severity: float
    href: str = ""  # anchor of the evidence table, when there is one
    cite: str = ""  # where the number comes from (table, phase, segment)
    severity_label: str = ""  # a detector's own severity word (low/medium/high)

    @property
    def severity_text(self) -> str:
        return self.severity_label or f"{self.severity:.2f}"


@dataclass
class Part:
    """One numbered subsection of a generic section: sentences, bullets and tables."""

    heading: str = ""
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    anchor: str = ""
