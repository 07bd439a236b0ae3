"""Every platform and event shape of the issue, parsed from documented-shape fixtures."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from schemas.messages import Action, EventKind, Platform
from services.ingest.platforms.base import UNKNOWN_AUTHOR, MalformedDelivery
from tests.ingest.helpers import (
    FB,
    IG,
    PSEUDO,
    WA_PHONE,
    X_ACCOUNT,
    att,
    by_id,
    ctx,
    fixture,
    mid,
    parse,
    pmid,
    thread,
)

RAW_IDENTIFIERS = (
    b"0812-3456-7890",
    b"3578 0101 0101 0001",
    b"arek@example.com",
    b"Siti Aminah",
    b"6281234567890",
    b"Budi Santoso",
    b"232323232",
    b"987654321012345",
    b"2244000001",
)


class TestInstagram:
    def test_comment_and_agency_reply_share_the_thread(self) -> None:
        r = parse("instagram", "instagram_comments.json")
        assert (len(r.messages), r.rejected, r.skipped) == (3, [], 0)
        m = by_id(r.messages)
        top = m[mid("instagram:17865799348089039")]
        reply = m[mid("instagram:17865799348089040")]
        assert top.kind is EventKind.comment and not top.is_agency_reply
        assert reply.kind is EventKind.reply and reply.is_agency_reply
        assert reply.in_reply_to == top.message_id
        assert (
            top.thread_key
            == reply.thread_key
            == thread("instagram:18068000000000001:17865799348089039")
        )
        assert top.agency_id == "sby-communication" and top.region_code == "35.78"
        assert top.author_pseudonym == PSEUDO("instagram", "232323232")
        assert top.text is not None and "[PHONE]" in top.text and "0812" not in top.text
        assert top.platform_time == datetime.fromtimestamp(1795309200, UTC)
        assert top.received_at == ctx().received_at
        live = m[mid("instagram:17865799348089041")]
        assert live.text == "Lampu PJU mati di Jl. Kenjeran, email saya [EMAIL]"

    def test_mentions_carry_ids_only(self) -> None:
        r = parse("instagram", "instagram_mentions.json")
        assert len(r.messages) == 2
        comment, caption = r.messages
        assert comment.kind is EventKind.mention and comment.text is None
        assert not comment.text_fetched and comment.author_pseudonym == UNKNOWN_AUTHOR
        assert comment.message_id == mid("instagram:mention:17894227972186120")
        assert comment.thread_key == thread("instagram:17918195224117851:17894227972186120")
        assert caption.platform_message_id == pmid("instagram", "17918195224117852")

    def test_dms_echo_deleted_and_reaction(self) -> None:
        r = parse("instagram", "instagram_messaging.json")
        assert (len(r.messages), r.skipped) == (3, 1)  # the reaction is skipped
        citizen, echo, deleted = r.messages
        assert citizen.kind is EventKind.dm and not citizen.is_agency_reply
        assert citizen.text is not None and "[NIK]" in citizen.text
        assert citizen.attachments[0].type == "image"
        assert citizen.platform_time == datetime.fromtimestamp(1795309400.123, UTC)
        assert echo.is_agency_reply and echo.in_reply_to == citizen.message_id
        assert citizen.thread_key == echo.thread_key == deleted.thread_key
        assert citizen.thread_key == thread(
            f"instagram:dm:{IG}:{PSEUDO('instagram', '987654321012345')}"
        )
        assert deleted.action is Action.remove and deleted.text is None


class TestFacebook:
    def test_feed_verbs_replies_and_page_comments(self) -> None:
        r = parse("facebook", "facebook_feed.json")
        assert (len(r.messages), r.rejected, r.skipped) == (4, [], 1)  # reaction skipped
        top, page_reply, edit, removed = r.messages
        assert top.kind is EventKind.comment and top.action is Action.add
        assert page_reply.kind is EventKind.reply and page_reply.is_agency_reply
        assert page_reply.in_reply_to == mid("facebook:555000111_777000001")
        assert top.thread_key == page_reply.thread_key == edit.thread_key
        assert top.thread_key == thread("facebook:100000000000001_555000111:555000111_777000001")
        assert edit.action is Action.edit and edit.message_id == top.message_id
        assert removed.action is Action.remove and removed.text is None
        assert top.text is not None and "0813" not in top.text and "[PHONE]" in top.text

    def test_messenger_message_and_echo(self) -> None:
        r = parse("facebook", "facebook_messenger.json")
        assert (len(r.messages), r.skipped) == (2, 1)  # the read receipt is skipped
        citizen, echo = r.messages
        assert not citizen.is_agency_reply and echo.is_agency_reply
        assert citizen.thread_key == echo.thread_key
        assert citizen.thread_key == thread(
            f"facebook:dm:{FB}:{PSEUDO('facebook', '7000000000000001')}"
        )
        assert citizen.text is not None and "[EMAIL]" in citizen.text

    def test_photo_comment_and_moderation_verbs(self) -> None:
        r = parse("facebook", "facebook_feed_photo.json")
        assert (len(r.messages), r.skipped) == (1, 1)  # "hide" is moderation: skipped
        (photo,) = r.messages
        assert photo.attachments[0].type == "image"
        assert photo.attachments[0].ref == att(
            "facebook:https://scontent.xx.fbcdn.net/v/t39.30808-6/genangan.jpg"
        )

    def test_kecamatan_page_uses_its_agency_region(self) -> None:
        body = orjson.loads(fixture("facebook_feed.json"))
        body["entry"][0]["id"] = "100000000000002"
        r = parse("facebook", orjson.dumps(body))
        assert {m.agency_id for m in r.messages} == {"sby-kec-rungkut"}
        assert {m.region_code for m in r.messages} == {"35.78.03"}


class TestWhatsApp:
    def test_message_types(self) -> None:
        r = parse("whatsapp", "whatsapp_messages.json")
        assert (len(r.messages), r.rejected, r.skipped) == (7, [], 1)  # reaction skipped
        text, image, loc, doc, button_reply, list_reply, button = r.messages
        assert text.text is not None and "[PHONE]" in text.text and "812" not in text.text
        assert image.text == "Ini fotonya, Jl. Ngagel Jaya"
        assert image.attachments[0].ref == att("whatsapp:1003383421387256")
        assert image.attachments[0].mime_type == "image/jpeg"
        assert loc.location is not None
        assert (loc.location.latitude, loc.location.longitude) == (-7.2917, 112.7452)
        assert doc.text == "Surat pengantar RT 05 RW 03" and doc.attachments[0].type == "document"
        assert button_reply.text == "Jalan rusak"
        assert button_reply.in_reply_to == mid(
            "whatsapp:wamid.HBgNNjI4NTcwMDAwMTExMRUCABEYEjQ4QkNEMEU0QkY2QTJGNTIA"
        )
        assert list_reply.text == "Rungkut — Kecamatan Rungkut"
        assert button.text == "Sudah selesai"
        siti = thread(f"whatsapp:{WA_PHONE}:{PSEUDO('whatsapp', '6281234567890')}")
        assert text.thread_key == image.thread_key == loc.thread_key == siti
        assert doc.thread_key != siti
        assert all(m.kind is EventKind.dm and not m.is_agency_reply for m in r.messages)
        assert all(m.account_id == WA_PHONE for m in r.messages)

    def test_media_messages(self) -> None:
        r = parse("whatsapp", "whatsapp_media.json")
        assert (len(r.messages), r.rejected, r.skipped) == (3, [], 1)  # "unsupported" skipped
        video, audio, sticker = r.messages
        assert video.text == "Video banjir di Kedung Baruk"
        assert [a.type for m in r.messages for a in m.attachments] == ["video", "audio", "sticker"]
        assert audio.text is None and audio.attachments[0].mime_type == "audio/ogg; codecs=opus"
        assert sticker.attachments[0].ref == att("whatsapp:1003383421387303")

    def test_statuses_are_agency_replies_on_the_citizen_thread(self) -> None:
        r = parse("whatsapp", "whatsapp_statuses.json")
        sent, delivered, read, failed = r.messages
        assert [m.delivery_status for m in r.messages] == ["sent", "delivered", "read", "failed"]
        assert all(m.kind is EventKind.status for m in r.messages)
        assert sent.is_agency_reply and delivered.is_agency_reply and read.is_agency_reply
        assert not failed.is_agency_reply
        assert len({m.message_id for m in r.messages}) == 4  # one event per status
        citizen = parse("whatsapp", "whatsapp_messages.json").messages[0]
        assert sent.thread_key == citizen.thread_key

    def test_business_app_echo_is_an_agency_reply(self) -> None:
        (echo,) = parse("whatsapp", "whatsapp_echoes.json").messages
        citizen = parse("whatsapp", "whatsapp_messages.json").messages[0]
        assert echo.is_agency_reply and echo.thread_key == citizen.thread_key

    def test_account_found_by_waba_id_when_phone_unknown(self) -> None:
        body = orjson.loads(fixture("whatsapp_echoes.json"))
        body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
        (echo,) = parse("whatsapp", orjson.dumps(body)).messages
        assert echo.agency_id == "sby-communication"

    def test_one_bad_message_in_a_change_is_rejected_alone(self) -> None:
        body = orjson.loads(fixture("whatsapp_messages.json"))
        msgs = body["entry"][0]["changes"][0]["value"]["messages"]
        del msgs[1]["image"]
        msgs[2]["location"]["latitude"] = 123.0
        r = parse("whatsapp", orjson.dumps(body))
        assert len(r.messages) == 5
        assert sorted(x.reason for x in r.rejected) == ["bad_location", "malformed_entry"]
        assert all(x.entry_index == 0 for x in r.rejected)
        assert r.skipped == 1


class TestX:
    def test_tweets(self) -> None:
        r = parse("x", "x_account_activity.json")
        assert (len(r.messages), r.skipped) == (2, 2)  # retweet and like skipped
        citizen, agency = r.messages
        assert citizen.text is not None and citizen.text.endswith("di sini. Kontak [PHONE]")
        assert not citizen.is_agency_reply and agency.is_agency_reply
        assert citizen.thread_key == agency.thread_key == thread("x:1860000000000000001")
        assert agency.in_reply_to == mid("x:1860000000000000001")
        assert citizen.location is not None and citizen.location.latitude == -7.2890
        assert citizen.attachments[0].ref == att("x:https://pbs.twimg.com/media/Fabc.jpg")
        assert citizen.platform_time == datetime.fromtimestamp(1795311000, UTC)
        assert citizen.account_id == X_ACCOUNT

    def test_created_at_used_without_timestamp_ms(self) -> None:
        body = orjson.loads(fixture("x_account_activity.json"))
        del body["tweet_create_events"][1]["timestamp_ms"]
        agency = parse("x", orjson.dumps(body)).messages[1]
        assert agency.platform_time == datetime(2026, 11, 22, 1, 40, tzinfo=UTC)

    def test_direct_messages(self) -> None:
        r = parse("x", "x_direct_messages.json")
        citizen, agency = r.messages
        assert citizen.kind is EventKind.dm and not citizen.is_agency_reply
        assert agency.is_agency_reply and agency.thread_key == citizen.thread_key
        assert citizen.thread_key == thread(f"x:dm:{X_ACCOUNT}:{PSEUDO('x', '2244000001')}")

    def test_x_activity_api_envelope(self) -> None:
        (dm,) = parse("x", "x_activity_api.json").messages
        assert dm.kind is EventKind.dm and dm.platform_message_id == pmid(
            "x", "1860000000000000201"
        )
        assert dm.thread_key == thread(f"x:dm:{X_ACCOUNT}:{PSEUDO('x', '2244000003')}")
        assert dm.platform_time == datetime(2026, 11, 22, 1, 50, tzinfo=UTC)
        profile = parse("x", "x_activity_api_profile.json")
        assert (profile.messages, profile.skipped) == ([], 1)

    def test_xaa_agency_sent_dm_lands_on_citizen_thread(self) -> None:
        body = orjson.loads(fixture("x_activity_api.json"))
        body["data"]["event_type"] = "dm.sent"
        body["data"]["payload"]["sender_id"] = X_ACCOUNT
        (dm,) = parse("x", orjson.dumps(body)).messages
        assert dm.is_agency_reply
        assert dm.thread_key == thread(f"x:dm:{X_ACCOUNT}:{PSEUDO('x', '2244000003')}")


class TestGeneric:
    def test_reports(self) -> None:
        report, answer = parse("generic", "generic_reports.json").messages
        assert report.kind is EventKind.report and report.text is not None
        assert "L 1234 AB" in report.text and "[PHONE]" in report.text  # plate kept
        assert report.location is not None and report.location.name == "Pasar Genteng"
        assert answer.is_agency_reply and answer.thread_key == report.thread_key
        assert answer.in_reply_to == report.message_id
        assert report.platform_time == datetime(2026, 11, 22, 1, 55, tzinfo=UTC)

    def test_invalid_report_rejected_alone(self) -> None:
        body = orjson.loads(fixture("generic_reports.json"))
        body["reports"][0]["created_at"] = "2026-11-22T08:55:00"  # no offset
        r = parse("generic", orjson.dumps(body))
        assert len(r.messages) == 1 and r.rejected[0].entry_index == 0
        assert "created_at" in r.rejected[0].detail

    def test_non_object_report_rejected_alone(self) -> None:
        body = orjson.loads(fixture("generic_reports.json"))
        body["reports"].append("not a report")
        r = parse("generic", orjson.dumps(body))
        assert len(r.messages) == 2 and [x.entry_index for x in r.rejected] == [2]

    def test_missing_reports_is_malformed(self) -> None:
        with pytest.raises(MalformedDelivery):
            parse("generic", b'{"account_id": "web-sby"}')


def test_batch_with_bad_entries_keeps_the_good_ones() -> None:
    """A comment without ``media`` (the older comments shape: id and text only) is kept: a
    citizen wrote it; an unknown account and a non-object entry are rejected alone."""
    r = parse("instagram", "instagram_batch_with_bad_entries.json")
    assert [m.platform_message_id for m in r.messages] == [
        pmid("instagram", "17865799348089101"),
        pmid("instagram", "17865799348089102"),
        pmid("instagram", "17865799348089104"),
    ]
    assert r.messages[1].text == "komentar tanpa media"
    assert r.messages[2].agency_id == "mks-public-works" and r.messages[2].region_code == "73.71"
    reasons = {(x.entry_index, x.reason) for x in r.rejected}
    assert reasons == {(1, "unknown_account"), (2, "malformed_entry")}
    assert r.skipped == 1  # story_insights


@pytest.mark.parametrize(
    ("platform", "body", "reason"),
    [
        ("instagram", b"{not json", "malformed_json"),
        ("instagram", b"[]", "malformed_json"),
        ("instagram", b'{"object": "page", "entry": []}', "unknown_object"),
        ("facebook", b'{"object": "instagram", "entry": []}', "unknown_object"),
        ("whatsapp", b'{"object": "whatsapp_business_account", "entry": {}}', "malformed_entry"),
        ("x", b'{"hello": 1}', "unknown_object"),
    ],
)
def test_malformed_bodies(platform: str, body: bytes, reason: str) -> None:
    with pytest.raises(MalformedDelivery) as info:
        parse(platform, body)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("platform", "name"),
    [
        ("instagram", "instagram_comments.json"),
        ("instagram", "instagram_messaging.json"),
        ("facebook", "facebook_feed.json"),
        ("facebook", "facebook_messenger.json"),
        ("whatsapp", "whatsapp_messages.json"),
        ("whatsapp", "whatsapp_statuses.json"),
        ("x", "x_account_activity.json"),
        ("x", "x_direct_messages.json"),
        ("generic", "generic_reports.json"),
    ],
)
def test_no_raw_identifier_leaves_the_parser(platform: str, name: str) -> None:
    r = parse(Platform(platform), name)
    assert r.messages
    for m in r.messages:
        encoded = m.model_dump_json().encode()
        for secret in RAW_IDENTIFIERS:
            assert secret not in encoded, (m.message_id, secret)
