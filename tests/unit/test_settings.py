"""Settings follow the seed's environments and refuse unsafe production setups."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from entrypoints.settings import Settings


def test_development_uses_the_solo_pool_and_no_default_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = Settings(_env_file=None)
    assert settings.effective_pool == "solo"
    assert settings.database_url is None
    assert settings.effective_redis_url is None


def test_production_uses_prefork_and_the_redis_service_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COGEP_ENVIRONMENT", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@prod-db:5432/cogep")
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = Settings(_env_file=None)
    assert settings.effective_pool == "prefork"
    assert settings.effective_redis_url == "redis://redis:6379/0"
    assert settings.require_database_url() == "postgresql://u:p@prod-db:5432/cogep"


def test_production_without_a_database_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COGEP_ENVIRONMENT", "production")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ValidationError, match="DATABASE_URL is required"):
        Settings(_env_file=None)


def test_an_overlap_as_large_as_half_a_chunk_is_refused() -> None:
    with pytest.raises(ValidationError, match="OVERLAP"):
        Settings(_env_file=None, chunk_max_tokens=100, chunk_overlap_tokens=50)


def test_worker_metrics_listen_on_loopback_unless_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COGEP_ENVIRONMENT", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/cogep")
    assert Settings(_env_file=None).worker_metrics_host == "127.0.0.1"
    assert Settings(_env_file=None, environment="production").worker_metrics_host == "0.0.0.0"  # noqa: S104
    chosen = Settings(_env_file=None, environment="production", worker_metrics_bind="10.0.0.7")
    assert chosen.worker_metrics_host == "10.0.0.7"
