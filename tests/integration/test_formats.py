"""Every format an HR department keeps, through the real extraction sandbox: legacy
Word, RTF and OpenDocument files made by LibreOffice (tests/fixtures/office, see
make_office.py), XLSX / PPTX / CSV / DOCX written by their libraries here, scans made
from known text and read by Tesseract, PDF tables across a page break, and hostile
variants that fail inside the limits with a reason."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.extraction.formats import ParseLimits
from adapters.extraction.sandbox import SandboxedExtractor, SandboxLimits
from domain.detection import detect
from domain.errors import NoTextFound, UnsafeDocument
from domain.model import BlockKind, ExtractedDocument
from tests.documents import make_pdf_pages
from tests.scans import (
    PORTARIA,
    character_error_rate,
    image_bytes,
    image_pdf,
    scanned_page,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "office"
ACRE = "Unidade da Federação: Acre | Valor mensal (R$): 900"
MAX_CER = 0.03


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxedExtractor]:
    extractor = SandboxedExtractor(
        SandboxLimits(timeout_s=60, memory_mb=1024, parse=ParseLimits(max_pdf_pages=50))
    )
    yield extractor
    extractor.close()


def read(sandbox: SandboxedExtractor, data: bytes, name: str) -> ExtractedDocument:
    kind = detect(data, name, None).document_type
    return sandbox.extract_blocking(data, kind)


def kinds(doc: ExtractedDocument, kind: BlockKind) -> list[str]:
    return [b.text for b in doc.blocks if b.kind is kind]


class TestOfficeFormats:
    @pytest.mark.parametrize("name", ["manual.doc", "manual.rtf", "manual.odt"])
    def test_word_processor_files_keep_their_text_and_table_rows_with_headers(
        self, sandbox: SandboxedExtractor, name: str
    ) -> None:
        doc = read(sandbox, (FIXTURES / name).read_bytes(), name)
        text = "\n".join(b.text for b in doc.blocks)
        assert "O auxílio-alimentação é pago em pecúnia" in text
        assert "não receber benefício semelhante" in text
        rows = kinds(doc, BlockKind.TABLE)
        assert any(r.startswith(ACRE) and "Vigência: 01/05/2026" in r for r in rows), rows
        assert len(rows) == 3  # the header row is in every row, not a row of its own

    def test_odt_keeps_headings_with_levels_and_list_items(
        self, sandbox: SandboxedExtractor
    ) -> None:
        doc = read(sandbox, (FIXTURES / "manual.odt").read_bytes(), "manual.odt")
        headings = [(b.text, b.level) for b in doc.blocks if b.kind is BlockKind.HEADING]
        assert ("Manual do Auxílio-Alimentação", 1) in headings
        assert ("Valores por estado", 2) in headings
        assert kinds(doc, BlockKind.LIST_ITEM) == [
            "ter exercício em unidade do órgão",
            "não receber benefício semelhante",
        ]

    def test_spreadsheets_are_sheets_of_rows_with_their_headers(
        self, sandbox: SandboxedExtractor
    ) -> None:
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        assert ws is not None
        ws.title = "Auxílio 2026"
        ws.append(["Unidade da Federação", "Valor mensal (R$)", "Vigência"])
        ws.append(["Acre", 900.0, "01/05/2026"])
        ws.append(["Bahia", 850.5, "01/05/2026"])
        buf = io.BytesIO()
        wb.save(buf)
        xlsx = read(sandbox, buf.getvalue(), "valores.xlsx")
        assert kinds(xlsx, BlockKind.HEADING) == ["Auxílio 2026"]
        assert kinds(xlsx, BlockKind.TABLE)[0].startswith(ACRE)
        assert "Valor mensal (R$): 850,50" in kinds(xlsx, BlockKind.TABLE)[1]
        ods = read(sandbox, (FIXTURES / "valores.ods").read_bytes(), "valores.ods")
        assert kinds(ods, BlockKind.HEADING) == ["Valores 2026"]
        assert kinds(ods, BlockKind.TABLE)[0].startswith(ACRE)
        csv = "Unidade da Federação;Valor mensal (R$);Vigência\nAcre;900,00;01/05/2026\n"
        rows = kinds(read(sandbox, csv.encode(), "valores.csv"), BlockKind.TABLE)
        assert rows == [f"{ACRE},00 | Vigência: 01/05/2026"]

    def test_presentations_are_slides_under_their_titles(self, sandbox: SandboxedExtractor) -> None:
        from pptx import Presentation

        deck = Presentation()
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = "Teletrabalho na COGEP"
        body = slide.placeholders[1].text_frame
        body.text = "Exige 12 meses de exercício"
        body.add_paragraph().text = "Meta 20% superior à presencial"
        buf = io.BytesIO()
        deck.save(buf)
        for data, name in ((buf.getvalue(), "slides.pptx"), (None, "apresentacao.odp")):
            raw = data if data is not None else (FIXTURES / name).read_bytes()
            doc = read(sandbox, raw, name)
            assert kinds(doc, BlockKind.HEADING)[0] == "Teletrabalho na COGEP", name
            text = "\n".join(b.text for b in doc.blocks)
            assert "Exige 12 meses de exercício" in text and "20% superior" in text

    def test_docx_html_and_markdown_tables_index_rows_with_headers(
        self, sandbox: SandboxedExtractor
    ) -> None:
        from docx import Document

        d = Document()
        t = d.add_table(rows=3, cols=2)
        for row, values in zip(
            t.rows, [("UF", "Valor"), ("Acre", "900,00"), ("Pará", "880,00")], strict=True
        ):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
        buf = io.BytesIO()
        d.save(buf)
        html = b"<table><tr><th>UF</th><th>Valor</th></tr><tr><td>Acre</td><td>900,00</td></tr></table>"
        md = b"| UF | Valor |\n|---|---|\n| Acre | 900,00 |\n"
        for data, name in ((buf.getvalue(), "t.docx"), (html, "t.html"), (md, "t.md")):
            rows = kinds(read(sandbox, data, name), BlockKind.TABLE)
            assert rows[0] == "UF: Acre | Valor: 900,00", (name, rows)


class TestScans:
    @pytest.mark.parametrize(("dpi", "angle"), [(300, 1.2), (200, -1.5)])
    def test_a_scanned_pdf_is_read_by_ocr_within_the_error_budget(
        self, sandbox: SandboxedExtractor, dpi: int, angle: float
    ) -> None:
        page = scanned_page(PORTARIA, dpi=dpi, angle=angle, noise=0.01)
        doc = read(sandbox, image_pdf([page]), "portaria-digitalizada.pdf")
        got = "\n".join(b.text for b in doc.blocks)
        cer = character_error_rate("\n".join(PORTARIA), got)
        assert cer <= MAX_CER, (cer, got)
        assert doc.report["ocr_pages"] == [1]
        assert doc.norm is not None and doc.norm.key == "portaria-431-2026"

    def test_only_pages_without_a_text_layer_are_ocred(self, sandbox: SandboxedExtractor) -> None:
        scan = scanned_page(PORTARIA[:3], dpi=200, angle=-0.8, noise=0.005)
        typed = ["Art. 4º Esta Portaria entra em vigor na data de sua publicação."]
        doc = read(sandbox, image_pdf([scan], text_pages=[typed]), "mista.pdf")
        assert doc.report["ocr_pages"] == [1]
        assert doc.pages == 2
        pages = {b.page for b in doc.blocks}
        assert pages == {1, 2}
        assert any("entra em vigor" in b.text and b.page == 2 for b in doc.blocks)

    @pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
    def test_images_are_documents(self, sandbox: SandboxedExtractor, fmt: str) -> None:
        image = scanned_page(PORTARIA[:3], dpi=300, angle=0.6, noise=0.004)
        if fmt == "JPEG":
            image = image.convert("L")
        data = image_bytes(image, fmt)
        doc = read(sandbox, data, f"scan.{fmt.lower()}")
        cer = character_error_rate("\n".join(PORTARIA[:3]), "\n".join(b.text for b in doc.blocks))
        assert cer <= MAX_CER, cer
        assert doc.report["ocr_pages"] == [1]

    def test_a_multi_page_tiff_is_read_page_by_page(self, sandbox: SandboxedExtractor) -> None:
        first = scanned_page(PORTARIA[:2], dpi=200, angle=0.0, noise=0.0)
        second = scanned_page(PORTARIA[4:5], dpi=200, angle=0.0, noise=0.0)
        buf = io.BytesIO()
        first.save(buf, format="TIFF", save_all=True, append_images=[second], dpi=(200, 200))
        doc = read(sandbox, buf.getvalue(), "dois.tiff")
        assert doc.pages == 2 and doc.report["ocr_pages"] == [1, 2]
        assert any("Parágrafo único" in b.text and b.page == 2 for b in doc.blocks)


class TestPdfTables:
    def test_a_table_across_a_page_break_stays_one_table_with_its_headers(
        self, sandbox: SandboxedExtractor
    ) -> None:
        from fpdf import FPDF

        pdf = FPDF()
        pdf.set_font("helvetica", size=11)
        pdf.add_page()
        pdf.multi_cell(0, 8, "Art. 1º Os valores do auxílio-alimentação são os da tabela:")
        header = ("Unidade da Federação", "Valor mensal (R$)", "Vigência")
        rows = [(f"Região {i}", f"{700 + i},00", "01/05/2026") for i in range(45)]
        rows.append(("Acre", "900,00", "01/05/2026"))
        with pdf.table(repeat_headings=0) as table:
            for values in (header, *rows):
                row = table.row()
                for value in values:
                    row.cell(value)
        data = bytes(pdf.output())
        doc = read(sandbox, data, "valores.pdf")
        assert doc.pages == 2
        table_rows = [b for b in doc.blocks if b.kind is BlockKind.TABLE]
        assert len(table_rows) == len(rows)
        acre = next(b for b in table_rows if "Acre" in b.text)
        assert acre.text == f"{ACRE},00 | Vigência: 01/05/2026" and acre.page == 2
        assert all(b.text.startswith("Unidade da Federação: ") for b in table_rows)


class TestOutcomes:
    def test_a_pdf_of_one_repeated_line_says_so(self, sandbox: SandboxedExtractor) -> None:
        data = make_pdf_pages(["MINISTÉRIO DA GESTÃO"] * 4)
        with pytest.raises(NoTextFound, match="same repeated line"):
            read(sandbox, data, "cabecalhos.pdf")

    def test_an_image_without_text_says_so(self, sandbox: SandboxedExtractor) -> None:
        from PIL import Image

        blank = Image.new("L", (1200, 1600), 255)
        with pytest.raises(NoTextFound, match="no text that OCR could read"):
            read(sandbox, image_bytes(blank), "branco.png")


class TestHostile:
    @staticmethod
    def bomb_zip(members: dict[str, bytes], big: str) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, body in members.items():
                zf.writestr(name, body)
            zf.writestr(big, b"\0" * (300 << 20))
        return buf.getvalue()

    def test_zip_bombs_in_odt_and_xlsx_fail_before_inflating(
        self, sandbox: SandboxedExtractor
    ) -> None:
        odt = self.bomb_zip(
            {"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<x/>"},
            "Pictures/bomb.bin",
        )
        xlsx = self.bomb_zip(
            {"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>"}, "xl/bomb.bin"
        )
        for data, name in ((odt, "bomba.odt"), (xlsx, "bomba.xlsx")):
            with pytest.raises(UnsafeDocument, match="zip bomb"):
                read(sandbox, data, name)

    def test_an_odt_with_entities_is_refused(self, sandbox: SandboxedExtractor) -> None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("mimetype", "application/vnd.oasis.opendocument.text")
            zf.writestr(
                "content.xml",
                '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
            )
        with pytest.raises(UnsafeDocument, match="entities"):
            read(sandbox, buf.getvalue(), "entidade.odt")

    def test_an_image_of_huge_dimensions_is_refused_before_decoding(
        self, sandbox: SandboxedExtractor
    ) -> None:
        from PIL import Image

        buf = io.BytesIO()
        Image.new("1", (12_000, 12_000), 1).save(buf, format="PNG")
        assert len(buf.getvalue()) < 200_000  # a small file, a 144-megapixel canvas
        with pytest.raises(UnsafeDocument, match="pixels"):
            read(sandbox, buf.getvalue(), "bomba.png")

    def test_a_tiff_with_more_pages_than_allowed_is_refused(
        self, sandbox: SandboxedExtractor
    ) -> None:
        from PIL import Image

        frames = [Image.new("L", (8, 8), 255) for _ in range(60)]
        buf = io.BytesIO()
        frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
        with pytest.raises(UnsafeDocument, match="60 pages; the limit is 50"):
            read(sandbox, buf.getvalue(), "paginas.tiff")
