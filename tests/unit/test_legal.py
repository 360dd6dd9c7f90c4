"""The legal structure of Brazilian norms: identity, units, notes, stubs, citations."""

from __future__ import annotations

from datetime import date

import pytest

from domain.legal import (
    NormIdentity,
    amended_by,
    cite,
    classify,
    detect_norm,
    parse_norm_title,
    split_notes,
)
from domain.legal_structure import is_boilerplate, structure
from domain.model import Block, BlockKind, ExtractedDocument


def para(text: str) -> Block:
    return Block(BlockKind.PARAGRAPH, text)


class TestNormIdentity:
    @pytest.mark.parametrize(
        ("line", "kind", "number", "year", "when"),
        [
            ("LEI Nº 8.112, DE 11 DE DEZEMBRO DE 1990", "Lei", "8.112", 1990, date(1990, 12, 11)),
            ("LEI No 9.961 DE 28 DE JANEIRO DE 2000.", "Lei", "9.961", 2000, date(2000, 1, 28)),
            ("LEI Nº 9.784 , DE 29 DE JANEIRO DE 1999.", "Lei", "9.784", 1999, date(1999, 1, 29)),
            (
                "DECRETO-LEI Nº 1.075, DE 22 DE JANEIRO DE 1970.",
                "Decreto-Lei",
                "1.075",
                1970,
                date(1970, 1, 22),
            ),
            (
                "LEI COMPLEMENTAR Nº 73, DE 10 DE FEVEREIRO DE 1993",
                "Lei Complementar",
                "73",
                1993,
                date(1993, 2, 10),
            ),
            ("DECRETO Nº 7.892, DE 23 DE JANEIRO DE 2013", "Decreto", "7.892", 2013, None),
            ("PORTARIA NORMATIVA AGU Nº 46, DE 2022", "Portaria Normativa", "46", 2022, None),
            (
                "INSTRUÇÃO NORMATIVA Nº 65, DE 30 DE JULHO DE 2020",
                "Instrução Normativa",
                "65",
                2020,
                date(2020, 7, 30),
            ),
            (
                "INSTRUÇÃO COGEP Nº 15, DE 30 DE JUNHO DE 2026",
                "Instrução",
                "15",
                2026,
                date(2026, 6, 30),
            ),
            (
                "MEDIDA PROVISÓRIA Nº 2.220, DE 4 DE SETEMBRO DE 2001",
                "Medida Provisória",
                "2.220",
                2001,
                date(2001, 9, 4),
            ),
            ("NOTA TÉCNICA Nº 7/2026 - COGEP", "Nota Técnica", "7", 2026, None),
            ("PORTARIA SGP/ME Nº 443 / 2018", "Portaria", "443", 2018, None),
        ],
    )
    def test_title_lines_give_type_number_and_date(
        self, line: str, kind: str, number: str, year: int, when: date | None
    ) -> None:
        norm = parse_norm_title(line)
        assert norm is not None
        assert (norm.kind, norm.number, norm.year) == (kind, number, year)
        if when is not None:
            assert norm.date == when

    @pytest.mark.parametrize(
        "line",
        [
            "O servidor fará jus a trinta dias de férias.",
            "Art. 5º Esta Lei entra em vigor na data de sua publicação.",
            "nos termos da Lei nº 8.112, de 1990, o servidor",
            "nos termos da Portaria nº 7/2026, o servidor",
        ],
    )
    def test_body_text_is_not_a_title(self, line: str) -> None:
        assert parse_norm_title(line) is None

    def test_citation_and_key(self) -> None:
        norm = NormIdentity("Lei", "8.112", 1990)
        assert norm.citation == "Lei nº 8.112/1990"
        assert norm.key == "lei-8112-1990"
        assert NormIdentity("Decreto-Lei", "200", 1967).key == "decreto-lei-200-1967"

    def test_the_ementa_follows_the_title_and_the_enacting_formula_is_not_it(self) -> None:
        blocks = [
            para("MATERIAL COM QUESTÕES DE CONCURSO"),
            para("LEI Nº 9.784 , DE 29 DE JANEIRO DE 1999."),
            Block(BlockKind.TABLE, "Regula o processo administrativo no âmbito federal."),
            para("O PRESIDENTE DA REPÚBLICA Faço saber que o Congresso Nacional decreta:"),
        ]
        norm = detect_norm(blocks)
        assert norm is not None and norm.ementa == (
            "Regula o processo administrativo no âmbito federal."
        )
        without = detect_norm([blocks[1], blocks[3]])
        assert without is not None and without.ementa is None


class TestUnits:
    @pytest.mark.parametrize(
        ("text", "kind", "label"),
        [
            ("Art. 77. O servidor fará jus", "article", "77"),
            ("Art. 1o Esta Lei estabelece", "article", "1"),
            ("Art. 103-C. As datas", "article", "103-C"),
            ("Art. 1.017. O prazo", "article", "1017"),
            ("§ 1º Para o primeiro período", "paragraph", "§ 1º"),
            ("§ 12. A regra", "paragraph", "§ 12"),
            ("Parágrafo único. É vedado", "paragraph", "Parágrafo único"),
            ("II - entidade - a unidade", "inciso", "II"),
            ("XIV – atuação", "inciso", "XIV"),
            ("a) os servidores", "alinea", "a"),
            ("CAPÍTULO III", "heading", None),
            ("Seção VI", "heading", None),
            ("O servidor público tem direito", "text", None),
            ("Capítulo de livro sobre o tema.", "text", None),
        ],
    )
    def test_lines_are_classified(self, text: str, kind: str, label: str | None) -> None:
        assert classify(text) == (kind, label)


class TestNotes:
    def test_amendment_notes_leave_the_text_and_name_the_acts(self) -> None:
        text, notes = split_notes(
            "§ 1º Para o primeiro período serão exigidos doze meses. "
            "(Redação dada pela Lei nº 9.525, de 10.12.97) (Vide Lei nº 9.527, de 1997) Vigência"
        )
        assert text == "§ 1º Para o primeiro período serão exigidos doze meses."
        assert len(notes) == 3
        assert amended_by(notes) == ["Lei nº 9.525/1997"]
        assert amended_by(
            [
                "(Redação dada pelo Decreto-lei nº 2.398, de 1987)",
                "(Incluído pela Medida Provisória nº 2.177-44, de 2001)",
                "(Redação dada pela Lei Complementar nº 152, de 2015)",
            ]
        ) == [
            "Decreto-Lei nº 2.398/1987",
            "Medida Provisória nº 2.177-44/2001",
            "Lei Complementar nº 152/2015",
        ]

    def test_parentheses_of_the_law_itself_stay(self) -> None:
        text, notes = split_notes("III - o prazo de 12 (doze) meses (contados da posse);")
        assert notes == []
        assert text == "III - o prazo de 12 (doze) meses (contados da posse);"


class TestStructure:
    def test_revoked_and_vetoed_stubs_are_dropped_and_counted(self) -> None:
        doc = structure(
            ExtractedDocument(
                blocks=[
                    para("LEI Nº 8.112, DE 11 DE DEZEMBRO DE 1990"),
                    para("CAPÍTULO IV\nDAS LICENÇAS"),
                    para("Art. 87. O servidor poderá afastar-se para capacitação."),
                    para("Parágrafo único. (Revogado pela Lei nº 9.527, de 10.12.97)"),
                    para("Art. 88. (Revogado)"),
                    para(
                        "Art. 89. O servidor em licença conserva direitos. (Revogado pela Lei nº 9.527, de 1997)"
                    ),
                    para("I - (VETADO);"),
                    para("Art. 90. O afastamento será concedido."),
                    para("I - a pedido;"),
                ]
            )
        )
        texts = [b.text for b in doc.blocks]
        assert texts == [
            "LEI Nº 8.112, DE 11 DE DEZEMBRO DE 1990",
            "CAPÍTULO IV - DAS LICENÇAS",
            "Art. 87. O servidor poderá afastar-se para capacitação.",
            "Art. 90. O afastamento será concedido.",
            "I - a pedido;",
        ]
        assert doc.report["revoked_units"] == 3
        assert doc.report["vetoed_units"] == 1
        assert [(b.article, b.inciso) for b in doc.blocks[2:]] == [
            ("87", None),
            ("90", None),
            ("90", "I"),
        ]
        assert doc.norm is not None and doc.norm.citation == "Lei nº 8.112/1990"

    def test_notes_can_leave_the_text_and_stay_listed(self) -> None:
        blocks = [
            para("LEI Nº 8.112, DE 11 DE DEZEMBRO DE 1990"),
            para(
                "Art. 77. O servidor fará jus a férias. (Redação dada pela Lei nº 9.525, de 1997)"
            ),
        ]
        kept = structure(ExtractedDocument(blocks=blocks))
        assert kept.blocks[1].text.endswith("(Redação dada pela Lei nº 9.525, de 1997)")
        out = structure(ExtractedDocument(blocks=blocks), notes_in_text=False)
        assert out.blocks[1].text == "Art. 77. O servidor fará jus a férias."
        assert (
            out.blocks[1].notes
            == kept.blocks[1].notes
            == ("(Redação dada pela Lei nº 9.525, de 1997)",)
        )

    def test_banner_lines_go_but_body_text_that_mentions_them_stays(self) -> None:
        assert is_boilerplate("Presidência da República Casa Civil", before_title=True)
        assert is_boilerplate("(Vide Decreto nº 9.991, de 2019)", before_title=True)
        assert is_boilerplate("Diário Oficial da União - Seção 1", before_title=False)
        assert not is_boilerplate("(Vide Decreto nº 9.991, de 2019)", before_title=False)
        assert not is_boilerplate(
            "A Presidência da República publicará o regulamento.", before_title=True
        )
        assert not is_boilerplate("Casa Civil da Presidência coordena o programa", True)


class TestCitations:
    def test_citation_names_norm_article_paragraph_and_page(self) -> None:
        assert cite("Lei nº 8.112/1990", "77", "§ 1º", page=12) == (
            "Lei nº 8.112/1990, art. 77, § 1º (p. 12)"
        )
        assert cite("Lei nº 8.112/1990", "5", inciso="II", paragraph="§ 2º") == (
            "Lei nº 8.112/1990, art. 5º, § 2º, inciso II"
        )
        assert cite("Decreto nº 9.991/2019", "25", articles_to="26") == (
            "Decreto nº 9.991/2019, arts. 25 a 26"
        )
        assert cite(None, None, page=3) == "p. 3"
        assert cite(None) is None


def test_a_stub_of_several_revoked_articles_is_dropped() -> None:
    doc = structure(
        ExtractedDocument(
            blocks=[
                para("DECRETO-LEI Nº 9.760, DE 5 DE SETEMBRO DE 1946"),
                para("Arts. 112. a 115. (Revogados pelo Decreto-lei nº 2.398, de 1987)"),
                para("Art. 115-A. Efetuada a transação, o valor será recolhido."),
            ]
        )
    )
    assert [b.text for b in doc.blocks][1:] == [
        "Art. 115-A. Efetuada a transação, o valor será recolhido."
    ]
    assert doc.blocks[1].article == "115-A"
    assert doc.report["revoked_units"] == 1
