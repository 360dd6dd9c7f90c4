"""What every console page needs: the signed-in key (from the session cookie), the CSRF
check, the templates and the security headers.

Sign-in: an API key, checked like the API checks it, becomes a server-side session in
Redis (adapters/sessions.py); the browser keeps only a random id in an HttpOnly,
SameSite=Strict cookie (Secure over HTTPS). Every state-changing request carries the
session's CSRF token (a hidden field, or the X-CSRF-Token header of the upload script)
and is refused without it. Pages show only the actions the key's scopes allow.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from adapters.sessions import ConsoleSession, RedisSessions
from application.ports import UnitOfWorkFactory
from domain.access import Access
from domain.api_keys import ApiKey, Scope
from domain.errors import InvalidInput
from domain.legal import fold
from domain.search import keyword_terms

HERE = Path(__file__).parent
SESSION_COOKIE = "cogep_console"
LOGIN_CSRF_COOKIE = "cogep_console_login"
BASE = "/console"

templates = Jinja2Templates(directory=HERE / "templates")

# the page may load only its own scripts and styles; nothing frames it
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """No valid session: the page sends the browser to the sign-in form."""


class CsrfRejected(Exception):
    """A state-changing request without the session's token."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the key's name, scopes and collections, and the session."""

    key: ApiKey
    session: ConsoleSession
    session_id: str

    @property
    def access(self) -> Access:
        return self.key.access

    @property
    def client_id(self) -> str:
        return f"key:{self.key.id}"

    @property
    def can_ingest(self) -> bool:
        return self.key.allows(Scope.INGEST)

    @property
    def is_admin(self) -> bool:
        return self.key.allows(Scope.ADMIN)


async def viewer_of(
    request: Request, sessions: RedisSessions, uow_factory: UnitOfWorkFactory
) -> Viewer:
    session_id = request.cookies.get(SESSION_COOKIE, "")
    session = await sessions.get(session_id) if session_id else None
    if session is None:
        raise SignInRequired
    async with uow_factory() as uow:
        key = await uow.api_keys.get_by_prefix(session.key_prefix)
    if key is None or not key.active or str(key.id) != session.key_id:
        await sessions.delete(session_id)  # revoked since: the session ends with it
        raise SignInRequired
    if not key.allows(Scope.READ):
        raise SignInRequired
    return Viewer(key, session, session_id)


def metadata_object(raw: str | None) -> dict[str, Any] | None:
    """Metadata as typed in a console form (a filter, an upload, the editor): a JSON
    object, or None when the field is empty."""
    if not raw or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidInput("os metadados não são um JSON válido") from None
    if not isinstance(value, dict):
        raise InvalidInput('os metadados devem ser um objeto JSON, como {"orgao": "X"}')
    return value


def check_csrf(expected: str, sent: str | None) -> None:
    if not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfRejected


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def secure_cookie(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=BASE,
        httponly=True,
        samesite="strict",
        secure=secure_cookie(request),
    )


# -- presentation helpers (Jinja filters) --------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
# what PostgreSQL's Portuguese configuration drops as stop words of three letters or
# more (shorter words are never marked); question words come from domain.search
_STOP = frozenset(
    [
        "que",
        "com",
        "por",
        "para",
        "uma",
        "uns",
        "umas",
        "dos",
        "das",
        "nos",
        "nas",
        "num",
        "numa",
        "pelo",
        "pela",
        "pelos",
        "pelas",
        "sobre",
        "como",
        "seu",
        "sua",
        "seus",
        "suas",
        "meu",
        "minha",
        "meus",
        "minhas",
        "ele",
        "ela",
        "eles",
        "elas",
        "isso",
        "esta",
        "este",
    ]
)


_MARK = Markup("<mark>{}</mark>")


def _fold(word: str) -> str:
    return fold(unicodedata.normalize("NFC", word)).lower()


def highlight(body: str, query: str) -> Markup:
    """The text, escaped, with the words that match the query's words marked (accents
    and case ignored; a word matches by its first five letters, as stems do)."""
    words = _WORD.findall(keyword_terms(query))  # question words out, as keyword search does
    stems = {_fold(w)[:5] for w in words if len(w) >= 3 and _fold(w) not in _STOP}
    if not stems:
        return escape(body)
    parts: list[Markup] = []
    last = 0
    for m in _WORD.finditer(body):
        word = m.group(0)
        if len(word) >= 3 and _fold(word)[:5] in stems:
            parts.append(escape(body[last : m.start()]))
            parts.append(_MARK.format(word))  # format escapes the word
            last = m.end()
    parts.append(escape(body[last:]))
    return Markup("").join(parts)


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%d/%m/%Y %H:%M:%S") if value else "-"


STATUS_LABELS = {
    "PENDING": "na fila",
    "PROCESSING": "processando",
    "COMPLETED": "concluído",
    "FAILED": "falhou",
}
STAGE_LABELS = {
    "queued": "na fila",
    "claimed": "reservado",
    "extracting": "extraindo texto",
    "chunking": "dividindo em trechos",
    "embedding": "gerando vetores",
    "storing": "gravando",
    "done": "pronto",
}

templates.env.filters["highlight"] = highlight
templates.env.filters["when"] = when
templates.env.globals["STATUS"] = STATUS_LABELS
templates.env.globals["STAGE"] = STAGE_LABELS
templates.env.globals["BASE"] = BASE


def html_error(request: Request, status: int, message: str) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, "error.html", {"message": message, "viewer": None}, status_code=status
    )
    response.headers.update(SECURITY_HEADERS)
    return response
