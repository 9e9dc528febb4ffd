"""Password guessing, throttled without handing anyone a way to lock the owner out.

Failed logins are counted per (username, client address) and per client address. After
READAPI_LOGIN_MAX_FAILURES failures for one username from one address (or
READAPI_LOGIN_MAX_FAILURES_PER_IP from one address, whatever the usernames) within
READAPI_LOGIN_THROTTLE_SECONDS of the first, further attempts from that address are refused
with 429 until that window ends, before the password hash is computed.

No count is kept per username alone: that one would let anyone lock an account (the right
password included) by guessing at it. So the owner, from an address that has not failed,
always gets in; a guesser stays throttled at the rate of their addresses. A successful login
clears its (username, address) count; an address's count only expires, or an attacker with
one valid account could clear it between guesses at others.

Behind a reverse proxy every client has the proxy's address unless FORWARDED_ALLOW_IPS
trusts it (readapi/proxy_check.py warns when it does not).

The counts live in the `login_failure` table so that every worker process (and every
instance on the same database) shares them; rows are keyed by a SHA-256, so no username or
address is stored. Two guesses racing through the check at the same moment can both pass:
at most one extra guess per concurrent request, which the limit absorbs.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable

import msgspec
import structlog
from sqlalchemy import delete, select, text

from readapi.db import Database
from schema.settings import Settings
from schema.tables import login_failure

log = structlog.get_logger("readapi")

_RECORD_FAILURE = """
INSERT INTO login_failure (key_hash, failures, window_start_ms)
VALUES (:key, 1, :now)
ON CONFLICT (key_hash) DO UPDATE SET
    failures = CASE WHEN login_failure.window_start_ms <= :expired THEN 1
                    ELSE login_failure.failures + 1 END,
    window_start_ms = CASE WHEN login_failure.window_start_ms <= :expired THEN :now
                           ELSE login_failure.window_start_ms END
"""


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode("utf-8", "surrogatepass")).hexdigest()


def _pair_key(username: str, client_ip: str | None) -> str:
    # NUL cannot occur in an address, so no (name, address) pair collides with another.
    return _key("pair", f"{client_ip or ''}\x00{username}")


class Standing(msgspec.Struct, frozen=True):
    """What the counts say before a login attempt."""

    retry_after: int | None = None  # seconds until an attempt is allowed; None: now
    pair_failures: bool = False  # whether (username, address) has failures to clear on success


class LoginThrottle:
    def __init__(
        self,
        database: Database,
        max_failures: int,
        max_failures_per_ip: int,
        window_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.max_failures = max_failures
        self.max_failures_per_ip = max_failures_per_ip
        self.window_ms = window_seconds * 1000
        # Wall-clock time: the windows are shared with other processes through the database.
        self.clock = clock

    @classmethod
    def from_settings(cls, database: Database, settings: Settings) -> LoginThrottle:
        return cls(
            database,
            settings.readapi_login_max_failures,
            settings.readapi_login_max_failures_per_ip,
            settings.readapi_login_throttle_seconds,
        )

    def _limits(self, username: str, client_ip: str | None) -> dict[str, int]:
        """key -> the failures it may have; a limit of 0 is no limit."""
        limits = {}
        if self.max_failures:
            limits[_pair_key(username, client_ip)] = self.max_failures
        if self.max_failures_per_ip and client_ip:
            limits[_key("ip", client_ip)] = self.max_failures_per_ip
        return limits

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def check(self, username: str, client_ip: str | None) -> Standing:
        limits = self._limits(username, client_ip)
        if not limits:
            return Standing()
        now = self._now_ms()
        with self.database.connect() as connection:
            rows = connection.execute(
                select(
                    login_failure.c.key_hash,
                    login_failure.c.failures,
                    login_failure.c.window_start_ms,
                ).where(login_failure.c.key_hash.in_(list(limits)))
            ).all()
        waits = [
            start + self.window_ms - now
            for key, failures, start in rows
            if failures >= limits[key] and start + self.window_ms > now
        ]
        pair_key = _pair_key(username, client_ip)
        return Standing(
            retry_after=max(1, math.ceil(max(waits) / 1000)) if waits else None,
            pair_failures=any(key == pair_key for key, _, _ in rows),
        )

    def record_failure(self, username: str, client_ip: str | None) -> None:
        limits = self._limits(username, client_ip)
        if not limits:
            return
        now = self._now_ms()
        expired = now - self.window_ms
        with self.database.begin() as connection:
            for key in limits:
                connection.execute(
                    text(_RECORD_FAILURE), {"key": key, "now": now, "expired": expired}
                )
            # Windows that ended count for nothing: keep the table as small as the attack.
            connection.execute(
                delete(login_failure).where(login_failure.c.window_start_ms <= expired)
            )
        log.info("login_failed", client=client_ip, worker=os.getpid())

    def clear(self, username: str, client_ip: str | None) -> None:
        """A success from this address: its guesses at this username are forgiven."""
        with self.database.begin() as connection:
            connection.execute(
                delete(login_failure).where(
                    login_failure.c.key_hash == _pair_key(username, client_ip)
                )
            )
