"""The platform parsers' toolkit: errors, the delivery context, ``Draft`` and ``build``,
and the small validators every parser uses. Pure (no I/O); imported by the platform modules,
never importing them (``app`` → ``platforms`` → ``base``).

Error model, from coarse to fine:

* ``MalformedDelivery``: the body as a whole is unusable (not JSON, unknown ``object``): the
  HTTP layer answers 400 and dead-letters the delivery.
* ``RejectedEntry``: one item of a batch is unusable (missing field, unknown account): it is
  dead-lettered alone and the rest of the batch goes through.
* ``skipped``: an item we deliberately ignore (reactions, read receipts, profile updates): it
  is counted, not dead-lettered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from common.refusal import DETAIL_MAX, Refusal
from common.registry import Account, Registry
from schemas.messages import Action, Attachment, EventKind, Location, Message, Platform
from services.ingest.privacy import Pseudonymizer, mask_text

UNKNOWN_AUTHOR = "u_unknown"
"""Pseudonym used when the platform does not say who wrote the item (Instagram mentions)."""


class MalformedDelivery(Refusal):
    """The body as a whole is unusable (not JSON, unknown object type): answer 400."""


class EntryError(Refusal):
    """One item of a batch cannot become a message; ``reason`` is a short machine code."""


class PartialItem(EntryError):
    """The outcome of an item made of sub-items (a WhatsApp change holding many messages)
    when some failed or were skipped: carries the good messages along so only the bad
    sub-items are dead-lettered and every skipped one is counted."""

    def __init__(self, good: list[Message], problems: list[RejectedEntry], skipped: int) -> None:
        reason = problems[0].reason if problems else "skipped"
        super().__init__(reason, "; ".join(p.detail for p in problems)[:DETAIL_MAX])
        self.good = good
        self.problems = problems
        self.skipped = skipped


@dataclass(frozen=True, slots=True)
class RejectedEntry:
    """One entry of a batch that could not become a message; it is dead-lettered alone."""

    reason: str
    detail: str
    entry_index: int | None = None


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
class DeliveryContext:
    delivery_id: str
    received_at: datetime
    registry: AccountLookup
    pseudonymize: Pseudonymizer


@dataclass(slots=True)
class ParseResult:
    messages: list[Message] = field(default_factory=list)
    rejected: list[RejectedEntry] = field(default_factory=list)
    skipped: int = 0  # entries deliberately ignored (reactions, ...), counted not dead-lettered


# --- helpers shared by the platform parsers ------------------------------------------------


def load_json_object(body: bytes) -> dict[str, Any]:
    """Decode a body that must be a JSON object; anything else is a 400."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedDelivery("malformed_json", f"body is not JSON: {exc}") from exc
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

    Each item yields ``(entry_index, path, thunk)``; the thunk returns messages, or None when
    the item is deliberately skipped. Any exception becomes a ``RejectedEntry`` naming the item's
    path: this is the one place that turns bugs and bad input alike into dead letters instead
    of a crashed request."""
    for index, path, thunk in items:
        try:
            messages = thunk()
        except PartialItem as exc:
            result.messages.extend(exc.good)
            result.skipped += exc.skipped
            for p in exc.problems:
                result.rejected.append(RejectedEntry(p.reason, p.detail, index))
            continue
        except EntryError as exc:
            detail = exc.detail if exc.detail.startswith(path) else f"{path}: {exc.detail}"
            result.rejected.append(RejectedEntry(exc.reason, detail, index))
            continue
        except Exception as exc:  # the batch boundary: nothing escapes an item
            detail = f"{path}: {type(exc).__name__}: {exc}"[:1000]
            result.rejected.append(RejectedEntry("malformed_entry", detail, index))
            continue
        if messages is None:
            result.skipped += 1
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
        raise EntryError("bad_timestamp", f"{path} is not a unix time: {value!r}")
    seconds = value / 1000 if value > 1e11 else value
    if not 0 < seconds < 32503680000:  # before year 3000
        raise EntryError("bad_timestamp", f"{path} out of range: {value!r}")
    return datetime.fromtimestamp(seconds, UTC)


def from_iso(value: Any, path: str) -> datetime:
    """An ISO 8601 / RFC 3339 instant that must carry its offset."""
    if not isinstance(value, str):
        raise EntryError("bad_timestamp", f"{path} must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EntryError("bad_timestamp", f"{path}: {exc}") from exc
    if parsed.tzinfo is None:
        raise EntryError("bad_timestamp", f"{path} has no UTC offset: {value!r}")
    return parsed.astimezone(UTC)


def lookup_account(ctx: DeliveryContext, platform: Platform, *ids: str | None) -> Account:
    """The registry account for the first id that is known; unknown → dead letter."""
    for candidate in ids:
        if candidate:
            account = ctx.registry.account(platform, candidate)
            if account is not None:
                return account
    shown = ", ".join(i for i in ids if i) or "<none>"
    raise EntryError("unknown_account", f"no {platform.value} account {shown} in the registry")


def is_account_id(account: Account, user_id: str | None) -> bool:
    """True when ``user_id`` is the agency account itself (its platform id or an alias)."""
    return user_id is not None and (user_id == account.platform_id or user_id in account.aliases)


def location(lat: Any, lon: Any, name: Any = None, address: Any = None) -> Location:
    """A validated location; bad coordinates reject the item rather than being dropped."""
    try:
        return Location(
            latitude=float(lat),
            longitude=float(lon),
            name=name if isinstance(name, str) else None,
            address=mask_text(address) if isinstance(address, str) else None,
        )
    except (TypeError, ValueError) as exc:
        raise EntryError("bad_location", f"invalid coordinates {lat!r}, {lon!r}") from exc


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
    """Apply the rules every platform shares: masking, pseudonyms, registry fields."""
    platform = draft.platform.value
    return Message(
        message_id=draft.message_id or f"{platform}:{draft.platform_message_id}",
        platform=draft.platform,
        kind=draft.kind,
        action=draft.action,
        platform_message_id=draft.platform_message_id,
        thread_key=draft.thread_key,
        account_id=draft.account.platform_id,
        agency_id=draft.account.agency_id,
        region_code=ctx.registry.account_region(draft.account),
        author_pseudonym=(
            ctx.pseudonymize(platform, draft.author_id) if draft.author_id else UNKNOWN_AUTHOR
        ),
        text=mask_text(draft.text) if draft.text is not None else None,
        text_fetched=draft.text_fetched,
        platform_time=draft.platform_time,
        received_at=ctx.received_at,
        location=draft.location,
        attachments=list(draft.attachments),
        is_agency_reply=draft.is_agency_reply,
        in_reply_to=draft.in_reply_to,
        delivery_status=draft.delivery_status,
        delivery_id=ctx.delivery_id,
    )
