"""The production compose file and its reverse proxy keep the promises of
docs/security.md: only the proxy is published on the network, every service that
holds data or control takes a password that compose refuses to default, and the
proxy's limits match the API's own defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from entrypoints.api.deps import MULTIPART_OVERHEAD
from entrypoints.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_only_the_proxy_is_published_beyond_this_host() -> None:
    published = {
        name: service.get("ports", [])
        for name, service in compose()["services"].items()
        if service.get("ports")
    }
    assert "proxy" in published
    for name, ports in published.items():
        for port in ports:
            if name != "proxy":
                assert str(port).startswith("127.0.0.1:"), (name, port)


def test_secrets_have_no_defaults_and_redis_and_flower_ask_for_them() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "FLOWER_BASIC_AUTH"):
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses, secret
        assert all(u.startswith(":?") for u in uses), (secret, uses)  # required, no default
    services = compose()["services"]
    env = services["api"]["environment"]
    assert "${REDIS_PASSWORD" in env["REDIS_URL"] and "${POSTGRES_PASSWORD" in env["DATABASE_URL"]
    assert "requirepass" in " ".join(services["redis"]["command"])
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"]
    assert "${REDIS_PASSWORD" in services["flower"]["environment"]["CELERY_BROKER_URL"]


def _directive(conf: str, name: str) -> str:
    found = re.search(rf"^\s*{name}\s+([^;]+);", conf, re.M)
    assert found, name
    return found.group(1).strip()


def _size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def test_the_proxy_repeats_the_api_s_limits_and_streams_bodies() -> None:
    conf = (ROOT / "deploy" / "proxy" / "nginx.conf").read_text()
    defaults = Settings(_env_file=None)
    body = _size(_directive(conf, "client_max_body_size"))
    assert body == defaults.max_upload_bytes + MULTIPART_OVERHEAD
    assert _directive(conf, "client_header_timeout") == f"{defaults.http_header_timeout_s:g}s"
    assert _directive(conf, "client_body_timeout") == f"{defaults.http_body_timeout_s:g}s"
    assert _directive(conf, "keepalive_timeout") == f"{defaults.http_keep_alive_s:g}s"
    count, size = _directive(conf, "large_client_header_buffers").split()
    assert int(count) * _size(size) <= defaults.http_max_header_bytes * 2
    assert _directive(conf, "proxy_request_buffering") == "off"
    assert "server api:8000" in conf


def test_the_database_keeps_the_graph_in_its_buffers_with_a_size_the_operator_sets() -> None:
    command = compose()["services"]["postgres"]["command"]
    settings = dict(c.split("=", 1) for c in command if "=" in c)
    assert settings["shared_buffers"].startswith("${POSTGRES_SHARED_BUFFERS:-")
    assert settings["effective_cache_size"].startswith("${POSTGRES_EFFECTIVE_CACHE_SIZE:-")
    assert command[0] == "postgres"  # the image's entrypoint runs the server with these


def test_the_worker_yields_the_cpu_to_the_api_across_containers() -> None:
    services = compose()["services"]
    # 1024 is the default share (the API's); nice inside the container cannot lower it
    assert services["worker"]["cpu_shares"] < services["api"].get("cpu_shares", 1024)
