"""The embedded PostgreSQL is started once it accepts connections, not once it listens."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from adapters.services.embedded import EmbeddedPostgres, ServiceError, wait_for_port


def test_a_port_that_listens_but_does_not_speak_postgres_is_not_ready(tmp_path: Path) -> None:
    # what a postmaster looks like while it starts up or recovers: the port is open,
    # and connections are refused ("the database system is starting up")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        wait_for_port("127.0.0.1", port, 1.0)  # listening is all this one checks
        pg = EmbeddedPostgres(tmp_path / "pg", port=port)
        t0 = time.monotonic()
        with pytest.raises(ServiceError, match="did not accept connections"):
            pg._wait_accepting(0.5)
        assert time.monotonic() - t0 < 10
