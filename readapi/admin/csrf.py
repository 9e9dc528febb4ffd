"""Cross-site request forgery protection for every state-changing admin request.

Two checks, both required for POST, PUT, PATCH and DELETE, as Django does on HTTPS:
- the Origin header (or, where a browser sends none, the Referer) names this very host, so a
  page elsewhere cannot submit to us;
- the request carries the session's secret token (form field `csrf_token`, or the
  `X-CSRFToken` header for the delete buttons' requests), which another site cannot read.
The check sits in front of every route, so a new page cannot forget it.
"""

from __future__ import annotations

import secrets
from html import escape
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from readapi.body import MAX_UNAUTHENTICATED_BODY_BYTES
from readapi.hosts import host_without_port

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FORM_FIELD = "csrf_token"
HEADER = "x-csrftoken"
# Admin forms are a few fields; anything bigger is not one of ours.
MAX_FORM_BYTES = 1_048_576


def csrf_token(request: Request) -> str:
    """The session's token, created on first use (the login page creates it)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def _same_host(url: str, host: str) -> bool:
    if not url or url == "null":
        return False
    netloc = urlsplit(url).netloc.lower()
    return bool(netloc) and (netloc == host.lower() or host_without_port(netloc) == host.lower())


def origin_problem(headers: dict[str, str]) -> str | None:
    host = headers.get("host", "")
    origin = headers.get("origin")
    if origin is not None:
        return None if _same_host(origin, host) else f"Origin {origin!r} does not match the host."
    referer = headers.get("referer")
    if referer is None:
        return "The request has neither an Origin nor a Referer header."
    return None if _same_host(referer, host) else "The Referer does not match the host."


def _refuse(reason: str) -> HTMLResponse:
    return HTMLResponse(
        "<!DOCTYPE html><title>403 Forbidden</title><h1>CSRF verification failed.</h1>"
        f"<p>Request aborted: {escape(reason)}</p>"
        "<p>Go back, reload the page and try again.</p>",
        status_code=403,
    )


def _too_large(limit: int) -> HTMLResponse:
    return HTMLResponse(
        "<!DOCTYPE html><title>413 Request too large</title>"
        f"<h1>Request body too large: the limit is {limit} bytes.</h1>",
        status_code=413,
        # The rest of the body is not worth reading: close after the answer.
        headers={"Connection": "close"},
    )


class CsrfMiddleware:
    """Placed inside the session middleware: it reads the session's token.

    It reads every state-changing body whole (for the form's token), so it is also where the
    admin UI's body limit holds: READAPI_MAX_BODY_BYTES, and never more than MAX_FORM_BYTES;
    without a logged-in session, MAX_UNAUTHENTICATED_BODY_BYTES.
    The admin app is mounted as plain ASGI, out of reach of Litestar's own limit.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_FORM_BYTES) -> None:
        self.app = app
        self.limit = min(max_body_bytes, MAX_FORM_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        problem = origin_problem(headers)
        if problem:
            await _refuse(problem)(scope, receive, send)
            return
        # Before login (the login form itself, or a stranger's request) a form is a few
        # fields: no one unauthenticated makes a worker read the whole admin limit.
        logged_in = "user_id" in scope.get("session", {})
        limit = self.limit if logged_in else min(self.limit, MAX_UNAUTHENTICATED_BODY_BYTES)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        body, complete = await _read_body(receive, limit)
        if not complete:
            await _too_large(limit)(scope, receive, send)
            return
        replay = _replayer(body, receive)
        expected = scope.get("session", {}).get("csrf")
        sent = headers.get(HEADER) or await _form_token(scope, _replayer(body, receive))
        if (
            not isinstance(expected, str)
            or not sent
            or not secrets.compare_digest(expected.encode(), sent.encode())
        ):
            await _refuse("the form is missing its security token or it has expired.")(
                scope, replay, send
            )
            return
        await self.app(scope, replay, send)


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replayer(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # then only the disconnect, as from the server

    return replay


async def _form_token(scope: Scope, receive: Receive) -> str | None:
    content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    request = Request(scope, receive)
    try:
        form = await request.form()
    except Exception:  # a malformed body: no token can be in it
        return None
    try:
        value = form.get(FORM_FIELD)
        return value if isinstance(value, str) else None
    finally:
        await form.close()
