"""Users (seed 002): email rules, names, storage and request shapes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.model import new_id
from shared.users.model import User, UserCreate, UserPublic, UserUpdate, normalize_email


def unique_email() -> str:
    return f"user-{new_id()}@example.com"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("John.Doe@Example.COM", "john.doe@example.com"),
        ("  a+tag@sub.example.co.uk ", "a+tag@sub.example.co.uk"),
        ("o'brien@example.io", "o'brien@example.io"),
    ],
)
def test_emails_are_normalised_to_lower_case(raw, expected):
    assert normalize_email(raw) == expected
    assert User(email=raw).email == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plainaddress",
        "@example.com",
        "user@",
        "user@example",
        "user@@example.com",
        "user@exa mple.com",
        "us er@example.com",
        ".user@example.com",
        "user.@example.com",
        "us..er@example.com",
        "user@-example.com",
        "user@example..com",
        "x" * 65 + "@example.com",
        "user@" + "a" * 250 + ".com",
    ],
)
def test_invalid_emails_are_rejected(bad):
    with pytest.raises(ValidationError):
        User(email=bad)
    with pytest.raises(ValidationError):
        UserCreate(email=bad)


def test_user_defaults_and_camel_case_output():
    user = User(email=unique_email(), first_name=" John ", last_name="Doe")
    api = user.to_api()
    assert api["firstName"] == "John"
    assert api["lastName"] == "Doe"
    assert api["storageUsedBytes"] == 0
    assert api["isActive"] is True
    assert api["deletedAt"] is None
    assert not user.is_deleted
    assert "passwordHash" not in api


def test_user_accepts_camel_case_input():
    user = User.model_validate(
        {"email": unique_email(), "firstName": "Ann", "storageUsedBytes": 10}
    )
    assert user.first_name == "Ann"
    assert user.storage_used_bytes == 10


def test_negative_storage_is_rejected():
    with pytest.raises(ValidationError):
        User(email=unique_email(), storage_used_bytes=-1)
    user = User(email=unique_email())
    with pytest.raises(ValidationError):
        user.storage_used_bytes = -5


def test_blank_names_mean_no_name_and_long_names_are_rejected():
    assert User(email=unique_email(), first_name="   ").first_name is None
    with pytest.raises(ValidationError):
        User(email=unique_email(), last_name="x" * 101)


def test_public_view_hides_deletion_marker():
    user = User(email=unique_email(), first_name="John")
    public = UserPublic.from_entity(user).to_api()
    assert public["email"] == user.email
    assert public["firstName"] == "John"
    assert "deletedAt" not in public


def test_create_takes_email_and_names():
    body = UserCreate.model_validate(
        {"email": "John@Example.com", "firstName": "John", "lastName": "Doe"}
    )
    assert (body.email, body.first_name, body.last_name) == ("john@example.com", "John", "Doe")
    with pytest.raises(ValidationError):
        UserCreate.model_validate({"email": "a@example.com", "password": "secret"})


def test_update_needs_a_field_and_reports_changes():
    with pytest.raises(ValidationError, match="firstName or lastName"):
        UserUpdate.model_validate({})
    assert UserUpdate.model_validate({"lastName": "Smith"}).changes() == {"last_name": "Smith"}
    assert UserUpdate.model_validate({"firstName": None}).changes() == {"first_name": None}
    with pytest.raises(ValidationError):
        UserUpdate.model_validate({"email": "new@example.com"})
