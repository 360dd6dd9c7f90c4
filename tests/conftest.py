"""Shared pytest configuration."""

from __future__ import annotations

import os

# Keep OpenMP from oversubscribing the 2 CI cores when several processes embed.
os.environ.setdefault("OMP_NUM_THREADS", "2")
