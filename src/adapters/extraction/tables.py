"""Tables of every format become rows that keep their column headers.

A question about one row ("qual o valor do auxílio-alimentação no Acre?") must find
that row, and a row alone ("Acre | 900,00 | 01/05/2026") does not say what its numbers
are. So each data row is indexed with its headers:
"Unidade da Federação: Acre | Valor mensal (R$): 900,00 | Vigência: 01/05/2026".

The header is the row the format marks as one (HTML ``th``, a Markdown table's first
line, ODF ``table-header-rows``), else the first row when it reads like one (text
labels, no figures) and data rows follow. A table continued on the next page passes
its header on (``Table.continued``), so a table that spans pages stays one table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from domain.model import Block, BlockKind

from .normalize import one_line

# a cell that is a figure, a date, money or a percentage: not a column label
_FIGURE = re.compile(r"^[\s(R$€%+\-−.,/:0-9)º°ª]*\d[\s(R$€%+\-−.,/:0-9)º°ª]*$")
MAX_CELL_CHARS = 2000


def looks_like_header(cells: Sequence[str]) -> bool:
    filled = [c for c in cells if c]
    if len(filled) < 2 or len(filled) < len(cells) / 2:
        return False
    if any(_FIGURE.match(c) for c in filled):
        return False
    return all(len(c) <= 120 for c in filled)


def row_text(cells: Sequence[str], header: Sequence[str] | None) -> str:
    """'Header: value | Header: value'; cells without a header stay bare."""
    parts: list[str] = []
    for i, value in enumerate(cells):
        if not value:
            continue
        label = header[i] if header is not None and i < len(header) else ""
        part = f"{label}: {value}" if label and label != value else value
        if not parts or parts[-1] != part:  # merged cells repeat their value
            parts.append(part)
    return " | ".join(parts)


@dataclass
class Table:
    """The rows of one table, in order; `header` is known or inferred at `blocks()`."""

    rows: list[list[str]] = field(default_factory=list)
    header: list[str] | None = None  # the format's header row, else inferred in blocks()
    page: int | None = None

    def add(self, cells: Iterable[str], *, header: bool = False) -> None:
        clean = [one_line(c)[:MAX_CELL_CHARS] for c in cells]
        while clean and not clean[-1]:
            clean.pop()
        if not any(clean):
            return
        if header and self.header is None and not self.rows:
            self.header = clean
            return
        self.rows.append(clean)

    @property
    def width(self) -> int:
        return max((len(r) for r in self.rows), default=len(self.header or []))

    def blocks(self) -> list[Block]:
        rows = self.rows
        header = self.header
        if header is None and len(rows) >= 2 and looks_like_header(rows[0]):
            header, rows = rows[0], rows[1:]
            self.header = header
        if header is not None and not rows:  # a header alone is a line of text
            return [Block(BlockKind.TABLE, " | ".join(c for c in header if c), page=self.page)]
        out: list[Block] = []
        for cells in rows:
            text = row_text(cells, header)
            if text:
                out.append(Block(BlockKind.TABLE, text, page=self.page))
        return out

    def continued(self, rows: list[list[str]], page: int | None) -> Table:
        """The part of this table on the next page: same header; a repeated header
        row at its top is dropped."""
        nxt = Table(header=self.header, page=page)
        for i, cells in enumerate(rows):
            if i == 0 and self.header is not None and [one_line(c) for c in cells] == self.header:
                continue
            nxt.add(cells)
        return nxt


def table_blocks(rows: Iterable[Sequence[str]], *, page: int | None = None) -> list[Block]:
    """Blocks of a whole table whose header, if any, is its first row."""
    table = Table(page=page)
    for r in rows:
        table.add(r)
    return table.blocks()
