"""Uploads are typed by their content; names and declared types may not lie."""

from __future__ import annotations

import io
import zipfile

import pytest

from domain.detection import detect, sanitize_filename
from domain.errors import EmptyDocument, UnsupportedDocumentType
from domain.model import DocumentType

PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer<<>>\n%%EOF"


def make_docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def make_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "hello")
    return buf.getvalue()


class TestRealTypes:
    @pytest.mark.parametrize(
        ("data", "name", "expected"),
        [
            (PDF, "lei.pdf", DocumentType.PDF),
            (make_docx(), "portaria.docx", DocumentType.DOCX),
            (
                b"<!DOCTYPE html><html><body><p>Ol\xc3\xa1</p></body></html>",
                "a.html",
                DocumentType.HTML,
            ),
            (b"# Manual\n\nTexto do manual.", "manual.md", DocumentType.MARKDOWN),
            ("Férias do servidor".encode(), "nota.txt", DocumentType.TEXT),
            ("Férias em cp1252".encode("cp1252"), "nota.txt", DocumentType.TEXT),
        ],
    )
    def test_the_content_decides_the_type(
        self, data: bytes, name: str, expected: DocumentType
    ) -> None:
        assert detect(data, name, None).document_type is expected

    def test_without_a_name_or_type_markdown_is_recognised_by_its_syntax(self) -> None:
        assert detect(b"# Titulo\n\n- item", None, None).document_type is DocumentType.MARKDOWN

    def test_declared_plain_text_wins_inside_the_text_family(self) -> None:
        assert detect(b"# not a heading", "x.txt", "text/plain").document_type is DocumentType.TEXT

    def test_a_generic_declared_type_defers_to_the_content(self) -> None:
        assert detect(PDF, "lei.pdf", "application/octet-stream").document_type is DocumentType.PDF


class TestSpoofing:
    def test_a_pdf_extension_on_text_is_refused(self) -> None:
        with pytest.raises(
            UnsupportedDocumentType, match=r"\.pdf says a PDF document but the content is text"
        ):
            detect(b"just text", "fake.pdf", None)

    def test_a_pdf_content_type_on_a_docx_is_refused(self) -> None:
        with pytest.raises(UnsupportedDocumentType, match="Content-Type application/pdf"):
            detect(make_docx(), "x.docx", "application/pdf")

    def test_an_executable_extension_is_refused_even_on_a_real_pdf(self) -> None:
        with pytest.raises(UnsupportedDocumentType, match=r"\.exe is not accepted"):
            detect(PDF, "x.pdf.exe", None)

    def test_an_unaccepted_declared_type_is_refused(self) -> None:
        with pytest.raises(UnsupportedDocumentType, match="image/png"):
            detect(PDF, "x.pdf", "image/png")

    @pytest.mark.parametrize(
        ("data", "what"),
        [
            (b"\x89PNG\r\n\x1a\n0000", "PNG"),
            (b"MZ\x90\x00", "executable"),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Office"),
            (b"\x00\x01\x02\x03binary", "binary data"),
        ],
    )
    def test_other_formats_are_named_in_the_refusal(self, data: bytes, what: str) -> None:
        with pytest.raises(UnsupportedDocumentType, match=what):
            detect(data, None, None)

    def test_a_zip_that_is_not_docx_is_refused(self) -> None:
        with pytest.raises(UnsupportedDocumentType, match="not a Word"):
            detect(make_zip(), "x.docx", None)

    def test_a_corrupted_zip_is_refused_with_a_reason(self) -> None:
        with pytest.raises(UnsupportedDocumentType, match="unreadable"):
            detect(b"PK\x03\x04" + b"\x00" * 50, "x.docx", None)

    def test_an_empty_file_is_refused(self) -> None:
        with pytest.raises(EmptyDocument):
            detect(b"", "x.txt", None)


class TestFilenames:
    @pytest.mark.parametrize(
        ("raw", "clean"),
        [
            ("../../etc/passwd.txt", "passwd.txt"),
            ("C:\\Users\\a\\Lei 8.112.pdf", "Lei 8.112.pdf"),
            ("nul\x00byte.txt", "nulbyte.txt"),
            ("  ..hidden.md ", "hidden.md"),
            ("a<b>c:d|e?.txt", "abcde.txt"),
            ("", "document"),
            (None, "document"),
            ("../", "document"),
            ("Resolução nº 1.pdf", "Resolução nº 1.pdf"),
        ],
    )
    def test_names_are_reduced_to_a_safe_display_name(self, raw: str | None, clean: str) -> None:
        assert sanitize_filename(raw) == clean

    def test_long_names_are_cut_to_255_bytes_keeping_the_extension(self) -> None:
        name = sanitize_filename("é" * 400 + ".pdf")
        assert len(name.encode()) <= 255
        assert name.endswith(".pdf")
