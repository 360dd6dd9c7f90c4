"""Clean text: Unicode NFC, ligatures, invisible characters, hyphenation, whitespace;
and the legal structure of Brazilian norms (TÍTULO, CAPÍTULO, Art., §, incisos)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from domain.model import Block, BlockKind

_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "st",
        "\ufb06": "st",
        "\u00a0": " ",  # no-break space
        "\u2007": " ",
        "\u202f": " ",
        "\u00ad": None,  # soft hyphen
        "\u200b": None,  # zero-width characters
        "\u200c": None,
        "\u200d": None,
        "\u2060": None,
        "\ufeff": None,
        "\u2010": "-",
        "\u2011": "-",
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_HYPHEN_BREAK = re.compile(r"(\w)-\n(?=[a-zà-ÿ])")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def clean(text: str) -> str:
    """Normalise one piece of text; keeps single newlines (line structure)."""
    text = unicodedata.normalize("NFC", text.translate(_LIGATURES))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    text = _HYPHEN_BREAK.sub(r"\1", text)
    text = _SPACES.sub(" ", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def one_line(text: str) -> str:
    return " ".join(clean(text).split())


# -- legal structure -------------------------------------------------------------------

_HEADING_LEVELS = {
    "PARTE": 1,
    "LIVRO": 1,
    "TÍTULO": 1,
    "TITULO": 1,
    "CAPÍTULO": 2,
    "CAPITULO": 2,
    "SEÇÃO": 3,
    "SECAO": 3,
    "SUBSEÇÃO": 4,
    "SUBSECAO": 4,
    "ANEXO": 1,
}
_LEGAL_HEADING = re.compile(
    r"^(PARTE|LIVRO|T[ÍI]TULO|CAP[ÍI]TULO|SE[ÇC][ÃA]O|SUBSE[ÇC][ÃA]O|ANEXO)\b[\s\wºª°.,\-–—]*$",
    re.IGNORECASE,
)
# A line that starts a new legal unit: article, paragraph, inciso, alínea, item.
LEGAL_UNIT = re.compile(
    r"^(?:Art\.?\s*\d|Artigo\s+\d|§\s*\d|Par[áa]grafo\s+[úu]nico|"
    r"[IVXLCDM]{1,7}\s*[-–—]\s|[a-z]\)\s|\d{1,2}\.\s+[A-ZÀ-Ý])"
)
_PAGE_NUMBER = re.compile(r"^(?:p[áa]g(?:ina)?\.?\s*)?\d{1,4}(?:\s*(?:/|de)\s*\d{1,4})?$", re.I)


def heading_level(line: str) -> int | None:
    """Level of a heading line of a norm, or None when the line is body text."""
    if len(line) > 120:
        return None
    m = _LEGAL_HEADING.match(line)
    if m:
        return _HEADING_LEVELS.get(m.group(1).upper(), 2)
    letters = [c for c in line if c.isalpha()]
    if (
        len(letters) >= 4
        and all(c.isupper() for c in letters)
        and not line.endswith((".", ";", ":", ","))
        and len(line.split()) <= 12
    ):
        return 3  # an all-caps title line ("DAS FÉRIAS")
    return None


def text_to_blocks(text: str, page: int | None = None) -> list[Block]:
    """Split running text (plain text, a PDF page) into heading and paragraph blocks.

    Paragraphs end at blank lines and before every line that starts a legal unit
    (Art., §, inciso, alínea); wrapped lines inside a paragraph are joined.
    """
    blocks: list[Block] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append(Block(BlockKind.PARAGRAPH, " ".join(current), page=page))
            current.clear()

    for para in _BLANK_LINES.split(clean(text)):
        for line in para.split("\n"):
            line = line.strip()
            if not line:
                continue
            level = heading_level(line)
            if level is not None:
                flush()
                blocks.append(Block(BlockKind.HEADING, line, level=level, page=page))
            elif LEGAL_UNIT.match(line):
                flush()
                current.append(line)
            else:
                current.append(line)
        flush()
    return blocks


def strip_running_lines(pages: list[list[str]], min_pages: int = 3) -> list[list[str]]:
    """Drop page headers/footers: lines repeated at the top or bottom of most pages
    (digits ignored, so 'Página 3 de 10' matches), and bare page numbers."""

    def key(line: str) -> str:
        return re.sub(r"\d+", "#", line.strip().lower())

    def depth(lines: list[str]) -> int:
        # two lines at each edge only when a body remains between them
        return 2 if len(lines) >= 5 else 1

    edge_counts: Counter[str] = Counter()
    for lines in pages:
        d = depth(lines)
        edges = {key(line) for line in lines[:d] + lines[-d:] if line.strip()}
        edge_counts.update(edges)
    threshold = max(min_pages, int(len(pages) * 0.6))
    running = {k for k, n in edge_counts.items() if n >= threshold and len(pages) >= min_pages}
    cleaned = []
    for lines in pages:
        kept = []
        d = depth(lines)
        for i, line in enumerate(lines):
            at_edge = i < d or i >= len(lines) - d
            if at_edge and (key(line) in running or _PAGE_NUMBER.match(line.strip())):
                continue
            kept.append(line)
        cleaned.append(kept)
    return cleaned


def merge_blocks(blocks: Iterable[Block]) -> list[Block]:
    """Drop empty blocks; keep order."""
    return [b for b in blocks if b.text.strip()]
