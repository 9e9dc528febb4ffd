"""Admin login: the API's users and argon2 hashes, a signed session cookie, Django's rules.

Like Django's admin, only active staff accounts (is_staff, or superusers) may log in. The
session holds the user id, a fingerprint of the password hash (changing a password ends
that user's other sessions, as Django's session auth hash does) and a session id. The id's
SHA-256 is a row of admin_session: logout deletes it, so a cookie copied before logout means
nothing after it (a signed cookie alone would stay valid for its 14 days). A cookie without
an id (from before migration 0004) is refused: its user logs in once more.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

import anyio.to_thread
import msgspec
import structlog
from sqladmin.authentication import AuthenticationBackend
from sqlalchemy import Engine, delete, insert, select, update
from starlette.requests import Request

from readapi.accounts import Principal, permissions_of
from readapi.login_throttle import LoginThrottle
from readapi.passwords import verify_password
from schema.limits import now_ms
from schema.tables import admin_session, auth_user

log = structlog.get_logger("readapi.admin")

LOGIN_FAILED = (
    "Please enter the correct username and password for a staff account. "
    "Note that both fields may be case-sensitive."
)
SESSION_DAYS = 14  # Django's SESSION_COOKIE_AGE


def throttled_message(seconds: int) -> str:
    return (
        f"Too many failed logins. Try again in {seconds} seconds "
        "(the same limit guards the REST API)."
    )


class AdminUser(msgspec.Struct, frozen=True):
    id: int
    username: str
    password: str
    is_active: bool
    is_staff: bool
    is_superuser: bool

    @property
    def may_log_in(self) -> bool:
        return self.is_active and (self.is_staff or self.is_superuser)


def _user_query():
    u = auth_user.c
    return select(u.id, u.username, u.password, u.is_active, u.is_staff, u.is_superuser)


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def password_fingerprint(secret: str, password_hash: str) -> str:
    return hmac.new(secret.encode(), password_hash.encode(), hashlib.sha256).hexdigest()[:32]


class AdminAuthentication(AuthenticationBackend):
    def __init__(
        self, engine_of, secret: str, *, cookie_path: str, https_only: bool, throttle_of=None
    ) -> None:
        super().__init__(
            secret,
            session_cookie="bemcom_admin_session",
            max_age=SESSION_DAYS * 86400,
            path=cookie_path,
            same_site="lax",
            https_only=https_only,
        )
        self.engine_of = engine_of
        self.secret = secret
        # The REST API's LoginThrottle: one count of failures for both ways of guessing.
        self.throttle_of = throttle_of or (lambda: None)

    # --- blocking parts, run in a worker thread -------------------------------------------

    def _check_login(
        self, username: str, password: str, client_ip: str | None
    ) -> AdminUser | int | None:
        """The user, None for wrong credentials, or the seconds to wait while throttled."""
        throttle: LoginThrottle | None = self.throttle_of()
        standing = throttle.check(username, client_ip) if throttle else None
        if standing is not None and standing.retry_after is not None:
            log.info(
                "admin_login_throttled",
                client=client_ip,
                retry_after=standing.retry_after,
                worker=os.getpid(),
            )
            return standing.retry_after
        user = self._verify(username, password)
        if user is None:
            if throttle:
                throttle.record_failure(username, client_ip)
            return None
        if throttle and standing is not None and standing.pair_failures:
            throttle.clear(username, client_ip)
        return user

    def _verify(self, username: str, password: str) -> AdminUser | None:
        engine: Engine = self.engine_of()
        user = None
        if "\x00" not in username and len(username) <= 150:
            with engine.connect() as connection:
                row = connection.execute(_user_query().where(auth_user.c.username == username))
                found = row.first()
                user = AdminUser(*found) if found else None
        # verify_password(None, ...) hashes anyway: an unknown name costs a wrong password's time.
        if not verify_password(user.password if user else None, password):
            return None
        if not user.may_log_in:
            return None
        with engine.begin() as connection:
            connection.execute(
                update(auth_user).where(auth_user.c.id == user.id).values(last_login=now_ms())
            )
        return user

    def _open_session(self, user_id: int, replaced: str | None) -> str:
        """A new server-side session for the user; the one it replaces (if any) ends."""
        session_id = secrets.token_urlsafe(32)
        now = now_ms()
        with self.engine_of().begin() as connection:
            # Ended sessions go whenever someone logs in: the table stays as small as the
            # sessions that may still be used.
            connection.execute(delete(admin_session).where(admin_session.c.expires_ms <= now))
            if replaced is not None:
                connection.execute(
                    delete(admin_session).where(admin_session.c.key_hash == session_hash(replaced))
                )
            connection.execute(
                insert(admin_session).values(
                    key_hash=session_hash(session_id),
                    user_id=user_id,
                    expires_ms=now + SESSION_DAYS * 86_400_000,
                )
            )
        return session_id

    def _close_session(self, session_id: str) -> None:
        with self.engine_of().begin() as connection:
            connection.execute(
                delete(admin_session).where(admin_session.c.key_hash == session_hash(session_id))
            )

    def _load(
        self, user_id: int, fingerprint: str, session_id: str
    ) -> tuple[AdminUser, Principal] | None:
        with self.engine_of().connect() as connection:
            found = connection.execute(
                _user_query()
                .join(admin_session, admin_session.c.user_id == auth_user.c.id)
                .where(
                    auth_user.c.id == user_id,
                    admin_session.c.key_hash == session_hash(session_id),
                    admin_session.c.expires_ms > now_ms(),
                )
            ).first()
            if not found:
                return None
            user = AdminUser(*found)
            expected = password_fingerprint(self.secret, user.password)
            if not user.may_log_in or not hmac.compare_digest(expected, fingerprint):
                return None
            permissions = permissions_of(connection, user.id)
        return user, Principal(user.id, user.username, user.is_superuser, permissions)

    # --- sqladmin's hooks ---------------------------------------------------------------

    async def login(self, request: Request) -> bool:
        form = await request.form()
        username = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        client_ip = request.client.host if request.client else None
        user = await anyio.to_thread.run_sync(self._check_login, username, password, client_ip)
        if isinstance(user, int):
            request.state.login_retry_after = user
            return False
        if user is None:
            log.info("admin_login_failed", username=username[:150], worker=os.getpid())
            return False
        # A new session on login: nothing from before (a planted cookie) carries over.
        replaced = request.session.get("sid")
        session_id = await anyio.to_thread.run_sync(
            self._open_session, user.id, replaced if isinstance(replaced, str) else None
        )
        request.session.clear()
        request.session.update(
            {
                "user_id": user.id,
                "sid": session_id,
                "auth": password_fingerprint(self.secret, user.password),
                "csrf": secrets.token_urlsafe(32),
            }
        )
        log.info("admin_login", username=user.username, worker=os.getpid())
        return True

    async def logout(self, request: Request) -> bool:
        session_id = request.session.get("sid")
        if isinstance(session_id, str):
            await anyio.to_thread.run_sync(self._close_session, session_id)
        log.info("admin_logout", user_id=request.session.get("user_id"))
        request.session.clear()
        return True

    async def authenticate(self, request: Request) -> bool:
        user_id = request.session.get("user_id")
        fingerprint = request.session.get("auth")
        session_id = request.session.get("sid")
        if not isinstance(user_id, int) or not isinstance(fingerprint, str):
            return False
        if not isinstance(session_id, str):
            return False  # a cookie from before server-side sessions: log in once more
        loaded = await anyio.to_thread.run_sync(self._load, user_id, fingerprint, session_id)
        if loaded is None:
            request.session.clear()
            return False
        request.state.admin_user, request.state.principal = loaded
        return True


def principal_of(request: Request) -> Principal | None:
    return getattr(request.state, "principal", None)
