"""The system clock (UTC). Hosts of the fleet are expected to run NTP: leases are
minutes long, so sub-second skew between machines does not matter."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
