"""Export/import of pin policies to other tools' formats: what each format can express
comes back equal, what it cannot is listed as a loss, and the output uses exactly the
names each tool documents."""

from __future__ import annotations

import datetime as dt
import plistlib
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import REPO, World
from pinwarden.apps.formats import (
    Exported,
    ExportOptions,
    export_policy,
    format_names,
    get_format,
    import_policy,
)
from pinwarden.apps.formats.hpkp import HpkpFormat
from pinwarden.errors import InputError, LossyExportError, PolicyError
from pinwarden.pins import Pin
from pinwarden.policy import Policy
from pinwarden.testing import generate_key

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
DER = serialization.Encoding.DER
IMPORTABLE = [
    "toml",
    "okhttp-kotlin",
    "okhttp-java",
    "android-nsc",
    "ios-plist",
    "trustkit-plist",
    "trustkit-swift",
    "hpkp",
]


def pin(n: int, algorithm: str = "sha256") -> str:
    size = 32 if algorithm == "sha256" else 20
    return str(Pin(algorithm, bytes([n]) * size))  # type: ignore[arg-type]


P = [pin(n) for n in range(10)]


def policy(*rules: dict[str, Any]) -> Policy:
    return Policy.from_dict({"pin": list(rules)}, source="test.toml")


def tables(p: Policy) -> list[dict[str, Any]]:
    return [rule.to_dict() for rule in p.rules]


def read_back(name: str, exported: Exported) -> Policy:
    if name == "hpkp":
        return HpkpFormat(clock=lambda: NOW).parse(exported.text.encode(), "back")
    return import_policy(exported.text.encode(), name, source="back")


# One policy per format that the format can express exactly: several rules, several
# hosts per rule, include_subdomains, and expiry / report-only / report_uri where the
# format has them.
EXACT: dict[str, Policy] = {
    "toml": policy(
        {
            "name": "api",
            "hosts": ["api.example.com", "*.cdn.example.com", "**.int.example.com"],
            "pins": [P[1], P[2], pin(3, "sha1")],
            "exclude": ["status.int.example.com"],
            "expires": "2027-06-01",
            "report_uri": "https://reports.example.net/pins",
        },
        {
            "hosts": ["a.example.org", "b.example.org"],
            "pins": [P[4]],
            "include_subdomains": True,
            "mode": "report-only",
            "expires": "2027-01-02T03:04:05+01:00",
        },
        {"hosts": ["192.0.2.7", "2001:db8::1"], "pins": [P[5]], "allow_single_pin": True},
    ),
    "okhttp-kotlin": policy(
        {
            "hosts": ["a.example.com", "b.example.com"],
            "pins": [P[1], P[2]],
            "include_subdomains": True,
        },
        {
            "hosts": ["c.example.org", "*.d.example.org", "**.e.example.org"],
            "pins": [P[3], P[4], pin(5, "sha1")],
        },
        {"hosts": ["f.example.net"], "pins": [P[6]], "allow_single_pin": True},
    ),
    "android-nsc": policy(
        {
            "hosts": ["a.example.com", "b.example.com"],
            "pins": [P[1], P[2]],
            "include_subdomains": True,
            "exclude": ["status.a.example.com", "**.legacy.b.example.com"],
            "expires": "2027-06-01",
        },
        {"hosts": ["c.example.org", "192.0.2.7"], "pins": [P[3], P[4]]},
        {
            "hosts": ["e.example.net", "**.f.example.net"],
            "pins": [P[5], P[6]],
            "expires": "2028-01-01T00:00:00Z",
        },
        {"hosts": ["g.example.net"], "pins": [P[7]], "allow_single_pin": True},
    ),
    # NSIncludesSubdomains covers x and the names one label under it: x with *.x.
    "ios-plist": policy(
        {"hosts": ["a.example.com", "*.a.example.com", "b.example.com"], "pins": [P[1], P[2]]},
        {"hosts": ["c.example.org", "*.c.example.org"], "pins": [P[3], P[4]]},
        {"hosts": ["d.example.net"], "pins": [P[5]], "allow_single_pin": True},
    ),
    "trustkit-plist": policy(
        {
            "hosts": ["a.example.com", "b.example.com"],
            "pins": [P[1], P[2]],
            "include_subdomains": True,
            "expires": "2027-06-01",
            "report_uri": "https://reports.example.net/pins",
            "exclude": ["status.a.example.com"],
        },
        {"hosts": ["c.example.org"], "pins": [P[3]], "mode": "report-only"},
        {"hosts": ["d.example.org", "**.e.example.org"], "pins": [P[4], P[5]]},
    ),
    "hpkp": policy(
        {
            "hosts": ["a.example.com", "b.example.com"],
            "pins": [P[1], P[2]],
            "include_subdomains": True,
            "expires": "2027-06-01",
            "report_uri": "https://reports.example.net/pins",
        },
        {
            "hosts": ["c.example.org", "d.example.org"],
            "pins": [P[3], P[4]],
            "mode": "report-only",
            "expires": "2026-09-01T06:30:00Z",
        },
        {
            "hosts": ["e.example.net", "**.f.example.net"],
            "pins": [P[5], P[6]],
            "expires": "2026-04-01",
        },
    ),
}
EXACT["okhttp-java"] = EXACT["okhttp-kotlin"]
EXACT["trustkit-swift"] = EXACT["trustkit-plist"]
# iOS must know which pins are CA keys and which leaf keys (the rest is ignored elsewhere).
OPTIONS = ExportOptions(
    now=NOW,
    ca_pins=frozenset(Pin.parse(p) for p in P[1:5]),
    leaf_pins=frozenset({Pin.parse(P[5])}),
)


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_policy_round_trips(name: str) -> None:
    original = EXACT[name]
    exported = export_policy(original, name, OPTIONS)
    assert exported.losses == ()
    assert tables(read_back(name, exported)) == tables(original)


def test_ios_includes_subdomains_is_the_name_and_one_label() -> None:
    """Apple: YES applies to "all subdomains of the domain that have one additional path
    component" (math.example.com, not advanced.math.example.com)."""
    exported = export_policy(EXACT["ios-plist"], "ios-plist", OPTIONS)
    pinned = plistlib.loads(exported.text.encode())["NSAppTransportSecurity"]["NSPinnedDomains"]
    assert {name: entry["NSIncludesSubdomains"] for name, entry in pinned.items()} == {
        "a.example.com": True,
        "b.example.com": False,
        "c.example.org": True,
        "d.example.net": False,
    }
    assert pinned["c.example.org"]["NSPinnedCAIdentities"] == [
        {"SPKI-SHA256-BASE64": Pin.parse(P[3]).base64},
        {"SPKI-SHA256-BASE64": Pin.parse(P[4]).base64},
    ]
    assert pinned["d.example.net"]["NSPinnedLeafIdentities"] == [
        {"SPKI-SHA256-BASE64": Pin.parse(P[5]).base64}
    ]


@pytest.mark.parametrize(
    ("hosts", "losses"),
    [
        # **.x also covers names two labels down, which YES does not.
        (
            {"hosts": ["**.example.com"]},
            [
                "pin[0] (**.example.com): **.example.com: ATS's subdomain flag covers only the "
                "names one label under example.com; written so, names two or more labels "
                "below example.com stay unpinned"
            ],
        ),
        (
            {"hosts": ["example.com"], "include_subdomains": True},
            ["names two or more labels below example.com stay unpinned"],
        ),
        # A lone *.x: YES would pin x too.
        (
            {"hosts": ["*.example.com"]},
            [
                "pin[0] (*.example.com): *.example.com: ATS has no such wildcard; written as "
                "example.com with its subdomains, which also pins example.com"
            ],
        ),
        (
            {"hosts": ["*.example.com"], "include_subdomains": True},
            ["which also pins example.com", "two or more labels below example.com"],
        ),
    ],
)
def test_ios_subdomain_patterns_other_than_x_with_one_label_are_lossy(
    hosts: dict[str, Any], losses: list[str]
) -> None:
    lossy_policy = policy({**hosts, "pins": [P[1], P[2]]})
    with pytest.raises(LossyExportError) as refused:
        export_policy(lossy_policy, "ios-plist", OPTIONS)
    assert len(refused.value.losses) == len(losses)
    for message, fragment in zip(refused.value.losses, losses, strict=True):
        assert fragment in message
    exported = export_policy(lossy_policy, "ios-plist", OPTIONS, lossy=True)
    entry = plistlib.loads(exported.text.encode())["NSAppTransportSecurity"]["NSPinnedDomains"]
    assert entry["example.com"]["NSIncludesSubdomains"] is True


def test_ios_round_trip_with_leaf_and_ca_pins(world: World) -> None:
    """ATS is exact when each rule pins only CA keys or only leaf keys, which it tells
    apart with the certificates at hand."""
    other_leaf = world.intermediate.issue("other.example.org")
    original = policy(
        {
            "hosts": ["a.example.com", "*.a.example.com", "b.example.com"],
            "pins": [str(world.intermediate.pin), str(world.root.pin)],
        },
        {
            "hosts": ["c.example.org", "d.example.org"],
            "pins": [str(world.leaf.pin), str(other_leaf.pin)],
        },
    )
    certificates = tuple(
        c.public_bytes(DER)
        for c in (world.leaf.cert, other_leaf.cert, world.intermediate.cert, world.root.cert)
    )
    exported = export_policy(original, "ios-plist", ExportOptions(certificates=certificates))
    assert exported.losses == ()
    document = plistlib.loads(exported.text.encode())
    pinned = document["NSAppTransportSecurity"]["NSPinnedDomains"]
    assert list(pinned) == ["a.example.com", "b.example.com", "c.example.org", "d.example.org"]
    assert pinned["a.example.com"]["NSIncludesSubdomains"] is True
    assert pinned["b.example.com"]["NSIncludesSubdomains"] is False
    assert pinned["a.example.com"]["NSPinnedCAIdentities"] == [
        {"SPKI-SHA256-BASE64": world.intermediate.pin.base64},
        {"SPKI-SHA256-BASE64": world.root.pin.base64},
    ]
    assert "NSPinnedLeafIdentities" not in pinned["a.example.com"]
    assert pinned["c.example.org"]["NSIncludesSubdomains"] is False
    assert pinned["c.example.org"]["NSPinnedLeafIdentities"] == [
        {"SPKI-SHA256-BASE64": world.leaf.pin.base64},
        {"SPKI-SHA256-BASE64": other_leaf.pin.base64},
    ]
    assert "NSPinnedCAIdentities" not in pinned["c.example.org"]
    assert tables(read_back("ios-plist", exported)) == tables(original)


@pytest.mark.parametrize("lossy", [False, True])
def test_ios_unclassified_pin_refuses_the_export_even_when_lossy(world: World, lossy: bool) -> None:
    """ATS compares NSPinnedCAIdentities with CA certificates only: a backup leaf key
    guessed into that list would never match, exactly when it is needed."""
    backup = Pin.from_public_key(generate_key().public_key())
    original = policy(
        {"hosts": ["a.example.com"], "pins": [str(world.intermediate.pin), str(backup)]}
    )
    options = ExportOptions(certificates=(world.intermediate.cert.public_bytes(DER),))
    with pytest.raises(InputError) as refused:
        export_policy(original, "ios-plist", options, lossy=lossy)
    assert not isinstance(refused.value, LossyExportError)
    message = str(refused.value)
    assert message.startswith(f"ios-plist: cannot tell whether {backup} (of pin[0]) is the key")
    assert str(world.intermediate.pin) not in message  # the chain classified it
    assert "--leaf-pin (a backup key for a future leaf certificate)" in message
    assert "--ca-pin (the key of a CA you may switch to)" in message
    assert "a CA-pinned domain needs a second CA's key as its backup" in message


def test_ios_declared_leaf_backup_goes_to_leaf_identities(world: World) -> None:
    backup = Pin.from_public_key(generate_key().public_key())
    original = policy({"hosts": ["a.example.com"], "pins": [str(world.leaf.pin), str(backup)]})
    options = ExportOptions(
        certificates=(world.leaf.cert.public_bytes(DER),), leaf_pins=frozenset({backup})
    )
    exported = export_policy(original, "ios-plist", options)
    assert exported.losses == ()
    entry = plistlib.loads(exported.text.encode())["NSAppTransportSecurity"]["NSPinnedDomains"][
        "a.example.com"
    ]
    assert entry == {
        "NSIncludesSubdomains": False,
        "NSPinnedLeafIdentities": [
            {"SPKI-SHA256-BASE64": world.leaf.pin.base64},
            {"SPKI-SHA256-BASE64": backup.base64},
        ],
    }


def test_ios_declared_ca_backup_goes_to_ca_identities(world: World) -> None:
    other_ca = Pin.from_public_key(generate_key().public_key())
    original = policy(
        {"hosts": ["a.example.com"], "pins": [str(world.intermediate.pin), str(other_ca)]}
    )
    options = ExportOptions(
        certificates=(world.intermediate.cert.public_bytes(DER),), ca_pins=frozenset({other_ca})
    )
    exported = export_policy(original, "ios-plist", options)
    assert exported.losses == ()
    entry = plistlib.loads(exported.text.encode())["NSAppTransportSecurity"]["NSPinnedDomains"][
        "a.example.com"
    ]
    assert entry["NSPinnedCAIdentities"] == [
        {"SPKI-SHA256-BASE64": world.intermediate.pin.base64},
        {"SPKI-SHA256-BASE64": other_ca.base64},
    ]
    assert "NSPinnedLeafIdentities" not in entry


def test_ios_declared_kind_wins_over_the_chain_with_a_note(world: World) -> None:
    original = policy(
        {"hosts": ["a.example.com"], "pins": [str(world.intermediate.pin), str(world.root.pin)]}
    )
    options = ExportOptions(
        certificates=(world.intermediate.cert.public_bytes(DER),),
        leaf_pins=frozenset({world.intermediate.pin}),
        ca_pins=frozenset({world.root.pin}),
    )
    exported = export_policy(original, "ios-plist", options, lossy=True)
    entry = plistlib.loads(exported.text.encode())["NSAppTransportSecurity"]["NSPinnedDomains"][
        "a.example.com"
    ]
    assert entry["NSPinnedLeafIdentities"] == [
        {"SPKI-SHA256-BASE64": world.intermediate.pin.base64}
    ]
    assert any(
        f"{world.intermediate.pin} is declared a leaf key (--leaf-pin) although a CA" in note
        for note in exported.notes
    )


def test_ios_pin_declared_both_ways_is_an_input_error() -> None:
    both = frozenset({Pin.parse(P[1])})
    with pytest.raises(InputError, match="declared both a leaf key and a CA key"):
        export_policy(EXACT["ios-plist"], "ios-plist", ExportOptions(leaf_pins=both, ca_pins=both))


def test_ios_declared_pin_outside_the_policy_is_noted() -> None:
    stray = Pin("sha256", b"\x42" * 32)
    options = ExportOptions(ca_pins=OPTIONS.ca_pins | {stray}, leaf_pins=OPTIONS.leaf_pins)
    exported = export_policy(EXACT["ios-plist"], "ios-plist", options)
    assert f"declared but not a pin of the policy: {stray}" in exported.notes


def test_ios_leaf_and_ca_pins_in_one_rule_are_a_loss(world: World) -> None:
    """ATS requires a match in each list present; pinwarden any one pin."""
    original = policy(
        {"hosts": ["a.example.com"], "pins": [str(world.leaf.pin), str(world.root.pin)]}
    )
    options = ExportOptions(
        certificates=(world.leaf.cert.public_bytes(DER), world.root.cert.public_bytes(DER))
    )
    exported = export_policy(original, "ios-plist", options, lossy=True)
    assert len(exported.losses) == 1
    assert "ATS then requires a match in each list" in exported.losses[0]
    assert "the backup of a CA-pinned domain must be a second CA's key" in exported.losses[0]
    entry = plistlib.loads(exported.text.encode())["NSAppTransportSecurity"]["NSPinnedDomains"][
        "a.example.com"
    ]
    assert entry["NSPinnedLeafIdentities"] == [{"SPKI-SHA256-BASE64": world.leaf.pin.base64}]
    assert entry["NSPinnedCAIdentities"] == [{"SPKI-SHA256-BASE64": world.root.pin.base64}]


def test_ios_unreadable_certificate_is_an_input_error() -> None:
    with pytest.raises(InputError, match="certificate #1"):
        export_policy(EXACT["okhttp-kotlin"], "ios-plist", ExportOptions(certificates=(b"junk",)))


# -- losses ----------------------------------------------------------------------------

SHA1 = pin(9, "sha1")
LOSSY: list[tuple[str, dict[str, Any], str]] = [
    # (format, rule, a fragment of the expected loss)
    ("okhttp-kotlin", {"expires": "2027-06-01"}, "OkHttp has no expiry"),
    ("okhttp-kotlin", {"mode": "report-only"}, "OkHttp always enforces pins"),
    ("okhttp-kotlin", {"report_uri": "https://r.example.net/"}, "cannot send violation reports"),
    ("okhttp-kotlin", {"hosts": ["**.example.com"], "exclude": ["x.example.com"]}, "cannot exempt"),
    ("okhttp-java", {"hosts": ["192.0.2.1"]}, "OkHttp pins host names, not IP addresses"),
    (
        "okhttp-java",
        {"hosts": ["*.example.com"], "include_subdomains": True},
        "pins example.com too",
    ),
    ("android-nsc", {"hosts": ["*.example.com"]}, "Android has no such wildcard"),
    ("android-nsc", {"pins": [P[1], P[2], SHA1]}, f"{SHA1}: Android takes SHA-256 pins only"),
    ("android-nsc", {"mode": "report-only"}, "Android always enforces pins"),
    ("android-nsc", {"report_uri": "https://r.example.net/"}, "Android cannot send"),
    (
        "android-nsc",
        {"hosts": ["**.example.com"], "exclude": ["*.x.example.com"]},
        "Android can only unpin a name",
    ),
    ("android-nsc", {"expires": "2027-06-01T12:00:00Z"}, "written as 2027-06-01"),
    ("ios-plist", {"expires": "2027-06-01"}, "iOS ATS has no expiry"),
    ("ios-plist", {"mode": "report-only"}, "iOS ATS always enforces"),
    ("ios-plist", {"report_uri": "https://r.example.net/"}, "iOS ATS cannot send"),
    ("ios-plist", {"hosts": ["**.example.com"], "exclude": ["x.example.com"]}, "cannot exempt"),
    ("ios-plist", {"hosts": ["*.example.com"]}, "ATS has no such wildcard"),
    ("ios-plist", {"hosts": ["**.example.com"]}, "two or more labels below example.com"),
    ("ios-plist", {"pins": [P[1], P[2], SHA1]}, "iOS ATS takes SHA-256 pins only"),
    ("ios-plist", {"hosts": ["2001:db8::1"]}, "ATS pins domain names, not IP addresses"),
    ("trustkit-plist", {"hosts": ["*.example.com"]}, "TrustKit has no such wildcard"),
    ("trustkit-plist", {"pins": [P[1], P[2], SHA1]}, "TrustKit takes SHA-256 pins only"),
    ("trustkit-swift", {"pins": [P[1]], "allow_single_pin": True}, "fewer than two pins"),
    (
        "trustkit-swift",
        {"hosts": ["**.example.com"], "exclude": ["*.x.example.com"]},
        "TrustKit can only exempt an exact name",
    ),
    ("trustkit-plist", {"expires": "2027-06-01T12:00:00Z"}, "written as 2027-06-01"),
    ("hpkp", {"hosts": ["*.example.com"]}, "HPKP has no such wildcard"),
    ("hpkp", {"hosts": ["**.example.com"], "exclude": ["x.example.com"]}, "HPKP cannot exempt"),
    ("hpkp", {"pins": [P[1], P[2], SHA1]}, "HPKP takes SHA-256 pins only"),
    ("hpkp", {"hosts": ["192.0.2.1"]}, "HPKP pins domain names, not IP addresses"),
    ("hpkp", {"expires": None}, "HPKP needs max-age; 60 days (5184000 s) assumed"),
    ("hpkp", {"expires": "2020-01-01"}, "max-age=0 tells a browser to forget the pins"),
    ("hpkp", {"pins": [P[1]], "allow_single_pin": True}, "without a backup pin"),
]


@pytest.mark.parametrize(("name", "rule", "loss"), LOSSY)
def test_each_lossy_feature_is_listed_and_refused(
    name: str, rule: dict[str, Any], loss: str
) -> None:
    base: dict[str, Any] = {"hosts": ["api.example.com"], "pins": [P[1], P[2]]}
    if name == "hpkp" and "expires" not in rule:
        base["expires"] = "2027-01-01"
    lossy_policy = policy({**base, **rule})
    options = OPTIONS
    with pytest.raises(LossyExportError) as refused:
        export_policy(lossy_policy, name, options)
    assert any(loss in message for message in refused.value.losses), refused.value.losses
    assert all(message.startswith(("pin[0]", "*.", "**.")) for message in refused.value.losses)
    assert loss in str(refused.value)
    exported = export_policy(lossy_policy, name, options, lossy=True)
    assert exported.losses == refused.value.losses
    assert exported.text


def test_losses_name_every_rule_concerned() -> None:
    lossy_policy = policy(
        {"hosts": ["a.example.com"], "pins": [P[1], P[2]], "expires": "2027-01-01"},
        {"name": "cdn", "hosts": ["b.example.com"], "pins": [P[3], P[4]], "mode": "report-only"},
    )
    losses = export_policy(lossy_policy, "okhttp-kotlin", lossy=True).losses
    assert losses == (
        "pin[0] (a.example.com): expires 2027-01-02T00:00:00+00:00: OkHttp has no expiry, "
        "so these pins would be enforced with no end date (an app nobody updates locks "
        "itself out once the keys change)",
        "pin[1] 'cdn' (b.example.com): report-only mode: OkHttp always enforces pins, so a "
        "mismatch would block the connection instead of only being reported",
    )


def test_okhttp_union_of_overlapping_rules_is_a_loss() -> None:
    overlapping = policy(
        {"hosts": ["api.example.com"], "pins": [P[1], P[2]]},
        {"hosts": ["**.example.com"], "pins": [P[3], P[4]]},
    )
    losses = export_policy(overlapping, "okhttp-kotlin", lossy=True).losses
    assert len(losses) == 1
    assert "api.example.com of pin[0]" in losses[0]
    assert "**.example.com of pin[1]" in losses[0]
    assert "both match api.example.com" in losses[0]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (["example.com"], ["*.example.com"]),  # *. does not match the name itself
        (["a.b.example.com"], ["*.example.com"]),  # nor two labels down
        (["**.a.example.com"], ["**.b.example.com"]),
    ],
)
def test_okhttp_disjoint_patterns_are_not_a_loss(first: list[str], second: list[str]) -> None:
    disjoint = policy(
        {"hosts": first, "pins": [P[1], P[2]]}, {"hosts": second, "pins": [P[3], P[4]]}
    )
    assert export_policy(disjoint, "okhttp-java").losses == ()


def test_okhttp_overlap_with_the_same_pins_is_exact() -> None:
    same = policy(
        {"hosts": ["api.example.com"], "pins": [P[1], P[2]], "name": "a"},
        {"hosts": ["**.example.com"], "pins": [P[2], P[1]], "name": "b"},
    )
    assert export_policy(same, "okhttp-kotlin").losses == ()


def test_android_exclude_is_a_nested_domain_config_with_an_empty_pin_set() -> None:
    """Android's most specific domain wins, and an empty pin set checks nothing
    (NetworkSecurityTrustManager.checkPins): the name is then pinned nowhere, as
    pinwarden's exclude says when no other rule covers it."""
    exported = export_policy(EXACT["android-nsc"], "android-nsc", OPTIONS)
    root = ET.fromstring(exported.text)
    outer = root.findall("domain-config")[0]
    nested = outer.findall("domain-config")
    assert len(nested) == 1
    assert [(d.text, d.get("includeSubdomains")) for d in nested[0].findall("domain")] == [
        ("status.a.example.com", "false"),
        ("legacy.b.example.com", "true"),
    ]
    pin_set = nested[0].find("pin-set")
    assert pin_set is not None
    assert list(pin_set) == []
    assert pin_set.attrib == {}
    assert "        <domain-config>\n            <domain " in exported.text


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        # Another rule covers the name: pinwarden falls back to it, Android would not.
        (
            [
                {"hosts": ["**.example.com"], "exclude": ["api.example.com"]},
                {"hosts": ["*.example.com"], "pins": [P[3], P[4]]},
            ],
            "pin[0] (**.example.com): exclude api.example.com: Android can only unpin",
        ),
        # The rule's own host under the excluded subtree: Android would keep pinning it.
        (
            [
                {
                    "hosts": ["**.example.com", "x.legacy.example.com"],
                    "exclude": ["**.legacy.example.com"],
                }
            ],
            "exclude **.legacy.example.com: Android can only unpin",
        ),
        # A name the rule pins as a domain of its own.
        (
            [{"hosts": ["**.example.com", "api.example.com"], "exclude": ["api.example.com"]}],
            "exclude api.example.com: Android can only unpin",
        ),
    ],
)
def test_android_excludes_it_cannot_express_are_losses(
    rules: list[dict[str, Any]], fragment: str
) -> None:
    lossy_policy = policy(*({"pins": [P[1], P[2]], **rule} for rule in rules))
    with pytest.raises(LossyExportError) as refused:
        export_policy(lossy_policy, "android-nsc")
    assert [fragment in loss for loss in refused.value.losses].count(True) == 1


def test_android_exclude_outside_the_rule_changes_nothing() -> None:
    harmless = policy(
        {"hosts": ["**.example.com"], "exclude": ["api.example.org"], "pins": [P[1], P[2]]}
    )
    exported = export_policy(harmless, "android-nsc")
    assert exported.losses == ()
    assert exported.text.count("<domain-config>") == 1


_HOSTS = ["example.com", "a.example.com", "b.example.com", "x.a.example.com", "y.x.a.example.com"]
_QUERIES = [*_HOSTS, "z.y.x.a.example.com", "q.b.example.com", "q.example.com", "q.a.example.com"]


def _android_pins(xml: str, host: str) -> frozenset[str]:
    """What Android checks for ``host`` under the config ``xml``: each domain's
    effective pin set (its domain-config's, else the enclosing one's), the exact domain
    first, else the longest includeSubdomains one (ApplicationConfig)."""
    flat: list[tuple[str, bool, frozenset[str]]] = []

    def walk(config: ET.Element, inherited: frozenset[str]) -> None:
        pin_set = config.find("pin-set")
        pins = inherited if pin_set is None else frozenset(p.text or "" for p in pin_set)
        for domain in config.findall("domain"):
            flat.append((domain.text or "", domain.get("includeSubdomains") == "true", pins))
        for child in config.findall("domain-config"):
            walk(child, pins)

    for config in ET.fromstring(xml).findall("domain-config"):
        walk(config, frozenset())
    for name, _, pins in flat:
        if name == host:
            return pins
    matches = [(name, pins) for name, sub, pins in flat if sub and host.endswith("." + name)]
    return max(matches, key=lambda m: len(m[0]))[1] if matches else frozenset()


# Android has no *. wildcard (every *. host is a loss): hosts are names and subtrees.
_HOST = st.tuples(st.sampled_from(["", "**."]), st.sampled_from(_HOSTS)).map("".join)
_EXCLUDE = st.tuples(st.sampled_from(["", "*.", "**."]), st.sampled_from(_HOSTS)).map("".join)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    rules=st.lists(
        st.fixed_dictionaries(
            {
                "hosts": st.lists(_HOST, min_size=1, max_size=2, unique=True),
                "exclude": st.lists(_EXCLUDE, max_size=2, unique=True),
                "pins": st.sampled_from([[P[1], P[2]], [P[3], P[4]]]),
            }
        ),
        min_size=1,
        max_size=3,
    )
)
def test_android_export_without_losses_pins_what_pinwarden_pins(
    rules: list[dict[str, Any]],
) -> None:
    """Whatever export calls exact pins, on Android, exactly the names pinwarden pins,
    with the same pins."""
    try:
        original = policy(*rules)
    except PolicyError:
        assume(False)
        raise
    try:
        exported = export_policy(original, "android-nsc")
    except LossyExportError:
        assume(False)
        raise
    for host in _QUERIES:
        match = original.rule_for(host)
        expected = frozenset(p.base64 for p in match.rule.pins) if match else frozenset()
        assert _android_pins(exported.text, host) == expected, host


def test_trustkit_nested_subdomain_entries_are_a_loss() -> None:
    """TrustKit takes the first includeSubdomains parent it enumerates, not the most
    specific one."""
    nested = policy(
        {"hosts": ["example.com"], "pins": [P[1], P[2]], "include_subdomains": True},
        {"hosts": ["api.example.com"], "pins": [P[3], P[4]], "include_subdomains": True},
    )
    losses = export_policy(nested, "trustkit-plist", lossy=True).losses
    assert len(losses) == 1
    assert "api.example.com (pin[1] (api.example.com)) lies under example.com" in losses[0]
    # Android picks the most specific domain, like pinwarden: exact there.
    assert export_policy(nested, "android-nsc").losses == ()


def test_same_domain_in_two_rules_keeps_the_first() -> None:
    clash = policy(
        {"hosts": ["example.com"], "pins": [P[1], P[2]]},
        {"hosts": ["**.example.com"], "pins": [P[3], P[4]]},
    )
    exported = export_policy(clash, "android-nsc", lossy=True)
    assert exported.losses == (
        "pin[1] (**.example.com): **.example.com: Android has one entry per domain name and "
        "example.com is already written for pin[0] (example.com); left out",
    )
    root = ET.fromstring(exported.text)
    assert [d.text for d in root.iter("domain")] == ["example.com"]
    # OkHttp expresses both patterns, but unions their pins on example.com.
    assert "both match example.com" in export_policy(clash, "okhttp-kotlin", lossy=True).losses[0]


def test_trustkit_single_pin_is_written_report_only() -> None:
    single = policy({"hosts": ["a.example.com"], "pins": [P[1]], "allow_single_pin": True})
    exported = export_policy(single, "trustkit-plist", lossy=True)
    entry = plistlib.loads(exported.text.encode())["TSKConfiguration"]["TSKPinnedDomains"][
        "a.example.com"
    ]
    assert entry["TSKEnforcePinning"] is False
    assert entry["TSKPublicKeyHashes"] == [Pin.parse(P[1]).base64]


# -- expiry ----------------------------------------------------------------------------


def test_expiry_dates_follow_android_and_trustkit() -> None:
    """Both stop enforcing at 00:00 of their date; pinwarden's "expires = D" is enforced
    through D, so it is written as D + 1."""
    dated = policy({"hosts": ["a.example.com"], "pins": [P[1], P[2]], "expires": "2027-06-01"})
    android = ET.fromstring(export_policy(dated, "android-nsc").text)
    pin_set = android.find("domain-config/pin-set")
    assert pin_set is not None
    assert pin_set.get("expiration") == "2027-06-02"
    trustkit = plistlib.loads(export_policy(dated, "trustkit-plist").text.encode())
    domain = trustkit["TSKConfiguration"]["TSKPinnedDomains"]["a.example.com"]
    assert domain["TSKExpirationDate"] == "2027-06-02"
    toml = export_policy(dated, "toml").text
    assert "expires = 2027-06-01\n" in toml


def test_android_expiry_is_rounded_down_to_a_day() -> None:
    noon = policy(
        {"hosts": ["a.example.com"], "pins": [P[1], P[2]], "expires": "2027-06-01T12:00:00Z"}
    )
    exported = export_policy(noon, "android-nsc", lossy=True)
    pin_set = ET.fromstring(exported.text).find("domain-config/pin-set")
    assert pin_set is not None
    assert pin_set.get("expiration") == "2027-06-01"
    back = read_back("android-nsc", exported)
    assert back.rules[0].expires_at == dt.datetime(2027, 6, 1, tzinfo=UTC)
    assert any("time zone" in note for note in exported.notes)


def test_hpkp_max_age_counts_from_now() -> None:
    dated = policy({"hosts": ["a.example.com"], "pins": [P[1], P[2]], "expires": "2026-03-02"})
    exported = export_policy(dated, "hpkp", ExportOptions(now=NOW))
    expected = int((dt.datetime(2026, 3, 3, tzinfo=UTC) - NOW).total_seconds())
    assert f"max-age={expected};" in exported.text or exported.text.rstrip().endswith(
        f"max-age={expected}"
    )
    later = NOW + dt.timedelta(days=10)
    back = HpkpFormat(clock=lambda: later).read(exported.text.encode(), "h")
    assert back.policy.rules[0].expires_at == later + dt.timedelta(seconds=expected)
    assert "relative to now" in back.notes[0]


def test_hpkp_needs_now() -> None:
    with pytest.raises(InputError, match="needs the current time"):
        export_policy(EXACT["hpkp"], "hpkp")


# -- shape of the output ---------------------------------------------------------------

ANDROID_TAGS = {
    "network-security-config",
    "base-config",
    "domain-config",
    "domain",
    "debug-overrides",
    "trust-anchors",
    "certificates",
    "pin-set",
    "pin",
}
ANDROID_ATTRIBUTES = {
    "cleartextTrafficPermitted",
    "includeSubdomains",
    "src",
    "overridePins",
    "expiration",
    "digest",
}
# Apple: NSAppTransportSecurity > NSPinnedDomains > domain > these keys.
IOS_KEYS = {
    "NSAppTransportSecurity",
    "NSPinnedDomains",
    "NSIncludesSubdomains",
    "NSPinnedCAIdentities",
    "NSPinnedLeafIdentities",
    "SPKI-SHA256-BASE64",
}
# TrustKit's TSKTrustKitConfig.m (string values of its kTSK... constants), and the
# TSKConfiguration key TrustKit reads from an Info.plist.
TRUSTKIT_KEYS = {
    "TSKConfiguration",
    "TSKSwizzleNetworkDelegates",
    "TSKPinnedDomains",
    "TSKIgnorePinningForUserDefinedTrustAnchors",
    "TSKPublicKeyHashes",
    "TSKEnforcePinning",
    "kSKExcludeSubdomainFromParentPolicy",
    "TSKIncludeSubdomains",
    "TSKPublicKeyAlgorithms",
    "TSKReportUris",
    "TSKDisableDefaultReportUri",
    "TSKExpirationDate",
}
TRUSTKIT_CONSTANTS = {"k" + key for key in TRUSTKIT_KEYS - {"TSKConfiguration"}} - {
    "kkSKExcludeSubdomainFromParentPolicy"
} | {"kTSKExcludeSubdomainFromParentPolicy"}


def keys_outside_domains(value: object, domains_key: str) -> set[str]:
    """Every dictionary key, except the domain names right below ``domains_key``."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(key)
            if key == domains_key:
                for config in item.values():
                    found |= keys_outside_domains(config, domains_key)
            else:
                found |= keys_outside_domains(item, domains_key)
    elif isinstance(value, list):
        for item in value:
            found |= keys_outside_domains(item, domains_key)
    return found


def test_android_xml_uses_documented_names_and_layout() -> None:
    text = export_policy(EXACT["android-nsc"], "android-nsc").text
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<network-security-config>\n')
    assert "\n    <domain-config>\n        <domain " in text
    root = ET.fromstring(text)
    elements = list(root.iter())
    assert {e.tag for e in elements} <= ANDROID_TAGS
    assert {a for e in elements for a in e.attrib} <= ANDROID_ATTRIBUTES
    assert {e.get("digest") for e in root.iter("pin")} == {"SHA-256"}
    assert {e.get("includeSubdomains") for e in root.iter("domain")} == {"true", "false"}


def test_ios_plist_uses_apples_keys() -> None:
    every_pin_a_ca = ExportOptions(ca_pins=frozenset(map(Pin.parse, P)))
    text = export_policy(EXACT["android-nsc"], "ios-plist", every_pin_a_ca, lossy=True).text
    document = plistlib.loads(text.encode())
    assert keys_outside_domains(document, "NSPinnedDomains") == IOS_KEYS - {
        "NSPinnedLeafIdentities"
    }


@pytest.mark.parametrize("name", ["trustkit-plist", "trustkit-swift"])
def test_trustkit_uses_trustkits_keys(name: str) -> None:
    text = export_policy(EXACT["trustkit-plist"], name).text
    if name == "trustkit-plist":
        document = plistlib.loads(text.encode())
        assert keys_outside_domains(document, "TSKPinnedDomains") <= TRUSTKIT_KEYS
        assert document["TSKConfiguration"]["TSKSwizzleNetworkDelegates"] is False
        for config in document["TSKConfiguration"]["TSKPinnedDomains"].values():
            assert config.get("TSKDisableDefaultReportUri", True) is True
    else:
        assert "let trustKitConfig: [String: Any] = [" in text
        constants = set(re.findall(r"\bk[A-Za-z]+\b", text))
        assert constants
        assert constants <= TRUSTKIT_CONSTANTS
        assert "kTSKSwizzleNetworkDelegates: false" in text


def test_okhttp_code_shapes() -> None:
    kotlin = export_policy(EXACT["okhttp-kotlin"], "okhttp-kotlin").text
    java = export_policy(EXACT["okhttp-java"], "okhttp-java").text
    assert "val certificatePinner = CertificatePinner.Builder()" in kotlin
    assert kotlin.rstrip().endswith(".build()")
    assert "CertificatePinner certificatePinner = new CertificatePinner.Builder()" in java
    assert java.rstrip().endswith(".build();")
    for text in (kotlin, java):
        assert '"**.a.example.com"' in text
        assert '"*.d.example.org"' in text
        assert '"c.example.org"' in text


def test_hpkp_shape_and_obsolescence_note() -> None:
    exported = export_policy(EXACT["hpkp"], "hpkp", ExportOptions(now=NOW))
    assert any("Chrome 72, Firefox 72" in note for note in exported.notes)
    assert "Chrome 72, Firefox 72" in exported.text.splitlines()[1]
    lines = [
        line
        for line in exported.text.splitlines()
        if line and (line.startswith("# hosts:") or not line.startswith("#"))
    ]
    assert lines[0] == "# hosts: a.example.com, b.example.com"
    assert lines[1].startswith('Public-Key-Pins: pin-sha256="')
    assert lines[1].endswith('; includeSubDomains; report-uri="https://reports.example.net/pins"')
    assert lines[3].startswith("Public-Key-Pins-Report-Only: ")
    # A rule with plain and **. hosts gets a header of each kind.
    assert lines[4] == "# hosts: e.example.net"
    assert "includeSubDomains" not in lines[5]
    assert lines[6] == "# hosts: f.example.net"
    assert lines[7] == lines[5] + "; includeSubDomains"
    assert len(lines) == 8


def test_every_format_is_registered() -> None:
    for name in IMPORTABLE:
        assert name in format_names()
        fmt = get_format(name)
        assert fmt.name == name
        assert fmt.importable
        assert fmt.summary
        assert fmt.suffix.startswith(".")


def test_docs_examples_are_what_export_writes() -> None:
    text = (REPO / "docs" / "formats.md").read_text(encoding="utf-8")
    example_policy = Policy.from_toml(re.findall(r"```toml\n(.*?)```", text, re.DOTALL)[0])
    examples = re.findall(r"<!-- example: ([a-z-]+) -->\n```[a-z]*\n(.*?)```", text, re.DOTALL)
    assert [name for name, _ in examples] == [
        "okhttp-kotlin",
        "android-nsc",
        "ios-plist",
        "trustkit-swift",
        "hpkp",
    ]
    # Both example pins are CA keys (DigiCert's and Let's Encrypt's), as docs/formats.md
    # says for ios-plist (--ca-pin).
    options = ExportOptions(
        now=dt.datetime(2026, 1, 1, tzinfo=UTC),
        ca_pins=frozenset(pin for rule in example_policy.rules for pin in rule.pins),
    )
    for name, block in examples:
        assert export_policy(example_policy, name, options, lossy=True).text == block, name
    # Every format the registry knows is described.
    for name in format_names():
        assert f"`{name}`" in text, name
