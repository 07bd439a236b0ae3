"""Sealed reply references: open only with the key and on the message they were sealed for."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.sealing import Sealer

KEY = Sealer("reply-key-for-tests")


@given(st.text(min_size=1, max_size=64), st.text(min_size=1, max_size=64))
def test_a_sealed_value_opens_to_itself(value: str, message_id: str) -> None:
    assert KEY.open(KEY.seal(value, message_id), message_id) == value


def test_the_reference_reveals_nothing_and_differs_each_time() -> None:
    a, b = KEY.seal("17858893269000001", "m1"), KEY.seal("17858893269000001", "m1")
    assert a != b  # random nonce: equal ids do not look equal
    raw = base64.urlsafe_b64decode(a[3:] + "=" * (-len(a[3:]) % 4))
    assert b"17858893269000001" not in raw


def test_another_key_another_message_or_a_changed_byte_does_not_open() -> None:
    token = KEY.seal("17858893269000001", "m1")
    with pytest.raises(ValueError):
        Sealer("another-key").open(token, "m1")
    with pytest.raises(ValueError):
        KEY.open(token, "m2")  # copied onto another message
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(ValueError):
        KEY.open(flipped, "m1")
    with pytest.raises(ValueError):
        KEY.open("not-a-token", "m1")
