"""FastAPI dependencies: the request's database session, authentication, rate limits,
and the streamed, size-limited upload form."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from application.ports import RateLimiter
from application.use_cases.api_keys import Authenticator
from domain.access import EVERYTHING, Access
from domain.api_keys import ApiKey, Scope
from domain.errors import DocumentTooLarge, InvalidInput
from entrypoints.api.problems import ApiProblem
from entrypoints.container import Container
from entrypoints.settings import Settings


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """The seed's pattern: `db: AsyncSession = Depends(get_db)`; one session per request,
    from the container's session factory. Read from the app's container, not injected:
    an injected async generator costs every request dependency-injector's wrapper on
    top of FastAPI's (an override of ``Container.sessions`` still applies)."""
    container: Container = request.app.state.container
    async with container.sessions()() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db)]


async def uow(db: DbSession) -> SqlAlchemyUnitOfWork:
    # async on purpose: FastAPI runs a plain `def` dependency in a thread, per request
    return SqlAlchemyUnitOfWork(session=db)


UnitOfWorkDep = Annotated[SqlAlchemyUnitOfWork, Depends(uow)]

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="or the key in X-API-Key"
)
# the same schemes as an operation's security requirement, for a route that reads the
# key itself (the upload) and declares it in its description by hand
SECURITY: list[dict[str, list[str]]] = [
    {_bearer.scheme_name: []},
    {_api_key_header.scheme_name: []},
]


@dataclass(frozen=True)
class Principal:
    client_id: str
    key: ApiKey | None  # None when authentication is disabled (development only)

    @property
    def access(self) -> Access:
        return self.key.access if self.key is not None else EVERYTHING

    @property
    def internals(self) -> bool:
        """Whether answers may show the platform's internals (worker ids, exception
        text): admin keys only."""
        return self.key is None or Scope.ADMIN in self.key.scopes


@dataclass(frozen=True)
class Guard:
    authenticator: Authenticator
    limiter: RateLimiter
    settings: Settings

    async def identify(self, presented: str | None) -> Principal:
        """Who is calling (401 otherwise), within their rate limit (429 otherwise).
        The request gate asks this before any body is read."""
        if self.settings.auth_disabled:
            return Principal("anonymous", None)
        if not presented:
            raise ApiProblem(
                401,
                "unauthenticated",
                "an API key is required (Authorization: Bearer <key> or X-API-Key)",
                {"WWW-Authenticate": "Bearer"},
            )
        key = await self.authenticator.authenticate(presented.strip())
        if key is None:
            raise ApiProblem(
                401,
                "invalid_api_key",
                "the API key is unknown or revoked",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        per_minute = key.rate_limit_per_minute or self.settings.rate_limit_per_minute
        decision = await self.limiter.hit(str(key.id), per_minute)
        if not decision.allowed:
            raise ApiProblem(
                429,
                "rate_limited",
                f"more than {decision.limit} requests per minute for this API key",
                {"Retry-After": str(int(decision.retry_after_s))},
            )
        return Principal(str(key.id), key)

    async def check(self, presented: str | None, scope: Scope) -> Principal:
        return authorize(await self.identify(presented), scope)


def authorize(principal: Principal, scope: Scope) -> Principal:
    key = principal.key
    if key is not None and not key.allows(scope):
        raise ApiProblem(
            403,
            "insufficient_scope",
            f"this API key lacks the '{scope}' scope "
            f"(it has: {', '.join(sorted(s.value for s in key.scopes))})",
        )
    return principal


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-API-Key` (raw ASGI headers)."""
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    header_key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
    return header_key or None


def guard_of(container: Container) -> Guard:
    return Guard(container.authenticator(), container.rate_limiter(), container.settings())


async def caller(request: Request, scope: Scope) -> Principal:
    """The authenticated, authorised and rate-limited caller, without a dependency: the
    request gate identified it before the body was read (every /v1 request); the guard
    is built only for a request that did not pass the gate."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return authorize(known, scope)
    return await guard_of(request.app.state.container).check(_presented(request), scope)


def _presented(request: Request) -> str | None:
    return presented_key(dict(request.scope["headers"]))


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """Dependency: an authenticated, authorised and rate-limited caller."""

    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_api_key_header)],
    ) -> Principal:
        # the schemes are parameters for the API's description (Swagger's Authorize);
        # the key is read from the request's headers as the gate reads it
        return await caller(request, scope)

    return dependency


async def metrics_caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> None:
    """/metrics is open (a scraper on the private network) unless
    COGEP_METRICS_REQUIRE_KEY is set: then it takes a read key, as /v1 does (the
    schemes are parameters for the API's description; the key is read as the gate
    reads it)."""
    guard = guard_of(request.app.state.container)
    if guard.settings.metrics_require_key:
        who = await guard.check(_presented(request), Scope.READ)
        require_every_collection(who, "the metrics")


def require_every_collection(who: Principal, what: str) -> None:
    """Counts over every collection are not for a key limited to some."""
    if not who.access.everything:
        raise ApiProblem(
            403,
            "collection_forbidden",
            f"{what} cover every collection; this API key is limited to "
            f"{', '.join(who.access.within() or ())}",
        )


# -- the upload form -------------------------------------------------------------------

MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers, collection and metadata fields


class _StrictMultiPartParser(MultiPartParser):
    """Starlette's parser decodes a text field that is not valid in its charset as
    Latin-1, silently; here it is refused, as the JSON route refuses such a body."""

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None:
            try:
                bytes(part.data).decode(self._charset or "utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(
                    f"the form field '{part.field_name}' is not valid UTF-8", field=part.field_name
                ) from exc
        super().on_part_end()


@dataclass(frozen=True)
class UploadForm:
    data: bytes
    filename: str | None
    content_type: str | None
    collection: str | None
    metadata_json: str | None
    source_key: str | None = None
    batch: str | None = None


async def read_upload_form(request: Request, max_bytes: int, max_field_bytes: int) -> UploadForm:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiProblem(
            415,
            "unsupported_media_type",
            "send the document as multipart/form-data with a 'file' part "
            "(or JSON to /v1/documents/text)",
        )
    # the request gate has bounded the body (size, pauses) and reserved room for it
    parser = _StrictMultiPartParser(
        request.headers,
        request.stream(),
        max_files=1,
        max_fields=6,
        max_part_size=max_field_bytes,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiProblem(400, "bad_request", exc.message) from exc
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("the form needs a 'file' part holding the document", field="file")
        if upload.size is not None and upload.size > max_bytes:
            raise DocumentTooLarge(
                f"the file has {upload.size} bytes; the limit is {max_bytes} bytes"
            )
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise DocumentTooLarge(f"the file exceeds the limit of {max_bytes} bytes")
        return UploadForm(
            data=data,
            filename=upload.filename,
            content_type=upload.content_type,
            collection=_text_field(form.get("collection"), "collection"),
            metadata_json=_text_field(form.get("metadata"), "metadata"),
            source_key=_text_field(form.get("source_key"), "source_key"),
            batch=_text_field(form.get("batch"), "batch"),
        )
    finally:
        await form.close()


def _text_field(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"'{name}' must be a text field, not a file", field=name)
    return value
