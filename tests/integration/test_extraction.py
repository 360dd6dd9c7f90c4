"""Extraction adapters over real documents (built by the tests) and real parsers,
in-process and through the sandbox child process with its limits."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import zipfile

import pytest

from adapters.extraction.formats import ParseLimits, decode_text, extract
from adapters.extraction.normalize import clean, heading_level, strip_running_lines
from adapters.extraction.sandbox import SandboxedExtractor, SandboxLimits
from domain.errors import (
    CorruptDocument,
    ExtractionLimitExceeded,
    TransientError,
    UnsafeDocument,
)
from domain.model import BlockKind, DocumentType
from tests.documents import (
    docx_with_entity,
    docx_zip_bomb,
    guia_markdown,
    lei_ferias_pdf,
    make_pdf_pages,
    manual_html,
    pdf_bomb,
    portaria_docx,
)

LIMITS = ParseLimits()


def texts(doc: object) -> list[str]:
    return [b.text for b in doc.blocks]  # type: ignore[attr-defined]


class TestFormats:
    def test_a_pdf_law_keeps_its_articles_and_paragraphs_as_separate_blocks(self) -> None:
        doc = extract(lei_ferias_pdf(), DocumentType.PDF, LIMITS)
        body = texts(doc)
        assert doc.pages == 1
        assert any(t.startswith("Art. 77.") for t in body)
        assert any(t.startswith("§ 1º Para o primeiro período") for t in body)
        assert any(t.startswith("Art. 78.") for t in body)
        assert all(b.page == 1 for b in doc.blocks)
        assert "férias" in " ".join(body)  # accents survive

    def test_pdf_page_headers_and_numbers_are_dropped(self) -> None:
        pages = [
            f"MINISTÉRIO DA GESTÃO\nConteúdo da página {i} sobre licenças e afastamentos.\n{i}"
            for i in range(1, 6)
        ]
        doc = extract(make_pdf_pages(pages), DocumentType.PDF, LIMITS)
        joined = "\n".join(texts(doc))
        assert "MINISTÉRIO DA GESTÃO" not in joined
        assert joined.count("Conteúdo da página") == 5
        assert [b.page for b in doc.blocks] == [1, 2, 3, 4, 5]

    def test_docx_headings_become_heading_blocks_with_levels(self) -> None:
        doc = extract(portaria_docx(), DocumentType.DOCX, LIMITS)
        headings = [(b.text, b.level) for b in doc.blocks if b.kind is BlockKind.HEADING]
        assert headings == [("Portaria nº 123 - Teletrabalho", 1), ("Da adesão", 2)]
        assert any(t.startswith("Parágrafo único.") for t in texts(doc))

    def test_docx_tables_become_rows_indexed_with_their_column_headers(self) -> None:
        from docx import Document

        d = Document()
        table = d.add_table(rows=2, cols=2)
        for r, (a, b) in enumerate([("Licença", "Prazo"), ("Capacitação", "90 dias")]):
            table.cell(r, 0).text, table.cell(r, 1).text = a, b
        buf = io.BytesIO()
        d.save(buf)
        doc = extract(buf.getvalue(), DocumentType.DOCX, LIMITS)
        rows = [b.text for b in doc.blocks if b.kind is BlockKind.TABLE]
        assert rows == ["Licença: Capacitação | Prazo: 90 dias"]

    def test_docx_styles_repeat_and_interleave_each_paragraph_keeping_its_own(self) -> None:
        """Style names are looked up once per style id: paragraphs that come back to a
        style, or fall back to the default one (no style id, or an unknown id), each keep
        what their own style says."""
        from docx import Document

        d = Document()
        d.add_heading("Requisitos", level=1)
        d.add_paragraph("O pedido é feito pelo sistema.")
        d.add_paragraph("Documentação exigida", style="List Bullet")
        d.add_heading("Prazos", level=2)
        d.add_paragraph("O prazo é de trinta dias.")
        unknown = d.add_paragraph("Um estilo que o documento não define.")
        unknown._p.style = "EstiloInexistente"
        d.add_heading("Anexos", level=1)
        d.add_paragraph("Os anexos seguem o modelo.")
        d.add_paragraph("Certidão de nascimento", style="List Bullet")
        buf = io.BytesIO()
        d.save(buf)
        doc = extract(buf.getvalue(), DocumentType.DOCX, LIMITS)
        assert [(b.kind, b.level, b.text) for b in doc.blocks] == [
            (BlockKind.HEADING, 1, "Requisitos"),
            (BlockKind.PARAGRAPH, 0, "O pedido é feito pelo sistema."),
            (BlockKind.LIST_ITEM, 0, "Documentação exigida"),
            (BlockKind.HEADING, 2, "Prazos"),
            (BlockKind.PARAGRAPH, 0, "O prazo é de trinta dias."),
            (BlockKind.PARAGRAPH, 0, "Um estilo que o documento não define."),
            (BlockKind.HEADING, 1, "Anexos"),
            (BlockKind.PARAGRAPH, 0, "Os anexos seguem o modelo."),
            (BlockKind.LIST_ITEM, 0, "Certidão de nascimento"),
        ]

    def test_html_drops_scripts_styles_and_navigation(self) -> None:
        doc = extract(manual_html(), DocumentType.HTML, LIMITS)
        joined = " ".join(texts(doc))
        assert doc.title == "Manual de Licenças"
        assert "alert" not in joined and "color:red" not in joined and "Contato" not in joined
        assert [b.kind for b in doc.blocks if b.kind is BlockKind.LIST_ITEM] == [
            BlockKind.LIST_ITEM
        ] * 2
        assert any(b.kind is BlockKind.HEADING and b.level == 2 for b in doc.blocks)

    def test_markdown_headings_lists_and_paragraphs(self) -> None:
        doc = extract(guia_markdown(), DocumentType.MARKDOWN, LIMITS)
        kinds = [(b.kind, b.text) for b in doc.blocks]
        assert kinds[0] == (BlockKind.HEADING, "Guia do Auxílio-Transporte")
        assert (BlockKind.LIST_ITEM, "Preencha o formulário no SIGEPE.") in kinds

    def test_plain_text_in_latin1_is_decoded(self) -> None:
        data = "Art. 1º A jornada de trabalho é de oito horas diárias.".encode("cp1252")
        doc = extract(data, DocumentType.TEXT, LIMITS)
        assert texts(doc) == ["Art. 1º A jornada de trabalho é de oito horas diárias."]

    def test_utf16_with_bom_is_decoded(self) -> None:
        assert decode_text("Férias".encode("utf-16")) == "Férias"


class TestNormalisation:
    def test_ligatures_soft_hyphens_and_hyphenation_are_repaired(self) -> None:
        assert clean("e\ufb01ciência do ser\u00advidor") == "eficiência do servidor"
        assert clean("remune-\nração") == "remuneração"

    @pytest.mark.parametrize(
        ("line", "level"),
        [
            ("TÍTULO II", 1),
            ("CAPÍTULO III", 2),
            ("Seção I", 3),
            ("DAS FÉRIAS", 3),
            ("Art. 77. O servidor fará jus a trinta dias de férias.", None),
            ("O SERVIDOR TERÁ DIREITO A FÉRIAS.", None),  # a shouted sentence, not a title
        ],
    )
    def test_headings_of_norms_are_recognised(self, line: str, level: int | None) -> None:
        assert heading_level(line) == level

    def test_running_lines_need_to_repeat_on_most_pages(self) -> None:
        pages = [["Cabeçalho", f"texto {i}", "Rodapé"] for i in range(4)]
        pages[0] = ["Cabeçalho", "texto único", "outra linha"]
        cleaned = strip_running_lines(pages)
        assert all("Cabeçalho" not in p for p in cleaned)
        assert "outra linha" in cleaned[0]


class TestHostileDocuments:
    def test_a_docx_zip_bomb_is_refused_by_its_declared_sizes(self) -> None:
        with pytest.raises(UnsafeDocument, match="zip bomb"):
            extract(docx_zip_bomb(), DocumentType.DOCX, LIMITS)

    def test_a_docx_with_an_xml_entity_is_refused(self) -> None:
        with pytest.raises(UnsafeDocument, match="DTD or XML entities"):
            extract(docx_with_entity(), DocumentType.DOCX, LIMITS)

    def test_a_pdf_bomb_is_refused_before_parsing(self) -> None:
        with pytest.raises(UnsafeDocument, match="decompression bomb"):
            extract(
                pdf_bomb(inflated_mb=64), DocumentType.PDF, ParseLimits(max_unzipped_bytes=32 << 20)
            )

    def test_a_truncated_pdf_is_corrupt(self) -> None:
        with pytest.raises(CorruptDocument, match="PDF cannot be read"):
            extract(lei_ferias_pdf()[:200], DocumentType.PDF, LIMITS)

    def test_a_zip_that_is_not_a_docx_is_corrupt(self) -> None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("hello.txt", "olá")
        with pytest.raises(CorruptDocument):
            extract(buf.getvalue(), DocumentType.DOCX, LIMITS)

    def test_too_many_pdf_pages_are_refused(self) -> None:
        data = make_pdf_pages(["página"] * 3)
        with pytest.raises(UnsafeDocument, match="3 pages"):
            extract(data, DocumentType.PDF, ParseLimits(max_pdf_pages=2))


BIG = ParseLimits(max_text_chars=100_000_000)  # for the tests that need a slow parse


@pytest.fixture(scope="module")
def sandbox() -> object:
    extractor = SandboxedExtractor(SandboxLimits(timeout_s=20, memory_mb=512))
    yield extractor
    extractor.close()


class TestSandbox:
    async def test_documents_come_back_from_the_child_process(
        self, sandbox: SandboxedExtractor
    ) -> None:
        doc = await sandbox.extract(portaria_docx(), DocumentType.DOCX)
        assert doc.blocks[0].text == "Portaria nº 123 - Teletrabalho"

    async def test_parser_errors_keep_their_kind_and_reason(
        self, sandbox: SandboxedExtractor
    ) -> None:
        with pytest.raises(UnsafeDocument, match="zip bomb"):
            await sandbox.extract(docx_zip_bomb(), DocumentType.DOCX)
        # the child survives and serves the next document
        doc = await sandbox.extract(guia_markdown(), DocumentType.MARKDOWN)
        assert doc.blocks

    async def test_a_parse_past_the_deadline_is_killed_and_the_next_one_works(self) -> None:
        # ~40 MB of markdown lists takes the parser far longer than 0.3 s
        slow = ("- item de lista com texto\n" * 1_500_000).encode()
        extractor = SandboxedExtractor(SandboxLimits(timeout_s=0.3, memory_mb=2048, parse=BIG))
        try:
            with pytest.raises(ExtractionLimitExceeded, match="longer than"):
                await extractor.extract(slow, DocumentType.MARKDOWN)
            extractor.limits = SandboxLimits(timeout_s=20, memory_mb=2048)
            doc = await extractor.extract(guia_markdown(), DocumentType.MARKDOWN)
            assert doc.blocks
        finally:
            extractor.close()

    @pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP])
    async def test_the_environment_s_faults_are_retried_not_blamed_on_the_document(
        self, signum: int
    ) -> None:
        # SIGKILL: the OOM killer or an operator (our limits never send it); SIGSTOP: a
        # parser that gets no CPU until the deadline, as on an overloaded machine
        slow = ("- item de lista com texto\n" * 1_500_000).encode()
        timeout = 20.0 if signum == signal.SIGKILL else 1.5
        extractor = SandboxedExtractor(SandboxLimits(timeout_s=timeout, memory_mb=2048, parse=BIG))
        try:
            await extractor.extract(guia_markdown(), DocumentType.MARKDOWN)  # child is up
            proc = extractor._proc
            assert proc is not None
            work = asyncio.create_task(extractor.extract(slow, DocumentType.MARKDOWN))
            await asyncio.sleep(0.2)
            os.kill(proc.pid, signum)
            expected = "killed from outside" if signum == signal.SIGKILL else "overloaded"
            with pytest.raises(TransientError, match=expected) as caught:
                await work
            assert caught.value.transient
            doc = await extractor.extract(guia_markdown(), DocumentType.MARKDOWN)
            assert doc.blocks[0].text == "Guia do Auxílio-Transporte"
        finally:
            extractor.close()

    async def test_text_beyond_the_extracted_limit_fails_before_any_parsing(
        self, sandbox: SandboxedExtractor
    ) -> None:
        # one 10.5 MB line: refused with the reason, in the child, before markdown-it
        # ever sees it (the chunker's time and memory stay bounded by this limit)
        line = ("palavra " * 1_320_000).encode()
        with pytest.raises(ExtractionLimitExceeded, match="characters of text; the limit is"):
            await sandbox.extract(line, DocumentType.MARKDOWN)

    async def test_a_parse_past_the_memory_limit_fails_with_a_reason_and_the_next_works(
        self,
    ) -> None:
        # ~5 MB of markdown becomes far more than 150 MB of parser tokens
        hungry = ("- item de lista com texto\n" * 200_000).encode()
        extractor = SandboxedExtractor(SandboxLimits(timeout_s=60, memory_mb=150))
        try:
            with pytest.raises(ExtractionLimitExceeded, match="more than 150 MB"):
                await extractor.extract(hungry, DocumentType.MARKDOWN)
            doc = await extractor.extract(guia_markdown(), DocumentType.MARKDOWN)
            assert doc.blocks[0].text == "Guia do Auxílio-Transporte"
        finally:
            extractor.close()
