"""Generated CAA records allow exactly what was asked: read back through pinwarden's own
reader and evaluator (and dnspython's zone parser), each requested CA may issue, every
other CA may not, wildcards as requested; the tinydns and JSON forms carry the same bytes."""

from __future__ import annotations

import json
from collections.abc import Sequence

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.caa.evaluate import evaluate
from pinwarden.caa.generate import FORMATS, generate, parse_per_ca, render
from pinwarden.caa.model import CAALookup, CAARecord, Verdict
from pinwarden.caa.records import parse_presentation, to_rdata
from pinwarden.caa.summary import summarize
from pinwarden.errors import InputError

SETTINGS = settings(max_examples=150, deadline=None)
OTHER_CA = "other-ca.invalid"
NAME = "example.com"

_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
issuer_domains = (
    st.lists(_label, min_size=1, max_size=3).map(".".join).filter(lambda d: d != OTHER_CA)
)
ca_sets = st.lists(issuer_domains, max_size=4, unique=True)
account_uris = st.from_regex(
    r"https://acme\.example/acct/[0-9]{1,6}(\?x=[a-z]{1,3})?", fullmatch=True
)
iodef_urls = st.lists(
    st.sampled_from(
        [
            "mailto:security@example.com",
            "https://reports.example.com/caa?id=1",
            "http://[2001:db8::1]:8080/iodef",
            "mailto:a@example.com,b@example.org",
        ]
    ),
    max_size=2,
    unique=True,
)


def _lines(text: str) -> list[str]:
    assert text == "" or text.endswith("\n")
    return text.splitlines()


def _read_zone(text: str) -> list[CAARecord]:
    """Every line back through pinwarden's own reader of the presentation form."""
    return [parse_presentation(line) for line in _lines(text)]


def _lookup(records: Sequence[CAARecord]) -> CAALookup:
    return CAALookup(name=NAME, found_at=NAME, records=tuple(records))


def _dnspython_rdata(text: str) -> list[bytes]:
    """The rdata of every CAA record of the zone text, as dnspython's zone parser reads
    it: an independent reader of owner, TTL, class, type and the quoted value."""
    zone = dns.zone.from_text(text, origin=dns.name.root, relativize=False, check_origin=False)
    found: list[bytes] = []
    for name, node in zone.nodes.items():
        assert name == dns.name.from_text(NAME)
        rdataset = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.CAA)
        assert rdataset.ttl == 3600
        found += [rdata.to_wire() for rdata in rdataset]
    return found


def _txtparse(text: str) -> bytes:
    """tinydns-data's reading of a field: ``\\`` then up to three octal digits is that
    byte, ``\\`` then another character is that character (djbdns txtparse)."""
    data = text.encode("ascii")
    out = bytearray()
    i = 0
    while i < len(data):
        c = data[i]
        i += 1
        if c == 0x5C and i < len(data):
            c = data[i]
            i += 1
            if 0x30 <= c <= 0x37:
                c -= 0x30
                for _ in range(2):
                    if i < len(data) and 0x30 <= data[i] <= 0x37:
                        c = (c << 3) + data[i] - 0x30
                        i += 1
        out.append(c)
    return bytes(out)


def _read_tinydns(text: str) -> list[tuple[str, int, bytes, int]]:
    rows = []
    for line in _lines(text):
        assert line.startswith(":"), line  # the generic-record line type
        fqdn, rtype, rdata, ttl = line[1:].split(":")  # ':' inside fields is always \072
        rows.append((_txtparse(fqdn).decode("ascii"), int(rtype), _txtparse(rdata), int(ttl)))
    return rows


def _read_json(text: str) -> list[CAARecord]:
    rows = json.loads(text)
    for row in rows:
        assert set(row) == {"name", "ttl", "flags", "tag", "value"}
        assert row["name"] == NAME + "."
        assert row["ttl"] == 3600
    return [CAARecord(r["flags"], r["tag"], r["value"].encode("utf-8")) for r in rows]


# -- what is generated --------------------------------------------------------------------


def test_one_ca_gives_one_issue_record() -> None:
    records = generate(["letsencrypt.org"])
    assert render(records, name=NAME) == 'example.com. 3600 IN CAA 0 issue "letsencrypt.org"\n'


def test_no_ca_gives_a_single_issue_semicolon() -> None:
    records = generate([])
    assert records == [CAARecord(0, "issue", b";")]
    assert generate([], wildcard_cas=[]) == records
    lookup = _lookup(_read_zone(render(records, name=NAME)))
    for ca in ("letsencrypt.org", "pki.goog"):
        for wildcard in (False, True):
            assert evaluate(lookup, ca, wildcard=wildcard).verdict is Verdict.DENIED


def test_issuewild_only_when_the_wildcard_set_differs() -> None:
    same = generate(["letsencrypt.org", "pki.goog"], wildcard_cas=["pki.goog", "letsencrypt.org"])
    assert [r.tag for r in same] == ["issue", "issue"]
    none = generate(["letsencrypt.org"], wildcard_cas=[])
    assert none == [CAARecord(0, "issue", b"letsencrypt.org"), CAARecord(0, "issuewild", b";")]
    other = generate([], wildcard_cas=["digicert.com"])
    assert other == [CAARecord(0, "issue", b";"), CAARecord(0, "issuewild", b"digicert.com")]
    lookup = _lookup(other)
    assert evaluate(lookup, "digicert.com").verdict is Verdict.DENIED
    assert evaluate(lookup, "digicert.com", wildcard=True).verdict is Verdict.ALLOWED


def test_names_are_written_in_lower_case_once() -> None:
    records = generate([" LetsEncrypt.ORG", "letsencrypt.org", "Pki.Goog"])
    assert [r.value for r in records] == [b"letsencrypt.org", b"pki.goog"]


def test_account_uris_and_methods_become_rfc_8657_parameters() -> None:
    uri1 = "https://acme-v02.api.letsencrypt.org/acme/acct/1"
    uri2 = "https://acme-v02.api.letsencrypt.org/acme/acct/2"
    records = generate(
        ["letsencrypt.org", "pki.goog"],
        wildcard_cas=["letsencrypt.org"],
        account_uris={"LetsEncrypt.org": [uri1, uri2, uri1]},
        validation_methods={"pki.goog": ["dns-01", "http-01"]},
        iodef=["mailto:security@example.com"],
    )
    assert render(records, name=NAME).splitlines() == [
        f'example.com. 3600 IN CAA 0 issue "letsencrypt.org; accounturi={uri1}"',
        f'example.com. 3600 IN CAA 0 issue "letsencrypt.org; accounturi={uri2}"',
        'example.com. 3600 IN CAA 0 issue "pki.goog; validationmethods=dns-01,http-01"',
        f'example.com. 3600 IN CAA 0 issuewild "letsencrypt.org; accounturi={uri1}"',
        f'example.com. 3600 IN CAA 0 issuewild "letsencrypt.org; accounturi={uri2}"',
        'example.com. 3600 IN CAA 0 iodef "mailto:security@example.com"',
    ]
    lookup = _lookup(records)
    assert evaluate(lookup, "letsencrypt.org", account_uri=uri2).verdict is Verdict.ALLOWED
    wrong = "https://acme-v02.api.letsencrypt.org/acme/acct/3"
    assert evaluate(lookup, "letsencrypt.org", account_uri=wrong).verdict is Verdict.DENIED
    assert evaluate(lookup, "pki.goog", method="dns-01").verdict is Verdict.ALLOWED
    assert evaluate(lookup, "pki.goog", method="tls-alpn-01").verdict is Verdict.DENIED
    assert evaluate(lookup, "pki.goog", wildcard=True).verdict is Verdict.DENIED


# -- read back: the policy asked for, in every format ----------------------------------------


@given(
    cas=ca_sets,
    wildcard=st.one_of(st.none(), ca_sets),
    iodef=iodef_urls,
    accounts=st.dictionaries(st.integers(0, 3), st.lists(account_uris, min_size=1, max_size=2)),
)
@SETTINGS
def test_generated_records_read_back_to_exactly_the_requested_policy(
    cas: list[str],
    wildcard: list[str] | None,
    iodef: list[str],
    accounts: dict[int, list[str]],
) -> None:
    wild = cas if wildcard is None else wildcard
    everyone = list(dict.fromkeys(cas + wild))
    account_map = {everyone[i]: uris for i, uris in accounts.items() if i < len(everyone)}
    records = generate(cas, wildcard_cas=wildcard, iodef=iodef, account_uris=account_map)

    zone = render(records, name=NAME)
    parsed = _read_zone(zone)
    assert parsed == records
    assert sorted(_dnspython_rdata(zone)) == sorted({to_rdata(r) for r in records})
    assert ("issuewild" in {r.tag for r in records}) == (set(wild) != set(cas))

    lookup = _lookup(parsed)
    for ca_set, is_wildcard in ((cas, False), (wild, True)):
        for ca in [*everyone, OTHER_CA]:
            uris = account_map.get(ca, [])
            verdict = evaluate(
                lookup, ca, wildcard=is_wildcard, account_uri=uris[-1] if uris else None
            ).verdict
            assert verdict is (Verdict.ALLOWED if ca in ca_set else Verdict.DENIED), (ca, zone)
            if ca in ca_set and uris:
                stranger = "https://acme.example/acct/stranger"
                denied = evaluate(lookup, ca, wildcard=is_wildcard, account_uri=stranger)
                assert denied.verdict is Verdict.DENIED

    summary = summarize(parsed)
    assert set(summary.name.issuers) == set(cas)
    assert summary.name.no_ca == (not cas)
    assert set(summary.wildcard.issuers) == set(wild)
    assert summary.wildcard.no_ca == (not wild)
    assert [v.url for v in summary.iodef] == iodef
    assert not summary.malformed and not summary.unknown and not summary.critical_unknown

    rows = _read_tinydns(render(records, name=NAME, fmt="tinydns"))
    assert rows == [(NAME, 257, to_rdata(record), 3600) for record in records]
    assert _read_json(render(records, name=NAME, fmt="json")) == records


_tags = st.from_regex(r"[A-Za-z0-9]{1,12}", fullmatch=True)
any_records = st.lists(
    st.builds(
        CAARecord,
        st.integers(0, 255),
        st.one_of(_tags, st.from_regex(r"[\x21-\x7e]{1,12}", fullmatch=True)),
        st.binary(max_size=40),
    ),
    max_size=4,
)


@given(any_records)
@SETTINGS
def test_any_record_survives_the_zone_and_tinydns_forms_byte_for_byte(
    records: list[CAARecord],
) -> None:
    zone = render(records, name=NAME)
    assert _read_zone(zone) == records
    tinydns = _read_tinydns(render(records, name=NAME, fmt="tinydns"))
    assert [row[2] for row in tinydns] == [to_rdata(r) for r in records]
    for line in _lines(render(records, name=NAME, fmt="tinydns")):
        assert line.isascii() and line.isprintable() and " " not in line


def test_a_tag_beyond_letters_and_digits_is_written_in_the_generic_form() -> None:
    record = CAARecord(128, "issue-wild", b'ca"\\\x00')
    zone = render([record], name=NAME)
    assert zone == "example.com. 3600 IN CAA \\# 17 800a69737375652d77696c646361225c00\n"
    assert _read_zone(zone) == [record]
    plain = render([CAARecord(0, "issue", b'say "hi"\\\x7f')], name=NAME)
    assert plain == 'example.com. 3600 IN CAA 0 issue "say \\"hi\\"\\\\\\127"\n'


def test_tinydns_escapes_separators_escapes_and_bytes_outside_ascii() -> None:
    records = generate(["letsencrypt.org"], iodef=["mailto:security@example.com"])
    assert render(records, name="Example.COM.", ttl=300, fmt="tinydns").splitlines() == [
        r":example.com:257:\000\005issueletsencrypt.org:300",
        r":example.com:257:\000\005iodefmailto\072security@example.com:300",
    ]


def test_names_are_written_as_absolute_a_labels() -> None:
    records = generate(["letsencrypt.org"])
    assert render(records, name="Bücher.example").startswith("xn--bcher-kva.example. 3600 ")
    assert render(records, name="_acme.example.com.", fmt="json").count('"_acme.example.com."') == 1


def test_formats_are_listed() -> None:
    assert FORMATS == ("zone", "tinydns", "json")
    assert render([], fmt="json") == "[]\n"
    assert render([], fmt="zone") == ""


# -- refused inputs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cas": ["Let's Encrypt"]}, r"CA \"Let's Encrypt\" is not an issuer domain name"),
        ({"cas": ["letsencrypt.org."]}, "is not an issuer domain name"),
        ({"cas": ["under_score.example"]}, "is not an issuer domain name"),
        ({"cas": ["-ca.example"]}, "is not an issuer domain name"),
        ({"cas": [""]}, "is not an issuer domain name"),
        ({"cas": "letsencrypt.org"}, "must be a list of issuer domain names, not one string"),
        ({"cas": [], "wildcard_cas": ["a b"]}, "wildcard CA 'a b' is not an issuer domain"),
        ({"cas": ["a.example"], "iodef": ["ftp://reports.example"]}, "mailto:, http: or https:"),
        ({"cas": ["a.example"], "iodef": ["mailto:"]}, "must name e-mail addresses"),
        ({"cas": ["a.example"], "iodef": ["https:///path"]}, "must name a host"),
        ({"cas": ["a.example"], "iodef": ["https://bücher.example/"]}, "not printable ASCII"),
        ({"cas": ["a.example"], "iodef": "mailto:x@example.com"}, "not one string"),
        (
            {"cas": ["a.example"], "account_uris": {"a.example": "12345"}},
            "'12345' for a.example is not an absolute URI",
        ),
        (
            {"cas": ["a.example"], "account_uris": {"a.example": "https://x/a;b"}},
            "printable ASCII without spaces or ';'",
        ),
        (
            {"cas": ["a.example"], "account_uris": {"a.example": "https://x/a b"}},
            "printable ASCII without spaces or ';'",
        ),
        (
            {"cas": ["a.example"], "account_uris": {"b.example": "https://x/1"}},
            r"account URI given for b.example, which is not among the CAs allowed to issue "
            r"\(a.example\)",
        ),
        (
            {"cas": ["a.example"], "validation_methods": {"a.example": ["dns 01"]}},
            "is not letters, digits and hyphens",
        ),
        ({"cas": ["a.example"], "validation_methods": {"a.example": []}}, "give method names"),
        (
            {"cas": ["a.example"], "validation_methods": {"a.example": ["dns-01,http-01"]}},
            "give method names",
        ),
    ],
)
def test_bad_inputs_are_refused_naming_the_value(kwargs: dict[str, object], message: str) -> None:
    cas = kwargs.pop("cas")
    with pytest.raises(InputError, match=message):
        generate(cas, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "*.example.com"}, r"record name '\*.example.com' is not a DNS name"),
        ({"name": ""}, "is empty"),
        ({"name": "."}, "is empty"),
        ({"name": "a..example"}, "is not a DNS name"),
        ({"name": "exa mple.com"}, "is not a DNS name"),
        ({"name": "x" * 64 + ".example"}, "is not a DNS name"),
        ({"ttl": -1}, "TTL -1 must be a whole number"),
        ({"ttl": 2**31}, "must be a whole number of seconds from 0 to 2147483647"),
        ({"ttl": True}, "TTL True"),
        ({"fmt": "bind"}, "unknown format 'bind'; choose one of zone, tinydns, json"),
    ],
)
def test_bad_render_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        render(generate(["letsencrypt.org"]), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "fmt", "message"),
    [
        (CAARecord(256, "issue", b"x"), "zone", "flags 256 are outside 0-255"),
        (CAARecord(0, "", b"x"), "tinydns", "is not 1 to 255 ASCII characters"),
        (CAARecord(0, "t" * 256, b"x"), "zone", "at most 255 fit"),
        (CAARecord(0, "\\xffissue", b"x"), "json", None),
        (CAARecord(0, "issué", b"x"), "tinydns", "is not 1 to 255 ASCII characters"),
        (CAARecord(0, "issue", b"\xff"), "json", "not UTF-8 text; use the zone or tinydns format"),
    ],
)
def test_records_a_format_cannot_hold_are_refused(
    record: CAARecord, fmt: str, message: str | None
) -> None:
    if message is None:  # an odd but ASCII tag is fine in JSON
        assert json.loads(render([record], fmt=fmt))[0]["tag"] == "\\xffissue"  # type: ignore[arg-type]
        return
    with pytest.raises(InputError, match=message):
        render([record], fmt=fmt)  # type: ignore[arg-type]


@given(
    cas=st.lists(st.text(max_size=12), max_size=3),
    wildcard=st.one_of(st.none(), st.lists(st.text(max_size=12), max_size=2)),
    iodef=st.lists(st.text(max_size=20), max_size=2),
    uri=st.text(max_size=20),
    name=st.text(max_size=20),
    ttl=st.integers(-5, 2**32),
)
@SETTINGS
def test_any_input_gives_records_that_read_back_or_an_input_error(
    cas: list[str],
    wildcard: list[str] | None,
    iodef: list[str],
    uri: str,
    name: str,
    ttl: int,
) -> None:
    accounts = {cas[0]: uri} if cas else None
    try:
        records = generate(cas, wildcard_cas=wildcard, iodef=iodef, account_uris=accounts)
        text = render(records, name=name, ttl=ttl)
    except InputError:
        return
    assert _read_zone(text) == records


# -- command-line values for account URIs ---------------------------------------------------


def test_per_ca_values_name_their_ca() -> None:
    uri = "https://acme.example/acct/1?a=b"
    assert parse_per_ca([f"LetsEncrypt.org={uri}"], ["letsencrypt.org", "pki.goog"]) == {
        "letsencrypt.org": (uri,)
    }
    # With one CA the value alone is enough, even when it holds '='.
    assert parse_per_ca([uri, uri + "2"], ["letsencrypt.org"]) == {
        "letsencrypt.org": (uri, uri + "2")
    }
    with pytest.raises(InputError, match=r"--account-uri 'https://x/1': say which CA"):
        parse_per_ca(["https://x/1"], ["letsencrypt.org", "pki.goog"])
    with pytest.raises(InputError, match="has an empty value"):
        parse_per_ca(["letsencrypt.org="], ["letsencrypt.org", "pki.goog"])
    with pytest.raises(InputError, match=r"--method 'dns-01': say which CA .*none"):
        parse_per_ca(["dns-01"], [], option="--method")
