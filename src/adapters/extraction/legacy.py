"""Legacy Word (.doc) through antiword, RTF through striprtf.

Both give plain text whose tables are lines of cells between '|' (antiword draws
"|Acre |900,00 |", striprtf "Acre|900,00|"); runs of such lines become tables with
their column headers (tables.py), the rest paragraphs. antiword runs as a program
inside the extraction sandbox, under its limits.
"""

from __future__ import annotations

import os
import re
import tempfile

from domain.errors import CorruptDocument
from domain.model import Block, ExtractedDocument

from .normalize import clean, merge_blocks, text_to_blocks
from .tables import Table
from .tools import run_tool

ANTIWORD_TIMEOUT_S = 60.0
_ROW = re.compile(r"^\s*\|?[^|\n]*(\|[^|\n]*)+\|?\s*$")


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner.removeprefix("|").removesuffix("|")
    return [c.strip() for c in inner.split("|")]


def text_with_tables(text: str) -> list[Block]:
    """Paragraphs (one per line: both tools end a paragraph with a newline and never
    wrap), and tables from runs of two or more '|' lines of the same width."""
    blocks: list[Block] = []
    lines = clean(text).split("\n")
    prose: list[str] = []
    i = 0
    while i < len(lines):
        run: list[list[str]] = []
        while i + len(run) < len(lines) and _ROW.match(lines[i + len(run)]):
            cells = _cells(lines[i + len(run)])
            if run and len(cells) != len(run[0]):
                break
            run.append(cells)
        if len(run) >= 2 and len(run[0]) >= 2:
            blocks.extend(text_to_blocks("\n\n".join(prose)))
            prose = []
            grid = Table()
            for cells in run:
                grid.add(cells)
            blocks.extend(grid.blocks())
            i += len(run)
            continue
        prose.append(lines[i])
        i += 1
    blocks.extend(text_to_blocks("\n\n".join(prose)))
    return blocks


def extract_doc(data: bytes) -> ExtractedDocument:
    with tempfile.TemporaryDirectory(prefix="cogep-doc-") as tmp:
        path = os.path.join(tmp, "document.doc")
        with open(path, "wb") as fh:
            fh.write(data)
        done = run_tool(
            "antiword",
            ["-w", "0", "-m", "UTF-8.txt", path],
            what="reading a .doc file",
            timeout_s=ANTIWORD_TIMEOUT_S,
            env={"ANTIWORDHOME": "/usr/share/antiword"},
        )
    if done.returncode != 0:
        raise CorruptDocument(f"the .doc file cannot be read: {done.last_error_line}")
    return ExtractedDocument(blocks=merge_blocks(text_with_tables(done.stdout)))


def extract_rtf(data: bytes) -> ExtractedDocument:
    from striprtf.striprtf import rtf_to_text

    raw = data.decode("latin-1")  # RTF is 7-bit; \'xx escapes carry the code page
    try:
        text = str(rtf_to_text(raw, errors="replace"))  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise CorruptDocument(f"the RTF cannot be read: {type(exc).__name__}: {exc}") from exc
    return ExtractedDocument(blocks=merge_blocks(text_with_tables(text)))
