"""Reading CAA records and property values: rdata, zone-file presentation, the issue
value grammar of RFC 8659 §4.2, RFC 8657 validationmethods, iodef, contactemail and
contactphone. Every reader raises only CAAFormatError, whatever it is given."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pinwarden.caa.model import CAARecord, IssueValue
from pinwarden.caa.records import (
    CAAFormatError,
    from_rdata,
    parse_presentation,
    to_presentation,
    to_rdata,
)
from pinwarden.caa.values import (
    ContactPhone,
    is_issuer_domain_name,
    parse_contactemail,
    parse_contactphone,
    parse_iodef,
    parse_issue_value,
    parse_validation_methods,
)
from pinwarden.errors import InputError

SETTINGS = settings(max_examples=300, deadline=None)

# -- issue values (RFC 8659 §4.2) --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "issuer", "parameters"),
    [
        # RFC 8659 §4.2 examples
        ("ca1.example.net", "ca1.example.net", ()),
        (";", None, ()),
        ("ca1.example.net; account=230123", "ca1.example.net", (("account", "230123"),)),
        # RFC 8657 Appendix A examples
        (
            "example.net; accounturi=https://example.net/account/1234",
            "example.net",
            (("accounturi", "https://example.net/account/1234"),),
        ),
        (
            "example.net; validationmethods=dns-01,xyz-01",
            "example.net",
            (("validationmethods", "dns-01,xyz-01"),),
        ),
        # an empty value and blanks only: no issuer, like ";"
        ("", None, ()),
        (" \t ", None, ()),
        ("ca.example;", "ca.example", ()),
        ("; a=b", None, (("a", "b"),)),
        # *WSP wherever the grammar allows it
        (
            " \tca.example \t; \ta \t= \tb \t; c=d\t ",
            "ca.example",
            (("a", "b"), ("c", "d")),
        ),
        ("ca.example; a=", "ca.example", (("a", ""),)),
        # a parameter value may hold '=' and anything printable but ';' and blanks
        ("ca.example; u=https://x/?a=b&c=%20", "ca.example", (("u", "https://x/?a=b&c=%20"),)),
        ("ca.example; a--b=1", "ca.example", (("a--b", "1"),)),
        ("x--y.example", "x--y.example", ()),
        ("LetsEncrypt.ORG", "LetsEncrypt.ORG", ()),
        ("9", "9", ()),
    ],
)
def test_issue_values_that_match_the_grammar(
    value: str, issuer: str | None, parameters: tuple[tuple[str, str], ...]
) -> None:
    expected = IssueValue(issuer, parameters)
    assert parse_issue_value(value) == expected
    assert parse_issue_value(value.encode("ascii")) == expected


@pytest.mark.parametrize(
    ("value", "position", "expected"),
    [
        ("%%%%%", 0, "an issuer domain name"),  # RFC 8659 §4.2's malformed example
        ("ca.example.", 10, "';' or the end"),  # a trailing dot is not in the grammar
        ("-ca.example", 0, "an issuer domain name"),
        ("ca-.example", 2, "';' or the end"),
        ("ca..example", 2, "';' or the end"),
        ("ca.example extra", 11, "';' or the end"),
        ("a=b", 1, "';' or the end"),  # parameters need the ';'
        ("ca; a=b;", 8, "another parameter"),  # no trailing ';' after a parameter
        ("ca; a=b c=d", 8, "';' between parameters"),
        ("ca; a", 5, "'=' after the parameter tag 'a'"),
        ("ca; =b", 4, "a parameter tag"),
        ("ca; -a=b", 4, "a parameter tag"),
        ("ca; a-=b", 5, "'=' after the parameter tag 'a'"),
        ("ca;;", 3, "a parameter tag"),
        ("ca; a=b;;c=d", 8, "a parameter tag"),
    ],
)
def test_issue_values_that_break_the_grammar_say_where(
    value: str, position: int, expected: str
) -> None:
    with pytest.raises(CAAFormatError) as caught:
        parse_issue_value(value)
    message = str(caught.value)
    assert f"at position {position}" in message
    assert expected in message
    assert repr(value) in message
    assert caught.value.detail in message and repr(value) not in caught.value.detail


def test_non_ascii_and_control_octets_are_malformed() -> None:
    with pytest.raises(CAAFormatError, match=r"0xc3 at position 1"):
        parse_issue_value("cä.example".encode())
    with pytest.raises(CAAFormatError, match=r"0x00 at position 2"):
        parse_issue_value(b"ca\x00")
    with pytest.raises(CAAFormatError, match="position 3"):
        parse_issue_value("ca;\n")


def test_the_property_name_appears_in_the_message() -> None:
    with pytest.raises(CAAFormatError, match="CAA issuemail value"):
        parse_issue_value("%", property_tag="issuemail")


def test_is_a_caa_error_and_an_input_error() -> None:
    with pytest.raises(InputError):
        parse_issue_value("%")


def test_a_long_value_is_shortened_in_the_message() -> None:
    with pytest.raises(CAAFormatError) as caught:
        parse_issue_value("%" * 10_000)
    assert len(str(caught.value)) < 300


_LABELS = st.from_regex(r"[A-Za-z0-9](?:-{0,2}[A-Za-z0-9]){0,6}", fullmatch=True)
_DOMAINS = st.lists(_LABELS, min_size=1, max_size=4).map(".".join)
_BLANKS = st.sampled_from(["", " ", "\t", " \t "])
_PARAMETERS = st.lists(
    st.tuples(_LABELS, st.from_regex(r"[\x21-\x3a\x3c-\x7e]{0,12}", fullmatch=True)),
    max_size=4,
)


@st.composite
def _written_values(draw: st.DrawFn) -> tuple[str, IssueValue]:
    """A value built from the grammar, spelled with random blanks, and what it means."""
    issuer = draw(st.none() | _DOMAINS)
    parameters = draw(_PARAMETERS)
    semicolon = bool(parameters) or draw(st.booleans())
    text = draw(_BLANKS)
    if issuer is not None:
        text += issuer + draw(_BLANKS)
    if semicolon:
        text += ";" + draw(_BLANKS)
        pieces = [f"{k}{draw(_BLANKS)}={draw(_BLANKS)}{v}" for k, v in parameters]
        text += "".join(
            piece + draw(_BLANKS) + (";" + draw(_BLANKS) if i < len(pieces) - 1 else "")
            for i, piece in enumerate(pieces)
        )
    return text, IssueValue(issuer, tuple(parameters))


@SETTINGS
@given(_written_values())
def test_every_value_the_grammar_generates_is_read_back(case: tuple[str, IssueValue]) -> None:
    text, expected = case
    assert parse_issue_value(text) == expected


@SETTINGS
@given(st.binary(max_size=80) | st.text(max_size=80).map(lambda t: t.encode("utf-8")))
@example(b"ca; a=b;")
@example(b"\xff")
def test_issue_values_raise_only_caa_format_errors(value: bytes) -> None:
    try:
        result = parse_issue_value(value)
    except CAAFormatError:
        return
    assert result.issuer is None or is_issuer_domain_name(result.issuer)


@SETTINGS
@given(st.text(alphabet=st.sampled_from("ab-.;= \t%é1"), max_size=40))
def test_issue_values_over_a_dense_alphabet(value: str) -> None:
    with contextlib.suppress(CAAFormatError):
        parse_issue_value(value)


def test_hostile_values_are_read_in_linear_time() -> None:
    # The label pattern is deterministic: no catastrophic backtracking on long hyphen runs.
    for value in ("a" + "-" * 60_000 + "!", "a." * 30_000 + "-", "ca;" + " a=b;" * 10_000):
        with pytest.raises(CAAFormatError):
            parse_issue_value(value)


def test_issuer_domain_name_check() -> None:
    assert is_issuer_domain_name("letsencrypt.org")
    assert not is_issuer_domain_name("letsencrypt.org.")
    assert not is_issuer_domain_name("lets_encrypt.org")
    assert not is_issuer_domain_name("ｌetsencrypt.org")


# -- validationmethods (RFC 8657 §4) -----------------------------------------------------


def test_validation_methods() -> None:
    assert parse_validation_methods("dns-01,xyz-01") == ("dns-01", "xyz-01")
    assert parse_validation_methods("ca-foo") == ("ca-foo",)
    assert parse_validation_methods("") == ()


@pytest.mark.parametrize("value", ["dns-01,", ",dns-01", "dns-01,,http-01", "dns_01", "dns-01 "])
def test_validation_methods_that_break_the_grammar(value: str) -> None:
    with pytest.raises(CAAFormatError, match="validation method"):
        parse_validation_methods(value)


# -- presentation form -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "record"),
    [
        (
            '0 issue "letsencrypt.org; validationmethods=dns-01"',
            CAARecord(0, "issue", b"letsencrypt.org; validationmethods=dns-01"),
        ),
        # RFC 8659 §4.2/§4.4 examples, as zone lines
        ('nocerts.example.com       CAA 0 issue ";"', CAARecord(0, "issue", b";")),
        (
            'report.example.com         CAA 0 iodef "mailto:security@example.com"',
            CAARecord(0, "iodef", b"mailto:security@example.com"),
        ),
        ('example.com. 3600 IN CAA 128 tbs "Unknown"', CAARecord(128, "tbs", b"Unknown")),
        ("example.com. IN CAA 0 issue letsencrypt.org", CAARecord(0, "issue", b"letsencrypt.org")),
        ('CAA 0 IsSuE "x"', CAARecord(0, "IsSuE", b"x")),
        # an owner that happens to be called "caa"
        ('caa CAA 0 issue "x"', CAARecord(0, "issue", b"x")),
        # escapes: \X and \DDD (RFC 1035 §5.1), in both forms
        (r'0 issue "a\"b\\c\255\010 d"', CAARecord(0, "issue", b'a"b\\c\xff\n d')),
        (r"0 issue a\032b", CAARecord(0, "issue", b"a b")),
        ('0 issue ""', CAARecord(0, "issue", b"")),
        ('0 issue "ü"', CAARecord(0, "issue", "ü".encode())),
        # a comment, and parentheses spanning lines
        ('0 issue "ca; a=b" ; who may issue', CAARecord(0, "issue", b"ca; a=b")),
        ('example.com. CAA ( 0 issue\n  "ca" )', CAARecord(0, "issue", b"ca")),
        # RFC 3597's generic form: the only way to write a tag that is not letters/digits
        (r"\# 8 0006697373752d78", CAARecord(0, "issu-x", b"")),
        (r"example.com. CAA \# 7 00 05 6973737565 ", CAARecord(0, "issue", b"")),
        ("007 issue x", CAARecord(7, "issue", b"x")),
    ],
)
def test_presentation_forms(text: str, record: CAARecord) -> None:
    assert parse_presentation(text) == record


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "expected '<flags> <tag> <value>'"),
        ("0 issue", "found 2 fields"),
        ("0 issue letsencrypt.org extra", "found 4 fields"),
        ('0 issue "unterminated', "unterminated quoted string"),
        ("256 issue x", "flags 256 are outside 0-255"),
        ("-1 issue x", "expected '<flags> <tag> <value>'"),
        ("0 is-sue x", "must be 1 to 255 letters and digits"),
        ('0 "issue" x', "must be 1 to 255 letters and digits"),
        (r"0 issue \25", r"\25 is not a \DDD escape"),
        (r"0 issue \256", r"\256 is not an octet"),
        ("0 issue x\\", "lone backslash"),
        ('0 issue ab"c"', "a quote inside an unquoted string"),
        ("example.com. A 192.0.2.1", "expected '<flags> <tag> <value>'"),
        (r"\# 2 0000", "CAA rdata with an empty tag"),
        (r"\# 4 000161", "declares 4 octets"),
        (r"\# 4 00056162", "too short for a 5-byte tag"),
        (r"\# 3 00016", "odd number"),
        (r"\# 3 0001zz", "must be hexadecimal"),
        (r"\#", "must be followed by a length"),
        (r"\# 1 00", "at least 2 are needed"),
    ],
)
def test_presentation_errors_say_what(text: str, expected: str) -> None:
    with pytest.raises(CAAFormatError) as caught:
        parse_presentation(text)
    assert expected in str(caught.value)


def test_to_presentation_escapes() -> None:
    record = CAARecord(128, "issue", b'ca; u="x"\\y\x00\xff\x7f')
    assert to_presentation(record) == r'128 issue "ca; u=\"x\"\\y\000\255\127"'


def test_to_presentation_uses_the_generic_form_for_other_tags() -> None:
    record = CAARecord(1, "a b", b"x")
    text = to_presentation(record)
    assert text == r"\# 6 010361206278"
    assert parse_presentation(text) == record


@pytest.mark.parametrize(
    "record",
    [
        CAARecord(256, "issue", b""),
        CAARecord(-1, "issue", b""),
        CAARecord(0, "", b""),
        CAARecord(0, "é", b""),
        CAARecord(0, "a" * 256, b""),
    ],
)
def test_records_that_cannot_exist_are_refused(record: CAARecord) -> None:
    with pytest.raises(CAAFormatError):
        to_presentation(record)
    with pytest.raises(CAAFormatError):
        to_rdata(record)


_RECORDS = st.builds(
    CAARecord,
    st.integers(0, 255),
    st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=1, max_size=255)
    | st.from_regex(r"[A-Za-z0-9]{1,20}", fullmatch=True),
    st.binary(max_size=300),
)


@SETTINGS
@given(_RECORDS)
def test_presentation_round_trips(record: CAARecord) -> None:
    assert parse_presentation(to_presentation(record)) == record


@SETTINGS
@given(_RECORDS)
def test_rdata_round_trips(record: CAARecord) -> None:
    assert from_rdata(to_rdata(record)) == record


@SETTINGS
@given(st.text(max_size=120))
@example('0 issue "\\')
@example("CAA CAA CAA 0")
@example(r"\# 99999999999999999999 00")
def test_presentation_raises_only_caa_format_errors(text: str) -> None:
    with contextlib.suppress(CAAFormatError):
        parse_presentation(text)


@SETTINGS
@given(st.text(alphabet=st.sampled_from(' 0129issueCA"\\;()#\n\tx'), max_size=40))
def test_presentation_over_a_dense_alphabet(text: str) -> None:
    try:
        record = parse_presentation(text)
    except CAAFormatError:
        return
    assert parse_presentation(to_presentation(record)) == record


@SETTINGS
@given(st.binary(max_size=64))
@example(b"")
@example(b"\x00\x00")
@example(b"\x80\x05iss\xffe")
def test_rdata_raises_only_caa_format_errors(data: bytes) -> None:
    try:
        record = from_rdata(data)
    except CAAFormatError:
        return
    assert record.tag and record.tag.isascii()


def test_rdata_keeps_tags_dnspython_would_refuse() -> None:
    record = from_rdata(b"\x80\x06iss\xffue" + b"ca")
    assert record == CAARecord(128, "iss\\xffue", b"ca")
    assert record.critical


# -- iodef (RFC 8659 §4.4) ---------------------------------------------------------------


def test_iodef_urls_from_the_rfc() -> None:
    mail = parse_iodef(b"mailto:security@example.com")
    assert (mail.scheme, mail.target) == ("mailto", "security@example.com")
    web = parse_iodef("https://iodef.example.com/")
    assert (web.scheme, web.target, web.url) == ("https", "iodef.example.com", web.url)
    assert parse_iodef("HTTP://iodef.example.com:8080/x").scheme == "http"
    assert parse_iodef("mailto:a@example.com,b@example.org").target == (
        "a@example.com,b@example.org"
    )
    assert parse_iodef("mailto:sec%2Bcaa@example.com").target == "sec+caa@example.com"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ftp://iodef.example.com/", "must be mailto:, http: or https:"),
        ("security@example.com", "must be mailto:, http: or https:"),
        ("https://", "must name a host"),
        ("https:///path", "must name a host"),
        ("mailto:", "must name e-mail addresses"),
        ("mailto:not-an-address", "must name e-mail addresses"),
        ("https://[::1/", "not a URL"),
        ("https://example.com:99999/", "not a URL"),
        ("https://example.com/a b", "cannot contain blanks"),
        ("https://exämple.com/", "not printable ASCII"),
    ],
)
def test_iodef_errors(value: str, expected: str) -> None:
    with pytest.raises(CAAFormatError) as caught:
        parse_iodef(value)
    assert expected in str(caught.value)


# -- contactemail (BR A.1.1, RFC 6532 §3.2) ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "local", "domain"),
    [
        ("domainowner@example.com", "domainowner", "example.com"),  # the BR example
        ("first.last+tag@sub.example.com", "first.last+tag", "sub.example.com"),
        ('"john doe"@example.com', '"john doe"', "example.com"),
        ('"a\\"b@c"@example.com', '"a\\"b@c"', "example.com"),
        ("user@[192.0.2.1]", "user", "[192.0.2.1]"),
        ("jöran@bücher.example", "jöran", "bücher.example"),  # RFC 6532 UTF-8
    ],
)
def test_contactemail(value: str, local: str, domain: str) -> None:
    parsed = parse_contactemail(value.encode())
    assert (parsed.address, parsed.local_part, parsed.domain) == (value, local, domain)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"example.com",
        b"a@",
        b"@example.com",
        b"a..b@example.com",
        b".a@example.com",
        b" a@example.com",  # "no additional padding"
        b"a@example.com ",
        b"Owner <a@example.com>",  # "or structure"
        b"a@example.com, b@example.com",
        b"a(comment)@example.com",
        b"\xff@example.com",
    ],
)
def test_contactemail_errors(value: bytes) -> None:
    with pytest.raises(CAAFormatError, match="contactemail"):
        parse_contactemail(value)


def test_contactemail_refuses_unencodable_text() -> None:
    with pytest.raises(CAAFormatError, match="UTF-8"):
        parse_contactemail("\udcff@example.com")


# -- contactphone (BR A.1.2, RFC 3966 §5.1.4) --------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+1 (555) 123-4567", ContactPhone("+1 (555) 123-4567", "+15551234567")),  # BR examples
        ("+1 555 123 4567", ContactPhone("+1 555 123 4567", "+15551234567")),
        ("+44.20.7946.0000", ContactPhone("+44.20.7946.0000", "+442079460000")),
        (
            "+1-555-123-4567;ext=89",
            ContactPhone("+1-555-123-4567;ext=89", "+15551234567", (("ext", "89"),)),
        ),
        (
            "+49 30 1234;isub=1a",
            ContactPhone("+49 30 1234;isub=1a", "+49301234", (("isub", "1a"),)),
        ),
    ],
)
def test_contactphone(value: str, expected: ContactPhone) -> None:
    assert parse_contactphone(value.encode()) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "+",
        "+ - ()",
        "555 123 4567",
        "tel:+15551234567",
        "+1 555 x",
        "+1;ext=ab",
        "+1;=3",
        "+١٢٣",
    ],
)
def test_contactphone_errors(value: str) -> None:
    with pytest.raises(CAAFormatError, match="contactphone"):
        parse_contactphone(value)


@SETTINGS
@given(
    st.binary(max_size=60)
    | st.text(alphabet=st.sampled_from('+1 ();=ext-.%@a"é'), max_size=30).map(str.encode)
)
def test_contact_and_iodef_readers_raise_only_caa_format_errors(value: bytes) -> None:
    for reader in (parse_contactemail, parse_contactphone, parse_iodef):
        with contextlib.suppress(CAAFormatError):
            reader(value)


def test_contact_readers_are_linear_on_hostile_input() -> None:
    with pytest.raises(CAAFormatError):
        parse_contactphone("+" + "1" * 50_000 + "!")
    with pytest.raises(CAAFormatError):
        parse_contactphone("+1" + ";ext=1" * 10_000 + "!")
    with pytest.raises(CAAFormatError):
        parse_contactemail("a." * 30_000 + "@")


def test_messages_name_the_value() -> None:
    with pytest.raises(CAAFormatError, match=re.escape("'ftp://x'")):
        parse_iodef("ftp://x")
