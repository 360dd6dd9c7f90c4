"""Sentences of legal and administrative Portuguese: a break only before a capital
letter or "§", never after an abbreviation ("art.", "nº.", "dez.", "Sr.") or an
inciso marker."""

from __future__ import annotations

import re

# Words after which a period does not end a sentence (legal and administrative
# Portuguese). Compared lowercased, without the period.
_ABBREVIATIONS = frozenset(
    [
        "art",
        "arts",
        "artigo",
        "inc",
        "incs",
        "al",
        "als",
        "par",
        "pars",
        "cap",
        "caps",
        "tít",
        "tit",
        "sec",
        "seç",
        "item",
        "n",
        "nº",
        "no",
        "nos",
        "núm",
        "num",
        "pág",
        "pag",
        "págs",
        "pags",
        "fl",
        "fls",
        "vol",
        "p",
        "pp",
        "cf",
        "ex",
        "obs",
        "etc",
        "sr",
        "sra",
        "srs",
        "sras",
        "dr",
        "dra",
        "drs",
        "dras",
        "prof",
        "profa",
        "exmo",
        "exma",
        "ilmo",
        "ilma",
        "v",
        "s",
        "sa",
        "min",
        "des",
        "dep",
        "sen",
        "gov",
        "pres",
        "dir",
        "coord",
        "chef",
        "ger",
        "sup",
        "aux",
        "adm",
        "tec",
        "téc",
        "esp",
        "jan",
        "fev",
        "mar",
        "abr",
        "mai",
        "jun",
        "jul",
        "ago",
        "set",
        "out",
        "nov",
        "dez",
        "ltda",
        "cia",
        "s.a",
        "av",
        "r",
        "rod",
        "km",
        "tel",
        "ramal",
        "e-mail",
        "cep",
        "matr",
        "mat",
        "proc",
        "lei",
        "dec",
        "res",
        "port",
    ]
)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[\"'“(«]?[A-ZÀ-Ý§])")
_LAST_WORD = re.compile(r"(\S+)[.!?;]$")
_ROMAN_OR_LETTER = re.compile(r"^(?:[ivxlcdm]+|[a-z])$", re.IGNORECASE)


def split_sentences(text: str) -> list[str]:
    """Sentences of Portuguese prose: a break only before a capital letter or "§", and
    never after an abbreviation ("art.", "nº.", "dez.", "Sr.") or an inciso marker."""
    pieces = _SENTENCE_END.split(text.strip())
    sentences: list[str] = []
    for piece in pieces:
        if sentences:
            m = _LAST_WORD.search(sentences[-1])
            word = m.group(1).lower().lstrip("(\"'“") if m else ""
            if sentences[-1].endswith(".") and (
                word in _ABBREVIATIONS or _ROMAN_OR_LETTER.match(word)
            ):
                sentences[-1] = f"{sentences[-1]} {piece}"
                continue
        sentences.append(piece)
    return [s for s in sentences if s]
