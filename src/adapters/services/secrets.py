"""Secrets kept in files only their owner can read, from the moment the file exists."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read (0600 before the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(fd, 0o600)  # an older file may have had wider permissions
        f.write(text)


def secret_in(path: Path) -> str:
    """The secret kept in `path`, generated (192 random bits, URL-safe) the first time."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = ""
    if not text:
        text = secrets.token_urlsafe(24)
        write_private(path, text + "\n")
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return text
