"""The embedded PostgreSQL's memory settings, derived from the memory it may use."""

from __future__ import annotations

from adapters.services.embedded import memory_settings

GB = 1 << 30


def test_shared_buffers_are_a_quarter_of_memory_and_the_cache_three_quarters() -> None:
    assert memory_settings(24 * GB) == {
        "shared_buffers": "6144MB",
        "effective_cache_size": "18432MB",
    }


def test_shared_buffers_stay_within_their_bounds() -> None:
    assert memory_settings(256 * GB)["shared_buffers"] == "8192MB"
    assert memory_settings(256 * 1 << 20)["shared_buffers"] == "128MB"
    # the cache estimate never falls below the buffers themselves
    assert memory_settings(256 * 1 << 20)["effective_cache_size"] == "192MB"
    assert memory_settings(160 * 1 << 20)["effective_cache_size"] == "128MB"


def test_a_given_size_wins_over_the_derived_one() -> None:
    assert memory_settings(24 * GB, shared_buffers_mb=512)["shared_buffers"] == "512MB"
