"""Extractors per format, one module per family (pdf, docx, odf, office, legacy, images,
html, markdown, text; OCR and tables shared). They run inside the sandbox process (see
sandbox.py), under its time and memory limits, and check the dangerous things first:
page counts, decompression bombs in PDF streams, ZIP containers and images,
DTDs/entities in XML. Every format then goes through the same legal pass.
"""

from __future__ import annotations

from domain.errors import ExtractionLimitExceeded
from domain.legal_structure import structure
from domain.model import DocumentType, ExtractedDocument

from .docx import extract_docx
from .html import extract_html
from .images import extract_image
from .legacy import extract_doc, extract_rtf
from .limits import ParseLimits
from .markdown import extract_markdown
from .normalize import merge_blocks, text_to_blocks
from .odf import extract_odf
from .office import extract_csv, extract_pptx, extract_xlsx
from .pdf import extract_pdf
from .text import decode_text

_ODF = (DocumentType.ODT, DocumentType.ODS, DocumentType.ODP)
_IMAGES = (DocumentType.PNG, DocumentType.JPEG, DocumentType.TIFF)

__all__ = ["ParseLimits", "decode_text", "extract", "extract_format"]


def extract(data: bytes, doc_type: DocumentType, limits: ParseLimits) -> ExtractedDocument:
    """The document's blocks in reading order, with the legal structure of a norm
    (articles, paragraphs, amendment notes listed, revoked stubs dropped)."""
    doc = extract_format(data, doc_type, limits)
    _check_size(sum(len(b.text) for b in doc.blocks), limits)
    return structure(doc)


def _check_size(chars: int, limits: ParseLimits) -> None:
    if chars > limits.max_text_chars:
        raise ExtractionLimitExceeded(
            f"the document holds {chars:,} characters of text; the limit is "
            f"{limits.max_text_chars:,} (COGEP_MAX_EXTRACTED_CHARS)"
        )


def _text(data: bytes, limits: ParseLimits) -> str:
    """Plain-text formats: decoded, and refused before any parsing when too long."""
    text = decode_text(data)
    _check_size(len(text), limits)
    return text


def extract_format(data: bytes, doc_type: DocumentType, limits: ParseLimits) -> ExtractedDocument:
    if doc_type is DocumentType.PDF:
        return extract_pdf(data, limits)
    if doc_type is DocumentType.DOCX:
        return extract_docx(data, limits)
    if doc_type in _ODF:
        return extract_odf(data, doc_type, limits)
    if doc_type is DocumentType.XLSX:
        return extract_xlsx(data, limits)
    if doc_type is DocumentType.PPTX:
        return extract_pptx(data, limits)
    if doc_type is DocumentType.DOC:
        return extract_doc(data)
    if doc_type is DocumentType.RTF:
        return extract_rtf(data)
    if doc_type in _IMAGES:
        return extract_image(data, limits)
    if doc_type is DocumentType.CSV:
        return extract_csv(_text(data, limits), limits)
    if doc_type is DocumentType.HTML:
        return extract_html(_text(data, limits))
    if doc_type is DocumentType.MARKDOWN:
        return extract_markdown(_text(data, limits))
    return ExtractedDocument(blocks=merge_blocks(text_to_blocks(_text(data, limits))))
