"""Passwords (argon2id) and usernames of registry users."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from immunoreset.errors import InvalidInput

__all__ = ["hash_password", "validate_password", "validate_username", "verify_password"]

_hasher = PasswordHasher()
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10


def validate_username(name: str) -> str:
    if not isinstance(name, str) or not USERNAME.match(name):
        raise InvalidInput(
            "username", name, "2–64 lower-case letters, digits, . _ - starting with a letter"
        )
    return name


def validate_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput("password", "***", f"at least {MIN_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(validate_password(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
