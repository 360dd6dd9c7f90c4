"""Realistic legal documents built by the tests: a planalto.gov.br-style HTML page of a
compiled law (cp1252, struck revoked text, the official banner and link lists,
``<p><b>`` headings) and a PDF of a law with running headers on every page.

The wording follows Lei nº 8.112/1990 (public domain, Lei 9.610/98, art. 8, IV).
"""

from __future__ import annotations

from fpdf import FPDF

REVOKED_LICENCA = (
    "Após cada qüinqüênio ininterrupto de exercício, o servidor fará jus a três meses de "
    "licença-prêmio por assiduidade, com a remuneração do cargo efetivo"
)
IN_FORCE_CAPACITACAO = (
    "Após cada qüinqüênio de efetivo exercício, o servidor poderá, no interesse da "
    "Administração, afastar-se do exercício do cargo efetivo, com a respectiva "
    "remuneração, por até três meses, para participar de curso de capacitação profissional."
)
OLD_FERIAS_WORDING = "O servidor gozará obrigatoriamente trinta dias consecutivos de férias por ano"


def planalto_html() -> bytes:
    """A compiled law as planalto.gov.br publishes it, encoded in Windows-1252."""
    html = f"""<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">
<title>L8112consol</title></head><body>
<table><tr><td><img src="brasao.gif"></td><td>
<p align="center"><font color="#808000"><b>Presidência da República</b></font></p>
<p align="center"><font color="#808000"><b>Casa Civil</b></font></p>
<p align="center"><font color="#808000"><b>Subchefia para Assuntos Jurídicos</b></font></p>
</td></tr></table>
<p align="center"><a href="L8112compilado.htm">Texto compilado</a></p>
<p align="center"><a href="Mensagem_Veto/anterior_98/vep465-L8112-90.pdf">Mensagem de veto</a></p>
<p align="center"><a href="#">Vigência</a></p>
<p align="center"><a href="#">(Vide Decreto nº 9.991, de 2019)</a></p>
<p align="center"><b><font color="#000080">LEI Nº 8.112, DE 11 DE DEZEMBRO DE 1990</font></b></p>
<table><tr><td width="50%"></td><td><p align="justify"><font color="#800000">Dispõe sobre o regime jurídico dos servidores públicos civis da União, das autarquias e das fundações públicas federais.</font></p></td></tr></table>
<p><b>O PRESIDENTE DA REPÚBLICA</b> Faço saber que o Congresso Nacional decreta e eu sanciono a seguinte Lei:</p>
<p align="center"><b>CAPÍTULO III</b></p>
<p align="center"><b>DAS FÉRIAS</b></p>
<p><a name="art77"></a>Art. 77. O servidor fará jus a trinta dias de férias, que podem ser acumuladas, até o máximo de dois períodos, no caso de necessidade do serviço, ressalvadas as hipóteses em que haja legislação específica. <a href="L9525.htm">(Redação dada pela Lei nº 9.525, de 10.12.97)</a></p>
<p><strike>§ 1º {OLD_FERIAS_WORDING}.</strike></p>
<p>§ 1º Para o primeiro período aquisitivo de férias serão exigidos 12 (doze) meses de exercício. <a href="L9525.htm">(Incluído pela Lei nº 9.525, de 10.12.97)</a></p>
<p>§ 2º É vedado levar à conta de férias qualquer falta ao serviço.</p>
<p>§ 3º As férias poderão ser parceladas em até três etapas, desde que assim requeridas pelo servidor, e no interesse da administração pública. <a href="L9525.htm">(Incluído pela Lei nº 9.525, de 10.12.97)</a></p>
<p align="center"><b>CAPÍTULO IV</b></p>
<p align="center"><b>DAS LICENÇAS</b></p>
<p align="center"><b>Seção VI</b></p>
<p align="center"><b>Da Licença para Capacitação</b></p>
<p><strike>Art. 87. {REVOKED_LICENCA}.</strike></p>
<p>Art. 87. {IN_FORCE_CAPACITACAO} <a href="L9527.htm">(Redação dada pela Lei nº 9.527, de 10.12.97)</a></p>
<p>Parágrafo único. Os períodos de licença de que trata o caput não são acumuláveis. <a href="L9527.htm">(Redação dada pela Lei nº 9.527, de 10.12.97)</a></p>
<p>Art. 88. (Revogado pela Lei nº 9.527, de 10.12.97)</p>
<p>Art. 89. <span style="text-decoration: line-through">O servidor em licença-prêmio conserva todos os direitos do cargo.</span> (Revogado pela Lei nº 9.527, de 10.12.97)</p>
<p>Art. 90. (VETADO).</p>
<p align="center">Brasília, 11 de dezembro de 1990; 169º da Independência e 102º da República.</p>
<p align="center">FERNANDO COLLOR</p>
<p>Este texto não substitui o publicado no DOU de 12.12.1990</p>
</body></html>"""
    return html.encode("cp1252")


def law_pdf_with_running_headers() -> bytes:
    """A three-page decree whose pages all carry the same header and a page number."""
    pages = [
        [
            "DECRETO Nº 9.991, DE 28 DE AGOSTO DE 2019",
            "Dispõe sobre a Política Nacional de Desenvolvimento de Pessoas da administração "
            "pública federal direta, autárquica e fundacional.",
            "CAPÍTULO I",
            "DISPOSIÇÕES GERAIS",
            "Art. 1º Este Decreto dispõe sobre a Política Nacional de Desenvolvimento de "
            "Pessoas - PNDP.",
        ],
        [
            "CAPÍTULO II",
            "DAS LICENÇAS PARA CAPACITAÇÃO",
            "Art. 25. A licença para capacitação poderá ser parcelada em, no máximo, seis "
            "períodos e o menor período não poderá ser inferior a quinze dias.",
        ],
        [
            "Art. 26. O servidor poderá se ausentar das atividades no órgão de exercício "
            "para participar de ação de desenvolvimento em horário de trabalho.",
            "Parágrafo único. A ausência não poderá exceder trinta horas semanais.",
        ],
    ]
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    for number, lines in enumerate(pages, start=1):
        pdf.add_page()
        pdf.set_font("helvetica", size=8)
        pdf.cell(0, 5, "DIÁRIO OFICIAL DA UNIÃO - Seção 1", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        pdf.set_font("helvetica", size=11)
        for line in lines:
            pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        pdf.set_y(-20)
        pdf.set_font("helvetica", size=8)
        pdf.cell(0, 5, f"Página {number} de {len(pages)}")
    return bytes(pdf.output())
