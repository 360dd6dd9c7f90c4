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
            (b"GIF89a0000", "GIF"),
            (b"MZ\x90\x00", "executable"),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Office"),
            (b"\x00\x01\x02\x03binary", "binary data"),
        ],
    )
    def test_other_formats_are_named_in_the_refusal(self, data: bytes, what: str) -> None:
        with pytest.raises(UnsupportedDocumentType, match=what):
            detect(data, None, None)

    def test_a_zip_that_is_not_docx_is_refused(self) -> None:
        with pytest.raises(UnsupportedDocumentType, match="not an Office or OpenDocument"):
            detect(make_zip(), "x.docx", None)

    def test_a_refusal_lists_what_is_accepted(self) -> None:
        with pytest.raises(UnsupportedDocumentType, match=r"accepted: PDF, Word \(DOCX, DOC\)"):
            detect(b"MZ\x90\x00", "x.bin", None)
        with pytest.raises(UnsupportedDocumentType, match=r"legacy Excel \(XLS\)"):
            detect(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "Workbook".encode("utf-16-le"), None, None)

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
            ("Resoluc\u0327a\u0303o.pdf", "Resolução.pdf"),  # NFD from macOS becomes NFC
            ("relat\u202efdp.txt", "relatfdp.txt"),  # right-to-left override removed
            ("a\u200bb\u200d.pdf", "ab.pdf"),  # zero-width space and joiner
            ("\ufeffata\u2066.txt", "ata.txt"),  # BOM, bidi isolate
            ("\u202e\u200b", "document"),  # nothing visible left
        ],
    )
    def test_names_are_reduced_to_a_safe_display_name(self, raw: str | None, clean: str) -> None:
        assert sanitize_filename(raw) == clean

    def test_long_names_are_cut_to_255_bytes_keeping_the_extension(self) -> None:
        name = sanitize_filename("é" * 400 + ".pdf")
        assert len(name.encode()) <= 255
        assert name.endswith(".pdf")


def zip_with(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return buf.getvalue()


class TestFormats:
    @pytest.mark.parametrize(
        ("data", "name", "kind"),
        [
            (
                zip_with({"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>"}),
                "a.xlsx",
                DocumentType.XLSX,
            ),
            (
                zip_with({"[Content_Types].xml": b"<x/>", "ppt/presentation.xml": b"<x/>"}),
                "a.pptx",
                DocumentType.PPTX,
            ),
            (
                zip_with(
                    {"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<x/>"}
                ),
                "a.odt",
                DocumentType.ODT,
            ),
            (
                zip_with({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet"}),
                "a.ods",
                DocumentType.ODS,
            ),
            (
                zip_with({"mimetype": b"application/vnd.oasis.opendocument.presentation"}),
                None,
                DocumentType.ODP,
            ),
            (
                b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
                + b"\x00" * 64
                + "WordDocument".encode("utf-16-le"),
                "a.doc",
                DocumentType.DOC,
            ),
            (b"{\\rtf1\\ansi Ol\\'e1}", "a.rtf", DocumentType.RTF),
            (b"\x89PNG\r\n\x1a\n0000", "scan.png", DocumentType.PNG),
            (b"\xff\xd8\xff\xe0", "scan.jpg", DocumentType.JPEG),
            (b"II*\x00\x08\x00", "scan.tif", DocumentType.TIFF),
            (b"uf;valor\nAC;900,00\n", "valores.csv", DocumentType.CSV),
        ],
    )
    def test_each_format_is_known_by_its_content(
        self, data: bytes, name: str | None, kind: DocumentType
    ) -> None:
        assert detect(data, name, None).document_type is kind

    def test_an_odt_named_docx_is_refused_as_what_it_is(self) -> None:
        odt = zip_with({"mimetype": b"application/vnd.oasis.opendocument.text"})
        with pytest.raises(UnsupportedDocumentType, match=r"OpenDocument text \(ODT\)"):
            detect(odt, "x.docx", None)

    def test_text_that_mentions_the_pdf_marker_is_text(self) -> None:
        md = b"# Guia\n\nArquivos gerados como %PDF-1.7 devem ser enviados em PDF.\n"
        assert detect(md, "guia.md", None).document_type is DocumentType.MARKDOWN
        assert detect(b"\x00\x01junk%PDF-1.7\n", "x.pdf", None).document_type is DocumentType.PDF


@pytest.mark.parametrize(("controls", "is_text"), [(0, True), (1, True), (2, False)])
def test_text_with_a_few_control_bytes_is_text_and_more_is_binary(
    controls: int, is_text: bool
) -> None:
    # under 200 bytes, one control byte is allowed (tab, newlines, form feed and escape
    # are text's own and not counted)
    body = b"Portaria de f\xc3\xa9rias\t\x1b[0m\r\n\x0c" + b"a" * 160 + b"\x01" * controls
    assert len(body) < 200
    if is_text:
        assert detect(body, "nota.txt", None).document_type == DocumentType.TEXT
    else:
        with pytest.raises(UnsupportedDocumentType, match="binary data of an unknown format"):
            detect(body, "nota.txt", None)
