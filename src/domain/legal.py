"""The structure of Brazilian legal acts, as plain data and pure functions.

A norm (Lei, Decreto, Portaria, ...) is a tree: Parte / Livro / Título / Capítulo /
Seção / Subseção headings; articles ("Art. 5º"); paragraphs ("§ 1º", "Parágrafo
único"); incisos (roman numerals) and alíneas (letters). Compiled texts also carry
amendment notes ("(Redação dada pela Lei nº ...)", "(Incluído pela ...)", "(Vide ...)")
and stubs of revoked or vetoed units ("Art. 5º (Revogado)", "II - (VETADO);").

This module holds the pieces: ``detect_norm`` reads the norm's identity (type, number,
date, ementa) from its title line; ``classify`` tells an article from a paragraph,
inciso or alínea; ``split_notes`` and ``amended_by`` read amendment notes; ``cite``
writes the citation an assistant can quote ("Lei nº 8.112/1990, art. 77, § 1º (p. 12)").
``domain.legal_structure.structure`` runs them over a whole document.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date

from domain.model import Block

# -- norm identity -------------------------------------------------------------------------

_MONTHS = {
    "janeiro": 1,
    "fevereiro": 2,
    "marco": 3,
    "abril": 4,
    "maio": 5,
    "junho": 6,
    "julho": 7,
    "agosto": 8,
    "setembro": 9,
    "outubro": 10,
    "novembro": 11,
    "dezembro": 12,
}

# longest names first: "LEI COMPLEMENTAR" before "LEI", "DECRETO-LEI" before "DECRETO"
_NORM_TYPES = (
    ("LEI COMPLEMENTAR", "Lei Complementar"),
    ("LEI DELEGADA", "Lei Delegada"),
    ("DECRETO-LEI", "Decreto-Lei"),
    ("DECRETO LEI", "Decreto-Lei"),
    ("DECRETO LEGISLATIVO", "Decreto Legislativo"),
    ("MEDIDA PROVISORIA", "Medida Provisória"),
    ("EMENDA CONSTITUCIONAL", "Emenda Constitucional"),
    ("INSTRUCAO NORMATIVA", "Instrução Normativa"),
    ("PORTARIA NORMATIVA", "Portaria Normativa"),
    ("PORTARIA CONJUNTA", "Portaria Conjunta"),
    ("PORTARIA", "Portaria"),
    ("RESOLUCAO", "Resolução"),
    ("DELIBERACAO", "Deliberação"),
    ("NOTA TECNICA", "Nota Técnica"),
    ("ORIENTACAO NORMATIVA", "Orientação Normativa"),
    ("INSTRUCAO", "Instrução"),
    ("CIRCULAR", "Circular"),
    ("LEI", "Lei"),
    ("DECRETO", "Decreto"),
)
_KIND_NAMES = dict(_NORM_TYPES)  # "DECRETO-LEI" -> "Decreto-Lei", ...
_TYPE_ALTERNATION = "|".join(re.escape(k).replace(r"\ ", r"\s+") for k, _ in _NORM_TYPES)
# "LEI Nº 8.112, DE 11 DE DEZEMBRO DE 1990", "DECRETO No 9.310 DE 15 DE MARÇO DE 2018",
# "PORTARIA NORMATIVA AGU Nº 46, DE 2022", "LEI COMPLEMENTAR Nº 73, DE 10 DE FEVEREIRO DE 1993"
_NORM_TITLE = re.compile(
    rf"^\s*(?P<type>{_TYPE_ALTERNATION})\b(?P<issuer>[\s\w/.-]{{0,40}}?)\s*"
    r"(?:N\s*[.ºo°]*\s*|N[UÚ]MERO\s+)?(?P<number>\d[\d.]*(?:-[\dA-Z]+)?)"
    # "Nº 7, DE 3 DE MARÇO DE 2026", "Nº 7 DE 2026" or "Nº 7/2026"
    r"(?:\s*/\s*(?=\d{4}\b)|\s*,?\s*)"
    r"(?:DE\s+(?P<day>\d{1,2})\s*[ºo°]?\s+DE\s+(?P<month>[A-Z]+)\s+DE\s+)?"
    r"(?:DE\s+)?(?P<year>\d{4})\b",
    re.IGNORECASE,
)
_ENACTING = re.compile(
    r"^(?:O|A)\s+(?:PRESIDENT[EA]|VICE-PRESIDENTE|CONGRESSO|MINISTR[OA]|ADVOGAD[OA]|"
    r"SECRET[AÁ]RI[OA]|DIRETOR|PROCURADOR)|^Fa[çc]o saber|^DECRETA|^RESOLVE|^CONSIDERANDO",
    re.IGNORECASE,
)


# the metadata keys a norm's identity fills in (NormIdentity.as_metadata)
NORM_METADATA_KEYS = frozenset(
    ["norm", "norm_type", "norm_number", "norm_year", "norm_date", "norm_ementa"]
)


@dataclass(frozen=True)
class NormIdentity:
    kind: str  # "Lei", "Decreto", "Lei Complementar", ...
    number: str  # "8.112"
    year: int | None = None
    date: date | None = None
    ementa: str | None = None

    @property
    def citation(self) -> str:
        """'Lei nº 8.112/1990'"""
        return f"{self.kind} nº {self.number}" + (f"/{self.year}" if self.year else "")

    @property
    def key(self) -> str:
        """A stable slug of the identity: 'lei-8112-1990' (the default source key)."""
        kind = fold(self.kind).lower().replace(" ", "-")
        number = re.sub(r"[^0-9a-z-]", "", self.number.lower())
        return f"{kind}-{number}" + (f"-{self.year}" if self.year else "")

    def as_metadata(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {
            "norm": self.citation,
            "norm_type": self.kind,
            "norm_number": self.number,
        }
        if self.year:
            out["norm_year"] = self.year
        if self.date:
            out["norm_date"] = self.date.isoformat()
        if self.ementa:
            out["norm_ementa"] = self.ementa
        return out


def parse_norm_title(line: str) -> NormIdentity | None:
    """The identity in a title line, or None when the line is not a norm's title."""
    if len(line) > 200:
        return None
    m = _NORM_TITLE.match(fold(line))
    if m is None:
        return None
    folded_type = " ".join(m.group("type").upper().split())
    kind = next(name for key, name in _NORM_TYPES if key == folded_type)
    year = int(m.group("year"))
    if not 1800 <= year <= 2200:
        return None
    when: date | None = None
    if m.group("day") and m.group("month"):
        month = _MONTHS.get(m.group("month").lower())
        if month:
            try:
                when = date(year, month, int(m.group("day")))
            except ValueError:
                when = None
    number = m.group("number").rstrip(".")
    return NormIdentity(kind=kind, number=number, year=year, date=when)


def _title_rest(text: str) -> str:
    """What follows the title in the same paragraph ('... DE 2019 Dispõe sobre ...')."""
    m = _NORM_TITLE.match(fold(text))
    if m is None:
        return ""
    rest = text[m.end() :]
    return " ".join(rest.lstrip(" .,;:-–—\n").split())


def detect_norm(blocks: Sequence[Block], scan: int = 40) -> NormIdentity | None:
    """The first title line among the first blocks, with the ementa that follows it."""
    for i, block in enumerate(blocks[:scan]):
        first_line = block.text.split("\n", 1)[0]
        identity = parse_norm_title(first_line)
        if identity is None:
            continue
        rest = _title_rest(block.text)
        if len(rest) >= 15 and rest[0].isupper() and not _ENACTING.match(rest):
            return replace(identity, ementa=rest)  # the title and ementa in one paragraph
        for nxt in blocks[i + 1 : i + 4]:
            text = " ".join(nxt.text.split())
            if not text or _ENACTING.match(text) or classify(text)[0] is not UnitKind.TEXT:
                break
            if 15 <= len(text) <= 1000 and text[0].isupper():
                return replace(identity, ementa=text)
        return identity
    return None


# -- units ---------------------------------------------------------------------------------


class UnitKind:
    ARTICLE = "article"
    PARAGRAPH = "paragraph"
    INCISO = "inciso"
    ALINEA = "alinea"
    HEADING = "heading"
    TEXT = "text"


_HEADING_WORDS = {
    "PARTE": 1,
    "LIVRO": 1,
    "TITULO": 2,
    "CAPITULO": 3,
    "SECAO": 4,
    "SUBSECAO": 5,
    "ANEXO": 1,
}
_HEADING = re.compile(
    r"^(PARTE|LIVRO|T[ÍI]TULO|CAP[ÍI]TULO|SE[ÇC][ÃA]O|SUBSE[ÇC][ÃA]O|ANEXO)"
    r"(?:\s+(?:[IVXLCDM]+|[ÚU]NIC[OA]|\d+|[A-Z])(?:-[A-Z])?\b|\s*$)",
    re.IGNORECASE,
)
_ARTICLE = re.compile(
    r"^Art(?:igo)?\.?\s*(\d+(?:\.\d{3})*)\s*[ºo°]?\s*(-\s?[A-Z]\b)?\s*[.\-–—:]?\s*"
)
_PARAGRAPH = re.compile(
    r"^(?:§\s*(\d+)\s*[ºo°]?\s*(-\s?[A-Z]\b)?|Par[áa]grafo\s+[úu]nico)\s*[.\-–—:]?\s*", re.I
)
_INCISO = re.compile(r"^([IVXLCDM]{1,7})(-[A-Z])?\s*[-–—]\s*")
_ALINEA = re.compile(r"^([a-z])(?:-[A-Z])?\)\s*")


def classify(text: str) -> tuple[str, str | None]:
    """(kind, label) of a line: 'Art. 77' -> ('article', '77'); '§ 1º' -> ('paragraph',
    '§ 1º'); 'II - ...' -> ('inciso', 'II'); 'a) ...' -> ('alinea', 'a')."""
    t = text.lstrip()
    if m := _ARTICLE.match(t):
        number = m.group(1).replace(".", "")
        suffix = (m.group(2) or "").replace(" ", "").upper()
        return UnitKind.ARTICLE, number + suffix
    if m := _PARAGRAPH.match(t):
        if m.group(1) is None:
            return UnitKind.PARAGRAPH, "Parágrafo único"
        ordinal = "º" if int(m.group(1)) < 10 else ""
        suffix = (m.group(2) or "").replace(" ", "").upper()
        return UnitKind.PARAGRAPH, f"§ {m.group(1)}{ordinal}{suffix}"
    if m := _INCISO.match(t):
        return UnitKind.INCISO, m.group(1) + (m.group(2) or "")
    if m := _ALINEA.match(t):
        return UnitKind.ALINEA, m.group(1)
    if _HEADING.match(t) and len(t) <= 160:
        return UnitKind.HEADING, None
    return UnitKind.TEXT, None


def heading_rank(text: str) -> int | None:
    m = _HEADING.match(text.lstrip())
    if m is None:
        return None
    return _HEADING_WORDS.get(fold(m.group(1)).upper(), 3)


def article_label(number: str) -> str:
    """'77' -> 'Art. 77'; '5' -> 'Art. 5º' (ordinal up to nine, as the laws write it)."""
    digits = re.match(r"\d+", number)
    ordinal = "º" if digits and int(digits.group(0)) < 10 else ""
    if digits:
        return f"Art. {digits.group(0)}{ordinal}{number[digits.end() :]}"
    return f"Art. {number}"


# -- amendment notes, revoked and vetoed stubs ------------------------------------------------

_NOTE_WORDS = (
    r"Reda[çc][ãa]o\s+dada|Inclu[íi]d[oa]s?|Acrescid[oa]s?|Acrescentad[oa]s?|Revogad[oa]s?|"
    r"Vide|Vig[êe]ncia|Renumerad[oa]s?|Regulamento|Regulamentad[oa]s?|Produ[çc][ãa]o\s+de\s+efeitos?|"
    r"Convers[ãa]o|Suprimid[oa]s?|Alterad[oa]s?|Restabelecid[oa]s?|Promulga[çc][ãa]o|"
    r"Express[ãa]o\s+suprimida|Texto\s+compilado|Mensagem\s+de\s+veto|Efic[áa]cia\s+suspensa|"
    r"Execu[çc][ãa]o\s+suspensa|Declarad[oa]s?|Ver\s+ADI|ADI|ADIN|ADC|ADPF|Publica[çc][ãa]o\s+original"
)
# "(Redação dada pela Lei nº 9.527, de 10.12.97)", "(Vide ADIN nº 2.135-4)", nested parens once
_NOTE = re.compile(
    rf"\(\s*(?:{_NOTE_WORDS})\b(?:[^()]|\([^()]*\))*\)",
    re.IGNORECASE,
)
BARE_NOTE = re.compile(r"\s+(?:Vig[êe]ncia|Regulamento|Mensagem\s+de\s+veto)\s*$", re.I)
ARTICLES_STUB = re.compile(r"^Arts\.?\s*[\d\s.,ºo°a-]+$")
_REVOKED_NOTE = re.compile(r"^\(\s*Revogad[oa]", re.IGNORECASE)
STUB = re.compile(
    r"^[\s.;:,\-–—]*(?:\(?\s*(?P<word>revogad[oa]s?|vetad[oa]s?|suprimid[oa]s?)\s*\)?)?[\s.;:,\-–—]*$",
    re.IGNORECASE,
)
_AMENDED_BY = re.compile(
    r"(?P<kind>Lei\s+Complementar|Decreto-Lei|Decreto|Medida\s+Provis[óo]ria|Lei|Emenda\s+"
    r"Constitucional)\s+n?[ºo°.]*\s*(?P<number>\d[\d.]*(?:-\d+)?)(?:,?\s+de\s+"
    r"(?:\d{1,2}[./]\d{1,2}[./])?(?:\d{1,2}\s+de\s+\w+\s+de\s+)?(?P<year>\d{2,4}))?",
    re.IGNORECASE,
)


def split_notes(text: str) -> tuple[str, list[str]]:
    """The text without its amendment notes, and the notes in order."""
    notes = [m.group(0) for m in _NOTE.finditer(text)]
    if notes:
        text = _NOTE.sub(" ", text)
    bare = BARE_NOTE.search(text)
    while bare:
        notes.append(bare.group(0).strip())
        text = text[: bare.start()]
        bare = BARE_NOTE.search(text)
    return " ".join(text.split()), notes


def amended_by(notes: Iterable[str]) -> list[str]:
    """Acts named in 'Redação dada' / 'Incluído' notes: ['Lei nº 9.527/1997', ...]."""
    out: list[str] = []
    for note in notes:
        if not re.match(r"\(\s*(?:Reda|Inclu|Acresc|Renumer|Restabelec|Alterad)", note, re.I):
            continue
        for m in _AMENDED_BY.finditer(note):
            kind = _KIND_NAMES.get(fold(" ".join(m.group("kind").split())).upper(), "Lei")
            year = m.group("year")
            if year and len(year) == 2:
                year = ("19" if int(year) > 30 else "20") + year
            name = f"{kind} nº {m.group('number').rstrip('.')}" + (f"/{year}" if year else "")
            if name not in out:
                out.append(name)
    return out


def unit_body(text: str, kind: str) -> str:
    if kind == UnitKind.ARTICLE:
        m = _ARTICLE.match(text.lstrip())
    elif kind == UnitKind.PARAGRAPH:
        m = _PARAGRAPH.match(text.lstrip())
    elif kind == UnitKind.INCISO:
        m = _INCISO.match(text.lstrip())
    else:
        m = _ALINEA.match(text.lstrip())
    return text.lstrip()[m.end() :] if m else text


def is_revoked(body: str, notes: Sequence[str], *, heading: bool) -> bool:
    """A unit whose own note says it was revoked: in compiled texts its words (when
    shown at all) are the old, struck text."""
    if not any(_REVOKED_NOTE.match(n) for n in notes):
        return False
    if heading:
        return True
    # "(Revogado pela Lei ...)" closing a unit revokes it, unless a later note
    # gives it a new wording ("(Revogado ...)(Redação dada ...)" never happens)
    last = notes[-1]
    return bool(_REVOKED_NOTE.match(last)) or not body.strip()


# -- citations -------------------------------------------------------------------------------


def cite(
    norm: str | None,
    article: str | None = None,
    paragraph: str | None = None,
    inciso: str | None = None,
    alinea: str | None = None,
    page: int | None = None,
    articles_to: str | None = None,
) -> str | None:
    """'Lei nº 8.112/1990, art. 77, § 1º, inciso II, alínea a (p. 12)'."""
    parts: list[str] = []
    if norm:
        parts.append(norm)
    if article:
        label = article_label(article)[len("Art. ") :]
        if articles_to and articles_to != article:
            parts.append(f"arts. {label} a {article_label(articles_to)[len('Art. ') :]}")
        else:
            parts.append(f"art. {label}")
        if paragraph:
            parts.append(paragraph)
        if inciso:
            parts.append(f"inciso {inciso}")
        if alinea:
            parts.append(f"alínea {alinea}")
    if not parts:
        return f"p. {page}" if page else None
    text = ", ".join(parts)
    return f"{text} (p. {page})" if page else text


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )
