"""Every documented webhook shape (tests/ingest/shapes.py) does what the catalog and
docs/ingest.md say, and the properties the catalog cannot show: one thread per person
whichever WhatsApp id a delivery carries, edits and removals naming the original message,
nothing a citizen wrote emptied."""

from __future__ import annotations

import pytest

from schemas.messages import Action, EventKind, Message, Platform
from services.ingest.platforms import parse_delivery
from services.ingest.platforms.base import ParseResult
from tests.ingest.helpers import ctx, mid
from tests.ingest.shapes import SHAPES, SHAPES_DIR, Shape, documented, outcome, render


def _parse(platform: str, name: str) -> ParseResult:
    body = (SHAPES_DIR / platform / f"{name}.json").read_bytes()
    return parse_delivery(Platform(platform), body, ctx())


def _one(platform: str, name: str) -> Message:
    result = _parse(platform, name)
    assert len(result.messages) == 1, (result.rejected, result.skips)
    return result.messages[0]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s.platform}-{s.name}")
def test_each_shape_does_what_the_catalog_says(shape: Shape) -> None:
    assert outcome(shape) == shape.outcome


def test_every_fixture_is_in_the_catalog() -> None:
    files = {(p.parent.name, p.stem) for p in SHAPES_DIR.glob("*/*.json")}
    assert files == {(s.platform, s.name) for s in SHAPES}


def test_docs_table_is_the_catalog() -> None:
    assert documented() == render(), "run: python -m tests.ingest.shapes"


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s.platform}-{s.name}")
def test_nothing_a_citizen_wrote_is_emptied(shape: Shape) -> None:
    """A new message carries text, an attachment or a location, unless the platform sent
    only ids (mentions, fetched later) or an encrypted body."""
    for m in _parse(shape.platform, shape.name).messages:
        if m.kind is EventKind.status or m.action is Action.remove or not m.text_fetched:
            continue
        assert m.text or m.attachments or m.location is not None, shape.name


def test_whatsapp_one_thread_per_person_whichever_id() -> None:
    by_bsuid = _one("whatsapp", "bsuid_only")
    both = _one("whatsapp", "bsuid_and_phone")
    status = _one("whatsapp", "status_bsuid")
    assert by_bsuid.thread_key == both.thread_key == status.thread_key
    assert by_bsuid.author_pseudonym == both.author_pseudonym
    # A phone-only item whose delivery pairs the phone with a BSUID in contacts[] lands on
    # the BSUID's thread too.
    body = (SHAPES_DIR / "whatsapp" / "text.json").read_text()
    paired = body.replace(
        '"wa_id": "6281234567890"', '"wa_id": "6281234567890", "user_id": "ID.13491208655302741918"'
    )
    result = parse_delivery(Platform.whatsapp, paired.encode(), ctx())
    assert result.messages[0].thread_key == by_bsuid.thread_key
    # Without any BSUID the phone decides (deliveries from before the rollout).
    assert _one("whatsapp", "text").thread_key != by_bsuid.thread_key


def test_whatsapp_group_messages_thread_per_group() -> None:
    group = _one("whatsapp", "group_message")
    private = _one("whatsapp", "text")
    assert group.thread_key == _one("whatsapp", "status_group").thread_key
    assert group.thread_key != private.thread_key
    assert group.author_pseudonym == private.author_pseudonym  # same citizen wrote both


def test_whatsapp_edits_and_revokes_name_the_original_message() -> None:
    original = _one("whatsapp", "text")
    edit, revoke = _one("whatsapp", "edit"), _one("whatsapp", "revoke")
    assert edit.message_id == revoke.message_id == original.message_id
    assert (edit.action, revoke.action) == (Action.edit, Action.remove)
    assert edit.text is not None and "dalam sekali" in edit.text
    assert edit.thread_key == original.thread_key and not edit.is_agency_reply
    echo = _one("whatsapp", "echo_text")
    echo_edit, echo_revoke = _one("whatsapp", "echo_edit"), _one("whatsapp", "echo_revoke")
    assert echo_edit.message_id == echo_revoke.message_id == echo.message_id
    assert echo_edit.is_agency_reply and echo_revoke.is_agency_reply
    assert echo.thread_key == original.thread_key


def test_whatsapp_flow_answers_become_text() -> None:
    m = _one("whatsapp", "flow_reply")
    assert m.text is not None
    assert "Kategori: Jalan rusak" in m.text and "Keterangan: Lubang besar" in m.text
    assert "tok-1" not in m.text  # the business's flow token is not the citizen's words
    assert [a.type for a in m.attachments] == ["image"]
    address = _one("whatsapp", "address_reply")
    assert address.text is not None and "Siti" not in address.text and "0812" not in address.text


def test_meta_standby_and_echo_share_the_citizens_thread() -> None:
    for platform in ("instagram", "facebook"):
        citizen = _one(platform, "dm_text")
        for name in ("dm_echo", "standby_message", "standby_echo"):
            m = _one(platform, name)
            assert m.thread_key == citizen.thread_key, (platform, name)
        assert _one(platform, "standby_echo").is_agency_reply


def test_meta_edits_and_deletions_name_the_message() -> None:
    for platform in ("instagram", "facebook"):
        original = _one(platform, "dm_text")
        edit, removal = _one(platform, "dm_edit"), _one(platform, "dm_deleted")
        assert edit.message_id == removal.message_id == original.message_id
        assert edit.text is not None and edit.action is Action.edit


def test_location_attachment_becomes_the_location() -> None:
    m = _one("instagram", "dm_location")
    assert m.location is not None and (m.location.latitude, m.location.longitude) == (
        -7.2913,
        112.7397,
    )
    assert m.location.name == "Taman Bungkul" and m.attachments == []


def test_x_deletions_remove_the_tweet_and_texts_are_unescaped() -> None:
    tweet, deletion = _one("x", "tweet"), _one("x", "tweet_delete")
    assert deletion.message_id == tweet.message_id == mid("x:1990000000000000001")
    assert deletion.thread_key == tweet.thread_key and not deletion.is_agency_reply
    xaa = _one("x", "xaa_post_delete")
    assert xaa.message_id == _one("x", "xaa_post_mention").message_id
    assert (
        _one("x", "tweet_html_entities").text == "@pemkot got & saluran di Jl. A <-> Jl. B mampet"
    )
    reply = _one("x", "xaa_post_create")
    assert reply.thread_key == tweet.thread_key and reply.in_reply_to == tweet.message_id


def test_skips_are_counted_by_reason() -> None:
    result = _parse("x", "user_event_revoke")
    assert (result.messages, result.rejected, result.skips) == ([], [], {"account_event": 1})
