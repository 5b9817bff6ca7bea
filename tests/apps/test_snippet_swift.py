"""The swift-urlsession export: the SPKI headers in the Swift text give real pins, the
delegate checks trust before pins and over the whole chain, and the embedded rules
choose the same rule as pinwarden for every host.

No Swift compiler is available here, so the Swift is checked as text: values are parsed
out of it (not taken from the Python tables that generated it)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import re
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden import Pin, Policy
from pinwarden.apps.formats import ExportOptions, export_policy, get_format, import_policy
from pinwarden.apps.formats.swift_urlsession import swift_string
from pinwarden.errors import InputError, LossyExportError
from pinwarden.testing import KeyType, generate_key

SETTINGS = settings(max_examples=200, deadline=None)


def _pin(n: int) -> str:
    return str(Pin("sha256", hashlib.sha256(b"key %d" % n).digest()))


RICH = Policy.from_dict(
    {
        "pin": [
            {
                "name": "api",
                "hosts": ["api.example.com", "*.cdn.example.com", "**.internal.example.com"],
                "exclude": ["status.api.example.com", "old.internal.example.com"],
                "pins": [_pin(1), _pin(2)],
                "expires": "2027-06-01",
            },
            {
                "hosts": ["example.com"],
                "include_subdomains": True,
                "pins": [_pin(3)],
                "mode": "report-only",
            },
            {
                "hosts": ["*.internal.example.com", "192.0.2.7", "2001:db8::1"],
                "exclude": ["*.x.internal.example.com"],
                "pins": [_pin(4), _pin(5)],
                "expires": "2030-01-01T12:30:00.25+02:00",
            },
            {
                "hosts": ["**.b.a.example.com", "*.cdn.example.com.", "a.example.org"],
                "include_subdomains": True,
                "pins": [_pin(6), _pin(7)],
            },
        ]
    },
    source="rich.toml",
)


def _swift(policy: Policy) -> str:
    return get_format("swift-urlsession").export(policy, ExportOptions()).text


# -- the ASN.1 headers ------------------------------------------------------------------


def _headers_from_swift(text: str) -> dict[tuple[str, int], bytes]:
    """(kSecAttrKeyType constant, bits) -> header, read from the Swift source."""
    arrays = {
        name: bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", body))
        for name, body in re.findall(
            r"private static let (\w+): \[UInt8\] = \[(.*?)\]", text, re.DOTALL
        )
    }
    table = re.search(r"spkiHeaders: \[String: \[Int: \[UInt8\]\]\] = \[(.*?)\n    \]", text, re.S)
    assert table is not None
    out: dict[tuple[str, int], bytes] = {}
    for key_type, body in re.findall(r"(kSecAttrKeyType\w+) as String: \[(.*?)\]", table[1], re.S):
        for bits, name in re.findall(r"(\d+): (\w+),", body):
            out[key_type, int(bits)] = arrays[name]
    return out


@pytest.mark.parametrize(
    ("key_type", "sec_type", "bits"),
    [
        ("rsa-2048", "kSecAttrKeyTypeRSA", 2048),
        ("rsa-3072", "kSecAttrKeyTypeRSA", 3072),
        ("rsa-4096", "kSecAttrKeyTypeRSA", 4096),
        ("ec-p256", "kSecAttrKeyTypeECSECPrimeRandom", 256),
        ("ec-p384", "kSecAttrKeyTypeECSECPrimeRandom", 384),
    ],
)
def test_swift_headers_plus_the_raw_key_hash_to_the_pin(
    key_type: KeyType, sec_type: str, bits: int
) -> None:
    headers = _headers_from_swift(_swift(RICH))
    assert len(headers) == 5
    key = generate_key(key_type).public_key()
    # What SecKeyCopyExternalRepresentation returns for the key.
    if isinstance(key, rsa.RSAPublicKey):
        raw = key.public_bytes(Encoding.DER, PublicFormat.PKCS1)
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        raw = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    computed = base64.b64encode(hashlib.sha256(headers[sec_type, bits] + raw).digest()).decode()
    assert computed == Pin.from_public_key(key).base64
    # The article's way, the raw key alone, is a different value: the point of the fix.
    assert base64.b64encode(hashlib.sha256(raw).digest()).decode() != computed


def test_a_key_size_without_a_header_is_not_in_the_table() -> None:
    headers = _headers_from_swift(_swift(RICH))
    assert ("kSecAttrKeyTypeRSA", 1024) not in headers
    assert ("kSecAttrKeyTypeECSECPrimeRandom", 521) not in headers
    # An unknown type or size gives nil, and nil never matches: fail closed.
    assert "let header = spkiHeaders[keyType]?[bits]," in _swift(RICH)


# -- the delegate -----------------------------------------------------------------------


def _delegate_method(text: str) -> str:
    start = text.index("func urlSession(")
    return text[start : text.index("\n    }\n", start)]


def test_trust_is_evaluated_before_the_pins_and_failures_cancel() -> None:
    method = _delegate_method(_swift(RICH))
    order = [
        "NSURLAuthenticationMethodServerTrust",
        "guard SecTrustEvaluateWithError(trust, &error) else {\n"
        "            completionHandler(.cancelAuthenticationChallenge, nil)",
        "Self.rule(for: host)",
        "if let expires = rule.expires, Date() >= expires {\n"
        "            completionHandler(.performDefaultHandling, nil)",
        "for certificate in Self.certificates(of: trust)",
        "let blocked = rule.mode == .enforce",
        "completionHandler(blocked ? .cancelAuthenticationChallenge : .performDefaultHandling",
    ]
    positions = [method.index(part) for part in order]
    assert positions == sorted(positions)


def test_every_certificate_of_the_evaluated_chain_is_tried() -> None:
    text = _swift(RICH)
    chain = text[text.index("func certificates(of trust: SecTrust)") :]
    chain = chain[: chain.index("\n    }\n")]
    assert "if #available(iOS 15.0, macOS 12.0" in chain
    assert "SecTrustCopyCertificateChain(trust) as? [SecCertificate]" in chain
    assert "(0..<SecTrustGetCertificateCount(trust)).compactMap" in chain
    assert "SecTrustGetCertificateAtIndex(trust, $0)" in chain
    # The article's bug: certificate 0 only.
    assert not re.search(r"AtIndex\(\w+, 0\)", text)
    key = text[text.index("func spkiPin(of certificate") :]
    assert key.index("Data(header) + raw") > key.index("SecKeyCopyExternalRepresentation")
    assert "SHA256.hash(data: Data(header) + raw)" in key


def test_every_pin_and_host_of_the_policy_is_in_the_swift() -> None:
    text = _swift(RICH)
    for rule in RICH.rules:
        for pin in rule.pins:
            assert f'"{pin.base64}",' in text
        for pattern in rule.hosts + rule.exclude:
            assert f'Pattern("{pattern.base}", ' in text
    assert 'Generated by pinwarden 0.1.0 from "rich.toml".' in text
    assert "certificate 0 only" in text


# -- the embedded rules choose like pinwarden -------------------------------------------


@dataclass(frozen=True)
class _SwiftPattern:
    base: str
    kind: str
    include_base: bool

    def matches(self, host: str) -> bool:  # PinningDelegate.Pattern.matches
        if host == self.base:
            return self.kind == "exact" or (self.kind == "subtree" and self.include_base)
        if self.kind == "exact" or not host.endswith("." + self.base):
            return False
        if self.kind == "subtree":
            return True
        return "." not in host[: -len(self.base) - 1]


@dataclass(frozen=True)
class _SwiftRule:
    pins: frozenset[str]
    exclude: tuple[_SwiftPattern, ...]
    expires: float | None
    mode: str


_PATTERN = r'Pattern\("([^"]*)", \.(\w+), includeBase: (true|false)\)'


def _patterns(text: str) -> list[_SwiftPattern]:
    return [
        _SwiftPattern(_canonical(b), {"oneLabel": "one-label"}.get(k, k), i == "true")
        for b, k, i in re.findall(_PATTERN, text)
    ]


def _canonical(name: str) -> str:  # PinningDelegate.normalize for what the tests send
    name = name.lower().strip("[]").rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def _embedded(text: str) -> tuple[list[_SwiftRule], list[tuple[_SwiftPattern, int]]]:
    rules = []
    for block in re.findall(r"        PinRule\(  // pin\[\d+\]\n(.*?)\n        \),", text, re.S):
        expires = re.search(r"expires: Date\(timeIntervalSince1970: ([-\d.]+)\)", block)
        exclude = block[block.index("exclude: [") : block.index("expires:")]
        rules.append(
            _SwiftRule(
                frozenset(re.findall(r'^ +"([A-Za-z0-9+/=]{44})",$', block, re.M)),
                tuple(_patterns(exclude)),
                float(expires[1]) if expires else None,
                re.search(r"mode: \.(\w+),", block)[1],  # type: ignore[index]
            )
        )
    entries_text = text[text.index("let entries: [Entry]") : text.index("let index:")]
    entries = [
        (_patterns(line)[0], int(re.search(r"rule: (\d+)\)", line)[1]))  # type: ignore[index]
        for line in entries_text.splitlines()
        if line.strip().startswith("Entry(")
    ]
    return rules, entries


def _swift_rule_for(
    rules: list[_SwiftRule], entries: list[tuple[_SwiftPattern, int]], host: str
) -> int | None:
    """PinningDelegate.rule(for:), line by line, over the data parsed from the Swift."""
    host = _canonical(host)
    labels = host.split(".")
    for depth in range(len(labels)):
        suffix = ".".join(labels[depth:])
        for pattern, index in [e for e in entries if e[0].base == suffix]:
            if depth == 0:
                covers = pattern.kind == "exact" or pattern.include_base
            elif depth == 1:
                covers = pattern.kind != "exact"
            else:
                covers = pattern.kind == "subtree"
            if covers and not any(ex.matches(host) for ex in rules[index].exclude):
                return index
    return None


def _pinwarden_rule_for(policy: Policy, host: str) -> int | None:
    match = policy.rule_for(host)
    return None if match is None else policy.rules.index(match.rule)


_SAMPLE_HOSTS = [
    "api.example.com",
    "API.Example.COM.",
    "status.api.example.com",
    "x.api.example.com",
    "a.cdn.example.com",
    "a.b.cdn.example.com",
    "cdn.example.com",
    "internal.example.com",
    "db.internal.example.com",
    "old.internal.example.com",
    "y.x.internal.example.com",
    "a.b.internal.example.com",
    "example.com",
    "www.example.com",
    "b.a.example.com",
    "c.b.a.example.com",
    "a.example.org",
    "z.a.example.org",
    "example.org",
    "192.0.2.7",
    "[2001:db8::1]",
    "2001:0db8:0:0::1",
    "unrelated.test",
]


@pytest.mark.parametrize("host", _SAMPLE_HOSTS)
def test_the_embedded_rules_choose_like_pinwarden(host: str) -> None:
    rules, entries = _embedded(_swift(RICH))
    assert len(rules) == len(RICH.rules)
    assert _swift_rule_for(rules, entries, host) == _pinwarden_rule_for(RICH, host)


_LABELS = ["a", "b", "x", "api", "cdn", "status", "old", "internal", "example", "com", "org"]


@SETTINGS
@given(st.lists(st.sampled_from(_LABELS), min_size=1, max_size=6).map(".".join))
def test_the_embedded_rules_choose_like_pinwarden_for_any_name(host: str) -> None:
    rules, entries = _embedded(_swift(RICH))
    assert _swift_rule_for(rules, entries, host) == _pinwarden_rule_for(RICH, host)


def test_pins_expiry_and_mode_are_embedded_per_rule() -> None:
    rules, _ = _embedded(_swift(RICH))
    for parsed, rule in zip(rules, RICH.rules, strict=True):
        assert parsed.pins == {p.base64 for p in rule.pins}
        expected = None if rule.expires_at is None else rule.expires_at.timestamp()
        assert parsed.expires == expected
        assert parsed.mode == ("enforce" if rule.mode.value == "enforce" else "reportOnly")
    # expires = 2027-06-01 is enforced through that day: the Swift stops at the next midnight.
    assert rules[0].expires == dt.datetime(2027, 6, 2, tzinfo=dt.timezone.utc).timestamp()
    assert rules[2].expires == 1893493800.25


# -- losses and the registry -------------------------------------------------------------


def test_an_expressible_policy_exports_without_losses() -> None:
    exported = export_policy(RICH, "swift-urlsession")
    assert exported.losses == ()
    assert any("EC P-256/P-384" in note for note in exported.notes)


def test_what_the_snippet_cannot_mirror_is_listed() -> None:
    sha1 = "sha1/" + base64.b64encode(bytes(20)).decode()
    policy = Policy.from_dict(
        {
            "pin": [
                {
                    "hosts": ["bücher.example"],
                    "pins": [_pin(1), _pin(2), sha1],
                    "report_uri": "https://reports.example.net/",
                },
                {"hosts": ["legacy.example"], "pins": [sha1], "allow_single_pin": True},
            ]
        }
    )
    with pytest.raises(LossyExportError) as info:
        export_policy(policy, "swift-urlsession")
    losses = info.value.losses
    assert len(losses) == 5
    assert losses[0].startswith(f"pin[0]: {sha1} is a SHA-1 pin")
    assert "report_uri 'https://reports.example.net/' is not posted" in losses[1]
    assert losses[2].startswith('pin[0].hosts: "b\\u00fccher.example" is embedded as xn--bcher')
    assert losses[3].startswith(f"pin[1]: {sha1} is a SHA-1 pin")
    assert losses[4] == "pin[1]: no SHA-256 pin is left, so no chain can match the rule"
    text = export_policy(policy, "swift-urlsession", lossy=True).text
    assert base64.b64encode(bytes(20)).decode() not in text


def test_a_lone_surrogate_in_a_name_is_a_loss() -> None:
    policy = Policy.from_dict({"pin": [{"hosts": ["a.test"], "pins": [_pin(1), _pin(2)]}]})
    policy = Policy.from_dict(
        {"pin": [{**policy.rules[0].to_dict(), "name": "bad \ud800 name"}]}, source="x"
    )
    exported = get_format("swift-urlsession").export(policy, ExportOptions())
    assert exported.losses == ("pin[0].name: a lone surrogate (U+D800) was replaced by U+FFFD",)
    assert 'name: "bad \\u{fffd} name",' in exported.text


def test_it_is_export_only() -> None:
    fmt = get_format("swift-urlsession")
    assert (fmt.name, fmt.suffix, fmt.importable) == ("swift-urlsession", ".swift", False)
    with pytest.raises(InputError, match="export-only"):
        import_policy(b"", "swift-urlsession")
    with pytest.raises(InputError, match=r"^app\.swift: swift-urlsession is an export-only"):
        fmt.parse(b"", "app.swift")


# -- text from the policy cannot break out of the Swift -----------------------------------


def _decode_swift_literal(literal: str) -> str:
    assert literal.startswith('"')
    assert literal.endswith('"')
    out, i, body = [], 0, literal[1:-1]
    while i < len(body):
        if body[i] == "\\":
            if body[i + 1] == "u":
                end = body.index("}", i)
                out.append(chr(int(body[i + 3 : end], 16)))
                i = end + 1
            else:
                assert body[i + 1] in '"\\'
                out.append(body[i + 1])
                i += 2
        else:
            assert body[i] != '"', "an unescaped quote ends the literal"
            out.append(body[i])
            i += 1
    return "".join(out)


@SETTINGS
@given(st.text())
def test_swift_string_literals_round_trip(value: str) -> None:
    losses: list[str] = []
    literal = swift_string(value, "name", losses)
    assert all(" " <= c <= "~" for c in literal)
    assert _decode_swift_literal(literal) == value
    assert losses == []


@SETTINGS
@given(st.text(st.characters(codec="utf-8") | st.just("\ud800")))
def test_hostile_names_and_sources_stay_inside_literals_and_comments(name: str) -> None:
    base = {"hosts": ["a.test"], "pins": [_pin(1), _pin(2)]}
    policy = Policy.from_dict({"pin": [{**base, "name": name}]}, source=name + "\n}")
    text = _swift(policy)
    # The source stays on its comment line and the name in its literal: no line is added.
    assert text.count("\n") == _swift(Policy.from_dict({"pin": [base]})).count("\n")
    assert all(" " <= c <= "~" or c == "\n" for c in text)
