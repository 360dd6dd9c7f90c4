"""Scans made from known text, for OCR tests and the OCR benchmark: the text is typeset
into a PDF (fpdf2), the page rendered at 300 dpi (pypdfium2), turned by a small angle,
speckled with noise, and saved as an image or as an image-only PDF page, the way a
scanner delivers it. The character error rate compares OCR's text with the original."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

import io
import random
import unicodedata

from fpdf import FPDF

PORTARIA = [
    "PORTARIA Nº 431, DE 12 DE MARÇO DE 2026",
    "Dispõe sobre a jornada de trabalho e o controle de frequência dos servidores.",
    "Art. 1º A jornada de trabalho dos servidores é de quarenta horas semanais, "
    "cumpridas em dois turnos diários de quatro horas, com intervalo para repouso e "
    "alimentação de no mínimo uma hora.",
    "Art. 2º O controle de frequência será feito por meio de registro eletrônico de "
    "ponto, vedado o registro manual, salvo nos casos previstos nesta Portaria.",
    "Parágrafo único. O servidor que não puder registrar a entrada ou a saída deverá "
    "justificar a ocorrência à chefia imediata no prazo de dois dias úteis.",
    "Art. 3º As horas excedentes à jornada poderão ser compensadas em até noventa dias, "
    "mediante acordo com a chefia, observado o limite de duas horas por dia.",
]


def typeset(paragraphs: list[str]) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=12)  # a core font: Latin-1 holds every Portuguese letter
    pdf.add_page()
    for p in paragraphs:
        pdf.multi_cell(0, 7, p)
        pdf.ln(3)
    return bytes(pdf.output())


def scanned_page(
    paragraphs: list[str], dpi: int = 300, angle: float = 1.2, noise: float = 0.01, seed: int = 7
) -> PILImage:
    """The page as a scanner sees it: a grayscale PIL image."""
    import pypdfium2 as pdfium
    from PIL import Image

    pdf = pdfium.PdfDocument(typeset(paragraphs))
    image: PILImage = pdf[0].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    pdf.close()
    image = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    rng = random.Random(seed)
    pixels = image.load()
    assert pixels is not None
    width, height = image.size
    for _ in range(int(width * height * noise)):
        x, y = rng.randrange(width), rng.randrange(height)
        pixels[x, y] = rng.choice((0, 90, 170, 255))
    image.info["dpi"] = (dpi, dpi)
    return image


def image_bytes(image: PILImage, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, dpi=image.info.get("dpi", (300, 300)))
    return buf.getvalue()


def image_pdf(images: list[PILImage], text_pages: list[list[str]] | None = None) -> bytes:
    """A PDF of scanned pages (images only), optionally followed by typeset pages."""
    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=12)  # a core font: Latin-1 holds every Portuguese letter
    for image in images:
        pdf.add_page()
        pdf.image(io.BytesIO(image_bytes(image)), x=0, y=0, w=210)
    for paragraphs in text_pages or []:
        pdf.add_page()
        for p in paragraphs:
            pdf.multi_cell(0, 7, p)
    return bytes(pdf.output())


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def character_error_rate(expected: str, got: str) -> float:
    from rapidfuzz.distance import Levenshtein

    a, b = normalise(expected), normalise(got)
    return Levenshtein.distance(a, b) / max(1, len(a))
