"""Legal structure from real parsers on realistic inputs: a planalto-style HTML page,
real compiled DOCX laws from ../shared/corpus, and a PDF with running headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.chunking.structured import StructuredChunker
from adapters.embedding.blas import BlasE5TokenCounter
from adapters.extraction.formats import ParseLimits, extract
from domain.model import BlockKind, DocumentType
from tests.legal_documents import (
    IN_FORCE_CAPACITACAO,
    OLD_FERIAS_WORDING,
    REVOKED_LICENCA,
    law_pdf_with_running_headers,
    planalto_html,
)

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "leis-federais"


@pytest.fixture(scope="module")
def chunker() -> StructuredChunker:
    return StructuredChunker(BlasE5TokenCounter())


def all_text(doc: object) -> str:
    return "\n".join(b.text for b in doc.blocks)  # type: ignore[attr-defined]


class TestPlanaltoHtml:
    def test_struck_text_banner_and_stubs_are_not_text_and_are_counted(self) -> None:
        doc = extract(planalto_html(), DocumentType.HTML, ParseLimits())
        text = all_text(doc)
        for gone in (
            REVOKED_LICENCA,
            OLD_FERIAS_WORDING,
            "Presidência da República",
            "Subchefia para Assuntos Jurídicos",
            "Texto compilado",
            "Mensagem de veto",
            "Revogado",
            "VETADO",
            "conserva todos os direitos",  # struck by CSS line-through
        ):
            assert gone not in text, gone
        assert IN_FORCE_CAPACITACAO in text
        assert "§ 1º Para o primeiro período aquisitivo de férias" in text
        assert doc.report["struck_chars"] > len(REVOKED_LICENCA)
        assert doc.report["revoked_units"] == 2  # arts. 88 and 89
        assert doc.report["vetoed_units"] == 1  # art. 90
        assert doc.report["boilerplate_lines"] >= 6
        # amendment notes are listed on their unit (and stay in its text, as printed)
        art77 = next(b for b in doc.blocks if b.article == "77" and b.paragraph is None)
        assert art77.notes == ("(Redação dada pela Lei nº 9.525, de 10.12.97)",)
        assert doc.report["amendment_notes"] == 7

    def test_norm_identity_and_headings(self) -> None:
        doc = extract(planalto_html(), DocumentType.HTML, ParseLimits())
        assert doc.norm is not None
        assert doc.norm.citation == "Lei nº 8.112/1990"
        assert doc.norm.date is not None and doc.norm.date.isoformat() == "1990-12-11"
        assert doc.norm.ementa is not None and doc.norm.ementa.startswith("Dispõe sobre o regime")
        headings = [b.text for b in doc.blocks if b.kind is BlockKind.HEADING]
        assert headings == [
            "CAPÍTULO III - DAS FÉRIAS",
            "CAPÍTULO IV - DAS LICENÇAS",
            "Seção VI - Da Licença para Capacitação",
        ]

    def test_chunks_follow_articles_with_heading_path_and_amendments(
        self, chunker: StructuredChunker
    ) -> None:
        drafts = chunker.chunk(extract(planalto_html(), DocumentType.HTML, ParseLimits()))
        by_article = {d.legal.article: d for d in drafts if d.legal.article}
        assert set(by_article) == {"77", "87"}
        ferias = by_article["77"]
        assert ferias.heading == "Lei nº 8.112/1990 > CAPÍTULO III - DAS FÉRIAS"
        assert ferias.text.startswith("Art. 77.")
        assert "§ 3º As férias poderão ser parceladas" in ferias.text
        assert ferias.legal.amended_by == ("Lei nº 9.525/1997",)
        assert "(Incluído pela Lei nº 9.525, de 10.12.97)" in ferias.text
        assert by_article["87"].heading is not None
        assert by_article["87"].heading.endswith("Seção VI - Da Licença para Capacitação")


class TestCompiledDocx:
    def test_struck_runs_of_a_real_decree_are_dropped_but_struck_ordinals_stay(self) -> None:
        path = CORPUS / "regulamenta_o_sistema_de_registro_de_precos_dec_7892.docx"
        doc = extract(path.read_bytes(), DocumentType.DOCX, ParseLimits())
        text = all_text(doc)
        # § 5º of art. 22 is struck in the compiled text (revoked wording)
        assert "somente poderá autorizar adesão à ata após a primeira aquisição" not in text
        assert doc.report["struck_chars"] >= 200  # that paragraph, at least
        # planalto strikes the "º" of "Art. 1º"; the ordinal is not revoked text
        assert "Art. 1º" in text
        assert doc.norm is not None and doc.norm.citation == "Decreto nº 7.892/2013"
        articles = {b.article for b in doc.blocks if b.article}
        assert {"1", "2", "22"} <= articles

    def test_annotated_edition_keeps_the_law_and_drops_exam_material(
        self, chunker: StructuredChunker
    ) -> None:
        path = CORPUS / "processo_administrativo_lei_9784.docx"
        doc = extract(path.read_bytes(), DocumentType.DOCX, ParseLimits())
        text = all_text(doc)
        assert "Art. 59. Salvo disposição legal específica, é de dez dias o prazo" in text
        assert "(TJSC-2010)" not in text
        assert "(AGU-2007)" not in text
        assert doc.report["editorial_blocks"] > 50
        assert doc.report["vetoed_units"] >= 1
        assert doc.norm is not None and doc.norm.citation == "Lei nº 9.784/1999"
        drafts = chunker.chunk(doc)
        art59 = [d for d in drafts if d.legal.article == "59"]
        assert art59 and art59[0].text.startswith("Art. 59.")
        assert art59[0].heading is not None and "DO RECURSO ADMINISTRATIVO" in art59[0].heading
        # a long article continues with its caput as context and the paragraph it is in
        art2 = [d for d in drafts if d.legal.article == "2"]
        assert len(art2) >= 2
        ementa = "Regula o processo administrativo no âmbito da Administração Pública Federal."
        # read with the ementa, the caput and the lead-in of the paragraph it continues
        assert art2[1].context is not None
        assert art2[1].context.startswith(f"{ementa}\nArt. 2o A Administração Pública obedecerá")
        assert art2[1].legal.paragraph == "Parágrafo único"
        # every chunk of the norm is read with its ementa, on top of the passage budget
        assert all(d.context is not None and d.context.startswith(ementa) for d in drafts)
        assert all(d.token_count <= 256 + 256 // 5 for d in drafts)

    def test_every_corpus_law_gets_its_identity_and_articles(self) -> None:
        files = sorted(CORPUS.glob("*.docx"))
        assert len(files) >= 100
        with_norm = with_articles = 0
        for path in files:
            doc = extract(path.read_bytes(), DocumentType.DOCX, ParseLimits())
            with_norm += doc.norm is not None
            with_articles += any(b.article for b in doc.blocks)
        assert with_norm >= 0.95 * len(files)
        assert with_articles >= 0.95 * len(files)


class TestPdfWithRunningHeaders:
    def test_headers_go_pages_stay_and_citations_carry_the_page(
        self, chunker: StructuredChunker
    ) -> None:
        doc = extract(law_pdf_with_running_headers(), DocumentType.PDF, ParseLimits())
        text = all_text(doc)
        assert "DIÁRIO OFICIAL" not in text.upper()
        assert "Página" not in text
        assert doc.norm is not None and doc.norm.citation == "Decreto nº 9.991/2019"
        assert doc.norm.ementa is not None and "Desenvolvimento de Pessoas" in doc.norm.ementa
        drafts = chunker.chunk(doc)
        art25 = next(d for d in drafts if d.legal.article == "25")
        assert art25.page_start == 2
        assert "parcelada em, no máximo, seis períodos" in art25.text
