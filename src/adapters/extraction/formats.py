"""Extractors per format. They run inside the sandbox process (see sandbox.py), under
its time and memory limits, and check the dangerous things first: page counts,
decompression bombs in PDF streams and DOCX zips, DTDs/entities in XML.
"""

from __future__ import annotations

import contextlib
import io
import re
import zipfile
import zlib
from dataclasses import dataclass

from domain.errors import CorruptDocument, UnsafeDocument
from domain.legal import structure
from domain.model import Block, BlockKind, DocumentType, ExtractedDocument

from .normalize import clean, merge_blocks, one_line, strip_running_lines, text_to_blocks


@dataclass(frozen=True)
class ParseLimits:
    max_pdf_pages: int = 3000
    max_unzipped_bytes: int = 200 * 1024 * 1024
    max_zip_ratio: float = 200.0
    max_zip_entries: int = 5000


def extract(data: bytes, doc_type: DocumentType, limits: ParseLimits) -> ExtractedDocument:
    """The document's blocks in reading order, with the legal structure of a norm
    (articles, paragraphs, amendment notes listed, revoked stubs dropped)."""
    return structure(extract_format(data, doc_type, limits))


def extract_format(data: bytes, doc_type: DocumentType, limits: ParseLimits) -> ExtractedDocument:
    if doc_type is DocumentType.PDF:
        return extract_pdf(data, limits)
    if doc_type is DocumentType.DOCX:
        return extract_docx(data, limits)
    if doc_type is DocumentType.HTML:
        return extract_html(decode_text(data))
    if doc_type is DocumentType.MARKDOWN:
        return extract_markdown(decode_text(data))
    return ExtractedDocument(blocks=merge_blocks(text_to_blocks(decode_text(data))))


# -- text ---------------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" not in data:
        # Not UTF-8: Brazilian documents are then almost always Windows-1252/Latin-1,
        # and a statistical guess on a short text picks look-alike code pages
        # ("1º" read as Turkish "1ş"). cp1252 first; the detector for the rest.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    encoding = best.encoding if best is not None else "cp1252"
    return data.decode(encoding, errors="replace")


# -- PDF ----------------------------------------------------------------------------------

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


# -- DOCX ---------------------------------------------------------------------------------

_XML_PARTS = re.compile(r"^(word/.*\.xml|\[Content_Types\]\.xml|docProps/.*\.xml|_rels/.*)$")


def check_docx_container(data: bytes, limits: ParseLimits) -> None:
    """Refuse zip bombs by the declared sizes and ratios, before inflating anything,
    then refuse XML parts that declare a DTD or entities."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise CorruptDocument(f"the DOCX is not a readable ZIP container: {exc}") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_zip_entries:
            raise UnsafeDocument(
                f"the DOCX holds {len(infos)} files; the limit is {limits.max_zip_entries}"
            )
        declared = sum(i.file_size for i in infos)
        if declared > limits.max_unzipped_bytes:
            raise UnsafeDocument(
                f"the DOCX declares {declared // (1 << 20)} MB uncompressed; the limit is "
                f"{limits.max_unzipped_bytes // (1 << 20)} MB (a zip bomb)"
            )
        for info in infos:
            if info.file_size > (1 << 20) and info.file_size > limits.max_zip_ratio * max(
                1, info.compress_size
            ):
                raise UnsafeDocument(
                    f"{info.filename} inflates {info.file_size // max(1, info.compress_size)}:1 "
                    "(a zip bomb)"
                )
        for info in infos:
            if not _XML_PARTS.match(info.filename):
                continue
            try:
                with zf.open(info) as part:
                    body = part.read(info.file_size + 1)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                raise CorruptDocument(f"{info.filename} is damaged: {exc}") from exc
            if len(body) > info.file_size:
                raise UnsafeDocument(f"{info.filename} is larger than its ZIP entry declares")
            head = body[:4096]
            if b"<!DOCTYPE" in head or b"<!ENTITY" in body:
                raise UnsafeDocument(
                    f"{info.filename} declares a DTD or XML entities, which Word never writes "
                    "(entity expansion / XXE attempt)"
                )


_HEADING_STYLE = re.compile(r"^(?:heading|t[íi]tulo|titulo)\s*(\d)?$", re.IGNORECASE)


def extract_docx(data: bytes, limits: ParseLimits) -> ExtractedDocument:
    from docx import Document
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    check_docx_container(data, limits)
    try:
        doc = Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CorruptDocument(f"the DOCX cannot be read: {exc}") from exc
    except Exception as exc:  # lxml XMLSyntaxError and friends
        raise CorruptDocument(f"the DOCX cannot be parsed: {type(exc).__name__}: {exc}") from exc
    blocks: list[Block] = []
    struck = 0

    def paragraph(item: Paragraph) -> None:
        nonlocal struck
        raw, dropped = docx_paragraph_text(item._p)
        struck += dropped
        text = clean(raw)
        if not text:
            return
        style = (item.style.name if item.style is not None else "") or ""
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
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:
                    parts = [docx_paragraph_text(p._p) for p in cell.paragraphs]
                    struck += sum(n for _, n in parts)
                    value = one_line(" ".join(t for t, _ in parts))
                    if value and (not cells or cells[-1] != value):  # merged cells repeat
                        cells.append(value)
                if cells:
                    blocks.append(Block(BlockKind.TABLE, " | ".join(cells)))
    title = one_line(doc.core_properties.title or "") or None
    return ExtractedDocument(
        blocks=merge_blocks(blocks), title=title, report={"struck_chars": struck}
    )


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
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


# -- HTML ---------------------------------------------------------------------------------

_SKIP = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "nav",
        "footer",
        "aside",
        "form",
        "svg",
        "iframe",
        "button",
        "select",
        "head",
        "object",
        "canvas",
        "math",
    }
)
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_LEAVES = {
    "p": BlockKind.PARAGRAPH,
    "li": BlockKind.LIST_ITEM,
    "pre": BlockKind.CODE,
    "blockquote": BlockKind.PARAGRAPH,
    "dt": BlockKind.PARAGRAPH,
    "dd": BlockKind.PARAGRAPH,
    "caption": BlockKind.PARAGRAPH,
    "figcaption": BlockKind.PARAGRAPH,
    "address": BlockKind.PARAGRAPH,
}
_INLINE = frozenset(
    {
        "a",
        "abbr",
        "b",
        "bdi",
        "bdo",
        "cite",
        "code",
        "data",
        "dfn",
        "em",
        "i",
        "kbd",
        "mark",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "time",
        "u",
        "var",
        "wbr",
        "font",
        "label",
        "ins",
        "del",
    }
)


_STRUCK_TAGS = "strike, s, del"
_LINE_THROUGH = re.compile(r"text-decoration[^;]*line-through", re.IGNORECASE)


def extract_html(html: str) -> ExtractedDocument:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = one_line(title_node.text()) if title_node is not None else None
    root = tree.body or tree.root
    blocks: list[Block] = []
    struck = 0
    if root is not None:
        # struck text is revoked wording (planalto compiles laws that way): never text
        for node in [*root.css(_STRUCK_TAGS), *root.css("[style]")]:
            if node.tag in ("strike", "s", "del") or _LINE_THROUGH.search(
                node.attributes.get("style") or ""
            ):
                with contextlib.suppress(Exception):  # already gone with its parent
                    struck += len((node.text(deep=True) or "").strip())
                    node.decompose()
        _walk_html(root, blocks)
    return ExtractedDocument(
        blocks=merge_blocks(blocks), title=title or None, report={"struck_chars": struck}
    )


def _walk_html(node: object, blocks: list[Block]) -> None:
    buffer: list[str] = []

    def flush() -> None:
        text = one_line(" ".join(buffer))
        buffer.clear()
        if text:
            blocks.extend(text_to_blocks(text))

    for child in node.iter(include_text=True):  # type: ignore[attr-defined]
        tag = child.tag
        if tag == "-text":
            buffer.append(child.text(deep=False) or "")
        elif tag in _SKIP or tag == "-comment":
            continue
        elif tag == "br":
            buffer.append("\n")
        elif tag in _INLINE:
            buffer.append(child.text(deep=True, separator=" ") or "")
        elif tag in _HEADINGS:
            flush()
            text = one_line(child.text(deep=True, separator=" ") or "")
            if text:
                blocks.append(Block(BlockKind.HEADING, text, level=_HEADINGS[tag]))
        elif tag in _LEAVES:
            flush()
            text = one_line(child.text(deep=True, separator=" ") or "")
            if text:
                blocks.append(Block(_LEAVES[tag], text))
        elif tag == "tr":
            flush()
            cells = [one_line(c.text(deep=True, separator=" ") or "") for c in child.css("td,th")]
            cells = [c for c in cells if c]
            if cells:
                blocks.append(Block(BlockKind.TABLE, " | ".join(cells)))
        else:
            flush()
            _walk_html(child, blocks)
    flush()


# -- Markdown -----------------------------------------------------------------------------


def extract_markdown(text: str) -> ExtractedDocument:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    blocks: list[Block] = []
    kind_stack: list[BlockKind] = []
    heading_level: int | None = None
    row: list[str] = []
    prev_type = ""
    for tok in tokens:
        in_cell, prev_type = prev_type in ("td_open", "th_open"), tok.type
        if tok.type == "heading_open":
            heading_level = int(tok.tag[1])
        elif tok.type == "heading_close":
            heading_level = None
        elif tok.type == "list_item_open":
            kind_stack.append(BlockKind.LIST_ITEM)
        elif tok.type == "list_item_close":
            kind_stack.pop()
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close":
            if row:
                blocks.append(Block(BlockKind.TABLE, " | ".join(row)))
        elif tok.type in ("fence", "code_block"):
            code = clean(tok.content)
            if code:
                blocks.append(Block(BlockKind.CODE, code))
        elif tok.type == "inline":
            content = one_line(_inline_text(tok))
            if not content:
                continue
            if heading_level is not None:
                blocks.append(Block(BlockKind.HEADING, content, level=heading_level))
            elif in_cell:
                row.append(content)
            elif kind_stack:
                blocks.append(Block(BlockKind.LIST_ITEM, content))
            else:
                blocks.extend(text_to_blocks(content))
    return ExtractedDocument(blocks=merge_blocks(blocks))


def _inline_text(tok: object) -> str:
    parts: list[str] = []
    for child in getattr(tok, "children", None) or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts) if parts else str(getattr(tok, "content", ""))
