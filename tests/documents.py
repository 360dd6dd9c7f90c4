"""Real documents built by the tests: PDF (fpdf2), DOCX (python-docx), HTML, Markdown.

Portuguese HR-style content; nothing is downloaded or checked in as binary.
"""

from __future__ import annotations

import io
import zipfile

from docx import Document as DocxDocument
from fpdf import FPDF

LEI_FERIAS = [
    ("CAPÍTULO III", "Das Férias"),
    (
        "Art. 77.",
        "O servidor fará jus a trinta dias de férias, que podem ser acumuladas, até o "
        "máximo de dois períodos, no caso de necessidade do serviço, ressalvadas as "
        "hipóteses em que haja legislação específica.",
    ),
    (
        "§ 1º",
        "Para o primeiro período aquisitivo de férias serão exigidos doze meses de exercício.",
    ),
    ("§ 2º", "É vedado levar à conta de férias qualquer falta ao serviço."),
    (
        "Art. 78.",
        "O pagamento da remuneração das férias será efetuado até dois dias antes do "
        "início do respectivo período.",
    ),
]


def make_pdf(paragraphs: list[str], title: str = "Lei nº 8.112, de 1990") -> bytes:
    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 14)
    pdf.multi_cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=11)
    for p in paragraphs:
        pdf.multi_cell(0, 6, p, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    return bytes(pdf.output())


def make_pdf_pages(pages: list[str]) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def lei_ferias_pdf() -> bytes:
    return make_pdf([f"{a} {b}" for a, b in LEI_FERIAS])


def make_docx(blocks: list[tuple[str, str]]) -> bytes:
    """blocks: (style, text); style 'h1'/'h2' for headings, 'p' for paragraphs."""
    doc = DocxDocument()
    for style, text in blocks:
        if style.startswith("h"):
            doc.add_heading(text, level=int(style[1:]))
        else:
            doc.add_paragraph(text)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def portaria_docx() -> bytes:
    return make_docx(
        [
            ("h1", "Portaria nº 123 - Teletrabalho"),
            ("p", "Art. 1º Fica instituído o programa de gestão e desempenho (teletrabalho)."),
            ("h2", "Da adesão"),
            (
                "p",
                "Art. 2º A adesão ao teletrabalho depende de plano de trabalho aprovado pela chefia.",
            ),
            ("p", "Parágrafo único. O servidor deve manter os meios tecnológicos necessários."),
        ]
    )


def manual_html() -> bytes:
    return (
        "<!DOCTYPE html><html lang='pt-BR'><head><title>Manual de Licenças</title>"
        "<style>body{color:red}</style><script>alert(1)</script></head><body>"
        "<nav>Início | Contato</nav>"
        "<h1>Manual de Licenças</h1>"
        "<h2>Licença para capacitação</h2>"
        "<p>Após cada quinquênio de efetivo exercício, o servidor poderá afastar-se por "
        "até três meses para participar de curso de capacitação profissional.</p>"
        "<ul><li>Requerimento com antecedência de 30 dias.</li>"
        "<li>Comprovante de matrícula.</li></ul>"
        "</body></html>"
    ).encode()


def guia_markdown() -> bytes:
    return (
        "# Guia do Auxílio-Transporte\n\n"
        "## Quem tem direito\n\n"
        "O auxílio-transporte é devido ao servidor que utiliza transporte coletivo "
        "nos deslocamentos entre a residência e o local de trabalho.\n\n"
        "## Como solicitar\n\n"
        "- Preencha o formulário no SIGEPE.\n"
        "- Anexe os comprovantes de residência.\n"
    ).encode()


def docx_zip_bomb(spaces: int = 50_000_000) -> bytes:
    """A DOCX whose document.xml inflates ~1000x (tens of MB of spaces)."""
    body = make_docx([("p", "pequeno")])
    src = zipfile.ZipFile(io.BytesIO(body))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "word/document.xml":
                # highly compressible payload: 50 MB of spaces inside the body
                data = data.replace(b"<w:body>", b"<w:body>" + b" " * spaces, 1)
            zf.writestr(info.filename, data)
    return out.getvalue()


def docx_with_entity() -> bytes:
    """A DOCX whose document.xml declares an entity (XXE / billion laughs vector)."""
    body = make_docx([("p", "texto &xxe;")])
    src = zipfile.ZipFile(io.BytesIO(body))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "word/document.xml":
                data = data.replace(
                    b"?>",
                    b'?><!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
                    1,
                )
                data = data.replace(b"texto &amp;xxe;", b"texto &xxe;")
            zf.writestr(info.filename, data)
    return out.getvalue()


def pdf_bomb(inflated_mb: int = 100) -> bytes:
    """A valid PDF with a content stream that inflates to hundreds of megabytes."""
    import zlib

    payload = zlib.compress(b"0 0 m " * (inflated_mb * 1024 * 1024 // 6), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length "
        + str(len(payload)).encode()
        + b" /Filter /FlateDecode >>\nstream\n"
        + payload
        + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n".encode() + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()
