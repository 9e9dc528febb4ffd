"""Password hashes (argon2id) and API tokens (random, stored only as SHA-256)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2id with 12 MiB, 3 passes, 1 lane: one of OWASP's equivalent minimum settings. The
# memory cost is what an attacker pays per guess, but also what a worker allocates per
# verification: argon2-cffi's default of 64 MiB would take a worker past its memory budget
# on its first Basic-auth request.
HASHER = PasswordHasher(time_cost=3, memory_cost=12_288, parallelism=1)


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if not stored:
        _burn(password)
        return False
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_hex(16))


def _burn(password: str) -> None:
    """Verify against a throwaway hash, so a wrong username costs as long as a wrong password."""
    with contextlib.suppress(VerificationError):
        HASHER.verify(_dummy_hash(), password)


def new_token() -> str:
    """A token as DRF makes them: 40 hex characters."""
    return secrets.token_hex(20)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
