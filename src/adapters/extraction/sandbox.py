"""Parsing under time and memory limits, in a child process.

Untrusted documents are parsed by a long-lived child (`python -m
adapters.extraction.sandbox`) with an address-space limit (RLIMIT_AS). The parent
waits for each answer with a wall-clock deadline; a child that overruns is killed and
replaced, so a poison document fails alone with a reason and the worker goes on.

The protocol is length-prefixed JSON both ways (never pickle: the child handles
hostile input, the parent must not execute what it sends back). While it works the
child may send progress messages (one per OCR'd page): the parent logs them, and each
one moves the deadline to a full timeout from then, so a 40-page scan is not cut at
the one-document limit while a stuck page still is. The implementation
is blocking and event-loop independent (called through a thread), because each
Celery task runs its own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import orjson

from adapters.extraction.formats import ParseLimits, extract
from adapters.extraction.ocr import set_progress_hook
from domain.errors import (
    CorruptDocument,
    ExtractionLimitExceeded,
    NoTextFound,
    ProcessingError,
    TransientError,
    UnsafeDocument,
)
from domain.legal import NormIdentity
from domain.model import Block, BlockKind, DocumentType, ExtractedDocument

log = logging.getLogger(__name__)

_ERRORS: dict[str, type[ProcessingError]] = {
    "CorruptDocument": CorruptDocument,
    "UnsafeDocument": UnsafeDocument,
    "NoTextFound": NoTextFound,
    "ExtractionLimitExceeded": ExtractionLimitExceeded,
    "TransientError": TransientError,
}


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 60.0
    memory_mb: int = 1024
    parse: ParseLimits = field(default_factory=ParseLimits)
    max_requests_per_child: int = 500


class SandboxedExtractor:
    """TextExtractor port: extraction in a limited child process."""

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self._proc: subprocess.Popen[bytes] | None = None
        self._served = 0
        self._lock = threading.Lock()

    async def extract(
        self,
        data: bytes,
        document_type: DocumentType,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ExtractedDocument:
        return await asyncio.to_thread(self.extract_blocking, data, document_type, on_progress)

    def extract_blocking(
        self,
        data: bytes,
        document_type: DocumentType,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ExtractedDocument:
        with self._lock:
            proc = self._child()
            header = orjson.dumps({"type": document_type.value})
            deadline = time.monotonic() + self.limits.timeout_s
            cpu_at_start = _cpu_seconds(proc.pid)
            payload = struct.pack(">II", len(header), len(data)) + header + data
            self._send(proc, payload, deadline, cpu_at_start)
            answer = self._read_answer(proc, deadline, cpu_at_start, on_progress)
            self._served += 1
            if answer.get("retire") or self._served >= self.limits.max_requests_per_child:
                self._kill()
        return _decode(answer)

    def close(self) -> None:
        with self._lock:
            self._kill()

    # -- child management -------------------------------------------------------------

    def _child(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        config = orjson.dumps(
            {"memory_mb": self.limits.memory_mb, "parse": asdict(self.limits.parse)}
        ).decode()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "COGEP_SANDBOX_CONFIG": config}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "adapters.extraction.sandbox"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,  # Ctrl-C for the worker is not the child's business
        )
        self._served = 0
        return self._proc

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(Exception):
            proc.wait(5)
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[union-attr]

    def _send(
        self,
        proc: subprocess.Popen[bytes],
        payload: bytes,
        deadline: float,
        cpu_at_start: float | None,
    ) -> None:
        """Hand the document to the child within the same deadline: a child that stops
        reading (stopped, starved, stuck) never holds this thread, and a child that
        died is told apart from one that was never there."""
        assert proc.stdin is not None
        fd = proc.stdin.fileno()
        view = memoryview(payload)
        os.set_blocking(fd, False)
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_WRITE)
            while view:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    raise self._overran(proc, cpu_at_start)
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    continue
                except OSError:  # the child is gone: how it went says whose fault it is
                    raise self._died(proc) from None

    def _read_answer(
        self,
        proc: subprocess.Popen[bytes],
        deadline: float,
        cpu_at_start: float | None,
        on_progress: Callable[[int, int], None] | None,
    ) -> dict[str, Any]:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        buf = bytearray()
        need = 4
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                if len(buf) >= need:
                    if need == 4:
                        need = 4 + struct.unpack(">I", bytes(buf[:4]))[0]
                        continue
                    message = dict(orjson.loads(bytes(buf[4:need])))
                    del buf[:need]
                    need = 4
                    if "progress" not in message:
                        return message
                    done, total = message["progress"]
                    if on_progress is not None:
                        on_progress(int(done), int(total))
                    if message.get("slow"):  # an OCR'd page: the clock starts again
                        deadline = max(deadline, time.monotonic() + self.limits.timeout_s)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    raise self._overran(proc, cpu_at_start)
                chunk = os.read(fd, max(65536, need - len(buf)))
                if not chunk:
                    raise self._died(proc)
                buf += chunk

    def _overran(self, proc: subprocess.Popen[bytes], cpu_at_start: float | None) -> Exception:
        """The deadline passed. A parser that used most of that time on the CPU is
        stuck on this document; one that got little CPU was starved by a loaded machine,
        which is no fault of the document: that is worth another attempt."""
        cpu_now = _cpu_seconds(proc.pid)
        self._kill()
        limit = self.limits.timeout_s
        if cpu_at_start is not None and cpu_now is not None:
            used = cpu_now - cpu_at_start
            if used < limit * STARVED_CPU_SHARE:
                return TransientError(
                    f"parsing hit the {limit:.0f} s deadline having had only {used:.1f} s "
                    "of CPU: the machine is overloaded; will try again"
                )
        return ExtractionLimitExceeded(f"parsing took longer than {limit:.0f} s; stopped")

    def _died(self, proc: subprocess.Popen[bytes]) -> Exception:
        code = proc.wait(5)
        self._kill()
        if code == -signal.SIGKILL:
            # our limits never send SIGKILL (RLIMIT_AS ends in MemoryError or an abort):
            # the kernel's OOM killer or an operator did, so the document is not to blame
            return TransientError(
                "the parser was killed from outside (signal 9: the system ran out of memory "
                "or an operator stopped it); will try again"
            )
        if code in (-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS):
            return ExtractionLimitExceeded(
                f"the parser died on this document (signal {-code}); it may need "
                f"more than {self.limits.memory_mb} MB or be malformed"
            )
        return TransientError(f"the parser process exited unexpectedly ({code})")


STARVED_CPU_SHARE = 0.5
PROGRESS_EVERY_S = 0.5  # text pages are reported at most this often  # less CPU than this share of the deadline: the machine's fault


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process (Linux /proc), else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _decode(answer: dict[str, Any]) -> ExtractedDocument:
    if not answer.get("ok"):
        cls = _ERRORS.get(str(answer.get("error")), CorruptDocument)
        raise cls(str(answer.get("reason") or "the document could not be parsed"))
    blocks = [
        Block(
            BlockKind(kind),
            text,
            level=level,
            page=page,
            article=article,
            paragraph=paragraph,
            inciso=inciso,
            alinea=alinea,
            notes=tuple(notes),
        )
        for kind, text, level, page, article, paragraph, inciso, alinea, notes in answer["blocks"]
    ]
    norm = answer.get("norm")
    return ExtractedDocument(
        blocks=blocks,
        title=answer.get("title"),
        pages=answer.get("pages"),
        norm=norm_from_json(norm) if norm else None,
        report=dict(answer.get("report") or {}),
    )


def norm_to_json(norm: NormIdentity | None) -> dict[str, Any] | None:
    if norm is None:
        return None
    return {
        "kind": norm.kind,
        "number": norm.number,
        "year": norm.year,
        "date": norm.date.isoformat() if norm.date else None,
        "ementa": norm.ementa,
    }


def norm_from_json(raw: dict[str, Any]) -> NormIdentity:
    return NormIdentity(
        kind=str(raw["kind"]),
        number=str(raw["number"]),
        year=int(raw["year"]) if raw.get("year") else None,
        date=date.fromisoformat(raw["date"]) if raw.get("date") else None,
        ementa=raw.get("ementa"),
    )


# -- the child ------------------------------------------------------------------------------


def _preload_parsers() -> None:
    """Import every parser before the memory limit applies: the baseline is then fixed
    and an import can never be what runs out of memory."""
    import charset_normalizer  # noqa: F401
    import defusedxml.ElementTree  # noqa: F401
    import docx  # noqa: F401
    import markdown_it  # noqa: F401
    import openpyxl  # noqa: F401
    import pdfplumber  # noqa: F401
    import PIL.Image  # noqa: F401
    import pptx  # noqa: F401
    import pypdfium2  # noqa: F401
    import selectolax.lexbor  # noqa: F401
    import striprtf.striprtf  # noqa: F401


def _serve() -> None:  # pragma: no cover - exercised through the parent in tests
    config = orjson.loads(os.environ.get("COGEP_SANDBOX_CONFIG", "{}"))
    limit = int(config.get("memory_mb", 1024)) * 1024 * 1024
    # no parser needs numpy; openpyxl would import it if it could, and OpenBLAS's
    # buffers alone are ~130 MB of the address space the limit counts
    sys.modules["numpy"] = None  # type: ignore[assignment]
    _preload_parsers()
    # the parsers' modules live as long as the child: out of the collector's reach, the
    # full collection after each document walks that document's objects only (26 ms a
    # document before, measured on the preloaded heap; 0.002 ms after)
    gc.collect()
    gc.freeze()
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parse = ParseLimits(**config.get("parse", {}))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints from libraries must not corrupt the protocol
    # freed when memory runs out, so that the answer can still be written
    reserve: bytearray | None = bytearray(8 << 20)

    sent = [0.0]

    def progress(done: int, total: int, slow: bool) -> None:
        now = time.monotonic()
        if not slow and done < total and now - sent[0] < PROGRESS_EVERY_S:
            return
        sent[0] = now
        body = orjson.dumps({"progress": [done, total], "slow": slow})
        stdout.write(struct.pack(">I", len(body)) + body)
        stdout.flush()

    set_progress_hook(progress)
    while True:
        head = stdin.read(8)
        if len(head) < 8:
            return
        header_len, data_len = struct.unpack(">II", head)
        header = orjson.loads(stdin.read(header_len))
        data = stdin.read(data_len)
        out_of_memory = False
        try:
            doc = extract(data, DocumentType(header["type"]), parse)
            answer: dict[str, Any] = {
                "ok": True,
                "title": doc.title,
                "pages": doc.pages,
                "norm": norm_to_json(doc.norm),
                "report": doc.report,
                "blocks": [
                    [
                        b.kind.value,
                        b.text,
                        b.level,
                        b.page,
                        b.article,
                        b.paragraph,
                        b.inciso,
                        b.alinea,
                        list(b.notes),
                    ]
                    for b in doc.blocks
                ],
            }
            del doc
        except MemoryError:
            out_of_memory = True
            reserve = None
            answer = {
                "ok": False,
                "error": "ExtractionLimitExceeded",
                "reason": f"parsing needs more than {limit >> 20} MB of memory",
            }
        except ProcessingError as exc:
            answer = {"ok": False, "error": type(exc).__name__, "reason": exc.reason}
        except Exception as exc:
            answer = {
                "ok": False,
                "error": "CorruptDocument",
                "reason": f"the parser failed: {type(exc).__name__}: {str(exc)[:300]}",
            }
        del data
        gc.collect()
        retire = out_of_memory or reserve is None
        if retire:
            answer["retire"] = True  # the parent replaces us: a fresh child, a fresh heap
        body = orjson.dumps(answer)
        stdout.write(struct.pack(">I", len(body)) + body)
        stdout.flush()
        if retire:
            return


if __name__ == "__main__":  # pragma: no cover
    _serve()
