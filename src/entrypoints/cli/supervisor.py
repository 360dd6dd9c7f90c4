"""A small process supervisor for `cogep-ingest up`: start, prefix output, restart what
crashes (with backoff), stop everything cleanly (SIGTERM, then SIGKILL). Children get
SIGTERM from the kernel if the supervisor dies without stopping them (lifeline)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from rich.console import Console
from rich.markup import escape

from adapters.services.lifeline import die_with_parent

_COLORS = ["cyan", "magenta", "yellow", "green", "blue"]


@dataclass
class _Proc:
    name: str
    command: list[str]
    color: str
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    reader: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, env: Mapping[str, str], log: Console, raw: bool = False) -> None:
        self.env = dict(env)
        self.log = log
        self.raw = raw  # JSON logs: pass each line through untouched (it names its process)
        self.procs: list[_Proc] = []

    def add(self, name: str, command: list[str]) -> None:
        self.procs.append(_Proc(name, command, _COLORS[len(self.procs) % len(_COLORS)]))

    def start(self) -> None:
        for proc in self.procs:
            self._spawn(proc)

    def _spawn(self, proc: _Proc) -> None:
        proc.process = subprocess.Popen(  # noqa: S603 - our own commands
            proc.command,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
            preexec_fn=die_with_parent(),  # and should we die, SIGKILL included, so do they
        )
        proc.started_at = time.monotonic()
        proc.reader = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        proc.reader.start()

    def _pump(self, proc: _Proc) -> None:
        assert proc.process is not None and proc.process.stdout is not None
        for raw in proc.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            if self.raw:
                self.log.out(line, highlight=False)
            else:
                self.log.print(
                    f"[{proc.color}]{proc.name:>6}[/] | {escape(line)}",
                    markup=True,
                    highlight=False,
                    soft_wrap=True,
                )

    def wait_ready(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            for proc in self.procs:
                if proc.process is not None and proc.process.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited with {proc.process.returncode}")
            time.sleep(0.2)
        raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")

    def watch(self, stop: threading.Event) -> None:
        """Until `stop` is set: restart crashed processes with exponential backoff."""
        while not stop.wait(0.5):
            for proc in self.procs:
                if proc.process is None or proc.process.poll() is None:
                    continue
                code = proc.process.returncode
                uptime = time.monotonic() - proc.started_at
                proc.restarts = 0 if uptime > 60 else proc.restarts + 1
                delay = min(30.0, 0.5 * 2**proc.restarts)
                self.log.print(f"[red]{proc.name} exited ({code}); restarting in {delay:.1f}s[/]")
                if stop.wait(delay):
                    return
                self._spawn(proc)

    def stop(self, grace_s: float = 15.0) -> None:
        for proc in reversed(self.procs):
            if proc.process is not None and proc.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in self.procs:
            if proc.process is None:
                continue
            try:
                proc.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.process.pid, signal.SIGKILL)
                proc.process.wait(5)
