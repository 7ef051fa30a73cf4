"""Password hashing with Argon2id (argon2-cffi's maintained defaults)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cityloop.errors import InvalidInput

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 8


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters",
            field="password",
        )
    if password.strip() != password:
        raise InvalidInput("the password must not start or end with whitespace", field="password")


def hash_password(password: str) -> str:
    validate_password(password)
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@cache
def dummy_hash() -> str:
    """Verified against when a username does not exist, so a login for an unknown user costs as
    much as one for a known user (no user enumeration by timing). Made on first use: hashing at
    import would cost every CLI command and server start a full Argon2 run."""
    return _hasher.hash("cityloop-dummy-password")
