"""Decide what an upload really is, from its bytes; refuse spoofed names and types.

The content decides the family (PDF, DOCX, HTML/Markdown/plain text). The declared
Content-Type and the filename extension may only agree with it or stay silent:
a ``.pdf`` that is a ZIP, or ``application/pdf`` on an HTML page, is refused.
Within the text family the declared type picks between HTML, Markdown and plain
text, since no byte pattern tells Markdown from prose.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass

from domain.errors import EmptyDocument, UnsupportedDocumentType
from domain.model import DocumentType

SNIFF_BYTES = 8192

_GENERIC_TYPES = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
)

_DECLARED_TYPES: dict[str, DocumentType] = {
    "application/pdf": DocumentType.PDF,
    "application/x-pdf": DocumentType.PDF,
    DocumentType.DOCX.value: DocumentType.DOCX,
    "text/html": DocumentType.HTML,
    "application/xhtml+xml": DocumentType.HTML,
    "text/markdown": DocumentType.MARKDOWN,
    "text/x-markdown": DocumentType.MARKDOWN,
    "text/plain": DocumentType.TEXT,
}

EXTENSIONS: dict[str, DocumentType] = {
    "pdf": DocumentType.PDF,
    "docx": DocumentType.DOCX,
    "html": DocumentType.HTML,
    "htm": DocumentType.HTML,
    "xhtml": DocumentType.HTML,
    "md": DocumentType.MARKDOWN,
    "markdown": DocumentType.MARKDOWN,
    "txt": DocumentType.TEXT,
    "text": DocumentType.TEXT,
}

_TEXT_FAMILY = frozenset({DocumentType.HTML, DocumentType.MARKDOWN, DocumentType.TEXT})

# Signatures of formats we meet and refuse, so the reason can name them.
_KNOWN_BINARIES: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office (OLE2, e.g. .doc) file"),
    (b"MZ", "a Windows executable"),
    (b"\x7fELF", "an ELF executable"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"{\\rtf", "an RTF document"),
)

# WHATWG MIME sniffing: tags that identify an HTML document at its start.
_HTML_START = re.compile(
    rb"^\s*(?:<!doctype\s+html|<html|<head|<script|<iframe|<h1|<div|<font|<table|<a|"
    rb"<style|<title|<b|<body|<br|<p|<!--)(?:[\s>]|$)",
    re.IGNORECASE,
)
_MD_HINTS = re.compile(rb"^(?:#{1,6} \S|[-*+] \S|\d+\. \S|```|> \S)", re.MULTILINE)


@dataclass(frozen=True)
class Detection:
    document_type: DocumentType
    filename: str


def detect(data: bytes, filename: str | None, declared_type: str | None) -> Detection:
    """Return the real type and a safe filename, or raise a RejectedDocument."""
    if not data:
        raise EmptyDocument("the file is empty")
    name = sanitize_filename(filename)
    family = _sniff(data)
    ext = _extension(name)
    declared = _normalise_media_type(declared_type)

    if ext is not None and ext not in EXTENSIONS:
        raise UnsupportedDocumentType(
            f"file extension .{ext} is not accepted; accepted: "
            + ", ".join(f".{e}" for e in sorted(EXTENSIONS)),
            extension=ext,
        )
    by_ext = EXTENSIONS.get(ext) if ext else None
    by_declared = _DECLARED_TYPES.get(declared)
    if declared not in _GENERIC_TYPES and by_declared is None:
        raise UnsupportedDocumentType(
            f"declared type {declared} is not accepted; the content is {_describe(family)}"
        )

    for claimed, source in ((by_declared, f"Content-Type {declared}"), (by_ext, f".{ext}")):
        if claimed is not None and not _compatible(claimed, family):
            raise UnsupportedDocumentType(
                f"{source} says {_describe(claimed)} but the content is {_describe(family)}",
                declared=str(claimed),
                detected=str(family),
            )

    if family in _TEXT_FAMILY:
        family = _refine_text(data, family, by_declared, by_ext)
    return Detection(family, name)


def _sniff(data: bytes) -> DocumentType:
    head = data[:SNIFF_BYTES]
    if b"%PDF-" in head[:1024]:
        return DocumentType.PDF
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(data)
    for magic, what in _KNOWN_BINARIES:
        if head.startswith(magic):
            raise UnsupportedDocumentType(f"the content is {what}, which is not accepted")
    if not _looks_like_text(head):
        raise UnsupportedDocumentType("the content is binary data of an unknown format")
    if _HTML_START.match(head.lstrip(b"\xef\xbb\xbf")):
        return DocumentType.HTML
    if _MD_HINTS.search(head):
        return DocumentType.MARKDOWN
    return DocumentType.TEXT


def _sniff_zip(data: bytes) -> DocumentType:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise UnsupportedDocumentType(
            f"the content starts like a ZIP/DOCX file but its directory is unreadable ({exc})"
        ) from exc
    if "word/document.xml" in names and "[Content_Types].xml" in names:
        return DocumentType.DOCX
    raise UnsupportedDocumentType("the content is a ZIP archive that is not a Word (DOCX) document")


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with BOM
        return True
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls <= max(1, len(head) // 100)


def _compatible(claimed: DocumentType, family: DocumentType) -> bool:
    if claimed in _TEXT_FAMILY:
        return family in _TEXT_FAMILY
    return claimed == family


def _refine_text(
    data: bytes,
    sniffed: DocumentType,
    by_declared: DocumentType | None,
    by_ext: DocumentType | None,
) -> DocumentType:
    for hint in (by_declared, by_ext):
        if hint is not None:
            return hint
    return sniffed


def _describe(t: DocumentType) -> str:
    return {
        DocumentType.PDF: "a PDF document",
        DocumentType.DOCX: "a Word (DOCX) document",
        DocumentType.HTML: "text (HTML)",
        DocumentType.MARKDOWN: "text (Markdown)",
        DocumentType.TEXT: "text",
    }[t]


def _normalise_media_type(value: str | None) -> str:
    if not value:
        return ""
    return value.split(";", 1)[0].strip().lower()


def _extension(name: str) -> str | None:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not ext:
        return None
    return ext.lower()


_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f<>:\"|?*]")
_SPACES = re.compile(r"\s+")
MAX_FILENAME_BYTES = 255


def sanitize_filename(filename: str | None, default: str = "document") -> str:
    """A display name only: last path segment, no controls or reserved characters.

    The result is never used to build a path; it is stored and echoed back.
    """
    if not filename:
        return default
    name = unicodedata.normalize("NFC", filename)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_CHARS.sub("", name)
    name = _SPACES.sub(" ", name).strip().lstrip(".").strip()
    while len(name.encode("utf-8")) > MAX_FILENAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:-1] + dot + ext) if dot and len(ext) < 16 and stem else name[:-1]
    return name or default
