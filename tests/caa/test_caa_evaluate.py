"""May CA X issue for name N: RFC 8659 §3–§4 (quoting its example RRsets), RFC 8657
accounturi/validationmethods, RFC 9495 issuemail, the warnings where Let's Encrypt's
Boulder decides differently, and the summary of what an RRset allows."""

from __future__ import annotations

import importlib
import inspect
import json
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.caa.evaluate import KNOWN_TAGS, evaluate, evaluate_email, relevant_properties
from pinwarden.caa.model import CAALookup, CAARecord, Evaluation, Verdict
from pinwarden.caa.records import CAAFormatError, from_rdata, parse_presentation
from pinwarden.caa.summary import record_to_dict, summarize

ALLOWED, DENIED, UNKNOWN = Verdict.ALLOWED, Verdict.DENIED, Verdict.UNKNOWN


def lookup(*records: str, name: str = "example.com", found_at: str | None = None) -> CAALookup:
    """A successful lookup of ``name`` whose relevant RRset is ``records`` (zone-file
    form), found at ``found_at`` (default: the name itself)."""
    parsed = tuple(parse_presentation(r) for r in records)
    where = (found_at or name) if parsed else None
    return CAALookup(name=name, found_at=where, records=parsed)


def text(evaluation: Evaluation) -> str:
    return " ".join(evaluation.reasons)


def warned(evaluation: Evaluation, *words: str) -> bool:
    return any(all(w in warning for w in words) for warning in evaluation.warnings)


# -- RFC 8659 §3: no RRset, a failed lookup ----------------------------------------------


def test_no_caa_records_anywhere_allows_any_ca() -> None:
    result = evaluate(lookup(name="x.y.z"), "ca.example.net")
    assert result.verdict is ALLOWED
    assert result.matched is None and not result.conditions
    assert "No CAA records at x.y.z or any parent domain: any CA may issue" in text(result)


def test_a_failed_lookup_is_unknown_never_allowed() -> None:
    failed = CAALookup(
        name="example.com",
        found_at="example.com",
        records=(parse_presentation('0 issue "ca.example.net"'),),
        error="SERVFAIL for example.com",
    )
    for wildcard in (False, True):
        result = evaluate(failed, "ca.example.net", wildcard=wildcard)
        assert result.verdict is UNKNOWN
        assert "SERVFAIL for example.com" in text(result)
        assert "must refuse" in text(result)
    assert evaluate_email(failed, "ca.example.net").verdict is UNKNOWN


def test_records_found_at_a_parent_are_named() -> None:
    # RFC 8659 §3's example: "issue example.com" at B.C decides for A.B.C.
    result = evaluate(lookup('0 issue "example.com"', name="a.b.c", found_at="b.c"), "example.com")
    assert result.verdict is ALLOWED
    assert "The CAA records at b.c have 1 issue property, which decides for a.b.c." in text(result)


def test_an_rrset_without_issue_properties_does_not_restrict() -> None:
    # RFC 8659 §3: "(for instance, if it contains only iodef Property Tags or only
    # Property Tags unrecognized by the CA), CAA does not restrict issuance."
    rrset = lookup('0 iodef "mailto:security@example.com"', '0 tbs "Unknown"')
    result = evaluate(rrset, "ca.example.net")
    assert result.verdict is ALLOWED
    assert "have no issue property" in text(result) and "any CA may issue" in text(result)
    assert not result.warnings


def test_wildcard_with_neither_issue_nor_issuewild_is_allowed_but_boulder_refuses() -> None:
    result = evaluate(
        lookup('0 iodef "mailto:security@example.com"'), "letsencrypt.org", wildcard=True
    )
    assert result.verdict is ALLOWED
    assert "no issue or issuewild property" in text(result)
    assert warned(result, "Boulder refuses *.example.com")


# -- RFC 8659 §4.2 issue -------------------------------------------------------------------

CERTS = (
    'certs.example.com         CAA 0 issue "ca1.example.net"',
    'certs.example.com         CAA 0 issue "ca2.example.org"',
)


@pytest.mark.parametrize(
    ("ca", "verdict"),
    [("ca1.example.net", ALLOWED), ("ca2.example.org", ALLOWED), ("ca3.example.com", DENIED)],
)
def test_rfc_8659_certs_example(ca: str, verdict: Verdict) -> None:
    result = evaluate(lookup(*CERTS, name="certs.example.com"), ca)
    assert result.verdict is verdict
    if verdict is ALLOWED:
        assert result.matched is not None and result.matched.value == ca.encode()
    else:
        assert result.matched is None
        assert f"No issue property at certs.example.com authorizes {ca}" in text(result)


def test_reasons_name_each_record_in_presentation_form() -> None:
    result = evaluate(lookup(*CERTS, name="certs.example.com"), "ca2.example.org")
    assert result.reasons[1:] == (
        '`0 issue "ca1.example.net"` authorizes ca1.example.net, not ca2.example.org.',
        '`0 issue "ca2.example.org"` authorizes ca2.example.org for certs.example.com.',
    )


def test_rfc_8659_nocerts_example_denies_every_ca() -> None:
    result = evaluate(lookup('nocerts.example.com CAA 0 issue ";"'), "ca1.example.net")
    assert result.verdict is DENIED
    assert '`0 issue ";"` names no issuer: it authorizes no CA.' in result.reasons


def test_rfc_8659_malformed_example_forbids_issuance() -> None:
    result = evaluate(lookup('malformed.example.com CAA 0 issue "%%%%%"'), "ca1.example.net")
    assert result.verdict is DENIED
    assert "is malformed (expected an issuer domain name" in text(result)
    assert "treats it as naming no issuer" in text(result)


def test_malformed_value_naming_the_ca_still_does_not_authorize_it() -> None:
    # Trailing garbage after the right name: a CA reading loosely would see its name.
    result = evaluate(lookup('0 issue "ca1.example.net extra"'), "ca1.example.net")
    assert result.verdict is DENIED
    assert "is malformed" in text(result)


def test_authorizations_are_additive() -> None:
    # RFC 8659 §4.2: an empty issuer-domain-name and a non-empty one together are
    # the same as the non-empty one alone.
    result = evaluate(lookup('0 issue ";"', '0 issue "ca1.example.net"'), "ca1.example.net")
    assert result.verdict is ALLOWED
    assert result.matched == parse_presentation('0 issue "ca1.example.net"')


def test_several_records_where_one_matches() -> None:
    rrset = lookup(
        '0 issue "ca1.example.net"',
        '0 issue "%%%%%"',
        '0 issue ";"',
        '0 issue "letsencrypt.org; validationmethods=dns-01"',
        '0 issue "letsencrypt.org"',
        '0 issue "ca2.example.org"',
    )
    result = evaluate(rrset, "letsencrypt.org")
    assert result.verdict is ALLOWED
    # The unrestricted record wins over the one limited to dns-01.
    assert result.matched == parse_presentation('0 issue "letsencrypt.org"')
    assert not result.conditions
    assert len(result.reasons) == 1 + 6


def test_rfc_8659_ca_defined_parameter_is_ignored_with_a_warning() -> None:
    result = evaluate(
        lookup('account.example.com CAA 0 issue "ca1.example.net; account=230123"'),
        "ca1.example.net",
    )
    assert result.verdict is ALLOWED and not result.conditions
    assert warned(result, "account=230123", "only the CA defines")


def test_unknown_parameters_on_other_cas_records_are_not_mentioned() -> None:
    result = evaluate(
        lookup('0 issue "ca1.example.net; account=1"', '0 issue "ca2.example.org"'),
        "ca2.example.org",
    )
    assert result.verdict is ALLOWED and not result.warnings


def test_mixed_case_tag_is_an_issue_property() -> None:
    rrset = lookup('0 IsSuE "ca1.example.net"')
    assert evaluate(rrset, "ca1.example.net").verdict is ALLOWED
    assert evaluate(rrset, "ca2.example.org").verdict is DENIED
    wild = lookup('0 issue "ca1.example.net"', '0 ISSUEWILD "ca2.example.org"')
    assert evaluate(wild, "ca2.example.org", wildcard=True).verdict is ALLOWED


def test_parameters_with_odd_whitespace() -> None:
    rrset = lookup(
        '0 issue " \\009ca.example.net \\009;\\009accounturi = https://ca.example.net/acct/1 '
        ';validationmethods=dns-01 "'
    )
    allowed = evaluate(
        rrset, "ca.example.net", account_uri="https://ca.example.net/acct/1", method="dns-01"
    )
    assert allowed.verdict is ALLOWED and not allowed.conditions
    assert (
        evaluate(rrset, "ca.example.net", account_uri="https://ca.example.net/acct/2").verdict
        is DENIED
    )


@pytest.mark.parametrize(
    "value",
    [
        "ca.example.net; accounturi",
        "ca.example.net; accounturi=https://a/1 validationmethods=dns-01",
        "ca.example.net; a=b;",
        "ca.example.net;; a=b",
        "ca.example.net, ca2.example.org",
    ],
)
def test_bad_parameter_syntax_authorizes_no_ca(value: str) -> None:
    result = evaluate(lookup(f'0 issue "{value}"'), "ca.example.net")
    assert result.verdict is DENIED
    assert "is malformed" in text(result)


def test_issuer_names_match_without_regard_to_case_with_a_warning() -> None:
    result = evaluate(lookup('0 issue "LetsEncrypt.org"'), "letsencrypt.org")
    assert result.verdict is ALLOWED
    assert warned(result, "'LetsEncrypt.org'", "only without regard to case", "Boulder")
    exact = evaluate(lookup('0 issue "letsencrypt.org"'), "letsencrypt.org")
    assert exact.verdict is ALLOWED and not exact.warnings


def test_the_ca_argument_is_checked() -> None:
    with pytest.raises(CAAFormatError, match="not a domain name"):
        evaluate(lookup('0 issue "ca.example.net"'), "Let's Encrypt")
    with pytest.raises(CAAFormatError):
        evaluate_email(lookup(), "")
    # A trailing dot (fully qualified) is accepted.
    assert evaluate(lookup('0 issue "ca.example.net"'), "ca.example.net.").verdict is ALLOWED


# -- RFC 8659 §4.3 issuewild -------------------------------------------------------------

WILD = (
    'wild.example.com          CAA 0 issue "ca1.example.net"',
    'wild.example.com          CAA 0 issuewild "ca2.example.org"',
)


@pytest.mark.parametrize(
    ("ca", "wildcard", "verdict"),
    [
        ("ca1.example.net", False, ALLOWED),
        ("ca2.example.org", False, DENIED),  # issuewild is ignored for plain names
        ("ca2.example.org", True, ALLOWED),
        ("ca1.example.net", True, DENIED),  # issuewild takes precedence over issue
    ],
)
def test_rfc_8659_wild_example(ca: str, wildcard: bool, verdict: Verdict) -> None:
    result = evaluate(lookup(*WILD, name="wild.example.com"), ca, wildcard=wildcard)
    assert result.verdict is verdict


def test_rfc_8659_wild2_example_issue_covers_the_wildcard() -> None:
    rrset = lookup('wild2.example.com CAA 0 issue "ca1.example.net"', name="wild2.example.com")
    result = evaluate(rrset, "ca1.example.net", wildcard=True)
    assert result.verdict is ALLOWED
    assert "no issuewild property, so their 1 issue property decides for *.wild2.example.com" in (
        text(result)
    )
    assert evaluate(rrset, "ca2.example.org", wildcard=True).verdict is DENIED


def test_issuewild_that_denies_overrides_issue_that_allows() -> None:
    rrset = lookup('0 issue "ca1.example.net"', '0 issuewild ";"')
    wildcard = evaluate(rrset, "ca1.example.net", wildcard=True)
    assert wildcard.verdict is DENIED
    assert "the issue properties are ignored (RFC 8659 §4.3)" in text(wildcard)
    assert evaluate(rrset, "ca1.example.net").verdict is ALLOWED


def test_malformed_issuewild_still_overrides_issue() -> None:
    rrset = lookup('0 issue "ca1.example.net"', '0 issuewild "%%%"')
    assert evaluate(rrset, "ca1.example.net", wildcard=True).verdict is DENIED


def test_plain_names_ignore_issuewild_only_rrsets() -> None:
    rrset = lookup('0 issuewild "ca2.example.org"')
    plain = evaluate(rrset, "ca1.example.net")
    assert plain.verdict is ALLOWED
    assert "issuewild applies only to wildcard names" in text(plain)
    assert evaluate(rrset, "ca1.example.net", wildcard=True).verdict is DENIED


def test_relevant_properties() -> None:
    issue = parse_presentation('0 issue "a.example"')
    wild = parse_presentation('0 IssueWild "b.example"')
    iodef = parse_presentation('0 iodef "mailto:x@example.com"')
    assert relevant_properties([issue, wild, iodef], wildcard=True) == ("issuewild", (wild,))
    assert relevant_properties([issue, wild, iodef], wildcard=False) == ("issue", (issue,))
    assert relevant_properties([issue, iodef], wildcard=True) == ("issue", (issue,))
    assert relevant_properties([iodef], wildcard=True) == ("issue", ())


# -- RFC 8659 §4.1 flags -----------------------------------------------------------------


def test_critical_unknown_tag_forbids_issuance() -> None:
    rrset = lookup('0 issue "ca.example.net"', '128 tbs "Unknown"')
    for wildcard in (False, True):
        result = evaluate(rrset, "ca.example.net", wildcard=wildcard)
        assert result.verdict is DENIED
        assert "its tag 'tbs' is unknown: RFC 8659 §4.1 forbids any issuance" in text(result)
    assert evaluate_email(rrset, "ca.example.net").verdict is DENIED


def test_critical_tag_with_characters_dnspython_refuses() -> None:
    record = from_rdata(b"\x80\x04is_e" + b"x")
    rrset = CAALookup("example.com", "example.com", (record,))
    result = evaluate(rrset, "ca.example.net")
    assert result.verdict is DENIED and "'is_e'" in text(result)


def test_non_critical_unknown_tag_is_ignored() -> None:
    rrset = lookup('0 issue "ca.example.net"', '0 tbs "Unknown"')
    assert evaluate(rrset, "ca.example.net").verdict is ALLOWED
    assert evaluate(rrset, "other.example").verdict is DENIED


def test_critical_known_tags_are_processed_normally() -> None:
    rrset = lookup('128 issue "ca.example.net"', '128 iodef "mailto:x@example.com"')
    result = evaluate(rrset, "ca.example.net")
    assert result.verdict is ALLOWED and not result.warnings


def test_flag_1_on_an_unknown_tag_warns_that_boulder_treats_it_as_critical() -> None:
    rrset = lookup('0 issue "letsencrypt.org"', '1 tbs "Unknown"')
    result = evaluate(rrset, "letsencrypt.org")
    assert result.verdict is ALLOWED  # RFC 8659 §4.1: reserved bits are ignored
    assert warned(result, "`1 tbs", "reserved flag bits (value 1)", "must ignore them")
    assert warned(result, "flag value 1", "Boulder", "critical flag", "refuses to issue")


def test_flag_1_on_a_tag_boulder_knows_only_warns_about_reserved_bits() -> None:
    result = evaluate(lookup('1 issue "letsencrypt.org"'), "letsencrypt.org")
    assert result.verdict is ALLOWED
    assert warned(result, "reserved flag bits (value 1)")
    assert not warned(result, "Boulder")


def test_other_reserved_bits_are_ignored_with_a_warning() -> None:
    result = evaluate(lookup('64 tbs "x"', '0 issue "ca.example.net"'), "ca.example.net")
    assert result.verdict is ALLOWED
    assert warned(result, "reserved flag bits (value 64)")
    assert not warned(result, "Boulder")


def test_critical_contact_property_warns_that_boulder_refuses() -> None:
    rrset = lookup('0 issue "letsencrypt.org"', '128 contactemail "domainowner@example.com"')
    result = evaluate(rrset, "letsencrypt.org")
    assert result.verdict is ALLOWED
    assert "contactemail" in KNOWN_TAGS
    assert warned(result, "marked critical", "'contactemail'", "Boulder", "does")


# -- RFC 8657 accounturi and validationmethods --------------------------------------------

ACCOUNTS = (
    'example.com. IN CAA 0 issue "example.net; accounturi=https://example.net/account/1234"',
    'example.com. IN CAA 0 issue "example.net; accounturi=https://example.net/account/2345"',
)


def test_accounturi_match() -> None:
    result = evaluate(
        lookup(*ACCOUNTS), "example.net", account_uri="https://example.net/account/2345"
    )
    assert result.verdict is ALLOWED and not result.conditions
    assert result.matched == parse_presentation(ACCOUNTS[1])


def test_accounturi_mismatch() -> None:
    result = evaluate(lookup(*ACCOUNTS), "example.net", account_uri="https://example.net/account/9")
    assert result.verdict is DENIED
    assert "only for the account https://example.net/account/1234, not" in text(result)


def test_accounturi_without_an_account_is_allowed_with_conditions() -> None:
    result = evaluate(lookup(*ACCOUNTS), "example.net")
    assert result.verdict is ALLOWED
    assert result.conditions == (
        "only for the account https://example.net/account/1234",
        "only for the account https://example.net/account/2345",
    )
    assert "only under these conditions" in text(result)


def test_accounturi_is_compared_exactly() -> None:
    rrset = lookup('0 issue "example.net; accounturi=https://example.net/account/1234"')
    assert (
        evaluate(rrset, "example.net", account_uri="https://EXAMPLE.net/account/1234").verdict
        is DENIED
    )


def test_an_account_given_for_a_record_without_accounturi_is_irrelevant() -> None:
    result = evaluate(lookup('0 issue "example.net"'), "example.net", account_uri="https://x/1")
    assert result.verdict is ALLOWED and not result.conditions


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (
            "example.net; accounturi=https://example.net/a/1; accounturi=https://example.net/a/1",
            "2 accounturi parameters",
        ),
        ("example.net; accounturi=", "is not a URI"),
        ("example.net; accounturi=1234", "is not a URI"),
        ("example.net; validationmethods=dns-01; validationmethods=dns-01", "2 validationmethods"),
        ("example.net; validationmethods=dns-01,,http-01", "malformed validationmethods"),
        ("example.net; validationmethods=", "empty validationmethods"),
    ],
)
def test_unsatisfiable_rfc_8657_parameters(value: str, why: str) -> None:
    result = evaluate(
        lookup(f'0 issue "{value}"'),
        "example.net",
        account_uri="https://example.net/a/1",
        method="dns-01",
    )
    assert result.verdict is DENIED
    assert why in text(result)


def test_validationmethods_match_and_mismatch() -> None:
    rrset = lookup('example.com. IN CAA 0 issue "example.net; validationmethods=dns-01,xyz-01"')
    assert evaluate(rrset, "example.net", method="xyz-01").verdict is ALLOWED
    denied = evaluate(rrset, "example.net", method="http-01")
    assert denied.verdict is DENIED
    assert "only with the validation methods dns-01, xyz-01, not http-01" in text(denied)
    open_ = evaluate(rrset, "example.net")
    assert open_.verdict is ALLOWED
    assert open_.conditions == ("only with the validation methods dns-01, xyz-01",)


def test_rfc_8657_one_account_per_method_example() -> None:
    rrset = lookup(
        'example.com. IN CAA 0 issue "example.net; accounturi=https://example.net/account/1234; '
        'validationmethods=dns-01"',
        'example.com. IN CAA 0 issue "example.net; accounturi=https://example.net/account/2345; '
        'validationmethods=http-01"',
    )
    a1234 = "https://example.net/account/1234"
    assert evaluate(rrset, "example.net", account_uri=a1234, method="dns-01").verdict is ALLOWED
    assert evaluate(rrset, "example.net", account_uri=a1234, method="http-01").verdict is DENIED
    partial = evaluate(rrset, "example.net", account_uri=a1234)
    assert partial.verdict is ALLOWED
    assert partial.conditions == ("only with the validation method dns-01",)


def test_rfc_8657_parameters_in_other_case_warn_about_boulder() -> None:
    rrset = lookup(
        '0 issue "letsencrypt.org; AccountURI=https://acme-v02.api.letsencrypt.org/acme/acct/1"'
    )
    result = evaluate(
        rrset, "letsencrypt.org", account_uri="https://acme-v02.api.letsencrypt.org/acme/acct/1"
    )
    assert result.verdict is ALLOWED
    assert warned(result, "'AccountURI'", "Boulder", "does not apply this restriction")


# -- RFC 9495 issuemail ------------------------------------------------------------------


def test_rfc_9495_issue_properties_do_not_restrict_email() -> None:
    rrset = lookup(
        'mail.example.com CAA 0 issue "ca1.example.net"',
        'mail.example.com CAA 0 issue "ca2.example.org"',
        name="mail.example.com",
    )
    result = evaluate_email(rrset, "ca.example.com")
    assert result.verdict is ALLOWED
    assert "no issuemail property" in text(result)


@pytest.mark.parametrize(
    ("records", "verdict"),
    [
        (('mail.example.com CAA 0 issuemail ";"',), DENIED),
        (
            (
                'mail.example.com CAA 0 issuemail ";"',
                'mail.example.com CAA 0 issuemail "ca.example.com"',
            ),
            ALLOWED,
        ),
        (('malformed.example.com CAA 0 issuemail "%%%%%"',), DENIED),
        (('0 issuemail "other.example.org"', '0 issue "ca.example.com"'), DENIED),
    ],
)
def test_rfc_9495_examples(records: tuple[str, ...], verdict: Verdict) -> None:
    result = evaluate_email(lookup(*records, name="mail.example.com"), "ca.example.com")
    assert result.verdict is verdict
    assert "e-mail addresses at mail.example.com" in text(result)


def test_issuemail_does_not_restrict_tls_certificates() -> None:
    rrset = lookup('0 issuemail ";"')
    assert evaluate(rrset, "ca.example.net").verdict is ALLOWED
    assert evaluate(rrset, "ca.example.net", wildcard=True).verdict is ALLOWED


def test_issuemail_parameters_are_left_to_the_ca() -> None:
    rrset = lookup('0 issuemail "ca.example.com; accounturi=https://ca.example.com/a/1"')
    result = evaluate_email(rrset, "ca.example.com")
    assert result.verdict is ALLOWED and not result.conditions
    assert warned(result, "accounturi=https://ca.example.com/a/1", "only the CA defines")


def test_email_with_no_records_is_allowed() -> None:
    assert evaluate_email(lookup(), "ca.example.com").verdict is ALLOWED


# -- summary -----------------------------------------------------------------------------


def test_summary_of_nothing() -> None:
    summary = summarize(())
    assert summary.name.any_ca and summary.wildcard.any_ca and summary.email.any_ca
    assert summary.name.describe() == "any CA"
    assert not summary.wildcard_differs


def test_summary_of_a_full_rrset() -> None:
    rrset = lookup(
        '0 issue "ca1.example.net"',
        '0 issue "LetsEncrypt.org; validationmethods=dns-01"',
        '0 issue "letsencrypt.org"',
        '0 issue "%%%"',
        '0 issuewild ";"',
        '0 issuemail "ca.example.com"',
        '0 iodef "mailto:security@example.com"',
        '0 iodef "https://iodef.example.com/"',
        '0 iodef "ftp://nope"',
        '0 contactemail "domainowner@example.com"',
        '0 contactphone "+1 (555) 123-4567"',
        '0 tbs "Unknown"',
    ).records
    summary = summarize(rrset)
    assert summary.name.tag == "issue"
    assert summary.name.issuers == ("ca1.example.net", "letsencrypt.org")
    assert summary.name.describe() == (
        "ca1.example.net, LetsEncrypt.org (validationmethods=dns-01), letsencrypt.org"
    )
    assert summary.wildcard.no_ca and summary.wildcard.tag == "issuewild"
    assert summary.wildcard.describe() == "no CA (issuewild names no issuer)"
    assert summary.wildcard_differs
    assert summary.email.issuers == ("ca.example.com",)
    assert [i.target for i in summary.iodef] == ["security@example.com", "iodef.example.com"]
    assert [c.address for c in summary.contact_emails] == ["domainowner@example.com"]
    assert [p.e164 for p in summary.contact_phones] == ["+15551234567"]
    assert [r.tag for r in summary.unknown] == ["tbs"]
    assert not summary.critical_unknown
    assert [(m.record.value, "expected" in m.reason) for m in summary.malformed] == [
        (b"%%%", True),
        (b"ftp://nope", False),
    ]
    encoded = json.loads(json.dumps(summary.to_dict()))
    assert encoded["wildcard_differs"] is True
    assert encoded["name"]["issuers"][1]["parameters"] == [["validationmethods", "dns-01"]]
    assert encoded["wildcard"]["no_ca"] is True
    assert encoded["malformed"][0]["record"]["presentation"] == '0 issue "%%%"'


def test_summary_when_a_critical_unknown_property_blocks_everything() -> None:
    summary = summarize(lookup('0 issue "ca1.example.net"', '128 tbs "Unknown"').records)
    assert summary.name.no_ca and summary.wildcard.no_ca and summary.email.no_ca
    assert summary.name.blocked and "critical" in summary.name.describe()
    assert [r.tag for r in summary.critical_unknown] == ["tbs"]
    assert not summary.unknown


def test_summary_issuewild_only() -> None:
    summary = summarize(lookup('0 issuewild "ca2.example.org"').records)
    assert summary.name.any_ca
    assert summary.wildcard.issuers == ("ca2.example.org",)
    assert summary.wildcard_differs


def test_summary_wildcard_follows_issue_without_issuewild() -> None:
    summary = summarize(lookup('0 issue "ca1.example.net"').records)
    assert summary.wildcard == summary.name and not summary.wildcard_differs


def test_record_to_dict() -> None:
    record = CAARecord(128, "issue", b"ca\xff")
    assert record_to_dict(record) == {
        "flags": 128,
        "critical": True,
        "tag": "issue",
        "value": "ca\\xff",
        "presentation": '128 issue "ca\\255"',
    }


# -- properties: the evaluator and the summary agree; nothing crashes --------------------

_ISSUERS = st.sampled_from(["ca1.example.net", "CA1.example.net", "ca2.example.org"])
_VALUES = st.one_of(
    _ISSUERS,
    _ISSUERS.map(lambda i: f"{i}; x=1"),
    st.sampled_from([";", "", "%%%", "ca1.example.net.", "ca1.example.net x"]),
)
_TAGS = st.sampled_from(["issue", "ISSUE", "issuewild", "iodef", "issuemail", "tbs"])
_SIMPLE_RECORDS = st.lists(
    st.builds(
        CAARecord,
        st.sampled_from([0, 0, 1, 64, 128]),
        _TAGS,
        _VALUES.map(str.encode),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(_SIMPLE_RECORDS, st.booleans(), st.sampled_from(["ca1.example.net", "ca2.example.org"]))
def test_evaluation_agrees_with_the_summary(
    records: list[CAARecord], wildcard: bool, ca: str
) -> None:
    summary = summarize(records)
    permission = summary.wildcard if wildcard else summary.name
    result = evaluate(
        CAALookup("example.com", "example.com" if records else None, tuple(records)),
        ca,
        wildcard=wildcard,
    )
    expected = permission.any_ca or (not permission.blocked and ca in permission.issuers)
    assert (result.verdict is ALLOWED) == expected
    email = evaluate_email(
        CAALookup("example.com", "example.com" if records else None, tuple(records)), ca
    )
    expected_email = summary.email.any_ca or (
        not summary.email.blocked and ca in summary.email.issuers
    )
    assert (email.verdict is ALLOWED) == expected_email


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(
            CAARecord, st.integers(0, 255), st.text(min_size=1, max_size=12), st.binary(max_size=40)
        ),
        max_size=5,
    ),
    st.booleans(),
    st.none() | st.text(max_size=20),
    st.none() | st.text(max_size=10),
)
def test_evaluation_never_crashes(
    records: list[CAARecord], wildcard: bool, account: str | None, method: str | None
) -> None:
    rrset = CAALookup("example.com", "example.com" if records else None, tuple(records))
    result = evaluate(
        rrset, "ca.example.net", wildcard=wildcard, account_uri=account, method=method
    )
    assert result.verdict in (ALLOWED, DENIED)
    assert result.reasons and all(reason.endswith(".") for reason in result.reasons)
    assert (result.verdict is ALLOWED) or not result.conditions
    assert evaluate_email(rrset, "ca.example.net").verdict in (ALLOWED, DENIED)
    json.dumps(summarize(records).to_dict())


@pytest.mark.parametrize(
    "name",
    [
        "pinwarden.caa.records",
        "pinwarden.caa.values",
        "pinwarden.caa.evaluate",
        "pinwarden.caa.summary",
        "pinwarden.caa.lookup",
    ],
)
def test_public_names_are_sorted_and_documented(name: str) -> None:
    # import_module, not attribute access: a package may re-export the function
    # evaluate() under the submodule's name.
    module: ModuleType = importlib.import_module(name)
    names = list(module.__all__)
    assert names == sorted(names)
    for public in names:
        obj = getattr(module, public)
        doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else inspect.getdoc(obj)
        assert isinstance(doc, str) and not doc.startswith(f"{public}("), public


def test_a_lookup_for_a_wildcard_is_evaluated_as_a_wildcard() -> None:
    records = (
        CAARecord(0, "issue", b"ca.test"),
        CAARecord(0, "issuewild", b";"),
    )
    lookup = CAALookup("example.com", "example.com", records, wildcard=True)
    assert evaluate(lookup, "ca.test").verdict is Verdict.DENIED
    plain = CAALookup("example.com", "example.com", records)
    assert evaluate(plain, "ca.test").verdict is Verdict.ALLOWED
