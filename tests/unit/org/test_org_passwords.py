import pytest

from cityloop.errors import InvalidInput
from cityloop.org.passwords import hash_password, verify_password


def test_hash_is_argon2id_and_verifies_only_the_right_password() -> None:
    hashed = hash_password("a-long-password")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "a-long-password")
    assert not verify_password(hashed, "a-long-passworD")


def test_the_same_password_hashes_differently_each_time() -> None:
    assert hash_password("a-long-password") != hash_password("a-long-password")


@pytest.mark.parametrize("bad", ["short", " leading-space", "trailing-space "])
def test_weak_or_padded_passwords_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        hash_password(bad)
    assert err.value.field == "password"


def test_a_garbage_hash_never_verifies() -> None:
    assert not verify_password("not-a-hash", "whatever-password")
