"""The platform parsers' toolkit: errors, the delivery context, ``Draft`` and ``build``,
and the small validators every parser uses. Pure (no I/O); imported by the platform modules,
never importing them (``app`` → ``platforms`` → ``base``).

Error model, from coarse to fine:

* ``MalformedDelivery``: the body as a whole is unusable (not JSON, unknown ``object``): the
  HTTP layer answers 400 and dead-letters the delivery.
* ``RejectedEntry``: one item of a batch is unusable (missing field, unknown account): it is
  dead-lettered alone and the rest of the batch goes through.
* ``Skipped``: an item we deliberately ignore because it carries nothing a person must read
  (reactions, read receipts, profile updates, call-permission answers): it is counted by
  reason (``SKIP_REASONS``), never dead-lettered and never turned into an empty message.
"""

from __future__ import annotations

import functools
import math
import re
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

import orjson

from common.metrics import SKIP_REASONS
from common.refusal import DETAIL_MAX, Refusal
from common.registry import Account, Registry
from common.sealing import Sealer
from schemas.messages import Action, Attachment, EventKind, Location, Message, Platform
from services.ingest.privacy import KnownNames, Pseudonymizer, mask_text

UNKNOWN_AUTHOR = "u_unknown"
"""Pseudonym used when the platform does not say who wrote the item (Instagram mentions)."""


class MalformedDelivery(Refusal):
    """The body as a whole is unusable (not JSON, unknown object type): answer 400."""


class TooManyEntries(MalformedDelivery):
    """More items in one delivery than ``Limits.max_entries``: answer 413, write nothing
    (Meta batches at most 1,000 updates, so only a forged or broken sender gets here)."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__("too_many_entries", f"{count} entries; at most {limit} per delivery")
        self.limit = limit


class EntryError(Refusal):
    """One item of a batch cannot become a message; ``reason`` is a short machine code.

    ``detail`` names the JSON path and the rule, never the value (it becomes a dead letter,
    which leaves the raw topic). ``evidence`` may hold the offending values for the
    operator's own tools (``python -m services.ingest.parse --show-evidence``); it is never
    written to a topic."""

    def __init__(self, reason: str, detail: str, evidence: tuple[str, ...] = ()) -> None:
        super().__init__(reason, detail)
        self.evidence = evidence


class Skipped(Exception):
    """An item deliberately ignored: it carries nothing a person must read. ``reason`` is one
    of ``common.metrics.SKIP_REASONS`` (a bounded label of ``aduan_webhook_skipped_total``)."""

    def __init__(self, reason: str) -> None:
        assert reason in SKIP_REASONS, reason
        super().__init__(reason)
        self.reason = reason


def skip(reason: str) -> NoReturn:
    """Skip the current item, counted under ``reason`` (see ``Skipped``)."""
    raise Skipped(reason)


class PartialItem(EntryError):
    """The outcome of an item made of sub-items (a WhatsApp change holding many messages)
    when some failed or were skipped: carries the good messages along so only the bad
    sub-items are dead-lettered and every skipped one is counted."""

    def __init__(
        self, good: list[Message], problems: list[RejectedEntry], skips: list[str]
    ) -> None:
        reason = problems[0].reason if problems else "skipped"
        super().__init__(reason, "; ".join(p.detail for p in problems)[:DETAIL_MAX])
        self.good = good
        self.problems = problems
        self.skips = skips


@dataclass(frozen=True, slots=True)
class RejectedEntry:
    """One entry of a batch that could not become a message; it is dead-lettered alone."""

    reason: str
    detail: str
    entry_index: int | None = None
    evidence: tuple[str, ...] = ()  # operator tools only; never written to a topic


class AccountLookup(Protocol):
    """What parsers need from the registry (``Registry`` itself, or an ``AccountIndex``)."""

    def account(self, platform: Platform, platform_id: str) -> Account | None: ...

    def account_region(self, account: Account) -> str: ...


class AccountIndex:
    """The registry's account lookups as plain dicts, for the request path.

    ``Registry`` keeps its indexes in pydantic private attributes, and every read of one goes
    through ``BaseModel.__getattr__`` (about a microsecond); ingest does two per message. Same
    answers as ``Registry.account`` / ``Registry.account_region``."""

    __slots__ = ("_accounts", "_regions", "_registry")

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._accounts = {
            (a.platform, pid): a for a in registry.accounts for pid in (a.platform_id, *a.aliases)
        }
        # By identity: the accounts are the registry's own objects, kept alive by the index.
        self._regions = {id(a): registry.account_region(a) for a in registry.accounts}

    def account(self, platform: Platform, platform_id: str) -> Account | None:
        return self._accounts.get((platform, platform_id))

    def account_region(self, account: Account) -> str:
        region = self._regions.get(id(account))
        return region if region is not None else self._registry.account_region(account)


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what one delivery may carry (docs/ingest.md, "Limits"). Over a cap: the
    delivery is refused with 413 (``max_entries``) or the item is dead-lettered."""

    max_entries: int = 1_000  # Meta batches at most 1,000 updates per POST
    max_text_chars: int = 25_000  # the longest platform text: an X Premium long post
    max_field_chars: int = 1_000  # a location's name or address, an attachment's MIME type
    max_ref_chars: int = 4_096  # an attachment reference (platform media id or URL)
    max_attachments: int = 50


DEFAULT_LIMITS = Limits()
NO_NAMES = KnownNames(())


@dataclass(slots=True)
class DeliveryContext:
    """What parsing one delivery needs besides its bytes.

    ``trusted``: the ``app_secret_env`` names of the secrets that verified the delivery;
    every registry account the delivery names must be one of theirs, else its path is added
    to ``foreign`` and the service refuses the whole delivery (403). None means "not checked"
    (the operator command and replays parse deliveries that were verified when received).
    ``sender``: for the generic webhook, the account the sender named in the URL or header;
    the body's ``account_id`` must be the same. ``names``: the author names the delivery
    carries, masked in its texts (set by the parser)."""

    delivery_id: str
    received_at: datetime
    registry: AccountLookup
    pseudonymize: Pseudonymizer
    limits: Limits = DEFAULT_LIMITS
    trusted: frozenset[str] | None = None
    sender: str | None = None
    names: KnownNames = NO_NAMES
    foreign: list[str] = field(default_factory=list)
    seal: Sealer | None = None
    """Seals the raw item id for accounts that acknowledge citizens (``reply_ref``)."""


@dataclass(slots=True)
class ParseResult:
    messages: list[Message] = field(default_factory=list)
    rejected: list[RejectedEntry] = field(default_factory=list)
    # entries deliberately ignored, by reason (reactions, receipts, ...): counted, never
    # dead-lettered
    skips: dict[str, int] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        return sum(self.skips.values())

    def add_skip(self, reason: str, count: int = 1) -> None:
        self.skips[reason] = self.skips.get(reason, 0) + count


# --- helpers shared by the platform parsers ------------------------------------------------


def describe_bug(exc: BaseException) -> str:
    """An unexpected exception as a dead-letter detail: its type and where it was raised,
    never its message (``KeyError('0812…')`` would carry the value)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def check_entries(ctx: DeliveryContext, count: int) -> None:
    """Refuse a delivery with more items than the cap (``TooManyEntries``, a 413)."""
    if count > ctx.limits.max_entries:
        raise TooManyEntries(count, ctx.limits.max_entries)


def may_exceed(ctx: DeliveryContext, body: bytes) -> bool:
    """Whether ``body`` is long enough to hold more items than the cap: every item is a
    JSON value and a comma (at least two bytes), so a shorter body need not be counted
    (single-event deliveries, the common case, are a few hundred bytes)."""
    return len(body) > 2 * ctx.limits.max_entries


_PERSON_KEYS = frozenset(
    {"name", "username", "screen_name", "first_name", "last_name", "display_name"}
    | {"formatted_name", "middle_name", "user_name", "sender_name", "author_name"}
)
# Objects whose "name" is a place, a file, a product or a template, not a person.
_NOT_PERSONS = frozenset(
    {"location", "place", "coordinates", "geo", "metadata", "media", "attachments", "template"}
    | {"interactive", "button", "referral", "pricing", "conversation", "errors", "document"}
)
_OWNER_KEYS = ("id", "id_str", "wa_id", "user_id")


def learn_names(ctx: DeliveryContext, platform: Platform, body: bytes, doc: Any) -> None:
    """Collect the person names a delivery carries (``from.name``, ``profile.name``,
    ``user.name``/``screen_name``, ``username``, ...) into ``ctx.names``, so they are masked
    wherever they appear in its texts. Names of the agency's own accounts are left out
    (a page signing its replies must not blank its own name in every complaint). Walks the
    whole document, so shapes added later are covered; skipped when the body holds no
    ``name"`` at all."""
    if b'name"' not in body:
        return
    found: list[str] = []
    stack: list[Any] = [doc]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        node = pop()
        if type(node) is list:
            extend(node)
            continue
        if type(node) is not dict:
            continue
        own = False
        if not _PERSON_KEYS.isdisjoint(node):
            for k in _OWNER_KEYS:
                owner = node.get(k)
                if owner is not None:
                    own = ctx.registry.account(platform, str(owner)) is not None
                    break
        for key, value in node.items():
            kind = type(value)
            if kind is str:
                if value and not own and key in _PERSON_KEYS:
                    found.append(value)
            elif (
                (kind is dict or kind is list)
                and key not in _NOT_PERSONS
                and (not own or key != "profile")
            ):
                push(value)
    if found:
        ctx.names = known_names(tuple(found))


@functools.lru_cache(maxsize=4096)
def known_names(names: tuple[str, ...]) -> KnownNames:
    """``KnownNames`` by the names a delivery carries: a citizen who writes again, or a
    conversation's retries, reuses the compiled variants."""
    return KnownNames(names)


def load_json_object(body: bytes) -> dict[str, Any]:
    """Decode a body that must be a JSON object; anything else is a 400."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson's message names the position, not the text: "unexpected character: line
        # 1 column 10 (char 9)"; kept without anything quoted.
        where = str(exc).split(":", 1)[-1].strip()[:120]
        raise MalformedDelivery("malformed_json", f"body is not JSON ({where})") from exc
    if not isinstance(doc, dict):
        raise MalformedDelivery(
            "malformed_json", f"body is a JSON {type(doc).__name__}, not an object"
        )
    return doc


def run_items(
    result: ParseResult,
    items: Iterator[tuple[int, str, Callable[[], list[Message] | None]]],
) -> ParseResult:
    """Run each item's parser in isolation so one bad item never loses the rest of a batch.

    Each item yields ``(entry_index, path, thunk)``; the thunk returns messages, or raises
    ``Skipped`` (None counts as skipped ``other``) when the item is deliberately ignored. Any
    other exception becomes a ``RejectedEntry`` naming the item's path: this is the one place
    that turns bugs and bad input alike into dead letters instead of a crashed request."""
    for index, path, thunk in items:
        try:
            messages = thunk()
        except Skipped as exc:
            result.add_skip(exc.reason)
            continue
        except PartialItem as exc:
            result.messages.extend(exc.good)
            for reason in exc.skips:
                result.add_skip(reason)
            for p in exc.problems:
                result.rejected.append(RejectedEntry(p.reason, p.detail, index, p.evidence))
            continue
        except EntryError as exc:
            detail = exc.detail if exc.detail.startswith(path) else f"{path}: {exc.detail}"
            result.rejected.append(RejectedEntry(exc.reason, detail, index, exc.evidence))
            continue
        except Exception as exc:  # the batch boundary: nothing escapes an item
            detail = f"{path}: {describe_bug(exc)}"
            result.rejected.append(RejectedEntry("malformed_entry", detail, index))
            continue
        if messages is None:
            result.add_skip("other")
        else:
            result.messages.extend(messages)
    return result


def obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EntryError("malformed_entry", f"{path} must be an object")
    return value


def opt_obj(container: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = container.get(key)
    if value is None:
        return None
    return obj(value, f"{path}.{key}")


def lst(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise EntryError("malformed_entry", f"{path} must be a list")
    return value


def ident(container: Mapping[str, Any], key: str, path: str) -> str:
    """A required platform id: a non-empty string or an integer (Meta mixes both)."""
    value = container.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise EntryError("missing_field", f"{path}.{key} missing or not an id")
    text = str(value)
    if len(text) > 256:
        raise EntryError("malformed_entry", f"{path}.{key} longer than 256 characters")
    return text


def opt_ident(container: Mapping[str, Any], key: str, path: str) -> str | None:
    if container.get(key) in (None, ""):
        return None
    return ident(container, key, path)


def opt_text(container: Mapping[str, Any], key: str, path: str) -> str | None:
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EntryError("malformed_entry", f"{path}.{key} must be a string")
    return value


def from_epoch(value: Any, path: str) -> datetime:
    """Unix time in seconds or milliseconds (Meta uses both; values past 1e11 are ms)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EntryError("bad_timestamp", f"{path} is not a unix time (seconds or ms)")
    seconds = value / 1000 if value > 1e11 else value
    if not 0 < seconds < 32503680000:  # before year 3000
        raise EntryError("bad_timestamp", f"{path} is outside 1970-3000")
    return datetime.fromtimestamp(seconds, UTC)


def when(ctx: DeliveryContext, value: Any, path: str) -> datetime:
    """The platform's time of an item, or the time ingest received it when the item has
    none: a citizen's words are never dead-lettered for a missing timestamp (a present but
    unreadable one still is: that body is broken)."""
    if value is None or value == "":
        return ctx.received_at
    return from_epoch(value, path)


def from_iso(value: Any, path: str) -> datetime:
    """An ISO 8601 / RFC 3339 instant that must carry its offset."""
    if not isinstance(value, str):
        raise EntryError("bad_timestamp", f"{path} must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EntryError("bad_timestamp", f"{path} is not an ISO 8601 instant") from exc
    if parsed.tzinfo is None:
        raise EntryError("bad_timestamp", f"{path} has no UTC offset")
    return parsed.astimezone(UTC)


def lookup_account(ctx: DeliveryContext, platform: Platform, *ids: str | None) -> Account:
    """The registry account for the first id that is known; unknown → dead letter.

    Every id that names a registry account is checked against the secrets that verified the
    delivery (``ctx.trusted``): an account of another app or sender is recorded in
    ``ctx.foreign`` and the service refuses the whole delivery."""
    found: Account | None = None
    for candidate in ids:
        if candidate:
            account = ctx.registry.account(platform, candidate)
            if account is not None:
                if ctx.trusted is not None and account.app_secret_env not in ctx.trusted:
                    ctx.foreign.append(platform.value)
                found = found or account
    if found is not None:
        return found
    raise EntryError(
        "unknown_account",
        f"no {platform.value} account in the registry for the delivery's account id",
        tuple(i for i in ids if i),
    )


def is_account_id(account: Account, user_id: str | None) -> bool:
    """True when ``user_id`` is the agency account itself (its platform id or an alias)."""
    return user_id is not None and (user_id == account.platform_id or user_id in account.aliases)


def location(lat: Any, lon: Any, name: Any = None, address: Any = None) -> Location:
    """A validated location; bad coordinates reject the item rather than being dropped.
    Name and address are masked by ``build`` (like every text)."""
    try:
        return Location(
            latitude=float(lat),
            longitude=float(lon),
            name=name if isinstance(name, str) else None,
            address=address if isinstance(address, str) else None,
        )
    except (TypeError, ValueError) as exc:
        raise EntryError(
            "bad_location", "latitude/longitude must be numbers within ±90/±180"
        ) from exc


@dataclass(slots=True)  # not frozen: a frozen init sets its 16 fields one by one, slowly
class Draft:
    """Everything a platform parser knows about one item, before privacy and registry rules."""

    platform: Platform
    kind: EventKind
    platform_message_id: str
    thread_key: str
    account: Account
    author_id: str | None
    text: str | None
    platform_time: datetime
    message_id: str | None = None
    action: Action = Action.add
    text_fetched: bool = True
    location: Location | None = None
    attachments: tuple[Attachment, ...] = ()
    is_agency_reply: bool = False
    in_reply_to: str | None = None
    delivery_status: str | None = None


def build(ctx: DeliveryContext, draft: Draft) -> Message:
    """Apply the rules every platform shares: caps, masking, pseudonyms, registry fields.

    Nothing a parser puts in a ``Draft`` leaves as it is: the message id, the thread key and
    ``in_reply_to`` are keyed pseudonyms of the raw forms the parser composed (so equal raw
    ids stay equal: dedup, threads and replies work), the author is a pseudonym, and every
    text (message, location name and address, attachment references) is masked."""
    platform = draft.platform.value
    ps = ctx.pseudonymize
    message_id = ps.message_id(draft.message_id or f"{platform}:{draft.platform_message_id}")
    if draft.message_id is None:
        platform_message_id = message_id.partition(":")[2]
    else:
        platform_message_id = ps.message_id(f"{platform}:{draft.platform_message_id}")
        platform_message_id = platform_message_id.partition(":")[2]
    text = draft.text
    if text is not None:
        if len(text) > ctx.limits.max_text_chars:
            raise EntryError(
                "text_too_long", f"text longer than {ctx.limits.max_text_chars} characters"
            )
        text = mask_text(text, ctx.names)
    return Message(
        message_id=message_id,
        platform=draft.platform,
        kind=draft.kind,
        action=draft.action,
        platform_message_id=platform_message_id,
        thread_key=ps.thread_key(draft.thread_key),
        account_id=draft.account.platform_id,
        agency_id=draft.account.agency_id,
        region_code=ctx.registry.account_region(draft.account),
        author_pseudonym=ps(platform, draft.author_id) if draft.author_id else UNKNOWN_AUTHOR,
        text=text,
        text_fetched=draft.text_fetched,
        platform_time=draft.platform_time,
        received_at=ctx.received_at,
        location=_masked_location(ctx, draft.location) if draft.location else None,
        attachments=(
            _masked_attachments(ctx, platform, draft.attachments) if draft.attachments else []
        ),
        is_agency_reply=draft.is_agency_reply,
        in_reply_to=ps.message_id(draft.in_reply_to) if draft.in_reply_to else None,
        delivery_status=draft.delivery_status,
        delivery_id=ctx.delivery_id,
        reply_ref=(
            ctx.seal.seal(draft.platform_message_id, message_id)
            if ctx.seal is not None and draft.account.acknowledge and not draft.is_agency_reply
            else None
        ),
    )


def _capped(ctx: DeliveryContext, value: str, field_name: str, limit: int) -> str:
    if len(value) > limit:
        raise EntryError("field_too_long", f"{field_name} longer than {limit} characters")
    return mask_text(value, ctx.names)


def _masked_location(ctx: DeliveryContext, loc: Location) -> Location:
    """A location's name and address are free text a citizen or sender typed: masked."""
    if loc.name is None and loc.address is None:
        return loc
    cap = ctx.limits.max_field_chars
    return loc.model_copy(
        update={
            "name": _capped(ctx, loc.name, "location.name", cap) if loc.name else loc.name,
            "address": (
                _capped(ctx, loc.address, "location.address", cap) if loc.address else loc.address
            ),
        }
    )


# An attachment's kind ("image", "video", "sticker") and MIME type ("audio/ogg; codecs=opus")
# are vocabulary, not free text: anything else is replaced rather than masked.
_KIND = re.compile(r"[a-z][a-z_-]{0,31}")
_MIME = re.compile(r"[a-z]+/[A-Za-z0-9.+-]{1,100}(?:;[ A-Za-z0-9=._-]{0,100})?")


def _masked_attachments(
    ctx: DeliveryContext, platform: str, atts: tuple[Attachment, ...]
) -> list[Attachment]:
    """A media reference is a platform id (a WhatsApp media id has 16 digits, like a NIK) or
    a URL that may carry ids, names or numbers: it becomes a keyed pseudonym, like message
    ids. A consumer that must fetch the media resolves it from the raw delivery
    (``delivery_id``). Type and MIME type are kept when they are vocabulary (``other`` and
    none otherwise)."""
    limits = ctx.limits
    if len(atts) > limits.max_attachments:
        raise EntryError("too_many_attachments", f"more than {limits.max_attachments} attachments")
    out = []
    for i, a in enumerate(atts):
        if len(a.ref) > limits.max_ref_chars:
            raise EntryError(
                "field_too_long",
                f"attachments[{i}].ref longer than {limits.max_ref_chars} characters",
            )
        mime = a.mime_type if a.mime_type and _MIME.fullmatch(a.mime_type) else None
        out.append(
            Attachment(
                type=a.type if _KIND.fullmatch(a.type) else "other",
                ref=ctx.pseudonymize.attachment(f"{platform}:{a.ref}"),
                mime_type=mime,
            )
        )
    return out
