"""The legal pass over an extracted document (any format): blocks that know their
article / paragraph / inciso / alínea, amendment notes listed, revoked and vetoed stubs,
the official banner and link lists, and the exam material of annotated editions
dropped and counted in the document's report. The pieces live in domain.legal."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from domain.legal import (
    ARTICLES_STUB,
    BARE_NOTE,
    STUB,
    UnitKind,
    classify,
    detect_norm,
    fold,
    heading_rank,
    is_revoked,
    parse_norm_title,
    split_notes,
    unit_body,
)
from domain.model import Block, BlockKind, ExtractedDocument

# -- editorial material of annotated editions ------------------------------------------------
#
# Annotated editions of laws (study material, "lei seca comentada") interleave the law
# with exam questions "(TJSC-2010): ...", notes "#Atenção: ...", and exam tags after each
# unit "(AGU-2007) (MPF-2008)". None of it is the law: kept out of the units' text.

_EXAM_TAG = r"\(\s*#?[A-Z][\w/º°ª.&]*(?:[-/][\w/º°ª.&]+)*[-/ ]\d{4}(?:/\d{2,4})*(?:-[\w/]+)*\s*\)"
_EXAM_TAGS = re.compile(rf"(?:\s*{_EXAM_TAG})+")
_EDITORIAL_BLOCK = re.compile(rf"^(?:{_EXAM_TAG}\s*:|#[A-Za-zÀ-ú]+\s*:|#[A-Z][\w/º-]*-\d{{4}})")


def is_editorial(text: str) -> bool:
    return bool(_EDITORIAL_BLOCK.match(text.lstrip()))


def strip_exam_tags(text: str) -> tuple[str, int]:
    tags = len(_EXAM_TAGS.findall(text))
    return (_EXAM_TAGS.sub("", text).strip(), tags) if tags else (text, 0)


# -- official boilerplate --------------------------------------------------------------------

_BANNER = (
    r"Presid[êe]ncia\s+da\s+Rep[úu]blica|Casa\s+Civil|Secretaria-Geral|"
    r"Subchefia\s+para\s+Assuntos\s+Jur[íi]dicos|"
    r"Secretaria\s+Especial\s+para\s+Assuntos\s+Jur[íi]dicos|Texto\s+compilado|"
    r"Mensagem\s+de\s+veto|Vig[êe]ncia|Regulamento|Convers[ãa]o\s+da\s+Medida\s+Provis[óo]ria"
    r"[^()]{0,60}|\(?Vide\s[^()]{0,200}(?:\([^()]*\)[^()]{0,40})?\)?|"
    r"Produ[çc][ãa]o\s+de\s+efeitos?[^()]{0,60}|"
    r"Este\s+texto\s+n[ãa]o\s+substitui\s+o\s+publicado\s+no\s+D\.?O\.?U\.?[^()]{0,60}|"
    r"Di[áa]rio\s+Oficial\s+da\s+Uni[ãa]o(?:\s*[-–—]\s*Se[çc][ãa]o\s+\d)?|"
    r"Publicad[oa]\s+(?:em|no)\s*:?[^|]{0,40}\|?\s*Edi[çc][ãa]o\s*:?.{0,80}|"
    r"D\.?O\.?U\.?\s+de\s+[\d./]+|Imprensa\s+Nacional|[ÍI]ndice|Voltar|Imprimir|Topo"
)
_BANNER_PIECE = re.compile(rf"^\s*(?:{_BANNER})[\s.;:|]*", re.IGNORECASE)
# these only ever precede the title line (banner, link lists); after it they may be law
_LEADING_ONLY = re.compile(r"^\(?\s*(?:Vide|Regulamento|Vig[êe]ncia|Texto\s+compilado)", re.I)
# "Brasília, 11 de dezembro de 1990; 169º da Independência ...": the act ends here
_CLOSING = re.compile(r"^Bras[íi]lia\s*,\s*\d{1,2}\s+de\s+\w+\s+de\s+\d{4}", re.I)


def is_boilerplate(text: str, before_title: bool) -> bool:
    """A line made only of the official banner, link lists and DOU headers. Body text
    is never boilerplate: one word that is not part of them keeps the line."""
    t = " ".join(text.split())
    if not t or len(t) > 400:
        return False
    if not before_title and _LEADING_ONLY.match(t):
        return False
    while t:
        m = _BANNER_PIECE.match(t)
        if m is None or m.end() == 0:
            return False
        t = t[m.end() :]
    return True


# -- the pass over a document ----------------------------------------------------------------


@dataclass
class _Position:
    article: str | None = None
    paragraph: str | None = None
    inciso: str | None = None
    alinea: str | None = None

    def enter(self, kind: str, label: str | None) -> None:
        if kind == UnitKind.ARTICLE:
            self.article, self.paragraph, self.inciso, self.alinea = label, None, None, None
        elif kind == UnitKind.PARAGRAPH:
            self.paragraph, self.inciso, self.alinea = label, None, None
        elif kind == UnitKind.INCISO:
            self.inciso, self.alinea = label, None
        elif kind == UnitKind.ALINEA:
            self.alinea = label

    def reset(self) -> None:
        self.article = self.paragraph = self.inciso = self.alinea = None


@dataclass
class LegalReport:
    revoked_units: int = 0
    vetoed_units: int = 0
    notes: int = 0
    boilerplate_lines: int = 0
    editorial_blocks: int = 0
    editorial_tags: int = 0
    examples: list[str] = field(default_factory=list)  # a few dropped stubs, for people

    def as_dict(self) -> dict[str, object]:
        return {
            "revoked_units": self.revoked_units,
            "vetoed_units": self.vetoed_units,
            "amendment_notes": self.notes,
            "boilerplate_lines": self.boilerplate_lines,
            "editorial_blocks": self.editorial_blocks,
            "editorial_tags": self.editorial_tags,
            "dropped_examples": self.examples[:5],
        }


def structure(
    doc: ExtractedDocument, notes_in_text: bool = True, drop_editorial: bool = True
) -> ExtractedDocument:
    """Blocks that know their place in the norm, their amendment notes listed in
    ``Block.notes``; stubs, banner and link lists dropped and counted in ``doc.report``.

    ``notes_in_text``: whether the notes also stay in the unit's text, as the compiled
    law prints them. Measured on the development set (bench/retrieval_ablation.py),
    taking them out of the embedded text made retrieval worse (hybrid recall@5 0.694
    against 0.778 with them), so they stay; ``amended_by`` carries them either way.

    ``drop_editorial``: exam questions and study notes of annotated editions are not
    law (they often state wrong answers on purpose) and are dropped."""
    lines = _split_lines(doc.blocks)
    norm = detect_norm(lines)
    title_index = _title_index(lines)
    report = LegalReport()
    pos = _Position()
    out: list[Block] = []
    legal_units = 0
    in_annex = False
    closed = False
    i = 0
    while i < len(lines):
        block = lines[i]
        i += 1
        if is_boilerplate(block.text, before_title=title_index is None or i - 1 < title_index):
            report.boilerplate_lines += 1
            continue
        if _CLOSING.match(block.text):
            pos.reset()  # date and signatures close the act: nothing after is in an article
            closed = True
        if closed or block.kind is BlockKind.TABLE or block.kind is BlockKind.CODE:
            out.append(_at(block, pos) if pos.article else block)
            continue
        editorial_zone = drop_editorial and title_index is not None and i - 1 > title_index
        if editorial_zone and is_editorial(block.text):
            report.editorial_blocks += 1
            continue
        shown = " ".join(block.text.split())
        if drop_editorial and title_index is not None:
            shown, tags = strip_exam_tags(shown)
            report.editorial_tags += tags
        text, notes = split_notes(shown)
        report.notes += len(notes)
        shown = BARE_NOTE.sub("", shown).strip() if notes_in_text else text
        kind, label = classify(text)
        if kind == UnitKind.HEADING or block.kind is BlockKind.HEADING:
            rank = heading_rank(text)
            if is_revoked(text, notes, heading=True):
                report.revoked_units += 1
                report.examples.append(block.text[:120])
                continue
            # "CAPÍTULO III" and its name on the next line are one heading
            if rank is not None and i < len(lines) and _heading_name(text, lines[i]):
                name, _ = split_notes(lines[i].text)
                text = f"{text} - {name}" if name else text
                i += 1
            if rank is None and block.kind is not BlockKind.HEADING:
                out.append(replace(block, text=shown, notes=tuple(notes)))
                continue
            if rank is not None:
                in_annex = rank == 1 and fold(text).upper().startswith("ANEXO")
            pos.reset()
            out.append(Block(BlockKind.HEADING, text, level=rank or block.level, page=block.page))
            continue
        if kind != UnitKind.TEXT and not in_annex:
            body = unit_body(text, kind)
            stub = STUB.match(body)
            if stub is not None or is_revoked(body, notes, heading=False):
                word = (stub.group("word") or "").lower() if stub else ""
                if word.startswith("vetad"):
                    report.vetoed_units += 1
                else:
                    report.revoked_units += 1
                report.examples.append(block.text[:120])
                pos.enter(kind, label)
                continue
            pos.enter(kind, label)
            legal_units += 1
        if (
            kind == UnitKind.TEXT
            and ARTICLES_STUB.match(text)
            and is_revoked("", notes, heading=True)
        ):
            report.revoked_units += 1  # "Arts. 112 a 115. (Revogados pelo ...)"
            report.examples.append(block.text[:120])
            continue
        if not text:
            continue
        out.append(_at(replace(block, text=shown, notes=tuple(notes)), pos))
    return replace(
        doc,
        blocks=out,
        norm=norm,
        report={**doc.report, **report.as_dict(), "legal_units": legal_units},
    )


def _at(block: Block, pos: _Position) -> Block:
    return replace(
        block,
        article=pos.article,
        paragraph=pos.paragraph,
        inciso=pos.inciso,
        alinea=pos.alinea,
    )


def _split_lines(blocks: Sequence[Block]) -> list[Block]:
    """Paragraph blocks that hold several lines ('CAPÍTULO I\\nDAS DISPOSIÇÕES GERAIS')
    become one block per line, so every unit and heading stands alone."""
    out: list[Block] = []
    for b in blocks:
        if "\n" not in b.text or b.kind in (BlockKind.TABLE, BlockKind.CODE):
            out.append(b)
            continue
        parts = [p.strip() for p in b.text.split("\n") if p.strip()]
        starts = [
            k
            for k, p in enumerate(parts)
            if k == 0 or classify(p)[0] != UnitKind.TEXT or _is_heading_line(parts[k - 1])
        ]
        for a, z in zip(starts, [*starts[1:], len(parts)], strict=True):
            out.append(replace(b, text=" ".join(parts[a:z])))
    return out


def _is_heading_line(text: str) -> bool:
    return classify(text)[0] == UnitKind.HEADING


def _title_index(lines: Sequence[Block]) -> int | None:
    for i, b in enumerate(lines[:60]):
        if parse_norm_title(b.text) is not None:
            return i
    return None


def _heading_name(label: str, nxt: Block) -> bool:
    """Is `nxt` the name of the heading `label` ('CAPÍTULO III' + 'DAS FÉRIAS')?"""
    if not re.fullmatch(r"\S+(?:\s+\S+)?", label.strip()):
        return False  # the label already carries its name
    text = " ".join(nxt.text.split())
    return (
        0 < len(text) <= 160
        and classify(text)[0] == UnitKind.TEXT
        and not text.endswith((".", ";", ":", ","))
        and nxt.kind is not BlockKind.TABLE
    )
