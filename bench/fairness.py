"""Fairness on 2 cores: a one-page document uploaded while a 300-page PDF is being
processed is searchable within 30 s, and the periodic sweep runs on time meanwhile.

A real platform (uvicorn API, one worker with the default settings, the scheduler
`cogep-ingest beat`; embedded PostgreSQL and Redis) gets a generated 300-page norm
(bench/corpus.py). While the worker is on it, the benchmark
- uploads a one-page text at several moments (while the PDF is read, early and late in
  its embedding) and times upload -> COMPLETED -> found by a keyword search;
- plants a job whose lease has just expired (as if its worker had died) and times how
  long the sweeper takes to hand it back;
- samples the big document's progress (pages read, chunks embedded, ETA) as the API
  shows it.

    python -m bench.fairness [--pages 300]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import api, api_key, console, env_for, process, save, services, table, worker
from bench.corpus import norm_pdf

SEARCHABLE_GOAL_S = 30.0
SWEEP_INTERVAL_S = 10.0  # the default


async def plant_expired_lease_in(database_url: str) -> uuid.UUID:
    """The orphan: its one-second lease runs out a second after planting."""
    from tests.integration.oracle import plant_expired_lease

    from entrypoints.container import build_container
    from entrypoints.settings import Settings

    container = build_container(Settings(database_url=database_url))
    try:
        return await plant_expired_lease(container.uow_factory(), claimed_ago_s=0)
    finally:
        await container.engine().dispose()


def watch_orphan(url: str, key: str, database_url: str, out: dict[str, float]) -> None:
    """Plant the expired lease, then time (every 0.2 s) until it is no longer
    PROCESSING: the sweeper handed it back."""
    doc_id = str(asyncio.run(plant_expired_lease_in(database_url)))
    t0 = time.perf_counter()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
        while time.perf_counter() - t0 < 120:
            if status(c, doc_id)["status"] != "PROCESSING":
                out["seconds"] = time.perf_counter() - t0
                return
            time.sleep(0.2)


def status(c: httpx.Client, doc_id: str) -> dict[str, Any]:
    r = c.get(f"/v1/documents/{doc_id}")
    r.raise_for_status()
    return dict(r.json())


def probe(c: httpx.Client, n: int) -> dict[str, Any]:
    """Upload a one-page text; seconds until COMPLETED and found by keyword search."""
    word = f"sondagem{uuid.uuid4().hex[:10]}"
    text = (
        f"Art. 1º A {word} verifica o tempo de resposta da plataforma. "
        "O servidor interessado deve protocolar o pedido de férias com antecedência "
        "mínima de trinta dias, observadas as escalas da unidade."
    )
    t0 = time.perf_counter()
    r = c.post("/v1/documents/text", json={"text": text, "collection": "bench-sondas"})
    r.raise_for_status()
    doc_id = r.json()["id"]
    while True:
        body = status(c, doc_id)
        if body["status"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.2)
    completed = time.perf_counter() - t0
    hits = c.post(
        "/v1/search", json={"query": word, "mode": "keyword", "collection": "bench-sondas"}
    ).json()["results"]
    found = time.perf_counter() - t0
    return {
        "probe": n,
        "status": body["status"],
        "completed_s": round(completed, 2),
        "searchable_s": round(found, 2),
        "found": any(h["document_id"] == doc_id for h in hits),
    }


def long_pdf(pages: int) -> tuple[str, bytes, int]:
    """A generated norm of at least `pages` pages: (title, bytes, pages)."""
    import pypdfium2 as pdfium

    asked = pages
    while True:
        title, pdf = norm_pdf(asked)
        doc = pdfium.PdfDocument(pdf)
        got = len(doc)
        doc.close()
        if got >= pages:
            return title, pdf, got
        asked = int(asked * pages / got) + 1


def run(pages: int) -> dict[str, Any]:
    title, pdf, pages = long_pdf(pages)
    console.print(f"{title}: {len(pdf) / 1e6:.1f} MB PDF of {pages} pages")
    with services() as (database_url, redis_url), tempfile.TemporaryDirectory() as tmp:
        key = api_key(database_url, redis_url, "bench-fairness", ["ingest", "read"])
        env = env_for(
            database_url,
            redis_url,
            COGEP_RATE_LIMIT_PER_MINUTE="0",
            COGEP_DATA_DIR=tmp,
            COGEP_LOG_LEVEL="INFO",
            COGEP_WORKER_METRICS_PORT="0",
        )
        logs = Path(tmp)
        with (
            api(env, logs / "api.log") as (url, _),
            worker(env, logs / "worker.log"),
            process(["-m", "entrypoints.cli.main", "beat"], env, logs / "beat.log"),
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c,
        ):
            time.sleep(8)  # the worker loads its model
            t0 = time.perf_counter()
            r = c.post("/v1/documents", files={"file": ("norma-longa.pdf", pdf)})
            r.raise_for_status()
            big = r.json()["id"]
            samples: list[dict[str, Any]] = []
            probes: list[dict[str, Any]] = []
            moments = ["extracting", "embedding-early", "embedding-late"]
            orphan: threading.Thread | None = None
            orphan_result: dict[str, float] = {}
            while True:
                body = status(c, big)
                job = body.get("job") or {}
                p = job.get("progress") or {}
                samples.append(
                    {
                        "t": round(time.perf_counter() - t0, 1),
                        "stage": body["stage"],
                        "pages": f"{p.get('pages_done')}/{p.get('pages_total')}",
                        "chunks": f"{p.get('chunks_done')}/{p.get('chunks_total')}",
                        "eta_s": p.get("eta_seconds"),
                    }
                )
                if body["status"] in ("COMPLETED", "FAILED"):
                    break
                done, total = p.get("chunks_done") or 0, p.get("chunks_total") or 0
                due = None
                if (
                    (moments and moments[0] == "extracting" and body["stage"] == "extracting")
                    or (
                        moments and moments[0] == "embedding-early" and total and done > 0.1 * total
                    )
                    or (moments and moments[0] == "embedding-late" and total and done > 0.6 * total)
                ):
                    due = moments.pop(0)
                if due is not None:
                    result = probe(c, len(probes) + 1) | {"while": due}
                    probes.append(result)
                    console.print(f"probe while {due}: {result}")
                if orphan is None and body["stage"] == "embedding":
                    orphan = threading.Thread(
                        target=watch_orphan, args=(url, key, database_url, orphan_result)
                    )
                    orphan.start()
                time.sleep(1.0)
            if orphan is not None:
                orphan.join(120)
            orphan_back = orphan_result.get("seconds", 0.0)
            big_s = time.perf_counter() - t0
            final = status(c, big)
    rows = [
        [
            pr["while"],
            pr["status"],
            pr["completed_s"],
            pr["searchable_s"],
            "yes" if pr["found"] else "NO",
        ]
        for pr in probes
    ]
    table(
        f"One-page uploads while a {pages}-page PDF ({final['chunk_count']} chunks) is processed",
        ["uploaded while the PDF was", "status", "completed (s)", "searchable (s)", "found"],
        rows,
    )
    worst = max((pr["searchable_s"] for pr in probes), default=float("nan"))
    console.print(
        f"worst time to searchable: {worst:.1f} s (goal <= {SEARCHABLE_GOAL_S:.0f} s); "
        f"the {pages}-page PDF took {big_s:.0f} s ({final['status']})"
    )
    console.print(
        f"expired lease handed back by the sweeper after {orphan_back:.1f} s "
        f"(interval {SWEEP_INTERVAL_S:.0f} s; lease ran out 1 s after planting)"
        if orphan_back
        else "the expired lease was not handed back before the PDF finished"
    )
    step = max(1, len(samples) // 12)
    table(
        "The PDF's progress as the API showed it",
        ["t (s)", "stage", "pages", "chunks embedded", "ETA (s)"],
        [
            [
                s["t"],
                s["stage"],
                s["pages"],
                s["chunks"],
                s["eta_s"] if s["eta_s"] is not None else "-",
            ]
            for s in samples[::step]
        ],
    )
    result = {
        "pages": pages,
        "pdf_chunks": final["chunk_count"],
        "pdf_seconds": round(big_s, 1),
        "probes": probes,
        "worst_searchable_s": worst,
        "goal_s": SEARCHABLE_GOAL_S,
        "sweep_interval_s": SWEEP_INTERVAL_S,
        "expired_lease_handed_back_s": round(orphan_back, 1) if orphan_back else None,
        "progress_samples": samples[::step],
    }
    console.print(f"saved {save('fairness', result)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=300)
    args = parser.parse_args()
    run(args.pages)


if __name__ == "__main__":
    main()
