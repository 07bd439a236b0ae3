"""``aduan.messages.v1``: one normalized, privacy-safe message per platform event."""

from enum import StrEnum

from pydantic import Field

from schemas.base import Event, UtcDatetime


class Platform(StrEnum):
    instagram = "instagram"
    facebook = "facebook"
    whatsapp = "whatsapp"
    x = "x"
    generic = "generic"


class EventKind(StrEnum):
    """What happened on the platform (not what the text means: that is classify's job)."""

    comment = "comment"
    reply = "reply"
    mention = "mention"
    dm = "dm"
    tweet = "tweet"
    status = "status"
    report = "report"  # a structured report from the government's own channels (generic webhook)


class Action(StrEnum):
    add = "add"
    edit = "edit"
    remove = "remove"


class Location(Event):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = None
    address: str | None = None


class Attachment(Event):
    type: str = Field(description="image, video, document, audio, sticker, link, ...")
    ref: str = Field(
        description="keyed pseudonym of the platform media id or URL ('<platform>:a_...'); "
        "the real reference is in the raw delivery"
    )
    mime_type: str | None = None


class Message(Event):
    """A normalized message. Nothing here identifies a citizen: every platform id (message,
    thread, reply target, author, media) is a keyed pseudonym, and the text, location name
    and address have phone numbers, NIK/KK, e-mail and bank numbers and known names replaced
    by placeholders such as ``[PHONE]`` (docs/security.md). The raw topic alone holds the
    original bytes."""

    message_id: str = Field(
        description="globally unique '<platform>:m_<pseudonym of the platform's id>'; "
        "dedup and idempotency key"
    )
    platform: Platform
    kind: EventKind
    action: Action = Action.add
    platform_message_id: str = Field(description="keyed pseudonym of the platform's message id")
    thread_key: str = Field(
        description="conversation key shared by a complaint and every reply in it "
        "('<platform>:t_<pseudonym>'); the record key"
    )
    account_id: str = Field(description="platform id of the agency account that received it")
    agency_id: str = Field(description="agency owning the account, from the account registry")
    region_code: str = Field(description="Kemendagri code of the account's region")
    author_pseudonym: str = Field(description="keyed pseudonym of the platform user id ('u_...')")
    text: str | None = Field(default=None, description="masked text; None when the event has none")
    text_fetched: bool = Field(
        default=True, description="False when the platform sent only ids (Instagram mentions)"
    )
    platform_time: UtcDatetime
    received_at: UtcDatetime
    location: Location | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    is_agency_reply: bool = False
    in_reply_to: str | None = Field(default=None, description="message_id this one answers")
    delivery_status: str | None = Field(
        default=None,
        description="sent/delivered/read/played/failed/deleted/warning for WhatsApp status events",
    )
    delivery_id: str = Field(description="key of the raw delivery on aduan.raw.v1 this came from")
    reply_ref: str | None = Field(
        default=None,
        description="the platform's id of this item, sealed (AES-GCM) for the services that "
        "reply to citizens; set only for accounts that send acknowledgements (common.sealing)",
    )
