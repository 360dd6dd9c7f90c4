"""PDF through pypdfium2: the text layer page by page, running headers and page numbers
removed; Flate streams inflated in bounded pieces first (decompression bombs)."""

from __future__ import annotations

import re
import zlib

from domain.errors import CorruptDocument, UnsafeDocument
from domain.model import Block, ExtractedDocument

from .limits import ParseLimits
from .normalize import clean, merge_blocks, one_line, strip_running_lines, text_to_blocks

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


def extract_pdf(data: bytes, limits: ParseLimits) -> ExtractedDocument:
    import pypdfium2 as pdfium

    check_pdf_streams(data, limits.max_unzipped_bytes)
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise CorruptDocument("the PDF is encrypted with a password") from exc
        raise CorruptDocument(f"the PDF cannot be read: {message}") from exc
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
            finally:
                page.close()
            pages.append(clean(text).split("\n"))
        title = _pdf_title(pdf)
    finally:
        pdf.close()
    blocks: list[Block] = []
    for number, lines in enumerate(strip_running_lines(pages), start=1):
        blocks.extend(text_to_blocks("\n".join(lines), page=number))
    return ExtractedDocument(blocks=merge_blocks(blocks), title=title, pages=n)


def _pdf_title(pdf: object) -> str | None:
    try:
        meta = pdf.get_metadata_dict()  # type: ignore[attr-defined]
    except Exception:
        return None
    title = one_line(str(meta.get("Title", "") or ""))
    return title or None
