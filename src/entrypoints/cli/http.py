"""The HTTP conventions the CLI's client shares: problem+json errors as ApiError."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(RuntimeError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


def detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("detail") or body)
    return str(body)


def check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise ApiError(response.status_code, detail(response))
    return response.json()
