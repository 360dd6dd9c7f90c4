"""PDF through pypdfium2: the text layer page by page, running headers and page numbers
removed; Flate streams inflated in bounded pieces first (decompression bombs).

- A page without a text layer that holds an image is a scan: it is rendered at 300 dpi
  and read by OCR (only those pages; the report lists them).
- A page with ruled lines may hold a table: pdfplumber finds it, and the page is read
  as the text above, the table (rows with their column headers), the text below. A
  table that ends a page and one of the same width that starts the next are one table.
- A document left without text says why: no text layer and no image, or only a line
  repeated on every page (a header or footer), or an image OCR could not read.
"""

from __future__ import annotations

import io
import re
import zlib

from domain.errors import CorruptDocument, NoTextFound, UnsafeDocument
from domain.model import Block, ExtractedDocument

from .limits import ParseLimits
from .normalize import clean, merge_blocks, one_line, strip_running_lines, text_to_blocks
from .ocr import OCR_DPI, ocr_image, report_progress
from .tables import Table

_STREAM_START = re.compile(rb"(?<!end)stream\r?\n")


def check_pdf_streams(data: bytes, max_inflated: int) -> None:
    """Inflate every Flate stream in bounded pieces, counting bytes only: a PDF whose
    streams inflate past `max_inflated` is a decompression bomb and is refused
    before any parser expands it in memory."""
    total = 0
    piece = 1 << 20
    for match in _STREAM_START.finditer(data):
        start = match.end()
        end = data.find(b"endstream", start)
        if end < 0:
            break
        inflater = zlib.decompressobj()
        pending = data[start:end]
        try:
            while pending:
                out = inflater.decompress(pending, piece)
                total += len(out)
                if total > max_inflated:
                    raise UnsafeDocument(
                        f"the PDF's streams inflate past {max_inflated // (1 << 20)} MB "
                        "(a decompression bomb)"
                    )
                pending = inflater.unconsumed_tail
                if not out:
                    break
        except zlib.error:
            continue  # not Flate (images, already decoded data): nothing to bound here


MIN_TEXT_CHARS = 20  # fewer visible characters than this: the page has no text layer
MIN_RULES = 4  # path objects (lines, boxes) before a page is searched for tables
_TABLE_MARK = "\x00table-{}\x00"
_MARK = re.compile(r"^\x00table-([a-z]+)\x00$")


def _mark(n: int) -> str:
    """A placeholder line for table n, in letters so that it never looks like the
    page-numbered running lines that strip_running_lines removes."""
    letters = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(97 + r) + letters
    return _TABLE_MARK.format(letters)


def extract_pdf(data: bytes, limits: ParseLimits) -> ExtractedDocument:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    check_pdf_streams(data, limits.max_unzipped_bytes)
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise CorruptDocument("the PDF is encrypted with a password") from exc
        raise CorruptDocument(f"the PDF cannot be read: {message}") from exc
    tables: dict[str, Table] = {}
    ocr_pages: list[int] = []
    plumber = _Plumber(data)
    try:
        n = len(pdf)
        if n > limits.max_pdf_pages:
            raise UnsafeDocument(f"the PDF has {n} pages; the limit is {limits.max_pdf_pages}")
        pages: list[list[str]] = []
        for i in range(n):
            page = pdf[i]
            try:
                textpage = page.get_textpage()
                try:
                    text = textpage.get_text_range()
                finally:
                    textpage.close()
                visible = len("".join(text.split()))
                if visible < MIN_TEXT_CHARS and _count(page, pdfium_c.FPDF_PAGEOBJ_IMAGE, 1):
                    image = page.render(scale=OCR_DPI / 72, grayscale=True).to_pil()
                    text = ocr_image(image)
                    ocr_pages.append(i + 1)
                    report_progress(i + 1, n, slow=True)
                    pages.append(clean(text).split("\n"))
                    continue
                if visible and _count(page, pdfium_c.FPDF_PAGEOBJ_PATH, MIN_RULES) >= MIN_RULES:
                    lines = plumber.page_with_tables(i, i + 1, tables)
                    if lines is not None:
                        pages.append(lines)
                        continue
            finally:
                page.close()
                report_progress(i + 1, n)
            pages.append(clean(text).split("\n"))
        title = _pdf_title(pdf)
    finally:
        pdf.close()
        plumber.close()
    stripped = strip_running_lines(pages)
    blocks = _blocks(stripped, tables)
    report: dict[str, object] = {}
    if ocr_pages:
        report.update(ocr_pages=ocr_pages, pages_ocr=len(ocr_pages))
    if tables:
        report["tables"] = len({id(t) for t in tables.values()})
    if not merge_blocks(blocks):
        raise NoTextFound(_why_no_text(pages, stripped, ocr_pages))
    return ExtractedDocument(blocks=merge_blocks(blocks), title=title, pages=n, report=report)


def _count(page: object, kind: int, enough: int) -> int:
    found = 0
    for _ in page.get_objects(filter=[kind], max_depth=2):  # type: ignore[attr-defined]
        found += 1
        if found >= enough:
            break
    return found


def _why_no_text(raw: list[list[str]], stripped: list[list[str]], ocr_pages: list[int]) -> str:
    if any(line.strip() for lines in raw for line in lines):
        if ocr_pages and len(ocr_pages) == len(raw):
            return "the PDF is a scan and OCR found no readable text on its pages"
        return (
            "every page holds only the same repeated line (a header or footer) or a page "
            "number; there is no body text"
        )
    if ocr_pages:
        return "the PDF is a scan and OCR found no readable text on its pages"
    return "the PDF has no text layer and no images: its pages are empty"


def _blocks(pages: list[list[str]], tables: dict[str, Table]) -> list[Block]:
    """Text segments and tables of every page in order; a table that starts a page and
    continues one that ended the page before (same width) is the same table."""
    blocks: list[Block] = []
    open_table: Table | None = None  # the table the previous page ended with
    for number, lines in enumerate(pages, start=1):
        body = [line for line in lines if line.strip()]
        segment: list[str] = []
        for pos, line in enumerate(body):
            m = _MARK.match(line)
            if m is None:
                segment.append(line)
                continue
            blocks.extend(text_to_blocks("\n".join(segment), page=number))
            segment = []
            table = tables[line]
            if pos == 0 and open_table is not None and open_table.width == table.width:
                table = open_table.continued(table.rows, number)
            table.page = number
            blocks.extend(table.blocks())
            open_table = table if pos == len(body) - 1 else None
        if segment:
            blocks.extend(text_to_blocks("\n".join(segment), page=number))
            open_table = None
    return blocks


class _Plumber:
    """pdfplumber, opened only when a page may hold a table."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._pdf: object | None = None

    def page_with_tables(
        self, index: int, number: int, tables: dict[str, Table]
    ) -> list[str] | None:
        """The page's lines with a placeholder where each table stands; None when it
        holds no table."""
        import pdfplumber

        if self._pdf is None:
            self._pdf = pdfplumber.open(io.BytesIO(self.data))
        page = self._pdf.pages[index]  # type: ignore[attr-defined]
        try:
            found = [t for t in page.find_tables() if len(t.rows) >= 2]
            if not found:
                return None
            lines: list[str] = []
            top = 0.0
            for t in sorted(found, key=lambda t: t.bbox[1]):
                _, t_top, _, t_bottom = t.bbox
                if t_top > top:
                    above = page.crop((0, top, page.width, t_top)).extract_text() or ""
                    lines.extend(clean(above).split("\n"))
                mark = _mark(len(tables))
                grid = Table(page=number)
                for row in t.extract():
                    grid.add([cell or "" for cell in row])
                tables[mark] = grid
                lines.append(mark)
                top = max(top, t_bottom)
            if top < page.height:
                below = page.crop((0, top, page.width, page.height)).extract_text() or ""
                lines.extend(clean(below).split("\n"))
            return lines
        finally:
            page.flush_cache()

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()  # type: ignore[attr-defined]


def _pdf_title(pdf: object) -> str | None:
    try:
        meta = pdf.get_metadata_dict()  # type: ignore[attr-defined]
    except Exception:
        return None
    title = one_line(str(meta.get("Title", "") or ""))
    return title or None
