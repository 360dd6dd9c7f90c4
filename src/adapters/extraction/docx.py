"""DOCX through python-docx: the container checked first (zip bombs, DTDs and
entities), then paragraphs, headings, lists and tables in order; struck runs (revoked
wording of compiled laws) are not text."""

from __future__ import annotations

import io
import re
import zipfile

from domain.errors import CorruptDocument
from domain.model import Block, BlockKind, ExtractedDocument

from .containers import check_zip_container
from .limits import ParseLimits
from .normalize import clean, merge_blocks, one_line, text_to_blocks
from .tables import Table as Grid

_XML_PARTS = re.compile(r"^(word/.*\.xml|\[Content_Types\]\.xml|docProps/.*\.xml|_rels/.*)$")


_HEADING_STYLE = re.compile(r"^(?:heading|t[íi]tulo|titulo)\s*(\d)?$", re.IGNORECASE)


def extract_docx(data: bytes, limits: ParseLimits) -> ExtractedDocument:
    from docx import Document
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    check_zip_container(data, limits, _XML_PARTS, "DOCX")
    try:
        doc = Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CorruptDocument(f"the DOCX cannot be read: {exc}") from exc
    except Exception as exc:  # lxml XMLSyntaxError and friends
        raise CorruptDocument(f"the DOCX cannot be parsed: {type(exc).__name__}: {exc}") from exc
    blocks: list[Block] = []
    struck = 0
    # a paragraph's style name, by its style id: python-docx finds the default style by
    # reading every style of the document, for every paragraph without one (~90% of the
    # time of a plain DOCX); the answer is the same for every paragraph of an id
    style_names: dict[str | None, str] = {}

    def style_name(item: Paragraph) -> str:
        style_id = item._p.style
        name = style_names.get(style_id)
        if name is None:
            style = item.style
            name = style_names[style_id] = (style.name if style is not None else "") or ""
        return name

    def paragraph(item: Paragraph) -> None:
        nonlocal struck
        raw, dropped = docx_paragraph_text(item._p)
        struck += dropped
        text = clean(raw)
        if not text:
            return
        style = style_name(item)
        m = _HEADING_STYLE.match(style.strip())
        if style.strip().lower() == "title":
            blocks.append(Block(BlockKind.HEADING, one_line(text), level=1))
        elif m:
            blocks.append(Block(BlockKind.HEADING, one_line(text), level=int(m.group(1) or 1)))
        elif "list" in style.lower():
            blocks.append(Block(BlockKind.LIST_ITEM, one_line(text)))
        else:
            blocks.extend(text_to_blocks(text))

    for item in doc.iter_inner_content():
        if isinstance(item, Paragraph):
            paragraph(item)
        elif isinstance(item, Table):
            if len(item.columns) <= 1:
                # a one-column table is a box around text (notes, ementas), not data
                for row in item.rows:
                    for cell in row.cells:
                        for p in cell.paragraphs:
                            paragraph(p)
                continue
            table = Grid()
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:
                    parts = [docx_paragraph_text(p._p) for p in cell.paragraphs]
                    struck += sum(n for _, n in parts)
                    cells.append(" ".join(t for t, _ in parts))
                table.add(cells, header=_repeats_as_header(row._tr))
            blocks.extend(table.blocks())
    title = one_line(doc.core_properties.title or "") or None
    return ExtractedDocument(
        blocks=merge_blocks(blocks), title=title, report={"struck_chars": struck}
    )


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _repeats_as_header(tr: object) -> bool:
    """w:tblHeader: Word's 'repeat as header row at the top of each page'."""
    trpr = tr.find(f"{_W}trPr")  # type: ignore[attr-defined]
    if trpr is None:
        return False
    el = trpr.find(f"{_W}tblHeader")
    return el is not None and el.get(f"{_W}val", "true").lower() not in _OFF


_OFF = frozenset({"0", "false", "off", "none"})
# planalto marks the ordinal of "1º" with a struck run; such a run is not revoked text
_ORDINAL_ONLY = re.compile(r"^[\sºª°o.]*$")


def _run_struck(run: object) -> bool:
    rpr = run.find(f"{_W}rPr")  # type: ignore[attr-defined]
    if rpr is None:
        return False
    for tag in ("strike", "dstrike"):
        el = rpr.find(f"{_W}{tag}")
        if el is not None and el.get(f"{_W}val", "true").lower() not in _OFF:
            return True
    return False


def docx_paragraph_text(p: object) -> tuple[str, int]:
    """A paragraph's text without its struck runs (w:strike / w:dstrike: revoked wording
    in compiled laws), and how many characters were dropped. Tracked deletions
    (w:delText) are never text."""
    parts: list[str] = []
    dropped = 0
    for run in p.iter(f"{_W}r"):  # type: ignore[attr-defined]
        pieces: list[str] = []
        for child in run:
            tag = child.tag
            if tag == f"{_W}t":
                pieces.append(child.text or "")
            elif tag == f"{_W}tab":
                pieces.append("\t")
            elif tag in (f"{_W}br", f"{_W}cr"):
                pieces.append("\n")
        text = "".join(pieces)
        if text and _run_struck(run) and not _ORDINAL_ONLY.match(text):
            dropped += len(text.strip())
            parts.append(" ")
            continue
        parts.append(text)
    return "".join(parts), dropped
