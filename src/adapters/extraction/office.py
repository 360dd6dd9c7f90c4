"""Spreadsheets and presentations: XLSX (openpyxl), PPTX (python-pptx), CSV.

Each sheet is a table under its name, each data row indexed with its column headers
(tables.py); each slide comes under its title, with its text frames, lists and tables.
Containers are checked first (zip bombs, DTDs and entities); a cell budget bounds what
a spreadsheet may hold.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

from domain.errors import CorruptDocument, UnsafeDocument
from domain.model import Block, BlockKind, ExtractedDocument

from .containers import check_zip_container
from .limits import ParseLimits
from .normalize import merge_blocks, one_line, text_to_blocks
from .tables import Table, table_blocks

_XLSX_PARTS = re.compile(r"^(xl/.*\.xml|\[Content_Types\]\.xml|docProps/.*\.xml|_rels/.*)$")
_PPTX_PARTS = re.compile(r"^(ppt/.*\.xml|\[Content_Types\]\.xml|docProps/.*\.xml|_rels/.*)$")


def cell_text(value: Any) -> str:
    """A cell as people read it in Brazil: 900.5 -> '900,5', dates as dd/mm/aaaa."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "sim" if value else "não"
    if isinstance(value, float):
        text = f"{value:.2f}" if abs(value - round(value)) > 1e-9 else str(round(value))
        return text.replace(".", ",")
    if isinstance(value, dt.datetime):
        return (
            value.strftime("%d/%m/%Y %H:%M")
            if value.time() != dt.time()
            else (value.strftime("%d/%m/%Y"))
        )
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return str(value)


def extract_xlsx(data: bytes, limits: ParseLimits) -> ExtractedDocument:
    import openpyxl

    check_zip_container(data, limits, _XLSX_PARTS, "XLSX")
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on damaged files
        raise CorruptDocument(f"the XLSX cannot be read: {type(exc).__name__}: {exc}") from exc
    blocks: list[Block] = []
    budget = limits.max_cells
    try:
        for ws in wb.worksheets:
            rows: list[list[str]] = []
            for values in ws.iter_rows(values_only=True):
                cells = [cell_text(v) for v in values]
                while cells and not cells[-1]:
                    cells.pop()
                if not cells:
                    continue
                budget -= len(cells)
                if budget < 0:
                    raise UnsafeDocument(f"the workbook holds more than {limits.max_cells:,} cells")
                rows.append(cells)
            if rows:
                blocks.append(Block(BlockKind.HEADING, one_line(ws.title), level=2))
                blocks.extend(table_blocks(rows))
    finally:
        wb.close()
    return ExtractedDocument(blocks=merge_blocks(blocks))


def extract_pptx(data: bytes, limits: ParseLimits) -> ExtractedDocument:
    from pptx import Presentation

    check_zip_container(data, limits, _PPTX_PARTS, "PPTX")
    try:
        deck = Presentation(io.BytesIO(data))
    except Exception as exc:
        raise CorruptDocument(f"the PPTX cannot be read: {type(exc).__name__}: {exc}") from exc
    blocks: list[Block] = []
    for number, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        title = one_line(title_shape.text_frame.text) if title_shape is not None else ""
        blocks.append(Block(BlockKind.HEADING, title or f"Slide {number}", level=2))
        for shape in slide.shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            _shape_blocks(shape, blocks, number)
    return ExtractedDocument(blocks=merge_blocks(blocks), pages=len(deck.slides))


def _shape_blocks(shape: Any, blocks: list[Block], page: int) -> None:
    if getattr(shape, "has_table", False) and shape.has_table:
        grid = Table(page=page)
        for row in shape.table.rows:
            grid.add([cell.text for cell in row.cells])
        blocks.extend(grid.blocks())
    elif getattr(shape, "shapes", None) is not None:  # a group
        for inner in shape.shapes:
            _shape_blocks(inner, blocks, page)
    elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        for paragraph in shape.text_frame.paragraphs:
            text = one_line("".join(run.text for run in paragraph.runs))
            if not text:
                continue
            if paragraph.level > 0:
                blocks.append(Block(BlockKind.LIST_ITEM, text, page=page))
            else:
                blocks.extend(text_to_blocks(text, page=page))


def extract_csv(text: str, limits: ParseLimits) -> ExtractedDocument:
    sample = text[:20_000]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows: list[list[str]] = []
    budget = limits.max_cells
    try:
        for record in csv.reader(io.StringIO(text), dialect):
            budget -= len(record)
            if budget < 0:
                raise UnsafeDocument(f"the CSV holds more than {limits.max_cells:,} cells")
            rows.append(record)
    except csv.Error as exc:
        raise CorruptDocument(f"the CSV cannot be read: {exc}") from exc
    return ExtractedDocument(blocks=merge_blocks(table_blocks(rows)))
