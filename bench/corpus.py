"""A generated corpus of Portuguese HR documents for the benchmarks.

Norms (leis, decretos, portarias, instruções normativas) with TÍTULO / CAPÍTULO /
Seção headings, articles, parágrafos, incisos and alíneas; and manuals with headings,
paragraphs and lists. Sentences are combined from fragments with random numbers and
dates, so no two documents share their text (a repetitive corpus would flatter any
cache). Deterministic for a seed. Written as PDF (fpdf2) and DOCX (python-docx), the
formats HR actually sends; about ``pages`` pages of ~3,300 characters each.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from docx import Document as DocxDocument
from fpdf import FPDF

CHARS_PER_PAGE = 3300

TOPICS = [
    "Das Férias",
    "Da Licença para Capacitação",
    "Do Adicional Noturno",
    "Da Gratificação Natalina",
    "Do Auxílio-Transporte",
    "Do Auxílio-Alimentação",
    "Da Jornada de Trabalho",
    "Do Teletrabalho",
    "Da Licença à Gestante",
    "Da Licença Paternidade",
    "Do Adicional de Insalubridade",
    "Da Progressão Funcional",
    "Do Estágio Probatório",
    "Da Avaliação de Desempenho",
    "Da Remoção",
    "Da Redistribuição",
    "Da Cessão de Servidores",
    "Do Abono de Permanência",
    "Da Aposentadoria",
    "Da Pensão por Morte",
    "Do Ressarcimento à Saúde Suplementar",
    "Das Horas Extraordinárias",
    "Do Banco de Horas",
    "Da Licença para Tratamento de Saúde",
    "Do Afastamento para Pós-Graduação",
    "Da Ajuda de Custo",
    "Das Diárias",
    "Do Processo Administrativo Disciplinar",
]
SUBJECTS = [
    "O servidor público federal",
    "A servidora em estágio probatório",
    "O ocupante de cargo em comissão",
    "O empregado público cedido",
    "A chefia imediata",
    "A unidade de gestão de pessoas",
    "O dirigente do órgão setorial",
    "A Coordenação-Geral de Gestão de Pessoas",
    "O servidor em exercício provisório",
    "A comissão de avaliação",
    "O órgão central do SIPEC",
    "O requerente",
    "O aposentado",
    "O pensionista",
]
VERBS = [
    "fará jus a",
    "poderá requerer",
    "deverá apresentar",
    "terá direito a",
    "observará",
    "encaminhará",
    "homologará",
    "registrará no SIGEPE",
    "comunicará formalmente",
    "analisará",
    "autorizará",
    "suspenderá",
]
OBJECTS = [
    "o pagamento do adicional correspondente",
    "a concessão do benefício",
    "a marcação do período de férias",
    "o plano de trabalho individual",
    "a documentação comprobatória",
    "o laudo pericial oficial",
    "a declaração de acumulação de cargos",
    "o requerimento devidamente instruído",
    "a escala de revezamento",
    "o registro de frequência",
    "a averbação do tempo de contribuição",
    "a revisão do ato concessório",
    "o ressarcimento das despesas",
    "a atualização cadastral",
]
CONDITIONS = [
    "no prazo de {n} dias contados da publicação deste ato",
    "desde que comprovada a necessidade do serviço",
    "observado o limite de {n} horas mensais",
    "nos termos do regulamento específico",
    "mediante autorização da autoridade competente",
    "após parecer favorável da área técnica",
    "respeitada a disponibilidade orçamentária do exercício de {year}",
    "conforme a tabela constante do Anexo {roman}",
    "salvo disposição em contrário prevista em lei",
    "sem prejuízo da remuneração do cargo efetivo",
    "até o {n}º dia útil do mês subsequente",
    "na forma do art. {art} da Lei nº {law}, de {year}",
]
CLOSINGS = [
    "O descumprimento do disposto neste artigo sujeitará o responsável às sanções cabíveis.",
    "Os efeitos financeiros retroagirão à data do protocolo do pedido.",
    "A unidade de gestão de pessoas publicará a relação nominal no boletim de serviço.",
    "Os casos omissos serão resolvidos pela autoridade máxima do órgão.",
    "É vedada a concessão cumulativa com outro benefício de mesma natureza.",
]
MANUAL_STEPS = [
    "Acesse o módulo de requerimentos do SIGEPE com seu CPF e senha",
    "Selecione o tipo de solicitação e preencha os campos obrigatórios",
    "Anexe os documentos em formato PDF com tamanho máximo de {n} MB",
    "Aguarde a análise da unidade de gestão de pessoas em até {n} dias",
    "Acompanhe o andamento pelo número de protocolo informado por e-mail",
    "Em caso de indeferimento, apresente recurso no prazo de {n} dias",
]
ROMANS = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]
KINDS = ["LEI", "DECRETO", "PORTARIA", "INSTRUÇÃO NORMATIVA", "RESOLUÇÃO"]


@dataclass(frozen=True)
class CorpusDocument:
    filename: str
    data: bytes
    chars: int


class _Writer:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def fill(self, template: str) -> str:
        r = self.rng
        return template.format(
            n=r.randint(2, 90),
            year=r.randint(1990, 2026),
            roman=r.choice(ROMANS),
            art=r.randint(1, 250),
            law=f"{r.randint(1, 14)}.{r.randint(100, 999)}",
        )

    def sentence(self) -> str:
        r = self.rng
        return (
            f"{r.choice(SUBJECTS)} {r.choice(VERBS)} {r.choice(OBJECTS)}, "
            f"{self.fill(r.choice(CONDITIONS))}."
        )

    def article(self, number: int) -> list[str]:
        r = self.rng
        lines = [f"Art. {number}{'º' if number < 10 else '.'} {self.sentence()} {self.sentence()}"]
        if r.random() < 0.6:
            lines.append(f"{r.choice(SUBJECTS)} {r.choice(VERBS)}:")
            for i in range(r.randint(2, 5)):
                lines.append(
                    f"{ROMANS[i]} - {r.choice(OBJECTS)}, {self.fill(r.choice(CONDITIONS))};"
                )
        for p in range(r.randint(0, 3)):
            lines.append(f"§ {p + 1}º {self.sentence()} {r.choice(CLOSINGS)}")
        return lines


def _norm_blocks(rng: random.Random, pages: int) -> tuple[str, list[tuple[str, str]]]:
    w = _Writer(rng)
    kind = rng.choice(KINDS)
    title = f"{kind} Nº {rng.randint(1, 9999)}, DE {rng.randint(1, 28)} DE {rng.choice(['JANEIRO', 'MARÇO', 'JUNHO', 'SETEMBRO', 'DEZEMBRO'])} DE {rng.randint(1990, 2026)}"
    blocks: list[tuple[str, str]] = [
        ("h1", title),
        (
            "p",
            f"Dispõe sobre {rng.choice(TOPICS).lower()[3:]} no âmbito do órgão e dá outras providências.",
        ),
    ]
    size, article, chapter = 0, 1, 1
    while size < pages * CHARS_PER_PAGE:
        blocks.append(("h2", f"CAPÍTULO {ROMANS[(chapter - 1) % 12]}"))
        blocks.append(("h3", rng.choice(TOPICS).upper()))
        chapter += 1
        for _ in range(rng.randint(3, 6)):
            for line in w.article(article):
                blocks.append(("p", line))
                size += len(line)
            article += 1
    return title, blocks


def _manual_blocks(rng: random.Random, pages: int) -> tuple[str, list[tuple[str, str]]]:
    w = _Writer(rng)
    title = f"Manual de Procedimentos: {rng.choice(TOPICS)[3:].strip()} (versão {rng.randint(1, 9)}.{rng.randint(0, 9)})"
    blocks: list[tuple[str, str]] = [("h1", title)]
    size = 0
    while size < pages * CHARS_PER_PAGE:
        blocks.append(("h2", rng.choice(TOPICS)[3:].strip()))
        for _ in range(rng.randint(2, 4)):
            text = " ".join(w.sentence() for _ in range(rng.randint(3, 6)))
            blocks.append(("p", text))
            size += len(text)
        blocks.append(("h3", "Como solicitar"))
        for step in rng.sample(MANUAL_STEPS, k=4):
            text = w.fill(step) + "."
            blocks.append(("li", text))
            size += len(text)
    return title, blocks


def _pdf(title: str, blocks: list[tuple[str, str]]) -> bytes:
    pdf = FPDF()
    pdf.set_title(title)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    for style, text in blocks:
        if style.startswith("h"):
            pdf.set_font("helvetica", "B", 13 if style == "h1" else 11)
            pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        else:
            pdf.set_font("helvetica", size=10)
            prefix = "- " if style == "li" else ""
            pdf.multi_cell(0, 5, prefix + text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.5)
    return bytes(pdf.output())


def _docx(title: str, blocks: list[tuple[str, str]]) -> bytes:
    doc = DocxDocument()
    doc.core_properties.title = title
    for style, text in blocks:
        if style.startswith("h"):
            doc.add_heading(text, level=int(style[1:]))
        elif style == "li":
            doc.add_paragraph(text, style="List Bullet")
        else:
            doc.add_paragraph(text)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def generate(count: int, pages: int = 10, seed: int = 2026) -> list[CorpusDocument]:
    """`count` documents of about `pages` pages: 60% PDF, 40% DOCX; 75% norms."""
    rng = random.Random(seed)
    docs = []
    for i in range(count):
        norm = rng.random() < 0.75
        title, blocks = (_norm_blocks if norm else _manual_blocks)(rng, pages)
        as_pdf = rng.random() < 0.6
        data = _pdf(title, blocks) if as_pdf else _docx(title, blocks)
        slug = "norma" if norm else "manual"
        chars = sum(len(t) for _, t in blocks)
        docs.append(CorpusDocument(f"{slug}-{i:04d}.{'pdf' if as_pdf else 'docx'}", data, chars))
    return docs


def plain_text(doc: CorpusDocument) -> str:
    """The text of a corpus document as a plain loader would read it (for peers that
    take text): PDF through pypdfium2, DOCX through python-docx."""
    if doc.filename.endswith(".pdf"):
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(doc.data)
        try:
            return "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
        finally:
            pdf.close()
    d = DocxDocument(io.BytesIO(doc.data))
    return "\n".join(p.text for p in d.paragraphs)


def norm_pdf(pages: int, seed: int = 300) -> tuple[str, bytes]:
    """One long norm as a PDF of about `pages` pages: (title, bytes)."""
    title, blocks = _norm_blocks(random.Random(seed), pages)
    return title, _pdf(title, blocks)
