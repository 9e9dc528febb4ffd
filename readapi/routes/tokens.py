"""POST /auth/token/: trade a username and password for an API token."""

from __future__ import annotations

from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler

from readapi.accounts import create_token
from readapi.body import MAX_UNAUTHENTICATED_BODY_BYTES, parse_json_body
from readapi.errors import ApiError
from readapi.models import TokenOut
from readapi.render import encode
from readapi.routes.common import in_thread, json_bytes, services_of
from readapi.services import Services
from readapi.validation import MISSING, Invalid, char_field, require_dict
from schema.settings import Settings

BAD_CREDENTIALS = {"non_field_errors": ["Unable to log in with provided credentials."]}


def _issue(services: Services, data, client_ip: str | None) -> Response:
    try:
        body = require_dict(data)
    except Invalid as error:
        raise ApiError(400, error.detail) from None
    errors = {}
    fields = {}
    for name in ("username", "password"):
        try:
            fields[name] = char_field(body.get(name, MISSING), allow_null=False)
        except Invalid as error:
            errors[name] = error.detail
    if errors:
        raise ApiError(400, errors)
    try:
        principal = services.authenticator.verify_credentials(
            fields["username"], fields["password"], client_ip
        )
    except ApiError as error:
        if error.status_code == 429:
            raise
        raise ApiError(400, BAD_CREDENTIALS) from None
    with services.database.begin() as connection:
        token = create_token(connection, principal.user_id, label="POST /auth/token/")
    return json_bytes(encode(TokenOut(token)))


def handlers(settings: Settings) -> list[HTTPRouteHandler]:
    @post(
        "/auth/token/",
        name="token-create",
        opt={"request_struct": "token"},
        tags=["Auth"],
        status_code=200,
        summary="A new API token for valid credentials",
        # Anyone may call this: read no more than a login's worth of body.
        request_max_body_size=min(settings.readapi_max_body_bytes, MAX_UNAUTHENTICATED_BODY_BYTES),
    )
    async def issue_token(request: Request) -> Response[TokenOut]:
        data = parse_json_body(await request.body(), request.headers.get("content-type"))
        client_ip = request.client.host if request.client else None
        return await in_thread(_issue, services_of(request), data, client_ip)

    return [issue_token]
