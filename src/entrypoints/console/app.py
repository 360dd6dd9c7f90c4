"""Mounts the console on the API: its pages and actions, its static files (the vendored
htmx, the stylesheet, the upload script: no CDN, no build step) and what a page does
without a session (back to the sign-in form) or without its CSRF token (403)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from entrypoints.console import actions, pages
from entrypoints.console.web import (
    BASE,
    HERE,
    CsrfRejected,
    SignInRequired,
    html_error,
    redirect,
)

WIRED = ["entrypoints.console.pages", "entrypoints.console.actions"]


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    if request.headers.get("hx-request"):  # a polled fragment: tell htmx to leave the page
        return Response(status_code=204, headers={"HX-Redirect": f"{BASE}/entrar"})
    return redirect(f"{BASE}/entrar")


async def _csrf_rejected(request: Request, exc: Exception) -> Response:
    return html_error(
        request, 403, "O formulário expirou ou não veio desta página. Recarregue e tente de novo."
    )


def install(app: FastAPI) -> None:
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.mount(f"{BASE}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
