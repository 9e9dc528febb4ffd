"""The admin site of one application: sqladmin's Admin with our views, login and CSRF.

Built once per application, on its first admin request (the database, which may hold the
session key, is open by then). View classes are subclassed per site, because sqladmin
stores the site on the view class: two applications in one process stay apart.
"""

from __future__ import annotations

import functools
from pathlib import Path

import anyio.to_thread
from sqladmin import Admin
from sqladmin.authentication import login_required
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from readapi.admin import formatting, queries
from readapi.admin.auth import LOGIN_FAILED, AdminAuthentication, throttled_message
from readapi.admin.csrf import CsrfMiddleware, csrf_token
from readapi.admin.errors import ErrorPagesMiddleware
from readapi.admin.permissions import CodenameAuthorization, has
from readapi.admin.views import views_for
from readapi.services import Services
from schema.limits import now_ms
from schema.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"
MOUNT = "/admin"


class BemcomAdmin(Admin):
    """sqladmin's Admin, knowing the services its custom pages use; our start page and
    login page."""

    services: Services
    settings: Settings

    @login_required
    async def index(self, request: Request) -> Response:
        connectors = []
        if has(request, "view_connector"):

            def load():
                with self.services.database.connect() as connection:
                    return queries.connector_overview(connection)

            connectors = await anyio.to_thread.run_sync(load)
        return await self.templates.TemplateResponse(
            request,
            "bemcom/index.html",
            {
                "connectors": connectors,
                "now": now_ms(),
                "title": "Overview",
                "can_view_connectors": has(request, "view_connector"),
                "can_add_connector": has(request, "add_connector"),
            },
        )

    async def logout(self, request: Request) -> Response:
        """Only a POST (with the CSRF token) logs out, so another site's link or image
        cannot; a GET, as from a bookmark, asks first."""
        if request.method != "POST":
            return await self.templates.TemplateResponse(request, "bemcom/logout.html")
        return await super().logout(request)

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return await self.templates.TemplateResponse(request, "sqladmin/login.html")
        if await self.authentication_backend.login(request):
            return RedirectResponse(request.url_for("admin:index"), status_code=302)
        username = str((await request.form()).get("username", ""))[:150]
        retry_after = getattr(request.state, "login_retry_after", None)
        if retry_after is not None:
            response = await self.templates.TemplateResponse(
                request,
                "sqladmin/login.html",
                {"error": throttled_message(retry_after), "username": username},
                status_code=429,
            )
            response.headers["Retry-After"] = str(retry_after)
            return response
        return await self.templates.TemplateResponse(
            request,
            "sqladmin/login.html",
            {"error": LOGIN_FAILED, "username": username},
            status_code=400,
        )


def build_site(settings: Settings, services: Services, secret: str) -> Starlette:
    """An ASGI app serving `<ROOT_PATH>/admin/...` (it sees full paths, root_path set)."""
    outer = Starlette()
    authentication = AdminAuthentication(
        lambda: services.database.engine,
        secret,
        cookie_path=f"{settings.root_path}{MOUNT}",
        https_only=settings.https_only,
        throttle_of=lambda: services.authenticator.throttle,
    )
    # Inside the session middleware, so the token check can read the session.
    authentication.middlewares.append(
        Middleware(CsrfMiddleware, max_body_bytes=settings.readapi_max_body_bytes)
    )
    authorization = CodenameAuthorization()
    admin = BemcomAdmin(
        outer,
        engine=services.database.engine,
        base_url=MOUNT,
        title="BEMCom",
        templates_dir=str(TEMPLATES),
        authentication_backend=authentication,
        authorization_backend=authorization,
        middlewares=[Middleware(ErrorPagesMiddleware, debug=settings.django_debug)],
    )
    admin.services = services
    admin.settings = settings
    for route in admin.admin.routes:
        if getattr(route, "name", None) == "logout":
            route.methods = {"GET", "HEAD", "POST"}
    globals_ = admin.templates.env.globals
    globals_["csrf_token"] = csrf_token
    globals_.update(formatting.TEMPLATE_HELPERS)
    globals_["stored_value"] = functools.partial(
        formatting.stored_value, exact=settings.exact_values
    )
    for view in views_for(settings):
        site_view = type(view.__name__, (view,), {})
        configure = getattr(site_view, "configure", None)
        if configure is not None:
            configure(settings)
        authorization.register(site_view.identity, site_view.permission_model)
        admin.add_view(site_view)
    return outer
