"""`cogep-ingest up` holds one data folder at a time and leaves nothing behind: a second
`up` says where the first runs and exits non-zero without touching it; a port in use is
one clear line; children (and the embedded PostgreSQL) die with their parent even when
it is SIGKILLed; the admin key is minted once and kept 0600."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from adapters.services.secrets import write_private
from entrypoints.cli.instance import instance_lock
from entrypoints.cli.main import ensure_admin_key
from entrypoints.container import Container
from tests.integration.test_local_platform import cli, cli_env

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_up_says_where_the_first_runs_and_exits_without_touching_it(
    tmp_path: Path,
) -> None:
    state = tmp_path / "platform.json"
    state.write_text(json.dumps({"api_url": "http://127.0.0.1:18123"}))
    with instance_lock(tmp_path, state):
        done = cli(tmp_path, "up", "--data-dir", str(tmp_path), timeout=60)
        assert done.returncode == 1, done.stdout + done.stderr
        said = " ".join((done.stdout + done.stderr).split())
        assert f"already up for {tmp_path}" in said
        assert f"pid {os.getpid()}" in said and "http://127.0.0.1:18123" in said
        assert "Traceback" not in said
    assert json.loads(state.read_text()) == {"api_url": "http://127.0.0.1:18123"}
    assert not (tmp_path / "postgres").exists()  # nothing was started


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli(tmp_path, "up", "--data-dir", str(tmp_path), "--port", str(port), timeout=60)
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in said
    assert "Traceback" not in said
    assert not (tmp_path / "postgres").exists()


def _parent(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    """A Python process that starts something, prints its pid, then waits forever."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(body) + "\nprint(pid, flush=True)\ntime.sleep(600)\n")
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=cli_env(tmp_path),
        stdout=subprocess.PIPE,
        text=True,
    )


def _gone_after_parent_killed(parent: subprocess.Popen[str], timeout: float) -> bool:
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    child = psutil.Process(pid)
    assert child.is_running()
    parent.send_signal(signal.SIGKILL)  # no clean-up code of the parent runs
    parent.wait(10)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.is_running() or child.status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    child.kill()
    return False


def test_a_child_dies_with_its_parent_even_after_sigkill(tmp_path: Path) -> None:
    parent = _parent(
        tmp_path,
        """
        import subprocess, time
        from adapters.services.lifeline import die_with_parent
        pid = subprocess.Popen(["sleep", "300"], preexec_fn=die_with_parent()).pid
        """,
    )
    assert _gone_after_parent_killed(parent, timeout=5)


def test_the_embedded_postgres_of_up_stops_when_up_is_killed(tmp_path: Path) -> None:
    parent = _parent(
        tmp_path,
        f"""
        import time
        from pathlib import Path
        from adapters.services.embedded import EmbeddedPostgres
        pg = EmbeddedPostgres(Path({str(tmp_path / "pg")!r}), durable=False, supervised=True)
        pg.start()
        pid = pg._child.pid
        """,
    )
    assert _gone_after_parent_killed(parent, timeout=30)


def test_private_files_are_0600_even_over_an_older_wider_file(tmp_path: Path) -> None:
    path = tmp_path / "segredo.json"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "novo")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "novo"


@pytest.fixture
def data_dir(tmp_path: Path, container: Container) -> Path:
    container.settings().data_dir = tmp_path  # the container reads it at call time
    return tmp_path


async def test_the_admin_key_is_minted_once_and_kept_0600(
    container: Container, data_dir: Path
) -> None:
    key, minted = await ensure_admin_key(container)
    assert minted
    stored = data_dir / "admin.key"
    assert stored.read_text().strip() == key
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    again, minted_again = await ensure_admin_key(container)
    assert (again, minted_again) == (key, False)  # not one more key per start
    assert len(await container.api_keys().list()) == 1
    # revoked (or the database wiped): a new one replaces it
    [only] = await container.api_keys().list()
    await container.api_keys().revoke(only.id)
    fresh, minted_fresh = await ensure_admin_key(container)
    assert minted_fresh and fresh != key
    assert stored.read_text().strip() == fresh
