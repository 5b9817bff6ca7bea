"""``toml``: pinwarden's own policy file (docs/policy.md). Exact both ways."""

from __future__ import annotations

import datetime as dt
from typing import Any

import tomli_w

from pinwarden.apps.formats import Exported, ExportOptions
from pinwarden.apps.formats._common import Imported, check_size, utc
from pinwarden.errors import PolicyError
from pinwarden.policy import PinRule, Policy

__all__ = ["FORMAT", "TomlFormat", "dumps", "policy_document"]


def _expires(expires_at: dt.datetime) -> dt.date | dt.datetime:
    """A TOML date when the expiry is a whole UTC day (``expires = D`` means "enforced
    through D", i.e. until D+1 00:00Z), else the exact instant as an offset datetime."""
    moment = utc(expires_at)
    if moment.time() == dt.time(0) and moment.date() > dt.date.min:
        return moment.date() - dt.timedelta(days=1)
    return moment


def _rule_table(rule: PinRule) -> dict[str, Any]:
    table = rule.to_dict()
    if rule.expires_at is not None:
        table["expires"] = _expires(rule.expires_at)
    return table


def policy_document(policy: Policy) -> dict[str, Any]:
    """The TOML document of a policy as a dict (``version`` and ``[[pin]]`` tables)."""
    return {"version": 1, "pin": [_rule_table(rule) for rule in policy.rules]}


def dumps(policy: Policy) -> str:
    """The policy as a pinwarden TOML file that :meth:`Policy.from_toml` reads back equal."""
    return tomli_w.dumps(policy_document(policy))


class TomlFormat:
    """The ``toml`` format: pinwarden's own policy file."""

    name = "toml"
    summary = "pinwarden's own policy file (docs/policy.md); exact"
    suffix = ".toml"
    importable = True

    def export(self, policy: Policy, options: ExportOptions) -> Exported:
        return Exported(dumps(policy))

    def read(self, data: bytes, source: str) -> Imported:
        check_size(data, source)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"not UTF-8 text (byte {exc.start})", source=source) from None
        return Imported(Policy.from_toml(text, source=source))

    def parse(self, data: bytes, source: str) -> Policy:
        return self.read(data, source).policy


FORMAT = TomlFormat()
