"""OCR throughput and accuracy on scans made from known text.

Scanned pages are made as tests/scans.py makes them (typeset, rendered at the given
dpi, turned by a small angle, speckled with noise), bundled into image-only PDFs, and
read through the platform's extraction sandbox (Tesseract 5, Portuguese model, one
thread per page, the sandbox's memory limit). Prints pages/minute with one extractor
(what one worker process does) and with two side by side (both cores busy), and the
character error rate of every page against its source text.

    python -m bench.ocr [--pages 8] [--dpi 300]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from tests.scans import PORTARIA, character_error_rate, image_pdf, scanned_page

from adapters.extraction.sandbox import SandboxedExtractor, SandboxLimits
from bench.common import console, save, table
from domain.model import DocumentType

_UNITS = [
    "Secretaria de Gestão",
    "Coordenação de Pessoal",
    "Divisão de Benefícios",
    "Núcleo de Capacitação",
    "Serviço de Perícia Médica",
    "Gabinete do Diretor",
    "Seção de Pagamento",
    "Protocolo Central",
    "Ouvidoria",
    "Almoxarifado",
]
_DUTIES = [
    "registrará a frequência mensal",
    "encaminhará os pedidos de férias",
    "analisará as licenças para capacitação",
    "publicará a escala de plantão",
    "conferirá os atestados apresentados",
    "atualizará o cadastro funcional",
    "informará as horas excedentes",
    "arquivará os processos concluídos",
]
_TERMS = [
    "até o quinto dia útil",
    "no prazo de dez dias",
    "antes do fechamento da folha",
    "sempre que houver alteração",
    "mediante requerimento do interessado",
    "com ciência da chefia imediata",
    "por meio do sistema eletrônico",
]


def page_text(n: int) -> list[str]:
    """Known text for page n: the portaria on the first page, then articles whose words
    differ from page to page, as in a real document (a line that recurred at the same
    edge of many pages would rightly be dropped as a running header or footer, and the
    benchmark would count it as an OCR error)."""
    if n == 0:
        return list(PORTARIA)
    out = []
    for j in range(6):
        i = 6 * n + j
        unit = _UNITS[i % len(_UNITS)]
        duty = _DUTIES[(i * 3) % len(_DUTIES)]
        term = _TERMS[(i * 5) % len(_TERMS)]
        extra = _DUTIES[(i * 5 + 1) % len(_DUTIES)]
        out.append(f"Art. {i}º A {unit} {duty} {term}; quando couber, {extra}.")
    return out


def read(extractor: SandboxedExtractor, pdf: bytes, sources: list[list[str]]) -> list[float]:
    doc = extractor.extract_blocking(pdf, DocumentType.PDF)
    by_page: dict[int, list[str]] = {}
    for block in doc.blocks:
        by_page.setdefault(block.page or 0, []).append(block.text)
    return [
        character_error_rate("\n".join(src), "\n".join(by_page.get(i, [])))
        for i, src in enumerate(sources, start=1)
    ]


def _read_into(
    extractor: SandboxedExtractor, pdf: bytes, sources: list[list[str]], out: list[float]
) -> None:
    out.extend(read(extractor, pdf, sources))


def run(pages: int, dpi: int) -> dict[str, object]:
    sources = [page_text(n) for n in range(pages)]
    images = [
        scanned_page(src, dpi=dpi, angle=1.2 * (-1) ** n, noise=0.01, seed=n)
        for n, src in enumerate(sources)
    ]
    pdf = image_pdf(images)
    limits = SandboxLimits(timeout_s=120, memory_mb=1024)
    results: dict[str, object] = {"pages": pages, "dpi": dpi}
    rows = []
    for parallel in (1, 2):
        extractors = [SandboxedExtractor(limits) for _ in range(parallel)]
        try:
            for e in extractors:  # start the children (imports) outside the timing
                e.extract_blocking(b"aquecimento", DocumentType.TEXT)
            cers: list[list[float]] = [[] for _ in extractors]
            t0 = time.perf_counter()
            threads = [
                threading.Thread(target=_read_into, args=(e, pdf, sources, out))
                for e, out in zip(extractors, cers, strict=True)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
        finally:
            for e in extractors:
                e.close()
        flat = [c for per in cers for c in per]
        rate = pages * parallel / elapsed * 60
        results[f"extractors_{parallel}"] = {
            "seconds": round(elapsed, 2),
            "pages_per_minute": round(rate, 1),
            "cer_mean": round(statistics.mean(flat), 4),
            "cer_max": round(max(flat), 4),
        }
        rows.append(
            [
                parallel,
                pages * parallel,
                f"{elapsed:.1f}",
                f"{rate:.1f}",
                f"{statistics.mean(flat):.2%}",
                f"{max(flat):.2%}",
            ]
        )
    table(
        f"OCR of scanned pages ({dpi} dpi, 1.2° skew, 1% noise), Tesseract por",
        ["extractors", "pages", "seconds", "pages/min", "CER mean", "CER max"],
        rows,
    )
    return results


def despeckle_effect(pages: int, dpi: int) -> dict[str, float]:
    """The same noisy pages read in this process with and without the 3x3 median."""
    from adapters.extraction.ocr import ocr_image

    sources = [page_text(n) for n in range(pages)]
    images = [
        scanned_page(src, dpi=dpi, angle=1.2 * (-1) ** n, noise=0.01, seed=n)
        for n, src in enumerate(sources)
    ]
    out: dict[str, float] = {}
    for despeckle in (False, True):
        cers = [
            character_error_rate("\n".join(src), ocr_image(img, dpi=dpi, despeckle=despeckle))
            for src, img in zip(sources, images, strict=True)
        ]
        out["with" if despeckle else "without"] = statistics.mean(cers)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--dpi", type=int, default=300)
    args = parser.parse_args()
    out: dict[str, object] = {"runs": [run(args.pages, args.dpi)]}
    if args.dpi != 200:
        out["runs"].append(run(args.pages, 200))  # type: ignore[attr-defined]
    effect = {dpi: despeckle_effect(4, dpi) for dpi in sorted({args.dpi, 200})}
    table(
        "Despeckle (3x3 median) before Tesseract: mean CER of the same pages",
        ["dpi", "without", "with"],
        [[dpi, f"{e['without']:.2%}", f"{e['with']:.2%}"] for dpi, e in effect.items()],
    )
    out["despeckle"] = {str(dpi): e for dpi, e in effect.items()}
    path = save("ocr", out)
    console.print(f"saved {path}")


if __name__ == "__main__":
    main()
