"""notify's automatic acknowledgement comes back as the agency's own reply: route must not
count it as the first response, and must still count the human answer after it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.commands import Command, CommandType, ack_text_digest
from schemas.sla import SlaEvent, SlaEventType

from .factories import message, router

WIB = ZoneInfo("Asia/Jakarta")
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=WIB)
ACK = ("Terima kasih, aduan Anda sudah kami terima dan diteruskan ke Dinas Sumber Daya Air dan "
       "Bina Marga. Nomor aduan: ADU-7F3K2QXA. Tanggapan pertama paling lambat Senin, "
       "23 November 2026 14.00 WIB.")  # fmt: skip


def auto_ack(text: str, at: datetime) -> Command:
    return Command(
        command_id="autoack:instagram:c1", type=CommandType.auto_acknowledged,
        complaint_id="instagram:c1", thread_key="t1", issued_at=at, actor="notify",
        text_sha256=ack_text_digest(text),
    )  # fmt: skip


def responded(events: list) -> list[SlaEvent]:
    return [e for e in events if isinstance(e, SlaEvent) and e.event_type is SlaEventType.responded]


def test_the_echo_of_an_automatic_acknowledgement_does_not_stop_the_clock() -> None:
    r = router()
    state, _ = r.on_message(None, message("c1", "t1", MON_9))
    state, events = r.on_command(state, auto_ack(ACK, MON_9 + timedelta(seconds=5)))
    assert events == []
    # the platform delivers the reply back as the account's own comment (spacing may differ)
    echo = message("r1", "t1", MON_9 + timedelta(seconds=8), agency_reply=True,
                   text=ACK.replace(". ", ".  ").upper())  # fmt: skip
    state, events = r.on_message(state, echo)
    assert responded(events) == []
    assert state is not None and "first_response" in state.clocks
    # the officer's real answer still counts
    human = message("r2", "t1", MON_9 + timedelta(hours=1), agency_reply=True,
                    text="Baik, petugas kami akan mengecek lokasi hari ini.")  # fmt: skip
    state, events = r.on_message(state, human)
    (first,) = responded(events)
    assert first.clock is not None and first.clock.value == "first_response"


def test_without_the_command_the_same_reply_counts_as_a_response() -> None:
    """The control: the marker is what makes the difference."""
    r = router()
    state, _ = r.on_message(None, message("c1", "t1", MON_9))
    echo = message("r1", "t1", MON_9 + timedelta(seconds=8), agency_reply=True, text=ACK)
    _, events = r.on_message(state, echo)
    assert len(responded(events)) == 1


def test_an_agency_reply_with_other_text_is_a_response_even_after_an_ack() -> None:
    r = router()
    state, _ = r.on_message(None, message("c1", "t1", MON_9))
    state, _ = r.on_command(state, auto_ack(ACK, MON_9))
    other = message("r1", "t1", MON_9 + timedelta(minutes=3), agency_reply=True,
                    text=ACK.replace("ADU-7F3K2QXA", "ADU-OTHER000"))  # fmt: skip
    _, events = r.on_message(state, other)
    assert len(responded(events)) == 1


def test_the_command_is_idempotent_and_survives_the_state_encoding() -> None:
    r = router()
    state, _ = r.on_message(None, message("c1", "t1", MON_9))
    cmd = auto_ack(ACK, MON_9)
    state, _ = r.on_command(state, cmd)
    state, again = r.on_command(state, cmd)
    assert again == []
    restored = type(state).from_bytes(state.to_bytes())
    echo = message("r1", "t1", MON_9 + timedelta(seconds=8), agency_reply=True, text=ACK)
    _, events = r.on_message(restored, echo)
    assert responded(events) == []
