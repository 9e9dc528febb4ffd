"""Basic and Bearer authentication, DRF's messages, and per-model permission guards.

Argon2 is slow by design, so a verified credential is remembered, keyed by a SHA-256 of the
whole Authorization header (the header itself is never kept), together with the database's
credentials version (migration 0005). Every request reads that version first (one cheap
query): triggers bump it on any change that can revoke (password, flags, permissions, groups,
tokens), and a worker that sees a new version forgets everything it remembered. So a
revocation holds at once in every worker; an entry also expires after a minute.

Password guessing is throttled (readapi/login_throttle.py) after that cache: a credential
verified earlier and still valid is never refused for someone else's failures.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import anyio.to_thread
import structlog
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from readapi.accounts import (
    Principal,
    current_credentials_version,
    principal_of,
    user_by_name,
    user_by_token,
)
from readapi.db import Database
from readapi.errors import PERMISSION_DENIED, ApiError, detail, not_authenticated, throttled
from readapi.login_throttle import LoginThrottle
from readapi.passwords import verify_password

log = structlog.get_logger("readapi")

CACHE_SECONDS = 60.0
CACHE_MAX_ENTRIES = 10_000
TOKEN_KEYWORDS = ("bearer", "token")  # DRF's own keyword is "Token"; BEMCom clients use Bearer.


class _Verified(NamedTuple):
    """A cached verification: who the credentials are, until when (clock seconds)."""

    expires: float
    principal: Principal


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
        self._cache: dict[bytes, _Verified] = {}
        self._version: int | None = None  # the credentials version the cache holds for
        self._lock = threading.Lock()

    def cached(self, header: str, version: int) -> Principal | None:
        """What the header was verified as, if that still holds at this version."""
        if version != self._version:
            return None
        entry = self._cache.get(_cache_key(header))
        if entry is None or entry.expires < self.clock():
            return None
        return entry.principal

    async def authenticate(
        self, header: str | None, client_ip: str | None = None
    ) -> Principal | None:
        if not header:
            return None
        # The version read, hashing and the lookups block: keep them off the event loop.
        return await anyio.to_thread.run_sync(self.authenticate_sync, header, client_ip)

    def authenticate_sync(self, header: str, client_ip: str | None = None) -> Principal | None:
        # Read before verifying: a change committed meanwhile leaves the entry under the old
        # version, so the next request verifies again.
        with self.database.connect() as connection:
            version = current_credentials_version(connection)
        principal = self.cached(header, version)
        if principal is not None:
            log.debug("authenticated", user=principal.username, cached=True, worker=os.getpid())
            return principal
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
        self._remember(header, version, principal)
        log.debug("authenticated", user=principal.username, cached=False, worker=os.getpid())
        return principal

    def verify_credentials(
        self, username: str, password: str, client_ip: str | None = None
    ) -> Principal:
        """The user of a username and password, or 401; 429 while guessing is throttled."""
        standing = self.throttle.check(username, client_ip) if self.throttle else None
        if standing is not None and standing.retry_after is not None:
            log.info(
                "login_throttled",
                client=client_ip,
                retry_after=standing.retry_after,
                worker=os.getpid(),
            )
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
        if standing is not None and standing.pair_failures:
            self.throttle.clear(username, client_ip)
        log.debug("password_verified", user=user.username, client=client_ip, worker=os.getpid())
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

    def _remember(self, header: str, version: int, principal: Principal) -> None:
        with self._lock:
            if version != self._version:
                if self._version is not None and version < self._version:
                    return  # verified under an older version than the cache already holds
                if self._cache:
                    log.debug("credentials_changed", version=version, worker=os.getpid())
                self._cache = {}
                self._version = version
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                now = self.clock()
                self._cache = {k: v for k, v in self._cache.items() if v[0] >= now}
                if len(self._cache) >= CACHE_MAX_ENTRIES:
                    self._cache.clear()
            self._cache[_cache_key(header)] = _Verified(self.clock() + CACHE_SECONDS, principal)


def _cache_key(header: str) -> bytes:
    return hashlib.sha256(header.encode("utf-8", "surrogateescape")).digest()


def principal_from(connection: ASGIConnection) -> Principal:
    return connection.scope["state"]["principal"]


async def permission_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Authenticate, then check the permission the route names in `opt["permission"]`.

    The codename may depend on the method (`opt["permissions"]` maps method -> codename).
    """
    authenticator: Authenticator = connection.app.state.services.authenticator
    try:
        principal = await authenticator.authenticate(
            connection.headers.get("authorization"),
            connection.client.host if connection.client else None,
        )
    except ApiError as error:
        log.debug("authentication_refused", status=error.status_code, worker=os.getpid())
        raise
    if principal is None:
        log.debug("authentication_refused", status=401, worker=os.getpid())
        raise not_authenticated()
    codename = handler.opt.get("permission")
    if codename is None:
        codename = handler.opt["permissions"][connection.scope["method"]]
    if codename != "authenticated" and not principal.has(codename):
        log.debug(
            "permission_refused", user=principal.username, codename=codename, worker=os.getpid()
        )
        raise detail(403, PERMISSION_DENIED)
    connection.scope.setdefault("state", {})["principal"] = principal
