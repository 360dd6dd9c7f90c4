"""The one-command local platform, end to end through the CLI: `cogep-ingest up` with
embedded PostgreSQL + pgvector and Redis in a fresh folder, then `ingest` of the
sample corpus, `search`, `status`, `retry --failed`, and a clean Ctrl-C that leaves no
process behind. Each test stands alone: the samples are ingested by a fixture, and the
Ctrl-C test stops a platform of its own."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from adapters.services.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "corpus"
QUESTIONS = json.loads((ROOT / "samples" / "perguntas.json").read_text(encoding="utf-8"))

pytestmark = pytest.mark.slow


def cli_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"COGEP_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
    return env


def cli(data_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli.main", *args],
        cwd=ROOT,
        env=cli_env(data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


Platform = tuple[Path, dict[str, str], subprocess.Popen[str]]


@contextlib.contextmanager
def running_platform() -> Iterator[Platform]:
    """`cogep-ingest up` in a fresh folder, ready; stopped (Ctrl-C, else SIGKILL) and the
    folder removed afterwards, whatever the test did."""
    # not under pytest's 0700 tmp: as root the embedded server runs as another user
    data_dir = Path(tempfile.mkdtemp(prefix="cogep-up-"))
    data_dir.chmod(0o755)
    log = (data_dir / "up.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli.main", "up", "--port", str(free_port())],
        cwd=ROOT,
        env=cli_env(data_dir) | {"COGEP_SWEEP_INTERVAL_S": "2"},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        state_file = data_dir / "platform.json"
        deadline = time.monotonic() + 120
        state: dict[str, str] = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, (data_dir / "up.log").read_text()
            if state_file.exists():
                state = json.loads(state_file.read_text())
                try:
                    if httpx.get(state["api_url"] + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
        else:
            pytest.fail("the platform did not come up:\n" + (data_dir / "up.log").read_text())
        yield data_dir, state, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its children follow (lifeline)
                proc.wait(10)
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with running_platform() as running:
        yield running


@pytest.fixture(scope="module")
def ingested(platform: Platform) -> subprocess.CompletedProcess[str]:
    """The samples ingested once through the CLI: every test that reads them asks for
    this, so each stands alone in any order."""
    data_dir, _, _ = platform
    return cli(data_dir, "ingest", str(SAMPLES), "--collection", "exemplos")


def test_ingest_the_samples_through_the_cli(
    platform: Platform, ingested: subprocess.CompletedProcess[str]
) -> None:
    data_dir, _, _ = platform
    result = ingested
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 completed" in result.stderr
    for name in ("portaria-ferias.pdf", "instrucao-normativa-teletrabalho.docx"):
        assert name in result.stdout
    again = cli(
        data_dir, "ingest", str(SAMPLES / "portaria-ferias.pdf"), "--collection", "exemplos"
    )
    assert again.returncode == 0 and "1 completed" in again.stderr  # the same content: no new job


def test_a_missing_path_is_a_clear_error(platform: Platform) -> None:
    data_dir, _, _ = platform
    result = cli(data_dir, "ingest", "/nao/existe")
    assert result.returncode == 2 and "does not exist" in result.stderr


@pytest.mark.usefixtures("ingested")
def test_search_finds_the_right_document_first(platform: Platform) -> None:
    data_dir, _, _ = platform
    for item in QUESTIONS[:2]:
        result = cli(data_dir, "search", item["pergunta"], "--json", "-k", "3")
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        assert answer["results"][0]["filename"] == item["documento"]
        # every sample act is a norm with articles: its hits say what to cite
        assert answer["results"][0]["citation"].split(",")[0] in answer["results"][0]["heading"]
    table = cli(data_dir, "search", QUESTIONS[0]["pergunta"])
    assert table.returncode == 0 and "portaria-ferias.pdf" in table.stdout


@pytest.mark.usefixtures("ingested")
def test_hybrid_beats_or_ties_each_single_mode(platform: Platform) -> None:
    """On the sample questions, first-place hits and mean reciprocal rank."""
    _, state, _ = platform
    headers = {"Authorization": f"Bearer {state['api_key']}"}
    scores: dict[str, tuple[int, float]] = {}
    with httpx.Client(base_url=state["api_url"], headers=headers, timeout=30) as client:
        for mode in ("vector", "keyword", "hybrid"):
            first, reciprocal = 0, 0.0
            for item in QUESTIONS:
                body = {"query": item["pergunta"], "mode": mode, "top_k": 10}
                names = [
                    h["filename"] for h in client.post("/v1/search", json=body).json()["results"]
                ]
                if item["documento"] in names:
                    reciprocal += 1 / (names.index(item["documento"]) + 1)
                first += bool(names) and names[0] == item["documento"]
            scores[mode] = (first, reciprocal / len(QUESTIONS))
    assert scores["hybrid"][0] == len(QUESTIONS), scores  # the right document first, always
    for mode in ("vector", "keyword"):
        assert scores["hybrid"][0] >= scores[mode][0], scores
        assert scores["hybrid"][1] >= scores[mode][1] - 1e-9, scores


@pytest.mark.usefixtures("ingested")
def test_status_and_retry_through_the_cli(platform: Platform) -> None:
    data_dir, _, _ = platform
    status = cli(data_dir, "status")
    assert status.returncode == 0, status.stderr
    assert "COMPLETED" in status.stdout and "multilingual-e5-small-q4" in status.stdout
    retry = cli(data_dir, "retry", "--failed")
    assert retry.returncode == 0 and "queued again: 0" in retry.stderr


def test_ctrl_c_stops_everything_cleanly() -> None:
    with running_platform() as (data_dir, state, proc):  # its own: the others keep theirs
        children = psutil.Process(proc.pid).children(recursive=True)
        # the embedded servers' passwords: in platform.json (0600), never on the terminal
        db_password = urlsplit(state["database_url"]).password
        redis_password = urlsplit(state["redis_url"]).password
        assert db_password and redis_password
        shown = (data_dir / "up.log").read_text()
        assert "PostgreSQL" in shown and db_password not in shown and redis_password not in shown
        assert (data_dir / "platform.json").stat().st_mode & 0o777 == 0o600
        names = {c.name() for c in children}
        assert {"postgres", "redis-server"} <= names, names  # up's own servers
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0, (data_dir / "up.log").read_text()
        assert "stopped" in (data_dir / "up.log").read_text()
        assert not (data_dir / "platform.json").exists()
        with pytest.raises(httpx.HTTPError):
            httpx.get(state["api_url"] + "/healthz", timeout=2)
        _, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [(p.pid, p.name()) for p in alive]  # nothing left behind
