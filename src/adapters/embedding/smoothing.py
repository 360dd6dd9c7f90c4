"""SmoothQuant-style smoothing of the int8 MatMuls' inputs, calibrated at graph build.

A few activation channels of e5 carry values far larger than the rest; dynamic int8
quantisation gives a whole call one scale, so those channels cost every other value
its precision. Smoothing (Xiao et al., SmoothQuant, 2023) divides each input channel
j by s_j = max|X_j|^ALPHA / max|W_j|^(1 - ALPHA) and multiplies the weight's row j by
it: the same product in exact arithmetic, with the outliers partly moved into the
weights, which are quantised per output channel and can take them.

max|X_j| comes from running the encoder over ``CALIBRATION`` (hand-written Portuguese
HR and legal sentences, shipped here; each as a passage and as a query, every window
alone) in float64 numpy, and s is put on a 1/16-octave grid, so that every machine of
a fleet computes the same factors and builds the same graph byte for byte (a float32
run can round differently on another CPU; a grid step is ~4%, far above float64's
differences). GELU is taken in its tanh form here: calibration needs the ranges, not
the last digit. ALPHA 0.7 had the least question x chunk score error against float32
of 0.3 / 0.5 / 0.7 / 0.85 on development law chunks (decision 0019).
"""

from __future__ import annotations

import numpy as np

from adapters.embedding.blas import E5Embeddings, E5ModelFile, E5Tokenizer, dequantize

ALPHA = 0.7
GRID = 16  # factors are powers of 2^(1/GRID)

CALIBRATION = [
    "Art. 1º Esta Lei dispõe sobre o regime jurídico dos servidores públicos civis da União, das autarquias e das fundações públicas federais.",
    "O servidor fará jus a trinta dias de férias, que podem ser acumuladas até o máximo de dois períodos, no caso de necessidade do serviço.",
    "Parágrafo único. A licença para capacitação poderá ser parcelada em até seis períodos, não inferiores a quinze dias.",
    "Qual é o prazo para requerer o adicional de insalubridade?",
    "Como solicitar a licença-paternidade e quantos dias ela dura?",
    "I - a remuneração do cargo efetivo, acrescida das vantagens pecuniárias permanentes estabelecidas em lei; II - os adicionais de caráter individual;",
    "CAPÍTULO III DA LICENÇA POR MOTIVO DE DOENÇA EM PESSOA DA FAMÍLIA",
    "A aposentadoria compulsória será automática e declarada por ato, com vigência a partir do dia imediato àquele em que o servidor atingir a idade-limite de permanência no serviço ativo.",
    "Tabela de valores: auxílio-alimentação R$ 1.000,00; auxílio-creche R$ 484,90; indenização de transporte conforme regulamento.",
    "Decreto nº 9.991, de 28 de agosto de 2019. Dispõe sobre a Política Nacional de Desenvolvimento de Pessoas da administração pública federal direta, autárquica e fundacional.",
    "O programa de gestão e desempenho (teletrabalho) será implementado mediante adesão do participante e assinatura do termo de ciência e responsabilidade.",
    "§ 2º O disposto neste artigo não se aplica aos ocupantes de cargo em comissão ou função de confiança, que submetem-se a regime de integral dedicação ao serviço.",
    "Manual do servidor: para atualizar os dados cadastrais, acesse o sistema SouGov, escolha a opção Dados Pessoais e anexe os comprovantes digitalizados.",
    "Revogam-se as disposições em contrário. Esta Lei entra em vigor na data de sua publicação.",
    "A jornada de trabalho dos servidores será de quarenta horas semanais, observados os limites mínimo e máximo de seis e oito horas diárias, respectivamente.",
    "Quem tem direito ao abono de permanência e a partir de quando ele é pago?",
    "Art. 117. Ao servidor é proibido: I - ausentar-se do serviço durante o expediente, sem prévia autorização do chefe imediato; II - retirar, sem prévia anuência da autoridade competente, qualquer documento ou objeto da repartição;",
    "Na hipótese de acumulação lícita de cargos, a compatibilidade de horários será verificada pela unidade de gestão de pessoas mediante declaração do servidor.",
    "Seção II Da Progressão Funcional e da Promoção",
    "O estágio probatório tem duração de trinta e seis meses, durante os quais a aptidão e a capacidade do servidor serão objeto de avaliação para o desempenho do cargo.",
    "ementa: altera a Lei nº 8.112, de 11 de dezembro de 1990, para dispor sobre a licença à gestante e à adotante e dá outras providências.",
    "Requisitos: cópia do documento de identidade, comprovante de residência, certidão de nascimento dos dependentes e declaração de bens e valores.",
    "The quick brown fox jumps over the lazy dog; 2024-05-01; SIAPE 1234567; CPF 000.000.000-00; e-mail servidor@exemplo.gov.br.",
    "Pensão por morte: o benefício será concedido aos dependentes do servidor falecido, a contar da data do óbito, quando requerido em até noventa dias depois deste.",
]


def _weight(f: E5ModelFile, layer: int, kind: str) -> np.ndarray:
    """A linear's weight [out, in] as the graph holds it (before smoothing)."""

    def q4(name: str, cols: int) -> np.ndarray:
        return dequantize(f.q4(name, cols), cols)

    p = f"l{layer}"
    if kind == "qkv":
        return np.concatenate([q4(f"{p}.{n}.w", f.H) for n in ("q", "k", "v")])
    return q4(f"{p}.{kind}.w", f.FF if kind == "fo" else f.H)


def input_ranges(f: E5ModelFile) -> dict[str, np.ndarray]:
    """max |input| per channel of every linear (``l{i}.{qkv|ao|fi|fo}``) over the
    calibration windows, each run alone, in float64."""
    tokenizer = E5Tokenizer(f)
    embeddings = E5Embeddings(tokenizer)
    H, NH, hd = f.H, f.NH, f.H // f.NH
    layers = []
    for i in range(f.NL):
        p = f"l{i}"
        layers.append(
            {
                "qkv": (
                    _weight(f, i, "qkv").astype(np.float64),
                    np.concatenate([f.f32(f"{p}.{n}.b") for n in ("q", "k", "v")]),
                ),
                **{
                    k: (_weight(f, i, k).astype(np.float64), f.f32(f"{p}.{k}.b"))
                    for k in ("ao", "fi", "fo")
                },
                "aln": (f.f32(f"{p}.aln.w"), f.f32(f"{p}.aln.b")),
                "oln": (f.f32(f"{p}.oln.w"), f.f32(f"{p}.oln.b")),
            }
        )

    def layernorm(x: np.ndarray, wb: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        x = x - x.mean(axis=-1, keepdims=True)
        x = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + f.eps)
        return np.asarray(x * wb[0] + wb[1])

    ranges: dict[str, np.ndarray] = {}

    def tap(name: str, x: np.ndarray) -> None:
        peak = np.abs(x).max(axis=0)
        ranges[name] = np.maximum(ranges[name], peak) if name in ranges else peak

    texts = [f"passage: {t}" for t in CALIBRATION] + [f"query: {t}" for t in CALIBRATION]
    for ids in tokenizer.content_ids(texts):
        seq = np.array([[tokenizer.bos, *ids[: f.MAXP - 2], tokenizer.eos]])
        x = embeddings.embed(seq)[0].astype(np.float64)  # [L, H]
        L = x.shape[0]
        for i, ly in enumerate(layers):
            tap(f"l{i}.qkv", x)
            qkv = x @ ly["qkv"][0].T + ly["qkv"][1]
            q, k, v = (
                qkv[:, j * H : (j + 1) * H].reshape(L, NH, hd).transpose(1, 0, 2) for j in range(3)
            )
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = scores / scores.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(1, 0, 2).reshape(L, H)
            tap(f"l{i}.ao", ctx)
            x = layernorm(ctx @ ly["ao"][0].T + ly["ao"][1] + x, ly["aln"])
            tap(f"l{i}.fi", x)
            mid = x @ ly["fi"][0].T + ly["fi"][1]
            act = 0.5 * mid * (1.0 + np.tanh(0.7978845608028654 * (mid + 0.044715 * mid**3)))
            tap(f"l{i}.fo", act)
            x = layernorm(act @ ly["fo"][0].T + ly["fo"][1] + x, ly["oln"])
    return ranges


def smoothing(f: E5ModelFile, linears: list[str]) -> dict[str, np.ndarray]:
    """The factors s of the given linears (``l{i}.{kind}``), float32 on the grid."""
    ranges = input_ranges(f)
    out: dict[str, np.ndarray] = {}
    for name in linears:
        layer, kind = name.split(".")
        w_peak = np.abs(_weight(f, int(layer[1:]), kind)).max(axis=0).astype(np.float64)
        s = ranges[name] ** ALPHA / np.maximum(w_peak, 1e-5) ** (1.0 - ALPHA)
        s = np.clip(s, 1e-2, 1e3)
        out[name] = np.exp2(np.round(np.log2(s) * GRID) / GRID).astype(np.float32)
    return out
