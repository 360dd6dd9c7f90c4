"""The embedded servers on a machine shared with other local users (issue 13): another
local user can reach the loopback ports, and must get nothing from them. Run as a real
second user (created here; the suite runs as root in CI, as the embedded PostgreSQL's
own unprivileged user needs)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis

from adapters.services.embedded import EmbeddedPostgres, EmbeddedRedis, pg_bin

OUTSIDER = "cogep-outsider"


@dataclass
class Servers:
    pg: EmbeddedPostgres
    redis: EmbeddedRedis
    root: Path


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    root = Path(tempfile.mkdtemp(prefix="cogep-shared-"))
    root.chmod(0o755)  # as the test services' folder: other users may traverse it
    pg = EmbeddedPostgres(root / "postgres", durable=False, database="postgres")
    rd = EmbeddedRedis(root / "redis", persistent=False)
    try:
        pg.start()
        rd.start()
        yield Servers(pg, rd, root)
    finally:
        rd.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def outsider() -> pwd.struct_passwd:
    """A second local user, with no tie to the servers."""
    if os.geteuid() != 0:
        pytest.fail("this test creates a second local user: run the suite as root (CI does)")
    try:
        return pwd.getpwnam(OUTSIDER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/bin/sh", OUTSIDER], check=True
        )
        return pwd.getpwnam(OUTSIDER)


def as_outsider(
    user: pwd.struct_passwd, script: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--clear-groups",
            "bash",
            "-c",
            script,
        ],
        env={"PATH": "/usr/bin:/bin", "HOME": "/", **env},
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        check=False,
    )


def postmaster_pid(pg: EmbeddedPostgres) -> int:
    return int((pg.pgdata / "postmaster.pid").read_text().split()[0])


def psql(pg: EmbeddedPostgres, host: str = "127.0.0.1") -> str:
    return f"'{pg_bin() / 'psql'}' -h '{host}' -p {pg.port} -U postgres -d postgres -w -tA -c 'SELECT 1'"


def test_secrets_are_files_only_their_owner_reads(servers: Servers) -> None:
    for path in (
        servers.pg.data_dir / "postgres.password",
        servers.redis.data_dir / "redis.password",
        servers.redis.data_dir / "redis.conf",
    ):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert servers.redis.password in (servers.redis.data_dir / "redis.conf").read_text()
    # and never on a command line, which every local user can read in /proc
    for pid in (postmaster_pid(servers.pg), servers.redis._proc.pid if servers.redis._proc else 0):
        cmdline = " ".join(psutil.Process(pid).cmdline())
        assert servers.pg.password not in cmdline and servers.redis.password not in cmdline


def test_the_server_processes_listen_on_loopback_only_and_hold_no_root_group(
    servers: Servers,
) -> None:
    postmaster = psutil.Process(postmaster_pid(servers.pg))
    assert postmaster.uids().real != 0
    assert set(postmaster.gids()) - {0} == set(postmaster.gids())  # no gid 0, real or saved
    status = Path(f"/proc/{postmaster.pid}/status").read_text()
    groups = next(line for line in status.splitlines() if line.startswith("Groups:"))
    assert "0" not in groups.split()[1:]
    assert servers.redis._proc is not None
    for pid in (postmaster.pid, servers.redis._proc.pid):
        listening = [
            c.laddr.ip
            for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening and set(listening) == {"127.0.0.1"}, (pid, listening)


def test_another_local_user_cannot_log_in_to_postgresql(
    servers: Servers, outsider: pwd.struct_passwd
) -> None:
    pg = servers.pg
    no_password = as_outsider(outsider, psql(pg))
    assert no_password.returncode != 0
    assert "password" in no_password.stderr  # asked for one, had none
    guessed = as_outsider(outsider, psql(pg), PGPASSWORD="postgres")
    assert guessed.returncode != 0
    assert "password authentication failed" in guessed.stderr
    # the Unix socket lives inside the server's 0700 data folder
    socket_dir = as_outsider(outsider, psql(pg, host=str(pg.pgdata)))
    assert socket_dir.returncode != 0
    stolen = as_outsider(outsider, f"cat '{pg.data_dir / 'postgres.password'}'")
    assert stolen.returncode != 0 and "Permission denied" in stolen.stderr
    # the control: with the password, the very same command works for this user
    allowed = as_outsider(outsider, psql(pg), PGPASSWORD=pg.password)
    assert allowed.returncode == 0 and allowed.stdout.strip() == "1", allowed.stderr


def test_another_local_user_cannot_use_redis(servers: Servers, outsider: pwd.struct_passwd) -> None:
    port = servers.redis.port
    talk = (
        f'exec 3<>/dev/tcp/127.0.0.1/{port}; printf "$1" >&3; '
        'IFS= read -r -t 3 line <&3; echo "$line"'
    )
    refused = as_outsider(outsider, f"set -- 'PING\\r\\n'; {talk}")
    assert refused.stdout.startswith("-NOAUTH"), refused
    guessed = as_outsider(outsider, f"set -- 'AUTH redis\\r\\n'; {talk}")
    assert guessed.stdout.startswith("-WRONGPASS"), guessed
    stolen = as_outsider(outsider, f"cat '{servers.redis.data_dir / 'redis.conf'}'")
    assert stolen.returncode != 0 and "Permission denied" in stolen.stderr
    allowed = as_outsider(outsider, f"set -- 'AUTH {servers.redis.password}\\r\\n'; {talk}")
    assert allowed.stdout.startswith("+OK"), allowed
    assert redis.Redis.from_url(servers.redis.url).ping()


def test_a_data_folder_that_trusted_local_logins_requires_the_password_again(
    servers: Servers,
) -> None:
    """Folders made before SCRAM (trust for every local connection) are hardened at
    the next start."""
    pg = servers.pg
    hba = pg.pgdata / "pg_hba.conf"
    rules = hba.read_text()
    hba.write_text(rules.replace("scram-sha-256", "trust"))

    async def connect(with_password: bool) -> int:
        url = pg.url if with_password else pg.url.replace(f":{pg.password}@", "@")
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SELECT 1"))
        finally:
            await conn.close()

    async def reload() -> None:
        conn = await asyncpg.connect(pg.url)
        await conn.execute("SELECT pg_reload_conf()")
        await conn.close()

    asyncio.run(reload())
    assert asyncio.run(connect(with_password=False)) == 1  # the old, open state
    pg.stop()
    pg.start()
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(connect(with_password=False))
    assert asyncio.run(connect(with_password=True)) == 1
    assert "trust" not in [
        ln.split()[-1]
        for ln in hba.read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
