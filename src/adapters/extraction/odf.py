"""OpenDocument (ODT, ODS, ODP: LibreOffice's formats) from its content.xml.

The container is checked first (zip bombs, DTDs and entities), then content.xml is
parsed with defusedxml and walked: headings (``text:h`` with their outline level),
paragraphs, list items, tables with their header rows (``table:table-header-rows``,
else the first row when it reads like one), each sheet of a spreadsheet as a table
under its name, each slide of a presentation under its title. Repeated rows and
columns (``number-*-repeated``: spreadsheets pad to a million rows) are expanded only
where they hold something, within a cell budget. Tracked deletions are not text.
"""

from __future__ import annotations

import re
from typing import Any

from domain.errors import CorruptDocument, UnsafeDocument
from domain.model import Block, BlockKind, DocumentType, ExtractedDocument

from .containers import check_zip_container, read_member
from .limits import ParseLimits
from .normalize import merge_blocks, one_line, text_to_blocks
from .tables import Table

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
}
_XML_PARTS = re.compile(r"^(content\.xml|styles\.xml|meta\.xml|settings\.xml|manifest\.rdf)$")
_MAX_REPEAT = 1000  # a repeated row or cell that holds something is expanded this far


def _q(prefix: str, name: str) -> str:
    return f"{{{_NS[prefix]}}}{name}"


_H, _P, _LIST, _ITEM = _q("text", "h"), _q("text", "p"), _q("text", "list"), _q("text", "list-item")
_SPACE, _TAB, _BREAK = _q("text", "s"), _q("text", "tab"), _q("text", "line-break")
_SKIP = {_q("text", "tracked-changes"), _q("text", "note"), _q("office", "annotation")}
_TABLE, _ROW, _CELL = _q("table", "table"), _q("table", "table-row"), _q("table", "table-cell")
_COVERED = _q("table", "covered-table-cell")
_HEADER_ROWS = _q("table", "table-header-rows")
_PAGE, _FRAME = _q("draw", "page"), _q("draw", "frame")


def extract_odf(data: bytes, doc_type: DocumentType, limits: ParseLimits) -> ExtractedDocument:
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    label = doc_type.label
    check_zip_container(data, limits, _XML_PARTS, label)
    try:
        root = ElementTree.fromstring(read_member(data, "content.xml", label))
    except DefusedXmlException as exc:
        raise UnsafeDocument(f"the {label}'s content.xml declares entities or a DTD") from exc
    except ElementTree.ParseError as exc:
        raise CorruptDocument(f"the {label}'s content.xml cannot be parsed: {exc}") from exc
    body = root.find(_q("office", "body"))
    if body is None:
        raise CorruptDocument(f"the {label} has no body")
    walker = _Walker(limits, sheets=doc_type is DocumentType.ODS)
    for part in body:
        walker.walk(part)
    return ExtractedDocument(blocks=merge_blocks(walker.blocks))


class _Walker:
    def __init__(self, limits: ParseLimits, sheets: bool) -> None:
        self.sheets = sheets  # a spreadsheet's tables are its sheets: named headings
        self.blocks: list[Block] = []
        self.cells_left = limits.max_cells
        self.slide = 0

    def walk(self, node: Any) -> None:
        for child in node:
            tag = child.tag
            if tag in _SKIP:
                continue
            if tag == _H:
                text = one_line(_text(child))
                if text:
                    level = int(child.get(_q("text", "outline-level"), "1") or 1)
                    self.blocks.append(Block(BlockKind.HEADING, text, level=min(level, 6)))
            elif tag == _P:
                self.blocks.extend(text_to_blocks(_text(child)))
            elif tag == _LIST:
                self._list(child)
            elif tag == _TABLE:
                self._table(child)
            elif tag == _PAGE:
                self._slide(child)
            else:
                self.walk(child)

    def _list(self, node: Any) -> None:
        for item in node.iter(_ITEM):
            for p in item:
                if p.tag in (_P, _H):
                    text = one_line(_text(p))
                    if text:
                        self.blocks.append(Block(BlockKind.LIST_ITEM, text))

    def _slide(self, page: Any) -> None:
        self.slide += 1
        title = None
        for frame in page.iter(_FRAME):
            if frame.get(_q("presentation", "class")) == "title":
                title = one_line(" ".join(_text(p) for p in frame.iter(_P)))
        name = title or page.get(_q("draw", "name")) or f"Slide {self.slide}"
        self.blocks.append(Block(BlockKind.HEADING, name, level=2))
        for frame in page.iter(_FRAME):
            if frame.get(_q("presentation", "class")) in ("title", "notes"):
                continue
            self.walk(frame)

    def _table(self, node: Any) -> None:
        name = node.get(_q("table", "name"))
        if name and self.sheets:
            self.blocks.append(Block(BlockKind.HEADING, name, level=2))
        grid = Table()
        for child in node:
            if child.tag == _HEADER_ROWS:
                for row in child.iter(_ROW):
                    grid.add(self._cells(row), header=True)
            elif child.tag == _ROW or child.tag.endswith("}table-rows"):
                rows = [child] if child.tag == _ROW else list(child.iter(_ROW))
                for row in rows:
                    cells = self._cells(row)
                    if not any(cells):
                        continue
                    repeat = int(row.get(_q("table", "number-rows-repeated"), "1") or 1)
                    for _ in range(min(repeat, _MAX_REPEAT)):
                        grid.add(cells)
        self.blocks.extend(grid.blocks())

    def _cells(self, row: Any) -> list[str]:
        cells: list[str] = []
        for cell in row:
            if cell.tag not in (_CELL, _COVERED):
                continue
            value = one_line(" ".join(_text(p) for p in cell if p.tag in (_P, _H)))
            repeat = int(cell.get(_q("table", "number-columns-repeated"), "1") or 1)
            repeat = min(repeat, _MAX_REPEAT) if value else min(repeat, 1)
            self.cells_left -= repeat
            if self.cells_left < 0:
                raise UnsafeDocument("the document holds more cells than the limit allows")
            cells.extend([value] * repeat)
        while cells and not cells[-1]:
            cells.pop()
        return cells


def _text(node: Any) -> str:
    """A paragraph's text: spans, spaces (text:s with text:c), tabs and line breaks."""
    parts: list[str] = [node.text or ""]
    for child in node:
        tag = child.tag
        if tag in _SKIP:
            pass
        elif tag == _SPACE:
            parts.append(" " * min(int(child.get(_q("text", "c"), "1") or 1), 100))
        elif tag == _TAB:
            parts.append("\t")
        elif tag == _BREAK:
            parts.append("\n")
        else:
            parts.append(_text(child))
        parts.append(child.tail or "")
    return "".join(parts)
