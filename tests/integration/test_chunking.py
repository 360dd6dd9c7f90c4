"""The structured chunker with the embedding model's real tokenizer."""

from __future__ import annotations

import pytest

from adapters.chunking.sentences import split_sentences
from adapters.chunking.structured import StructuredChunker
from adapters.embedding.blas import BlasE5TokenCounter
from adapters.extraction.formats import ParseLimits, extract
from domain.model import Block, BlockKind, DocumentType, ExtractedDocument
from tests.documents import lei_ferias_pdf


@pytest.fixture(scope="module")
def counter() -> BlasE5TokenCounter:
    return BlasE5TokenCounter()


def heading(level: int, text: str) -> Block:
    return Block(BlockKind.HEADING, text, level=level)


def para(text: str, page: int | None = None) -> Block:
    return Block(BlockKind.PARAGRAPH, text, page=page)


SENTENCE = "O servidor público tem direito a férias anuais remuneradas, conforme a Lei nº 8.112."


class TestSentences:
    def test_abbreviations_of_legal_portuguese_do_not_end_sentences(self) -> None:
        text = (
            "O servidor fará jus, conforme o art. 77 da Lei nº 8.112, de 11 de dez. de 1990. "
            "O pagamento será feito antes. Sr. João, matr. 123, requereu com base no inc. II "
            "do § 1º. Veja a Portaria nº 4, de 2020! Fim? Sim."
        )
        assert split_sentences(text) == [
            "O servidor fará jus, conforme o art. 77 da Lei nº 8.112, de 11 de dez. de 1990.",
            "O pagamento será feito antes.",
            "Sr. João, matr. 123, requereu com base no inc. II do § 1º.",
            "Veja a Portaria nº 4, de 2020!",
            "Fim?",
            "Sim.",
        ]


class TestTokenCounter:
    def test_counts_exclude_the_models_own_prefix_and_specials(
        self, counter: BlasE5TokenCounter
    ) -> None:
        assert counter.count_tokens("") == 0
        assert counter.count_tokens("a") == 1
        one = counter.count_tokens(SENTENCE)
        assert counter.count_tokens(f"{SENTENCE} {SENTENCE}") == 2 * one


class TestChunks:
    def test_every_chunk_fits_the_budget_with_its_heading(
        self, counter: BlasE5TokenCounter
    ) -> None:
        body = " ".join([SENTENCE] * 40)
        doc = ExtractedDocument([heading(3, "DAS FÉRIAS"), para(f"Art. 1º {body}")])
        drafts = StructuredChunker(counter, max_tokens=64, overlap_tokens=16).chunk(doc)
        assert len(drafts) > 10
        for d in drafts:
            assert counter.count_tokens(d.embedding_text) <= 64 + 2  # separators
            assert d.token_count == counter.count_tokens(d.text)
        assert [d.position for d in drafts] == list(range(len(drafts)))

    def test_headings_form_a_path_and_a_new_heading_starts_a_new_chunk(
        self, counter: BlasE5TokenCounter
    ) -> None:
        doc = ExtractedDocument(
            [
                heading(1, "TÍTULO III"),
                heading(2, "CAPÍTULO I"),
                para("Art. 1º Primeiro artigo."),
                heading(2, "CAPÍTULO II"),
                para("Art. 2º Segundo artigo."),
            ]
        )
        drafts = StructuredChunker(counter, max_tokens=128, overlap_tokens=16).chunk(doc)
        assert [(d.heading, d.text) for d in drafts] == [
            ("TÍTULO III > CAPÍTULO I", "Art. 1º Primeiro artigo."),
            ("TÍTULO III > CAPÍTULO II", "Art. 2º Segundo artigo."),
        ]

    def test_small_units_are_packed_together(self, counter: BlasE5TokenCounter) -> None:
        doc = ExtractedDocument(
            [para("Art. 1º Caput."), para("§ 1º Primeiro."), para("§ 2º Segundo.")]
        )
        drafts = StructuredChunker(counter, max_tokens=128, overlap_tokens=16).chunk(doc)
        assert [d.text for d in drafts] == ["Art. 1º Caput.\n§ 1º Primeiro.\n§ 2º Segundo."]

    def test_a_new_article_starts_a_chunk_when_the_current_one_is_half_full(
        self, counter: BlasE5TokenCounter
    ) -> None:
        caput = "Art. 1º " + " ".join([SENTENCE] * 2)  # ~40 tokens of 100
        doc = ExtractedDocument([para(caput), para("Art. 2º Curto.")])
        drafts = StructuredChunker(counter, max_tokens=80, overlap_tokens=16).chunk(doc)
        assert [d.text[:7] for d in drafts] == ["Art. 1º", "Art. 2º"]

    def test_a_continued_article_is_named_in_the_heading_and_overlaps(
        self, counter: BlasE5TokenCounter
    ) -> None:
        short = "Os prazos contam em dias corridos."
        doc = ExtractedDocument(
            [
                heading(3, "DAS FÉRIAS"),
                para("Art. 77. " + " ".join([SENTENCE] * 2) + " " + short),
                para("§ 1º " + " ".join([SENTENCE] * 2)),
            ]
        )
        drafts = StructuredChunker(counter, max_tokens=64, overlap_tokens=16).chunk(doc)
        assert drafts[0].heading == "DAS FÉRIAS"
        second = drafts[1]
        assert second.heading == "DAS FÉRIAS > Art. 77"
        assert second.text.startswith(short)  # the overlap: the last sentence before the cut

    def test_no_overlap_is_carried_into_a_new_article(self, counter: BlasE5TokenCounter) -> None:
        doc = ExtractedDocument(
            [para("Art. 1º " + " ".join([SENTENCE] * 3)), para("Art. 2º " + SENTENCE)]
        )
        drafts = StructuredChunker(counter, max_tokens=96, overlap_tokens=32).chunk(doc)
        assert drafts[1].text.startswith("Art. 2º")

    def test_a_sentence_longer_than_the_budget_is_split_by_words(
        self, counter: BlasE5TokenCounter
    ) -> None:
        endless = ", ".join(f"inciso {i} do regulamento" for i in range(200))
        drafts = StructuredChunker(counter, max_tokens=48, overlap_tokens=8).chunk(
            ExtractedDocument([para(endless)])
        )
        assert len(drafts) > 5
        assert all(counter.count_tokens(d.text) <= 48 for d in drafts)
        words = " ".join(d.text for d in drafts)
        assert "inciso 0 do" in words and "inciso 199 do regulamento" in words

    def test_pages_are_tracked(self, counter: BlasE5TokenCounter) -> None:
        doc = ExtractedDocument([para("Primeira página.", page=1), para("Segunda.", page=2)])
        [draft] = StructuredChunker(counter, max_tokens=64, overlap_tokens=8).chunk(doc)
        assert (draft.page_start, draft.page_end) == (1, 2)

    def test_a_document_of_headings_only_keeps_its_words(self, counter: BlasE5TokenCounter) -> None:
        doc = ExtractedDocument([heading(1, "ÍNDICE"), heading(2, "DAS FÉRIAS")])
        drafts = StructuredChunker(counter, max_tokens=64, overlap_tokens=8).chunk(doc)
        assert " ".join(d.text for d in drafts).split() == ["ÍNDICE", "DAS", "FÉRIAS"]

    def test_a_real_pdf_law_chunks_along_its_articles(self, counter: BlasE5TokenCounter) -> None:
        doc = extract(lei_ferias_pdf(), DocumentType.PDF, ParseLimits())
        drafts = StructuredChunker(counter, max_tokens=64, overlap_tokens=16).chunk(doc)
        starts = [d.text.split()[0] + " " + d.text.split()[1] for d in drafts]
        assert "Art. 77." in starts and "Art. 78." in starts
        assert all(d.heading and "CAPÍTULO III" in d.heading for d in drafts if "Art." in d.text)

    def test_settings_that_cannot_work_are_refused(self, counter: BlasE5TokenCounter) -> None:
        with pytest.raises(ValueError, match="512"):
            StructuredChunker(counter, max_tokens=600)
        with pytest.raises(ValueError, match="half"):
            StructuredChunker(counter, max_tokens=64, overlap_tokens=32)
