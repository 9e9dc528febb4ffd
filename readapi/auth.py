"""Basic and Bearer authentication, DRF's messages, and per-model permission guards.

Argon2 is slow by design, so a verified credential is remembered for a minute, keyed by a
SHA-256 of the whole Authorization header: the header itself is never kept, and a changed
password or a revoked token takes effect within that minute. Password guessing is throttled
(readapi/login_throttle.py) after that cache: a credential verified within the minute is
never refused for someone else's failures.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections.abc import Callable

import anyio.to_thread
import structlog
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from readapi.accounts import Principal, principal_of, user_by_name, user_by_token
from readapi.db import Database
from readapi.errors import PERMISSION_DENIED, detail, not_authenticated, throttled
from readapi.login_throttle import LoginThrottle
from readapi.passwords import verify_password

log = structlog.get_logger("readapi")

CACHE_SECONDS = 60.0
CACHE_MAX_ENTRIES = 10_000
TOKEN_KEYWORDS = ("bearer", "token")  # DRF's own keyword is "Token"; BEMCom clients use Bearer.


class Authenticator:
    """Turns an Authorization header into a Principal (or None for no credentials)."""

    def __init__(
        self,
        database: Database,
        clock: Callable[[], float] = time.monotonic,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.throttle = throttle
        self._cache: dict[bytes, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def cached(self, header: str) -> Principal | None:
        entry = self._cache.get(_cache_key(header))
        if entry is None or entry[0] < self.clock():
            return None
        return entry[1]

    async def authenticate(
        self, header: str | None, client_ip: str | None = None
    ) -> Principal | None:
        if not header:
            return None
        principal = self.cached(header)
        if principal is not None:
            return principal
        # Hashing and the database lookups block: keep them off the event loop.
        return await anyio.to_thread.run_sync(self.authenticate_sync, header, client_ip)

    def authenticate_sync(self, header: str, client_ip: str | None = None) -> Principal | None:
        parts = header.split()
        if not parts:
            return None
        scheme = parts[0].lower()
        if scheme == "basic":
            principal = self._basic(parts, client_ip)
        elif scheme in TOKEN_KEYWORDS:
            principal = self._token(parts)
        else:
            return None  # DRF ignores schemes it does not know: the request is anonymous.
        self._remember(header, principal)
        return principal

    def verify_credentials(
        self, username: str, password: str, client_ip: str | None = None
    ) -> Principal:
        """The user of a username and password, or 401; 429 while guessing is throttled."""
        standing = self.throttle.check(username, client_ip) if self.throttle else None
        if standing is not None and standing.retry_after is not None:
            log.info("login_throttled", client=client_ip, retry_after=standing.retry_after)
            raise throttled(standing.retry_after)
        user = None
        if "\x00" not in username:  # no such user can exist, and PostgreSQL refuses NUL
            with self.database.connect() as connection:
                user = user_by_name(connection, username)
        if not verify_password(user.password if user else None, password):
            if self.throttle:
                self.throttle.record_failure(username, client_ip)
            raise not_authenticated("Invalid username/password.")
        if not user.is_active:
            raise not_authenticated("User inactive or deleted.")
        if standing is not None and standing.user_failures:
            self.throttle.clear(username)
        with self.database.connect() as connection:
            return principal_of(connection, user)

    def _basic(self, parts: list[str], client_ip: str | None) -> Principal:
        if len(parts) == 1:
            raise not_authenticated("Invalid basic header. No credentials provided.")
        if len(parts) > 2:
            raise not_authenticated(
                "Invalid basic header. Credentials string should not contain spaces."
            )
        try:
            raw = base64.b64decode(parts[1], validate=True)
            try:
                decoded = raw.decode("utf-8")
            except UnicodeDecodeError:
                decoded = raw.decode("latin-1")
        except (ValueError, binascii.Error):
            raise not_authenticated(
                "Invalid basic header. Credentials not correctly base64 encoded."
            ) from None
        username, _, password = decoded.partition(":")
        return self.verify_credentials(username, password, client_ip)

    def _token(self, parts: list[str]) -> Principal:
        if len(parts) == 1:
            raise not_authenticated("Invalid token header. No credentials provided.")
        if len(parts) > 2:
            raise not_authenticated("Invalid token header. Token string should not contain spaces.")
        with self.database.connect() as connection:
            user = user_by_token(connection, parts[1])
            if user is None:
                raise not_authenticated("Invalid token.")
            if not user.is_active:
                raise not_authenticated("User inactive or deleted.")
            return principal_of(connection, user)

    def _remember(self, header: str, principal: Principal) -> None:
        with self._lock:
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                now = self.clock()
                self._cache = {k: v for k, v in self._cache.items() if v[0] >= now}
                if len(self._cache) >= CACHE_MAX_ENTRIES:
                    self._cache.clear()
            self._cache[_cache_key(header)] = (self.clock() + CACHE_SECONDS, principal)


def _cache_key(header: str) -> bytes:
    return hashlib.sha256(header.encode("utf-8", "surrogateescape")).digest()


def principal_from(connection: ASGIConnection) -> Principal:
    return connection.scope["state"]["principal"]


async def permission_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Authenticate, then check the permission the route names in `opt["permission"]`.

    The codename may depend on the method (`opt["permissions"]` maps method -> codename).
    """
    authenticator: Authenticator = connection.app.state.services.authenticator
    principal = await authenticator.authenticate(
        connection.headers.get("authorization"),
        connection.client.host if connection.client else None,
    )
    if principal is None:
        raise not_authenticated()
    codename = handler.opt.get("permission")
    if codename is None:
        codename = handler.opt["permissions"][connection.scope["method"]]
    if codename != "authenticated" and not principal.has(codename):
        raise detail(403, PERMISSION_DENIED)
    connection.scope.setdefault("state", {})["principal"] = principal
