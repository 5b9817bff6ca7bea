"""Reading other tools' pin configs: every malformed input gives a FormatError (or another
InputError) naming the file and what is wrong, and no input — however hostile — raises
anything else."""

from __future__ import annotations

import datetime as dt
import plistlib
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinwarden.apps.formats import ExportOptions, export_policy, import_policy
from pinwarden.errors import FormatError, InputError
from pinwarden.pins import Pin
from pinwarden.policy import Policy

SOURCE = "bad.cfg"
A = Pin("sha256", b"\x01" * 32)
B = Pin("sha256", b"\x02" * 32)
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


def kotlin(body: str) -> bytes:
    return f"val certificatePinner = CertificatePinner.Builder()\n{body}\n.build()\n".encode()


def nsc(body: str) -> bytes:
    return f"<network-security-config>{body}</network-security-config>".encode()


def domain_config(domain: str = "<domain>a.example.com</domain>", pins: str = "") -> str:
    pins = pins or f'<pin digest="SHA-256">{A.base64}</pin><pin digest="SHA-256">{B.base64}</pin>'
    return f"<domain-config>{domain}<pin-set>{pins}</pin-set></domain-config>"


def ats(domains: Any) -> bytes:
    return plistlib.dumps({"NSAppTransportSecurity": {"NSPinnedDomains": domains}})


IOS_OK = {"NSPinnedCAIdentities": [{"SPKI-SHA256-BASE64": A.base64}]}


def trustkit(domains: Any, **config: Any) -> bytes:
    return plistlib.dumps({"TSKConfiguration": {"TSKPinnedDomains": domains, **config}})


TK_OK = {"TSKPublicKeyHashes": [A.base64, B.base64]}
BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
    b"<network-security-config>&lol2;</network-security-config>"
)
HPKP_OK = f'pin-sha256="{A.base64}"; pin-sha256="{B.base64}"'


def hpkp_max_age(value: str | None) -> bytes:
    directive = "max-age" if value is None else f"max-age={value}"
    return f"# hosts: a.example.com\nPublic-Key-Pins: {HPKP_OK}; {directive}".encode()


MALFORMED: list[tuple[str, bytes, str]] = [
    # (format, input, fragment of the message after "bad.cfg: ")
    ("toml", b"[[pin]\n", "not valid TOML"),
    ("toml", b"\xff\xfe", "not UTF-8"),
    ("toml", b'[[pin]]\nhosts = ["a.example.com"]\n', "pin[0].pins"),
    ("okhttp-kotlin", b"", "expected CertificatePinner.Builder(), found the end"),
    ("okhttp-kotlin", kotlin('.add("a.example.com", "sha256/xyz")'), "line 2: pin"),
    ("okhttp-kotlin", kotlin(f'.add("a.example.com", "{A.base64}")'), "start with sha256/"),
    ("okhttp-kotlin", kotlin('.add("a.example.com")'), 'line 2: add("a.example.com") has no pins'),
    ("okhttp-kotlin", kotlin(f'.add("a*.example.com", "{A}", "{B}")'), "line 2: host pattern"),
    ("okhttp-kotlin", kotlin(f'.add("a.example.com", "{A}")\n.pin()'), "line 3: expected add"),
    ("okhttp-kotlin", kotlin('.add("a.example.com'), "line 2: unterminated"),
    ("okhttp-kotlin", kotlin("/* never closed"), "line 2: unterminated /* comment"),
    ("okhttp-kotlin", kotlin("{ }"), "line 2: unexpected '{'"),
    ("okhttp-kotlin", b"val p = OkHttpClient.Builder().build()", "found OkHttpClient.Builder"),
    ("okhttp-java", b"\xc3\x28", "not UTF-8"),
    (
        "okhttp-java",
        b"CertificatePinner p = new CertificatePinner.Builder()\n"
        + f'.add("x.example.com", "{A}")'.encode(),
        "line 2: expected '.', found the end",
    ),
    ("android-nsc", b"<network-security-config>", "not well-formed XML"),
    ("android-nsc", b'<?xml version="1.0" encoding="utf-9"?><a/>', "unknown encoding"),
    ("android-nsc", BILLION_LAUGHS, "DTDs and entities are not allowed"),
    ("android-nsc", b"<resources/>", "the root element must be <network-security-config>"),
    ("android-nsc", nsc("<domain-config><domian/></domain-config>"), "unknown element <domian>"),
    (
        "android-nsc",
        nsc(domain_config(pins=f'<pin digest="SHA-1">{A.base64}</pin>')),
        "domain-config[1]/pin-set[1]/pin[1]: digest 'SHA-1': Android supports SHA-256 only",
    ),
    (
        "android-nsc",
        nsc(domain_config(pins='<pin digest="SHA-256">n@pe</pin>')),
        "not valid base64",
    ),
    ("android-nsc", nsc(domain_config(pins="<pin>x</pin>")), 'needs digest="SHA-256"'),
    (
        "android-nsc",
        nsc(domain_config().replace("<pin-set>", '<pin-set expiration="2027/06/01">')),
        "is not a yyyy-MM-dd date",
    ),
    ("android-nsc", nsc(domain_config("<domain>*.example.com</domain>")), "no wildcards"),
    (
        "android-nsc",
        nsc(domain_config("<domain>a.example.com</domain><domain>A.example.com</domain>")),
        "domain-config[1]/domain[2]: domain 'A.example.com' is listed twice",
    ),
    ("android-nsc", nsc("<domain-config><pin-set/></domain-config>"), "needs at least one"),
    (
        "android-nsc",
        nsc("<base-config><pin-set/></base-config>"),
        "only allowed in a <domain-config>",
    ),
    (
        "android-nsc",
        nsc(domain_config('<domain includeSubdomains="yes">a.example.com</domain>')),
        "includeSubdomains must be true or false",
    ),
    ("android-nsc", nsc("<base-config/>"), "no pinned hosts found"),
    ("android-nsc", nsc('<domain-config tls="1.3"/>'), "unknown attribute 'tls'"),
    (
        "android-nsc",
        nsc(domain_config("<domain>bad_label-.example.com</domain>")),
        "domain-config[1]/domain[1]",
    ),
    ("ios-plist", b"not a plist", "not a readable property list"),
    ("ios-plist", plistlib.dumps([1, 2]), "the plist's root must be a dictionary"),
    ("ios-plist", plistlib.dumps({"CFBundleName": "x"}), "no NSAppTransportSecurity"),
    ("ios-plist", ats({"a.example.com": {**IOS_OK, "NSPinnedCAIdentity": []}}), "unknown key(s)"),
    (
        "ios-plist",
        ats({"a.example.com": {**IOS_OK, "NSIncludesSubdomains": "YES"}}),
        "NSPinnedDomains.a.example.com.NSIncludesSubdomains: must be a boolean",
    ),
    (
        "ios-plist",
        ats({"a.example.com": {"NSPinnedCAIdentities": [{"SPKI-SHA256": A.base64}]}}),
        "NSPinnedCAIdentities[0]: must be a dictionary with the one key SPKI-SHA256-BASE64",
    ),
    ("ios-plist", ats({"a.example.com": {}}), "needs NSPinnedCAIdentities or"),
    ("ios-plist", ats({"*.example.com": IOS_OK}), "ATS has no wildcards"),
    ("ios-plist", ats({"a.example.com": []}), "must be a dictionary"),
    ("ios-plist", b"bplist00" + b"\x00" * 26 + b"\xff" * 8 + b"\x00" * 16, "trailer"),
    (
        "ios-plist",
        ats({"a.example.com": {"NSPinnedLeafIdentities": [{"SPKI-SHA256-BASE64": "AAAA"}]}}),
        "decodes to 3 bytes; a SHA-256 pin has 32",
    ),
    ("trustkit-plist", trustkit({"a.example.com": {**TK_OK, "TSKPinsHashes": []}}), "unknown key"),
    (
        "trustkit-plist",
        trustkit({"a.example.com": {"TSKPublicKeyHashes": [A.base64]}}),
        "1 pin(s): TrustKit refuses to start with fewer than 2 for an enforced domain",
    ),
    (
        "trustkit-plist",
        trustkit({"a.example.com": {**TK_OK, "TSKExpirationDate": "next year"}}),
        "is not a yyyy-MM-dd date",
    ),
    (
        "trustkit-plist",
        trustkit(
            {
                "example.com": {**TK_OK, "TSKIncludeSubdomains": True},
                "x.example.com": {"kSKExcludeSubdomainFromParentPolicy": True, **TK_OK},
            }
        ),
        "allows no other key",
    ),
    (
        "trustkit-plist",
        trustkit(
            {
                "example.com": TK_OK,
                "x.example.com": {"kSKExcludeSubdomainFromParentPolicy": True},
            }
        ),
        "x.example.com is excluded, but no entry with subdomains covers it",
    ),
    ("trustkit-plist", trustkit({}), "TSKPinnedDomains must be a non-empty dictionary"),
    ("trustkit-plist", trustkit({"a.example.com": TK_OK}, TSKSwizzle=True), "unknown key"),
    ("trustkit-plist", plistlib.dumps({"CFBundleName": "x"}), "no TSKConfiguration"),
    (
        "trustkit-plist",
        trustkit({"a.example.com": {**TK_OK, "TSKReportUris": ["ftp://x.example/"]}}),
        "TSKPinnedDomains.a.example.com.TSKReportUris[0]: 'ftp://x.example/' is not an http(s) URL",
    ),
    ("trustkit-swift", b"let c = [kTSKFrobnicate: true]", "line 1: kTSKFrobnicate is not"),
    ("trustkit-swift", b'let c = [\n  "\\(x)": 1]', "line 2: unterminated or unreadable string"),
    ("trustkit-swift", b"let c = [\n", "line 1: expected a value, found the end"),
    ("trustkit-swift", b"let c = [kTSKPinnedDomains: let]", "expected a string, true, false"),
    ("trustkit-swift", b"func f() {}", "line 1: unexpected '('"),
    ("trustkit-swift", b"let c = [kTSKPinnedDomains: [:], kTSKPinnedDomains: [:]]", "twice"),
    ("trustkit-swift", b'let c = ["a", "b"]', "must be a [String: Any] dictionary"),
    ("trustkit-swift", b"let c = [:]\nc", "line 2: expected the end"),
    ("trustkit-swift", b"let c = " + b"[" * 40, "nested literals"),
    ("hpkp", f"Public-Key-Pins: {HPKP_OK}; max-age=10".encode(), "line 1: a header carries no"),
    ("hpkp", b"# hosts: a.example.com\n", "line 1: the hosts comment has no header after it"),
    ("hpkp", f"# hosts: a.example.com\nPublic-Key-Pins: {HPKP_OK}".encode(), "max-age"),
    (
        "hpkp",
        f'# hosts: a.example.com\nPublic-Key-Pins: pin-sha1="{A.base64}"; max-age=1'.encode(),
        "line 2: pin-sha1: RFC 7469 defines pin-sha256 only",
    ),
    (
        "hpkp",
        f"# hosts: a.example.com\nPublic-Key-Pins: {HPKP_OK}; max-age=1; includeSubdomain".encode(),
        "unknown directive(s) includesubdomain",
    ),
    (
        "hpkp",
        f"# hosts: a.example.com\nPublic-Key-Pins: {HPKP_OK}; max-age=1; max-age=2".encode(),
        "max-age is given twice",
    ),
    ("hpkp", b"Strict-Transport-Security: max-age=1", "expected a '# hosts: ...' comment"),
    ("hpkp", b'# hosts: a.example.com\nPublic-Key-Pins: pin-sha256="abc', "unterminated quoted"),
    (
        "hpkp",
        f"# hosts: *.example.com\nPublic-Key-Pins: {HPKP_OK}; max-age=1".encode(),
        "HPKP has no wildcards",
    ),
    (
        "hpkp",
        f"# hosts: a.example.com\nPublic-Key-Pins: {HPKP_OK}; max-age=99999999999".encode(),
        "beyond any real pin's life",
    ),
    (
        "hpkp",
        f"# hosts: a.example.com\n# hosts: b.example.com\nPublic-Key-Pins: {HPKP_OK}".encode(),
        "line 2: the hosts comment of line 1 has no header",
    ),
    # str.isdigit() takes these; int() then raises on "²" and reads "٣" as 3.
    ("hpkp", hpkp_max_age('"²"'), "line 2: max-age='²' is not a number of seconds"),
    ("hpkp", hpkp_max_age('"٣"'), "line 2: max-age='٣' is not a number of seconds"),
    ("hpkp", hpkp_max_age("²"), "line 2: max-age= has no value"),
    ("hpkp", hpkp_max_age("1e3"), "line 2: max-age='1e3' is not a number of seconds"),
    ("hpkp", hpkp_max_age("-1"), "line 2: max-age='-1' is not a number of seconds"),
    ("hpkp", hpkp_max_age("1" * 12), "is not a number of seconds (up to 11 digits 0-9)"),
    ("hpkp", hpkp_max_age(None), "line 2: max-age has no value"),
]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    MALFORMED,
    ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(MALFORMED)],
)
def test_malformed_input_is_a_clear_error(name: str, data: bytes, message: str) -> None:
    with pytest.raises(InputError) as caught:
        import_policy(data, name, source=SOURCE)
    text = str(caught.value)
    assert text.startswith(f"{SOURCE}: "), text
    assert message in text, text
    if name != "toml":  # the policy file's own errors are PolicyErrors
        assert isinstance(caught.value, FormatError)


def test_oversized_input_is_refused() -> None:
    for name in IMPORTABLE:
        with pytest.raises(InputError, match="too large"):
            import_policy(b" " * (5 * 1024 * 1024), name, source=SOURCE)


def test_export_only_format_cannot_be_imported() -> None:
    with pytest.raises(InputError, match="export-only"):
        import_policy(b"", "python", source=SOURCE)


def test_unknown_format() -> None:
    with pytest.raises(InputError, match="unknown format 'nope'"):
        import_policy(b"", "nope")


# -- what the readers accept besides what export writes ---------------------------------


def test_okhttp_reads_hand_written_code() -> None:
    java = f"""
    package com.example;
    import okhttp3.CertificatePinner;

    // Pins for the API (rotated 2026-01).
    private static final CertificatePinner PINNER = new okhttp3.CertificatePinner.Builder()
        .add("api.example.com", "{A}", "{B}") /* current + backup */
        .add("api.example.com", "sha1/{"A" * 27}=")
        .add("**.example.org",
             "{A}", "{B}")
        .build();
    """.encode()
    imported = import_policy(java, "okhttp-java", source="Pins.java")
    assert [r.to_dict() for r in imported.rules] == [
        {
            "hosts": ["api.example.com"],
            "pins": [str(A), str(B), "sha1/" + "A" * 27 + "="],
            "mode": "enforce",
        },
        {
            "hosts": ["example.org"],
            "pins": [str(A), str(B)],
            "include_subdomains": True,
            "mode": "enforce",
        },
    ]
    kotlin_code = kotlin(f'.add(\n  "x.example.com",\n  "{A}",\n)') + b"// done\n"
    rules = import_policy(kotlin_code, "okhttp-kotlin").rules
    assert rules[0].allow_single_pin
    assert [str(p) for p in rules[0].pins] == [str(A)]


def test_okhttp_import_notes_the_union() -> None:
    from pinwarden.apps.formats import get_format

    code = kotlin(f'.add("api.example.com", "{A}", "{B}")\n.add("**.example.com", "{B}", "{A}")')
    same = get_format("okhttp-kotlin").read(code, "x")  # type: ignore[attr-defined]
    assert len(same.policy.rules) == 1  # same pins: one rule
    other = Pin("sha256", b"\x03" * 32)
    code = kotlin(
        f'.add("api.example.com", "{A}", "{B}")\n.add("**.example.com", "{other}", "{A}")'
    )
    differ = get_format("okhttp-kotlin").read(code, "x")  # type: ignore[attr-defined]
    assert len(differ.policy.rules) == 2
    assert any("OkHttp accepted the pins of both" in note for note in differ.notes)


def test_android_reads_a_full_config() -> None:
    data = f"""<?xml version="1.0" encoding="utf-8"?>
    <!-- app config -->
    <network-security-config xmlns:tools="http://schemas.android.com/tools">
        <base-config cleartextTrafficPermitted="false">
            <trust-anchors><certificates src="system"/></trust-anchors>
        </base-config>
        <domain-config tools:ignore="AcceptsUserCertificates">
            <domain includeSubdomains="true">example.com</domain>
            <pin-set expiration="2027-6-1">
                <pin digest="SHA-256">{A.base64}</pin>
                <pin digest="SHA-256">{B.base64}</pin>
            </pin-set>
            <trust-anchors>
                <certificates src="user" overridePins="true"/>
            </trust-anchors>
            <domain-config>
                <domain>nested.example.com</domain>
            </domain-config>
        </domain-config>
        <domain-config><domain>plain.example.net</domain></domain-config>
        <debug-overrides><trust-anchors><certificates src="user"/></trust-anchors></debug-overrides>
    </network-security-config>
    """.encode()
    from pinwarden.apps.formats import get_format

    imported = get_format("android-nsc").read(data, "nsc.xml")  # type: ignore[attr-defined]
    assert [r.to_dict() for r in imported.policy.rules] == [
        {
            "hosts": ["**.example.com", "nested.example.com"],
            "pins": [str(A), str(B)],
            "expires": "2027-06-01T00:00:00+00:00",
            "mode": "enforce",
        }
    ]
    notes = "\n".join(imported.notes)
    assert "trust anchors ignored" in notes
    assert "overridePins" in notes
    assert "plain.example.net: no pins, so not pinned" in notes
    assert "debug-overrides" in notes


def test_ios_import_notes_both_lists() -> None:
    from pinwarden.apps.formats import get_format

    data = ats(
        {
            "a.example.com": {
                "NSPinnedCAIdentities": [{"SPKI-SHA256-BASE64": A.base64}],
                "NSPinnedLeafIdentities": [{"SPKI-SHA256-BASE64": B.base64}],
            }
        }
    )
    imported = get_format("ios-plist").read(data, "Info.plist")  # type: ignore[attr-defined]
    assert [str(p) for p in imported.policy.rules[0].pins] == [str(A), str(B)]
    assert any("required a match in both" in note for note in imported.notes)
    assert any("leaf and CA identities both became plain pins" in n for n in imported.notes)
    # A binary plist reads the same.
    binary = plistlib.dumps(plistlib.loads(data), fmt=plistlib.FMT_BINARY)
    assert import_policy(binary, "ios-plist").rules == imported.policy.rules


def test_ios_includes_subdomains_reads_as_one_label() -> None:
    """Apple: YES covers the subdomains "that have one additional path component"
    (math.example.com, not advanced.math.example.com): pinwarden's x with *.x."""
    data = ats({"example.com": {**IOS_OK, "NSIncludesSubdomains": True}, "a.example.org": IOS_OK})
    policy = import_policy(data, "ios-plist", source="Info.plist")
    # plistlib sorts the keys.
    assert [r.to_dict()["hosts"] for r in policy.rules] == [
        ["a.example.org", "example.com", "*.example.com"]
    ]
    assert policy.rule_for("example.com") is not None
    assert policy.rule_for("math.example.com") is not None
    assert policy.rule_for("advanced.math.example.com") is None


PINS = f'<pin digest="SHA-256">{A.base64}</pin><pin digest="SHA-256">{B.base64}</pin>'
PINNED_SUBTREE = f'<domain includeSubdomains="true">example.com</domain><pin-set>{PINS}</pin-set>'


def test_android_empty_pin_set_unpins_what_a_broader_domain_pins() -> None:
    """Android applies the most specific domain, and an empty pin set checks nothing
    (NetworkSecurityTrustManager.checkPins), so such a name is not pinned: an exclude
    of the broader rule, not a host pinned through it. A nested domain-config without a
    pin-set inherits its parent's (Builder.getEffectivePinSet): still pinned."""
    from pinwarden.apps.formats import get_format

    data = nsc(
        f"<domain-config>{PINNED_SUBTREE}"
        "<domain-config><domain>status.example.com</domain><pin-set/></domain-config>"
        '<domain-config><domain includeSubdomains="true">legacy.example.com</domain>'
        "<pin-set></pin-set>"
        f"<domain-config><domain>new.legacy.example.com</domain><pin-set>{PINS}</pin-set>"
        "</domain-config></domain-config>"
        "<domain-config><domain>api.example.com</domain></domain-config>"
        "</domain-config>"
        "<domain-config><domain>other.example.com</domain></domain-config>"
        "<domain-config><domain>unrelated.example.net</domain><pin-set/></domain-config>"
    )
    imported = get_format("android-nsc").read(data, "nsc.xml")  # type: ignore[attr-defined]
    assert [r.to_dict() for r in imported.policy.rules] == [
        {
            "hosts": ["**.example.com", "api.example.com"],
            "pins": [str(A), str(B)],
            "exclude": ["status.example.com", "**.legacy.example.com", "other.example.com"],
            "mode": "enforce",
        },
        # Pinned under an unpinned subtree: its own rule, or the exclude would unpin it.
        {"hosts": ["new.legacy.example.com"], "pins": [str(A), str(B)], "mode": "enforce"},
    ]
    policy = imported.policy
    # What Android does for each name (ApplicationConfig.getConfigForHostname).
    pinned = {
        "example.com": True,
        "www.example.com": True,
        "api.example.com": True,  # no pin-set: inherited
        "status.example.com": False,
        "x.status.example.com": True,  # includeSubdomains="false": example.com's
        "legacy.example.com": False,
        "a.b.legacy.example.com": False,
        "new.legacy.example.com": True,
        "x.new.legacy.example.com": False,  # legacy.example.com is the longest match
        "other.example.com": False,
        "unrelated.example.net": False,
    }
    assert {name: policy.rule_for(name) is not None for name in pinned} == pinned
    notes = "\n".join(imported.notes)
    assert "domain[1]: status.example.com: an empty pin set unpins what a broader" in notes
    assert "legacy.example.com and its subdomains: an empty pin set unpins" in notes
    assert "unrelated.example.net: no pins, so not pinned; left out" in notes


def test_trustkit_reads_a_bare_configuration_and_notes_defaults() -> None:
    from pinwarden.apps.formats import get_format

    data = plistlib.dumps(
        {
            "TSKSwizzleNetworkDelegates": True,
            "TSKPinnedDomains": {
                "example.com": {
                    **TK_OK,
                    "TSKIncludeSubdomains": True,
                    "TSKPublicKeyAlgorithms": ["TSKAlgorithmRsa2048"],
                    "TSKReportUris": ["https://a.example.net/r", "https://b.example.net/r"],
                },
                "status.example.com": {"kSKExcludeSubdomainFromParentPolicy": True},
            },
        }
    )
    imported = get_format("trustkit-plist").read(data, "tk.plist")  # type: ignore[attr-defined]
    assert [r.to_dict() for r in imported.policy.rules] == [
        {
            "hosts": ["example.com"],
            "pins": [str(A), str(B)],
            "include_subdomains": True,
            "exclude": ["status.example.com"],
            "mode": "enforce",
            "report_uri": "https://a.example.net/r",
        }
    ]
    notes = "\n".join(imported.notes)
    assert "TSKPublicKeyAlgorithms ignored" in notes
    assert "https://b.example.net/r left out" in notes
    assert "default (Data Theorem) server" in notes
    policy = imported.policy
    assert policy.rule_for("status.example.com") is None
    assert policy.rule_for("api.example.com") is not None


# -- property tests against models of the tools ----------------------------------------

C = Pin("sha256", b"\x03" * 32)
_NAMES = [
    "example.com",
    "a.example.com",
    "b.example.com",
    "x.a.example.com",
    "y.x.a.example.com",
    "b.a.example.com",
]
_QUERIES = [*_NAMES, "z.y.x.a.example.com", "q.b.example.com", "q.example.com"]
# A pin-set: absent (inherit), empty (unpin), or one of two sets of pins.
_PIN_SETS: list[frozenset[Pin] | None] = [None, frozenset(), frozenset({A, B}), frozenset({B, C})]


@st.composite
def _domain_configs(draw: st.DrawFn) -> list[Any]:
    """A tree of domain-configs over _NAMES, each name used once, as
    (domains: [(name, includeSubdomains)], pin set, children)."""
    names = draw(st.permutations(_NAMES))
    queue = list(names)

    def config(depth: int) -> Any:
        count = draw(st.integers(1, 2))
        domains = [(queue.pop(), draw(st.booleans())) for _ in range(min(count, len(queue)))]
        pins = draw(st.sampled_from(_PIN_SETS))
        children = []
        while queue and depth < 3 and draw(st.booleans()):
            children.append(config(depth + 1))
        return domains, pins, children

    configs = []
    while queue:
        configs.append(config(0))
    return configs


def _android_pins(configs: list[Any], host: str) -> frozenset[Pin]:
    """What Android checks for ``host``: XmlConfigSource builds each domain's effective
    pin set (inherited when a config has none), ApplicationConfig picks the exact domain,
    else the longest includeSubdomains one."""
    flat: list[tuple[str, bool, frozenset[Pin]]] = []

    def walk(config: Any, inherited: frozenset[Pin]) -> None:
        domains, pins, children = config
        effective = inherited if pins is None else pins
        flat.extend((name, sub, effective) for name, sub in domains)
        for child in children:
            walk(child, effective)

    for config in configs:
        walk(config, frozenset())
    for name, _, pins in flat:
        if name == host:
            return pins
    best = max(
        ((name, pins) for name, sub, pins in flat if sub and host.endswith("." + name)),
        key=lambda item: len(item[0]),
        default=None,
    )
    return best[1] if best else frozenset()


def _xml(config: Any) -> str:
    domains, pins, children = config
    body = "".join(
        f'<domain includeSubdomains="{str(sub).lower()}">{name}</domain>' for name, sub in domains
    )
    if pins is not None:
        body += (
            "<pin-set>"
            + "".join(f'<pin digest="SHA-256">{p.base64}</pin>' for p in sorted(pins, key=str))
            + "</pin-set>"
        )
    return f"<domain-config>{body}{''.join(_xml(c) for c in children)}</domain-config>"


@settings(max_examples=300, deadline=None)
@given(configs=_domain_configs())
def test_android_import_pins_what_android_pins(configs: list[Any]) -> None:
    data = nsc("".join(_xml(c) for c in configs))
    expected = {host: _android_pins(configs, host) for host in _QUERIES}
    if not any(expected.values()):
        with pytest.raises(FormatError, match="no pinned hosts found"):
            import_policy(data, "android-nsc", source="nsc.xml")
        return
    policy = import_policy(data, "android-nsc", source="nsc.xml")
    found = {}
    for host in _QUERIES:
        match = policy.rule_for(host)
        found[host] = frozenset(match.rule.pins) if match else frozenset()
    assert found == expected


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters='"\\'),
        max_size=14,
    )
    | st.from_regex(r"[0-9]{1,13}", fullmatch=True)
    # Characters str.isdigit() accepts: superscripts, Arabic-Indic, Devanagari, full-width.
    | st.text(st.sampled_from("0123456789²³¹٠١٢٣٤٥٦٧٨٩۵१০௧໑၁０１９"), min_size=1, max_size=4)
)
def test_hpkp_max_age_is_ascii_seconds_or_an_error(value: str) -> None:
    """Only [0-9]{1,11} is read, as that many seconds; any other value is a
    FormatError naming max-age (never a ValueError, never a wrong number)."""
    from pinwarden.apps.formats.hpkp import HpkpFormat

    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    reader = HpkpFormat(clock=lambda: now)
    data = hpkp_max_age(f'"{value}"')
    if re.fullmatch(r"[0-9]{1,11}", value) and int(value) <= 10**10:
        rule = reader.parse(data, SOURCE).rules[0]
        assert rule.expires_at == now + dt.timedelta(seconds=int(value))
        return
    with pytest.raises(FormatError) as caught:
        reader.parse(data, SOURCE)
    assert "max-age" in str(caught.value)


# -- fuzzing: nothing but InputError, ever ----------------------------------------------


def _samples() -> dict[str, bytes]:
    policy = Policy.from_dict(
        {
            "pin": [
                {
                    "hosts": ["a.example.com", "**.b.example.com"],
                    "pins": [str(A), str(B)],
                    "expires": "2027-06-01",
                    "report_uri": "https://r.example.net/",
                },
                {"hosts": ["c.example.org"], "pins": [str(A)], "mode": "report-only"},
            ]
        }
    )
    options = ExportOptions(
        now=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), ca_pins=frozenset({A, B})
    )
    return {
        name: export_policy(policy, name, options, lossy=True).text.encode() for name in IMPORTABLE
    }


SAMPLES = _samples()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_input_error(name: str, data: bytes) -> None:
    try:
        policy = import_policy(data, name, source="fuzz.cfg")
    except InputError as exc:
        message = str(exc)
    else:
        assert policy.rules
        return
    assert message.startswith("fuzz.cfg: "), message


@pytest.mark.parametrize("name", IMPORTABLE)
@FUZZ
@given(data=st.binary(max_size=600))
def test_fuzz_random_bytes(name: str, data: bytes) -> None:
    _parse_or_input_error(name, data)


@st.composite
def mutations(draw: st.DrawFn, sample: bytes) -> bytes:
    """The sample with a few slices deleted, duplicated or replaced by tokens the
    readers care about."""
    tokens = [
        b"",
        b'"',
        b"\\",
        b"<",
        b">",
        b"/",
        b"[",
        b"]",
        b":",
        b",",
        b";",
        b"(",
        b")",
        b"=",
        b"*.",
        b"**.",
        b"\n",
        b"\x00",
        b"\xff",
        b"&lol;",
        b"<!DOCTYPE x>",
        b"sha1/",
        b"max-age=",
        b"# hosts: ",
        b"includeSubDomains",
        b"true",
        b"false",
        b"<domain-config>",
        b"<dict>",
        b"</array>",
        b"kTSKPinnedDomains",
        b"9" * 30,
        b'encoding="x"',
        b"xn--",
        b"-1",
    ]
    data = sample
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(data)))
        end = draw(st.integers(start, min(len(data), start + 40)))
        insert = draw(
            st.sampled_from(tokens) | st.binary(max_size=8) | st.just(data[start:end] * 2)
        )
        data = data[:start] + insert + data[end:]
    return data


@pytest.mark.parametrize("name", IMPORTABLE)
@FUZZ
@given(data=st.data())
def test_fuzz_mutated_configs(name: str, data: st.DataObject) -> None:
    _parse_or_input_error(name, data.draw(mutations(SAMPLES[name])))


# XML plists cannot hold control characters (plistlib refuses to write them).
_PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs"))
_KEYS = st.sampled_from(
    [
        "NSAppTransportSecurity",
        "NSPinnedDomains",
        "NSIncludesSubdomains",
        "NSPinnedCAIdentities",
        "NSPinnedLeafIdentities",
        "SPKI-SHA256-BASE64",
        "TSKConfiguration",
        "TSKPinnedDomains",
        "TSKPublicKeyHashes",
        "TSKIncludeSubdomains",
        "TSKEnforcePinning",
        "TSKExpirationDate",
        "TSKReportUris",
        "kSKExcludeSubdomainFromParentPolicy",
        "a.example.com",
        "*.x",
        "",
    ]
) | st.text(_PRINTABLE, max_size=10)
_LEAVES = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(_PRINTABLE, max_size=50)
    | st.sampled_from([A.base64, B.base64, "2027-06-01", "https://r.example.net/"])
    | st.binary(max_size=8)
    | st.floats(allow_nan=False)
)
_PLIST_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=30,
)


@pytest.mark.parametrize("name", ["ios-plist", "trustkit-plist"])
@pytest.mark.parametrize("fmt", [plistlib.FMT_XML, plistlib.FMT_BINARY])
@FUZZ
@given(value=st.dictionaries(_KEYS, _PLIST_VALUES, max_size=4))
def test_fuzz_plist_structures(name: str, fmt: plistlib.PlistFormat, value: dict[str, Any]) -> None:
    _parse_or_input_error(name, plistlib.dumps(value, fmt=fmt))
