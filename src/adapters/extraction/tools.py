"""System programs the extractors run (Tesseract, antiword), inside the sandbox: found
on PATH, run under a time limit with the sandbox's memory limit inherited. A missing
program is the machine's fault, not the document's: a transient error that names the
command to install it."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from domain.errors import ExtractionLimitExceeded, TransientError

INSTALL_HINT = (
    "scripts/system-deps.sh installs it as root, or: "
    "sudo apt-get install -y tesseract-ocr tesseract-ocr-por antiword"
)


@dataclass(frozen=True)
class ToolRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_error_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1][:200] if lines else f"exit code {self.returncode}"


def run_tool(
    name: str,
    args: list[str],
    *,
    what: str,
    timeout_s: float,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
) -> ToolRun:
    program = shutil.which(name)
    if program is None:
        raise TransientError(f"{what} needs {name}, which is not installed here: {INSTALL_HINT}")
    try:
        done = subprocess.run(  # noqa: S603 - a program found on PATH, fixed arguments
            [program, *args],
            input=stdin,
            capture_output=True,
            timeout=timeout_s,
            env={**os.environ, **(env or {})},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ExtractionLimitExceeded(
            f"{what} took longer than {timeout_s:.0f} s ({name}); stopped"
        ) from exc
    return ToolRun(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )
