"""Build the sample corpus's PDF and DOCX documents from their Markdown sources.

    .venv/bin/python scripts/build_samples.py

samples/fontes/*.md -> samples/corpus/ (PDF for portarias and instruções, DOCX for
the others). The outputs are committed; run this after editing a source.
"""

from __future__ import annotations

from pathlib import Path

from docx import Document
from fpdf import FPDF

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "samples" / "fontes"
CORPUS = ROOT / "samples" / "corpus"
AS_PDF = {"portaria-ferias", "instrucao-abono-permanencia"}


def blocks(markdown: str) -> list[tuple[int, str]]:
    """(heading level or 0, text) per non-empty line."""
    out = []
    for line in markdown.splitlines():
        line = line.strip()
        if not line:
            continue
        level = len(line) - len(line.lstrip("#"))
        out.append((level, line.lstrip("# ").strip()))
    return out


def to_pdf(items: list[tuple[int, str]], path: Path) -> None:
    pdf = FPDF()
    pdf.set_title(items[0][1])
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    for level, text in items:
        if level:
            pdf.set_font("helvetica", "B", 14 if level == 1 else 12)
            pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        else:
            pdf.set_font("helvetica", size=11)
            pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
    pdf.output(str(path))


def to_docx(items: list[tuple[int, str]], path: Path) -> None:
    doc = Document()
    doc.core_properties.title = items[0][1]
    for level, text in items:
        if level:
            doc.add_heading(text, level=level)
        else:
            doc.add_paragraph(text)
    doc.save(str(path))


def main() -> None:
    for source in sorted(SOURCES.glob("*.md")):
        items = blocks(source.read_text(encoding="utf-8"))
        if source.stem in AS_PDF:
            to_pdf(items, CORPUS / f"{source.stem}.pdf")
        else:
            to_docx(items, CORPUS / f"{source.stem}.docx")
        print(f"built {source.stem}")


if __name__ == "__main__":
    main()
