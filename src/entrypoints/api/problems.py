"""The one place that maps errors to HTTP: RFC 9457 problem+json, never a stack trace."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from domain import errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_S = 2  # what a 503 asks the client to wait

_STATUS: list[tuple[type[errors.DomainError], int]] = [
    (errors.DocumentTooLarge, 413),
    (errors.UnsupportedDocumentType, 415),
    (errors.EmptyDocument, 422),
    (errors.InvalidInput, 422),
    (errors.IdempotencyKeyReused, 422),
    (errors.NotFound, 404),
    (errors.CollectionForbidden, 403),
    (errors.Conflict, 409),
    (errors.InvalidTransition, 409),
    (errors.EmbeddingUnavailable, 503),
    (errors.EmbeddingModelMismatch, 503),
]


# the database (or its pool) cannot serve the request now: 503, nothing was done
UNAVAILABLE: tuple[type[Exception], ...] = (
    sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.InterfaceError,
    ConnectionError,
)


def unavailable_detail(exc: BaseException) -> str:
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        return "every database connection of this server is busy; retry shortly"
    return "the database does not answer; retry shortly"


class ApiProblem(Exception):
    """Raised by entrypoint code for HTTP-only conditions (auth, rate limits)."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def problem(
    status: int,
    code: str,
    detail: str,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:problem-type:cogep:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request is not None:
        body["instance"] = request.url.path
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(
        orjson.dumps(body, default=str),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def status_for(exc: errors.DomainError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    cleaned = []
    for err in exc.errors():
        cleaned.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return cleaned


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.DomainError)
    async def domain_error(request: Request, exc: errors.DomainError) -> Response:
        return problem(status_for(exc), exc.code, exc.reason, request)

    @app.exception_handler(ApiProblem)
    async def api_problem(request: Request, exc: ApiProblem) -> Response:
        return problem(exc.status, exc.code, exc.detail, request, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = _clean_validation_errors(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:] or first["loc"]) or "request"
        return problem(
            422,
            "validation_error",
            f"{where}: {first['msg']}",
            request,
            errors=details,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "document_too_large",
        }.get(exc.status_code, "http_error")
        return problem(
            exc.status_code,
            code,
            str(exc.detail),
            request,
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("503 on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return problem(
            503,
            "unavailable",
            unavailable_detail(exc),
            request,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    for cls in UNAVAILABLE:
        app.add_exception_handler(cls, unavailable)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal_error", "an unexpected error occurred", request)
