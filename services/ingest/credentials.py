"""Which secret authenticates which accounts: the registry's accounts grouped by secret.

A secret authenticates accounts, not a platform. Every account names the variable holding
its secret (``app_secret_env``); accounts naming the same variable share one app (Meta, X)
or one sender (generic). Each group has a URL label, so a callback can name its app before
anything is read: ``/webhooks/<platform>/<label>``.

* Meta and X: the account's ``app`` label, else one derived from the variable's name
  (``ADUAN_META_APP_SECRET`` → ``aduan-meta-app-secret``).
* generic: the account id itself (``/webhooks/generic/web-sby`` or ``X-Aduan-Account``).

The service checks a delivery against the secret its URL names (or, for Meta and X without
a label, every secret of the platform, no early exit) and then requires every registry
account the delivery names to belong to a secret that verified it.

Rotation: ``<VARIABLE>_PREVIOUS``, when set, is accepted as a second value of the same
secret (same accounts), so the platform can switch to the new value while ingest still
accepts the old one (docs/operations.md, "Rotating secrets"). The CRC answer and nothing
else uses only the current value."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from common.registry import Account, Registry
from schemas.messages import Platform

log = logging.getLogger("aduan.ingest")


@dataclass(frozen=True, slots=True)
class Credential:
    """One secret and the accounts it authenticates."""

    platform: Platform
    label: str
    env: str  # the ``app_secret_env`` naming the secret; ``DeliveryContext.trusted`` holds these
    secret: str
    verify_token: str | None
    account_ids: frozenset[str]
    previous: str | None = None  # ``<env>_PREVIOUS`` during a rotation

    def values(self) -> tuple[str, ...]:
        """The secret values a signature may be made with: current, then previous."""
        return (self.secret,) if self.previous is None else (self.secret, self.previous)


def default_label(env: str) -> str:
    """The URL label of an app whose accounts set no ``app``: its secret's variable name."""
    return env.lower().replace("_", "-")


class Credentials:
    """The credentials of one deployment, by platform and label."""

    def __init__(self, registry: Registry, secret: Callable[[str], str | None]) -> None:
        self._by_label: dict[tuple[Platform, str], Credential] = {}
        self._by_platform: dict[Platform, list[Credential]] = {p: [] for p in Platform}
        groups: dict[tuple[Platform, str], list[Account]] = {}
        for account in registry.accounts:
            groups.setdefault((account.platform, _label(account)), []).append(account)
        for (platform, label), accounts in sorted(groups.items()):
            first = accounts[0]
            value = secret(first.app_secret_env)
            if not value:
                log.warning(
                    "secret %s is not set: deliveries for %s/%s will be refused",
                    first.app_secret_env,
                    platform.value,
                    label,
                )
                continue
            token = secret(first.verify_token_env) if first.verify_token_env else None
            ids = frozenset(pid for a in accounts for pid in (a.platform_id, *a.aliases))
            previous = secret(f"{first.app_secret_env}_PREVIOUS") or None
            cred = Credential(platform, label, first.app_secret_env, value, token, ids, previous)
            self._by_label[(platform, label)] = cred
            self._by_platform[platform].append(cred)

    def get(self, platform: Platform, label: str) -> Credential | None:
        return self._by_label.get((platform, label))

    def of(self, platform: Platform) -> list[Credential]:
        return self._by_platform[platform]


def _label(account: Account) -> str:
    if account.platform is Platform.generic:
        return account.platform_id
    return account.app or default_label(account.app_secret_env)
