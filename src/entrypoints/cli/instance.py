"""What keeps `cogep-ingest up` to one instance per data folder, and its secrets private.

- A lock (flock on ``<data_dir>/up.lock``, released by the kernel when the process
  dies, however it dies): a second `up` in the same folder says where the first runs
  and exits non-zero without touching anything.
- The API port is checked before anything starts: a port in use is one clear line.
- The admin key is minted at the first start, written 0600 to ``<data_dir>/admin.key``
  and shown once; later starts reuse it while it still authenticates.
- Files that hold secrets are created 0600 from the first byte.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from adapters.services.secrets import write_private

LOCK_FILE = "up.lock"
ADMIN_KEY_FILE = "admin.key"


class InstanceError(RuntimeError):
    """`up` cannot go on; the message is the one line to show."""


@contextlib.contextmanager
def instance_lock(data_dir: Path, platform_file: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstanceError(_already_up(data_dir, fd, platform_file)) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def _already_up(data_dir: Path, fd: int, platform_file: Path) -> str:
    pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
    where = ""
    with contextlib.suppress(OSError, ValueError):
        where = f", API {json.loads(platform_file.read_text())['api_url']}"
    return (
        f"cogep-ingest is already up for {data_dir} (pid {pid}{where}); "
        "stop it first or use another --data-dir"
    )


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InstanceError(
                    f"port {port} on {host} is already in use; choose another with "
                    f"--port (make run PORT=...) or COGEP_API_PORT"
                ) from None
            raise InstanceError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def read_admin_key(data_dir: Path) -> str | None:
    with contextlib.suppress(OSError):
        key = (data_dir / ADMIN_KEY_FILE).read_text().strip()
        return key or None
    return None


def store_admin_key(data_dir: Path, plaintext: str) -> Path:
    path = data_dir / ADMIN_KEY_FILE
    write_private(path, plaintext + "\n")
    return path
