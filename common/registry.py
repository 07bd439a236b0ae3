"""The deployment registry: agencies and the platform accounts they answer on.

One YAML file (``ADUAN_REGISTRY_FILE``) validated with pydantic. Errors name the file, the
entry and the field, because the people editing it are operators, not developers. Lookups
are dict-backed (O(1)) so hundreds or thousands of accounts cost nothing per delivery."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
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


class RegistryError(ValueError):
    """A registry file that cannot be used; the message says where and why."""


class Agency(BaseModel):
    """An OPD (Organisasi Perangkat Daerah): a Dinas, Badan, Kecamatan, RSUD, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str
    kind: str = Field(description="generic agency kind, e.g. public_works")
    region_code: str = Field(pattern=r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$")
    timezone: str = "Asia/Jakarta"
    channels: list[str] = Field(default_factory=list, description="notification targets")
    calendar: str | None = Field(default=None, description="business calendar id (route config)")

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
    region_code: str | None = Field(default=None, description="defaults to the agency's region")
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


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agencies: list[Agency]
    accounts: list[Account]

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

    def model_post_init(self, __context: Any) -> None:
        """Index once so every lookup on the hot path is a dict hit."""
        self._agencies = {a.id: a for a in self.agencies}
        for acc in self.accounts:
            for pid in (acc.platform_id, *acc.aliases):
                self._accounts[(acc.platform, pid)] = acc
        for a in self.agencies:
            self._by_kind_region.setdefault((a.kind, a.region_code), a)

    def agency(self, agency_id: str) -> Agency | None:
        return self._agencies.get(agency_id)

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
