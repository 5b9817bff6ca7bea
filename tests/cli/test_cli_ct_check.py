"""``pinwarden ct check``: embedded SCTs and the Chrome/Apple CT-policy audit, for
certificate files, live local TLS servers and a real certificate."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID

from conftest import vectors
from pinwarden.cli import main
from pinwarden.ct.logs import Log, LogList, LogState, log_id_of
from pinwarden.ct.sct import SignedEntry, _tlv, encode_sct_list, issuer_key_hash
from pinwarden.testing import CA, Issued, TLSServer, pem
from pinwarden.testing.ct import CTIssued, TestLog, issue_with_scts, log_list_of, timestamp_ms
from tls_support import closed_port

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)


@dataclasses.dataclass
class Kit:
    root: CA
    issuing: CA
    google: TestLog
    cloudflare: TestLog
    dir: Path

    @property
    def cafile(self) -> str:
        path = self.dir / "root.pem"
        path.write_bytes(self.root.cert_pem)
        return str(path)

    def log_list(self, *logs: TestLog | Log, name: str = "logs.json") -> str:
        listed = log_list_of(logs or (self.google, self.cloudflare))
        listed = dataclasses.replace(listed, timestamp=NOW - dt.timedelta(days=1))
        path = self.dir / name
        path.write_text(json.dumps(listed.to_chrome_v3()), encoding="utf-8")
        return str(path)

    def issue(self, logs: Sequence[TestLog] | None = None, **kwargs: Any) -> CTIssued:
        chosen = list(logs) if logs is not None else [self.google, self.cloudflare]
        return issue_with_scts(self.issuing, "localhost", chosen, **kwargs)

    def host(self, server: TLSServer, cafile: str | None = None) -> list[str]:
        """The arguments that check ``server``, trusting this kit's root and logs."""
        return [
            f"localhost:{server.port}",
            "--cafile",
            cafile or self.cafile,
            "--log-list",
            self.log_list(),
        ]

    def write(self, name: str, *certs: Any) -> str:
        path = self.dir / name
        path.write_bytes(pem(*certs))
        return str(path)


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    root = CA("ct check root")
    return Kit(
        root,
        root.intermediate("ct check issuing CA"),
        TestLog("Test Argon", operator="Google"),
        TestLog("Test Nimbus", operator="Cloudflare", key_type="rsa-2048"),
        tmp_path,
    )


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["ct", "check", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


Signer = Callable[[SignedEntry, int], Sequence[bytes]]

# An OID of the same DER length as the one it stands in for: replacing one with the other
# keeps the DER well formed, so a certificate can carry an extension twice.
_PLACEHOLDER = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.9")
_PLACEHOLDER_DER = bytes.fromhex("060a2b06010401d679020409")
_OTHER = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.8")
_OTHER_DER = bytes.fromhex("060a2b06010401d679020408")
_SCT_LIST_DER = bytes.fromhex("060a2b06010401d679020402")


def embedding(
    kit: Kit, sign: Signer, *extensions: x509.ExtensionType, twice: bytes | None = None
) -> Issued:
    """A certificate for localhost by the kit's issuing CA carrying the SCTs ``sign``
    makes (``sign(entry, timestamp_ms)``, an hour ago) after ``extensions``. With
    ``twice``, the placeholder extension among them becomes a second ``twice`` extension
    (the DER OID), in what the logs sign too, and the certificate is signed again."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = NOW - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=localhost"))
        .issuer_name(kit.issuing.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=90, seconds=-1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)

    def tbs(built: x509.CertificateBuilder) -> bytes:
        data = built.sign(kit.issuing.key, hashes.SHA256()).tbs_certificate_bytes
        return data.replace(_PLACEHOLDER_DER, twice) if twice else data

    entry = SignedEntry.precert(tbs(builder), issuer_key_hash(kit.issuing.cert))
    scts = sign(entry, timestamp_ms(NOW - dt.timedelta(hours=1)))
    value = _tlv(0x04, encode_sct_list(scts))
    final = builder.add_extension(
        x509.UnrecognizedExtension(ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, value),
        critical=False,
    )
    issuing_key = kit.issuing.key
    assert isinstance(issuing_key, ec.EllipticCurvePrivateKey)
    signature = issuing_key.sign(tbs(final), ec.ECDSA(hashes.SHA256()))
    ecdsa_with_sha256 = bytes.fromhex("300a06082a8648ce3d040302")
    der = _tlv(0x30, tbs(final) + ecdsa_with_sha256 + _tlv(0x03, b"\x00" + signature))
    cert = x509.load_der_x509_certificate(der)
    return Issued(cert, key, kit.issuing.chain, kit.root.cert)


def both_logs(kit: Kit) -> Signer:
    return lambda entry, when: [
        kit.google.sign_sct(entry, when),
        kit.cloudflare.sign_sct(entry, when),
    ]


def altered(cert: x509.Certificate) -> x509.Certificate:
    """``cert`` with one bit of its TBS flipped (the subject CN localhost → mocalhost)."""
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[der.index(b"localhost")] ^= 0x01
    return x509.load_der_x509_certificate(bytes(der))


def with_version(cert: x509.Certificate | bytes, version: int) -> bytes:
    """``cert``'s DER with another version number: cryptography refuses to load it
    (InvalidVersion, which is not a ValueError), OpenSSL does not."""
    der = cert if isinstance(cert, bytes) else cert.public_bytes(serialization.Encoding.DER)
    at = der.index(bytes.fromhex("a003020102"))
    return der[: at + 4] + bytes([version]) + der[at + 5 :]


@dataclasses.dataclass(frozen=True)
class RawLeaf(Issued):
    """Serves ``leaf_der`` as its leaf: bytes cryptography itself may refuse."""

    leaf_der: bytes = b""

    @property
    def chain_pem(self) -> bytes:
        return pem(self.leaf_der, *self.chain)


# --- certificate files ------------------------------------------------------------------


def test_bundle_with_issuer_is_compliant(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    issued = kit.issue()
    bundle = kit.write("bundle.pem", issued.cert, issued.issuer)
    code = main(["ct", "check", bundle, "--log-list", kit.log_list()])
    output = capsys.readouterr().out
    assert code == 0
    assert "Embedded SCTs (2)" in output
    assert "Test Argon — operator Google, usable since 2020-01-01, RFC 6962" in output
    assert "Test Nimbus — operator Cloudflare" in output
    assert output.count("signature valid") == 2
    assert "Chrome CT policy: compliant (2 logs, 2 operators, lifetime 90 days)" in output
    # notAfter = notBefore + 90 days: 91 days for Apple, still at most 180.
    assert "Apple CT policy: compliant (2 SCTs counted, lifetime 91 days)" in output
    assert "issuer cert from the bundle" in output
    assert "not the enforcement a browser performs" in output
    assert "OCSP" in output


def test_json_schema(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    # 90 days minus a second: 90 days for Apple too, so both policies pass.
    start = NOW - dt.timedelta(days=1)
    issued = kit.issue(not_before=start, not_after=start + dt.timedelta(days=90, seconds=-1))
    leaf = kit.write("leaf.pem", issued.cert)
    issuer = kit.write("issuer.pem", issued.issuer)
    code, data = run_json(capsys, leaf, "--issuer", issuer, "--log-list", kit.log_list())
    assert code == 0
    assert set(data) == {
        "target",
        "source",
        "at",
        "certificate",
        "lifetime_seconds",
        "issuer",
        "issuer_from",
        "log_list",
        "scts",
        "chrome",
        "apple",
        "compliant",
        "audit_note",
    }
    assert data["source"] == "file"
    assert data["compliant"] is True
    assert data["lifetime_seconds"] == 90 * 86400 - 1
    assert data["issuer_from"] == f"--issuer {issuer}"
    assert data["issuer"]["subject"] == issued.issuer.subject.rfc4514_string()
    assert data["certificate"]["pin"] == str(issued.pin)
    assert data["log_list"]["logs"] == 2
    first = data["scts"][0]
    assert set(first) == {
        "index",
        "log_id",
        "log",
        "operator",
        "log_state",
        "log_state_since",
        "log_api",
        "timestamp",
        "leaf_index",
        "status",
        "detail",
    }
    assert [s["log"] for s in data["scts"]] == ["Test Argon", "Test Nimbus"]
    assert [s["status"] for s in data["scts"]] == ["valid", "valid"]
    assert first["operator"] == "Google"
    assert first["log_state"] == "usable"
    assert first["log_api"] == "rfc6962"
    assert data["chrome"]["compliant"] is True
    assert data["apple"]["compliant"] is True
    assert [line["met"] for line in data["apple"]["lines"]] == [True, True, True, True]
    assert "audit" in data["audit_note"]


def test_without_issuer_cannot_decide(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    issued = kit.issue()
    leaf = kit.write("leaf.pem", issued.cert)
    code = main(["ct", "check", leaf, "--log-list", kit.log_list()])
    output = capsys.readouterr().out
    assert code == 3
    assert "signature unverified" in output
    assert "--issuer FILE" in output
    assert "Chrome CT policy: could not decide" in output
    code, data = run_json(capsys, leaf, "--log-list", kit.log_list())
    assert code == 3
    assert data["compliant"] is None
    assert data["issuer"] is None
    assert {s["status"] for s in data["scts"]} == {"unverified"}
    # The log list still names the logs.
    assert [s["log"] for s in data["scts"]] == ["Test Argon", "Test Nimbus"]


def test_wrong_issuer_is_a_bad_signature(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    issued = kit.issue()
    leaf = kit.write("leaf.pem", issued.cert)
    other = kit.write("other.pem", kit.root.intermediate("another issuing CA").cert)
    code, data = run_json(capsys, leaf, "--issuer", other, "--log-list", kit.log_list())
    assert code == 1
    assert {s["status"] for s in data["scts"]} == {"bad-signature"}
    assert data["chrome"]["compliant"] is False
    assert "does the issuer match?" in data["scts"][0]["detail"]


def test_wrong_issuer_warns(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    issued = kit.issue()
    leaf = kit.write("leaf.pem", issued.cert)
    other = kit.write("other.pem", kit.root.intermediate("another issuing CA").cert)
    assert main(["ct", "check", leaf, "--issuer", other, "--log-list", kit.log_list()]) == 1
    assert "did not sign this certificate" in capsys.readouterr().err


def test_one_corrupt_sct_fails_even_when_policies_pass(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    third = TestLog("Test Yeti", operator="DigiCert")
    issued = kit.issue([kit.google, kit.cloudflare, third], corrupt=[2])
    bundle = kit.write("bundle.pem", issued.cert, issued.issuer)
    code, data = run_json(
        capsys, bundle, "--log-list", kit.log_list(kit.google, kit.cloudflare, third)
    )
    assert code == 1
    assert [s["status"] for s in data["scts"]] == ["valid", "valid", "bad-signature"]
    assert data["chrome"]["compliant"] is True


def test_no_scts_is_not_compliant(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    plain = kit.issuing.issue("localhost")
    path = kit.write("plain.pem", plain.cert, *plain.chain)
    code = main(["ct", "check", path, "--log-list", kit.log_list()])
    output = capsys.readouterr().out
    assert code == 1
    assert "no SCTs in this certificate" in output
    assert "Chrome CT policy: NOT compliant: no SCTs" in output
    code, data = run_json(capsys, path, "--log-list", kit.log_list())
    assert code == 1
    assert data["scts"] == []
    assert data["compliant"] is False


@pytest.mark.parametrize(
    ("days", "chrome", "apple"),
    [(90, True, True), (180, True, False), (181, False, False), (398, False, False)],
)
def test_lifetimes_with_two_logs(
    kit: Kit, capsys: pytest.CaptureFixture[str], days: int, chrome: bool, apple: bool
) -> None:
    # issue_with_scts sets notAfter = notBefore + days: Apple counts that as days + 1.
    start = NOW - dt.timedelta(days=1)
    issued = kit.issue(
        not_before=start,
        not_after=start + dt.timedelta(days=days, seconds=-1 if days == 90 else 0),
    )
    bundle = kit.write("bundle.pem", issued.cert, issued.issuer)
    code, data = run_json(capsys, bundle, "--log-list", kit.log_list())
    assert data["chrome"]["compliant"] is chrome
    assert data["apple"]["compliant"] is apple
    assert code == (0 if chrome and apple else 1)


def test_398_days_with_three_logs_and_two_operators(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    second_google = TestLog("Test Xenon", operator="Google")
    logs = [kit.google, second_google, kit.cloudflare]
    start = NOW - dt.timedelta(days=1)
    issued = kit.issue(logs, not_before=start, not_after=start + dt.timedelta(days=398, seconds=-1))
    bundle = kit.write("bundle.pem", issued.cert, issued.issuer)
    code, data = run_json(capsys, bundle, "--log-list", kit.log_list(*logs))
    assert code == 0
    assert data["chrome"]["compliant"] is True
    assert data["apple"]["compliant"] is True


def test_operator_diversity_not_met(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    second_google = TestLog("Test Xenon", operator="Google")
    issued = kit.issue([kit.google, second_google])
    bundle = kit.write("bundle.pem", issued.cert, issued.issuer)
    code = main(["ct", "check", bundle, "--log-list", kit.log_list(kit.google, second_google)])
    output = capsys.readouterr().out
    assert code == 1
    assert "Chrome CT policy: NOT compliant: 1 log operator, 2 needed" in output
    assert "✗ among those SCTs, at least 2 distinct log operators" in output


def test_retired_log(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    issued = kit.issue()
    bundle = kit.write("bundle.pem", issued.cert, issued.issuer)
    sct_time = issued.cert.not_valid_before_utc + dt.timedelta(hours=1)
    before = kit.cloudflare.as_log(state=LogState.RETIRED, since=sct_time + dt.timedelta(hours=1))
    code, data = run_json(
        capsys, bundle, "--log-list", kit.log_list(kit.google, before, name="later.json")
    )
    assert data["chrome"]["compliant"] is True
    assert data["apple"]["compliant"] is True
    assert code == 0
    after = kit.cloudflare.as_log(state=LogState.RETIRED, since=sct_time - dt.timedelta(hours=1))
    code, data = run_json(
        capsys, bundle, "--log-list", kit.log_list(kit.google, after, name="earlier.json")
    )
    assert code == 1
    assert data["scts"][1]["status"] == "log-not-trusted-at-time"
    assert data["chrome"]["compliant"] is False


def test_log_without_state_cannot_decide(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    issued = kit.issue()
    bundle = kit.write("bundle.pem", issued.cert, issued.issuer)
    stateless = kit.cloudflare.as_log(state=None)
    code, data = run_json(capsys, bundle, "--log-list", kit.log_list(kit.google, stateless))
    assert code == 3
    assert data["chrome"]["compliant"] is None
    assert data["compliant"] is None


def test_unknown_log(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    issued = kit.issue()
    bundle = kit.write("bundle.pem", issued.cert, issued.issuer)
    code = main(["ct", "check", bundle, "--log-list", kit.log_list(kit.google)])
    output = capsys.readouterr().out
    assert code == 1
    assert "unknown log " + kit.cloudflare.as_log().log_id_b64 in output
    assert "signature unknown-log" in output


def test_future_sct_with_at(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    issued = kit.issue()
    bundle = kit.write("bundle.pem", issued.cert, issued.issuer)
    earlier = (NOW - dt.timedelta(days=5)).date().isoformat()
    code, data = run_json(capsys, bundle, "--log-list", kit.log_list(), "--at", earlier)
    assert code == 1
    assert {s["status"] for s in data["scts"]} == {"future-timestamp"}
    assert data["at"].startswith(earlier)


def test_log_names_are_shown_as_text(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    hostile = TestLog("[red]Evil[/red] \x1b[2J", operator="[bold]Op")
    issued = kit.issue([kit.google, hostile])
    bundle = kit.write("bundle.pem", issued.cert, issued.issuer)
    code = main(["ct", "check", bundle, "--log-list", kit.log_list(kit.google, hostile)])
    output = capsys.readouterr().out
    assert code == 0
    assert "[red]Evil[/red] \\x1b[2J — operator [bold]Op" in output
    assert "\x1b" not in output


def test_tiled_logs_show_the_leaf_index_and_fail_apple_alone(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    sunlight = TestLog("Test Sunlight", operator="Let's Encrypt", tiled=True)
    tuscolo = TestLog("Test Tuscolo", operator="Geomys", tiled=True)
    for _ in range(3):
        sunlight.take_leaf_index()  # entries logged before ours
    start = NOW - dt.timedelta(days=1)
    issued = kit.issue(
        [sunlight, tuscolo], not_before=start, not_after=start + dt.timedelta(days=90, seconds=-1)
    )
    bundle = kit.write("bundle.pem", issued.cert, issued.issuer)
    log_list = kit.log_list(sunlight, tuscolo)
    code = main(["ct", "check", bundle, "--log-list", log_list])
    output = capsys.readouterr().out
    assert code == 1
    assert (
        "Test Sunlight — operator Let's Encrypt, usable since 2020-01-01, static-ct-api" in output
    )
    assert ", leaf index 3\n" in output
    assert ", leaf index 0\n" in output
    assert output.count("signature valid") == 2
    assert "Chrome CT policy: compliant (2 logs, 2 operators" in output
    assert "Apple CT policy: NOT compliant: no SCT from an RFC 6962 log" in output
    assert "✗ at least 1 SCT from an RFC 6962 log (not a static-ct-api log)" in output
    code, data = run_json(capsys, bundle, "--log-list", log_list)
    assert code == 1
    assert [(s["log_api"], s["leaf_index"]) for s in data["scts"]] == [
        ("static-ct-api", 3),
        ("static-ct-api", 0),
    ]
    apple = {line["key"]: line for line in data["apple"]["lines"]}
    assert (apple["rfc6962-log"]["met"], apple["rfc6962-log"]["found"]) == (False, "none")
    assert data["chrome"]["compliant"] is True


def test_an_undecodable_sct_is_shown_and_the_others_count(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    def sign(entry: SignedEntry, when: int) -> list[bytes]:
        first, second = both_logs(kit)(entry, when)
        return [first, b"\x01" + second[1:], second]  # the middle one claims version 1 (v2)

    issued = embedding(kit, sign)
    bundle = kit.write("bundle.pem", issued.cert, kit.issuing.cert)
    code = main(["ct", "check", bundle, "--log-list", kit.log_list()])
    output = capsys.readouterr().out
    # As Chromium does: the undecodable SCT is skipped, the two others make it compliant.
    assert code == 0
    assert "Embedded SCTs (3)" in output
    assert "[2] undecodable SCT (" in output
    assert "SCT malformed: SCT #2: version 1 (v2) is not supported; only v1 (0)" in output
    assert "note: an undecodable SCT not counted: malformed" in output
    assert "Chrome CT policy: compliant (2 logs, 2 operators" in output
    code, data = run_json(capsys, bundle, "--log-list", kit.log_list())
    assert code == 0
    assert [s["status"] for s in data["scts"]] == ["valid", "malformed", "valid"]
    middle = data["scts"][1]
    assert (middle["log_id"], middle["log"], middle["timestamp"]) == (None, None, None)
    assert middle["detail"] == "SCT #2: version 1 (v2) is not supported; only v1 (0)"
    assert data["compliant"] is True
    # Without the issuer the others cannot be verified, but the malformed one needs none.
    leaf = kit.write("leaf.pem", issued.cert)
    code, data = run_json(capsys, leaf, "--log-list", kit.log_list())
    assert code == 3
    assert [s["status"] for s in data["scts"]] == ["unverified", "malformed", "unverified"]


def test_a_malformed_sct_names_its_log_when_it_can(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    def sign(entry: SignedEntry, when: int) -> list[bytes]:
        return [*both_logs(kit)(entry, when), kit.google.sign_sct(entry, when, b"\x05\x00")]

    issued = embedding(kit, sign)
    bundle = kit.write("bundle.pem", issued.cert, kit.issuing.cert)
    code = main(["ct", "check", bundle, "--log-list", kit.log_list()])
    output = capsys.readouterr().out
    assert code == 0
    assert "[3] Test Argon — operator Google" in output
    assert "SCT malformed: SCT #3: extensions: truncated" in output


# --- certificates cryptography reads only in part (found by review) ----------------------


def test_a_duplicated_extension_does_not_stop_the_check(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    # cryptography raises DuplicateExtension on any extension access of this certificate.
    twice = (
        x509.UnrecognizedExtension(_OTHER, b"\x05\x00"),
        x509.UnrecognizedExtension(_PLACEHOLDER, b"\x05\x00"),
    )
    issued = embedding(kit, both_logs(kit), *twice, twice=_OTHER_DER)
    with pytest.raises(x509.DuplicateExtension):
        _ = issued.cert.extensions
    bundle = kit.write("bundle.pem", issued.cert, kit.issuing.cert)
    code, data = run_json(capsys, bundle, "--log-list", kit.log_list())
    assert code == 0
    assert [s["status"] for s in data["scts"]] == ["valid", "valid"]
    assert data["certificate"]["is_ca"] is False
    with TLSServer(issued) as server:
        code, data = run_json(
            capsys,
            *kit.host(server),
        )
    assert code == 0
    assert [s["status"] for s in data["scts"]] == ["valid", "valid"]


def test_a_duplicated_sct_list_is_an_input_error(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    second = x509.UnrecognizedExtension(_PLACEHOLDER, b"\x04\x00")
    issued = embedding(kit, both_logs(kit), second, twice=_SCT_LIST_DER)
    bundle = kit.write("bundle.pem", issued.cert, kit.issuing.cert)
    assert main(["ct", "check", bundle, "--log-list", kit.log_list()]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pinwarden: error: embedded SCT list of certificate CN=localhost")
    assert "appears twice" in err


def test_a_leaf_with_an_unknown_version_from_a_host_is_an_input_error(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = kit.issue()
    raw = RawLeaf(
        issued.cert, issued.key, issued.chain, issued.root, with_version(issued.cert, 113)
    )
    with TLSServer(raw) as server:
        code = main(["ct", "check", *kit.host(server)])
    err = capsys.readouterr().err
    assert code == 2
    assert "leaf certificate: cryptography cannot read it: 113 is not a valid X509 version" in err
    assert "Traceback" not in err


def test_an_extra_certificate_with_an_unknown_version_is_skipped(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = kit.issue()
    odd = with_version(CA("odd").cert, 113)
    elsewhere = kit.dir / "elsewhere.pem"
    elsewhere.write_bytes(CA("unrelated root").cert_pem)  # the served chain is used
    with TLSServer(issued, extra=[odd]) as server:
        code, data = run_json(
            capsys,
            *kit.host(server, str(elsewhere)),
        )
    assert code == 0
    assert data["issuer_from"] == "the chain the server sent"
    assert [s["status"] for s in data["scts"]] == ["valid", "valid"]


def test_an_unknown_curve_in_the_log_list_is_a_bad_signature(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = TestLog("Test Odd Curve", operator="Odd")
    point = odd.key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    curve = bytes.fromhex("06072a8648ce3d0201") + bytes.fromhex("06032a0304")  # 1.2.3.4
    odd.spki = _tlv(0x30, _tlv(0x30, curve) + _tlv(0x03, b"\x00" + point))
    odd.log_id = hashlib.sha256(odd.spki).digest()
    issued = kit.issue([kit.google, odd])
    bundle = kit.write("bundle.pem", issued.cert, issued.issuer)
    code, data = run_json(capsys, bundle, "--log-list", kit.log_list(kit.google, odd))
    assert code == 1
    assert [s["status"] for s in data["scts"]] == ["valid", "bad-signature"]
    assert "Test Odd Curve is unusable: Curve 1.2.3.4 is not supported" in data["scts"][1]["detail"]


# --- finding the issuer ----------------------------------------------------------------


@pytest.mark.parametrize("order", ["leaf-first", "root-first"])
def test_issuer_file_with_a_whole_chain(
    kit: Kit, capsys: pytest.CaptureFixture[str], order: str
) -> None:
    issued = kit.issue()
    leaf = kit.write("leaf.pem", issued.cert)
    chain = (
        (issued.cert, kit.issuing.cert, kit.root.cert)
        if order == "leaf-first"
        else (kit.root.cert, kit.issuing.cert)
    )
    chain_file = kit.write("chain.pem", *chain)
    code, data = run_json(capsys, leaf, "--issuer", chain_file, "--log-list", kit.log_list())
    assert code == 0
    assert data["issuer"]["subject"] == kit.issuing.cert.subject.rfc4514_string()
    assert [s["status"] for s in data["scts"]] == ["valid", "valid"]


def test_an_altered_leaf_with_its_real_issuer_is_a_bad_signature(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = kit.issue()
    changed = altered(issued.cert)
    bundle = kit.write("altered.pem", changed, issued.issuer)
    code = main(["ct", "check", bundle, "--log-list", kit.log_list(), "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert code == 1
    assert [s["status"] for s in data["scts"]] == ["bad-signature", "bad-signature"]
    assert data["issuer_from"] == f"the bundle {bundle}"
    assert "its signature over the certificate does not verify" in captured.err
    leaf = kit.write("altered-leaf.pem", changed)
    issuer = kit.write("issuer.pem", issued.issuer)
    code = main(["ct", "check", leaf, "--issuer", issuer, "--log-list", kit.log_list(), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert {s["status"] for s in json.loads(captured.out)["scts"]} == {"bad-signature"}
    assert "its signature over the certificate does not verify" in captured.err
    assert "did not sign this certificate:" not in captured.err


def test_an_altered_leaf_from_a_host_is_a_bad_signature(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = kit.issue()
    served = dataclasses.replace(issued, cert=altered(issued.cert))
    with TLSServer(served) as server:
        code = main(["ct", "check", *kit.host(server), "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert code == 1
    assert data["issuer_from"] == "the chain the server sent"
    assert [s["status"] for s in data["scts"]] == ["bad-signature", "bad-signature"]
    assert "its signature over the certificate does not verify" in captured.err


def test_a_directory_named_like_the_host_is_not_a_file(
    kit: Kit, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = kit.issue()
    log_list, cafile = kit.log_list(), kit.cafile
    monkeypatch.chdir(kit.dir)
    with TLSServer(issued) as server:
        target = f"localhost:{server.port}"
        (kit.dir / target).mkdir()
        code, data = run_json(capsys, target, "--cafile", cafile, "--log-list", log_list)
    assert code == 0
    assert data["source"] == "host"


# --- bad input --------------------------------------------------------------------------


def test_missing_file(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ct", "check", str(kit.dir / "missing.pem"), "--log-list", kit.log_list()]) == 2
    assert "no such file" in capsys.readouterr().err


def test_garbage_file(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    path = kit.dir / "garbage.pem"
    path.write_bytes(b"\x00\x01 not a certificate")
    assert main(["ct", "check", str(path), "--log-list", kit.log_list()]) == 2
    assert "garbage.pem" in capsys.readouterr().err


def test_garbage_sct_list_is_an_input_error(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtensionOID

    leaf = kit.issuing.issue("localhost").cert
    bad = x509.UnrecognizedExtension(
        ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, b"\x04\x03\x00\x05\x00"
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(leaf.subject)
        .issuer_name(leaf.issuer)
        .public_key(leaf.public_key())
        .serial_number(leaf.serial_number)
        .not_valid_before(leaf.not_valid_before_utc)
        .not_valid_after(leaf.not_valid_after_utc)
        .add_extension(bad, critical=False)
    )
    cert = builder.sign(kit.issuing.key, hashes.SHA256())
    path = kit.write("bad-scts.pem", cert, kit.issuing.cert)
    assert main(["ct", "check", path, "--log-list", kit.log_list()]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pinwarden: error:")
    assert "SCT" in err
    assert "Traceback" not in err


# --- live hosts -------------------------------------------------------------------------


def test_live_server_uses_the_verified_chain(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    issued = kit.issue()
    with TLSServer(issued) as server:
        code, data = run_json(
            capsys,
            *kit.host(server),
        )
    assert data["source"] == "host"
    assert data["issuer_from"] == "the verified chain"
    assert data["issuer"]["subject"] == kit.issuing.cert.subject.rfc4514_string()
    assert [s["status"] for s in data["scts"]] == ["valid", "valid"]
    assert data["chrome"]["compliant"] is True
    assert data["apple"]["compliant"] is True
    assert code == 0


def test_live_server_text(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    issued = kit.issue()
    with TLSServer(issued) as server:
        code = main(["ct", "check", *kit.host(server)])
    output = capsys.readouterr().out
    assert code == 0
    assert "issuer cert from the verified chain" in output
    assert "Chrome CT policy: compliant" in output


def test_live_server_that_does_not_verify_uses_the_served_issuer(
    kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = kit.issue()
    other_root = kit.dir / "other-root.pem"
    other_root.write_bytes(CA("unrelated root").cert_pem)
    target = ["ct", "check", "--cafile", str(other_root), "--log-list", kit.log_list()]
    with TLSServer(issued) as server:
        code = main([*target, f"localhost:{server.port}", "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["issuer_from"] == "the chain the server sent"
    assert [s["status"] for s in data["scts"]] == ["valid", "valid"]
    assert "chain does not verify" in captured.err
    assert code == 0


def test_unreachable_host_is_exit_3(kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "ct",
            "check",
            f"127.0.0.1:{closed_port()}",
            "--log-list",
            kit.log_list(),
            "--timeout",
            "2",
        ]
    )
    assert code == 3
    assert "could not determine" in capsys.readouterr().err


# --- the real certificate ---------------------------------------------------------------


def _real_log_list(
    folder: Path,
    tmp_path: Path,
    since: dt.datetime = dt.datetime(2025, 7, 8, tzinfo=UTC),
    **states: LogState,
) -> str:
    """A list of the two real logs, usable since 2024-06-01 unless ``states`` gives an
    operator's log another state (since ``since``)."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    logs = []
    for entry in manifest["logs"]:
        key = (folder / entry["key_file"]).read_bytes()
        assert log_id_of(key) == base64.b64decode(entry["log_id_b64"])
        logs.append(
            Log(
                description=entry["name"],
                log_id=log_id_of(key),
                key=key,
                operator=entry["operator"],
                state=states.get(entry["operator"], LogState.USABLE),
                state_since=since
                if entry["operator"] in states
                else dt.datetime(2024, 6, 1, tzinfo=UTC),
                url="https://ct.invalid/" + entry["operator"].lower() + "/",
            )
        )
    listed = LogList(tuple(logs), timestamp=dt.datetime(2025, 7, 30, tzinfo=UTC))
    path = tmp_path / "real-logs.json"
    path.write_text(json.dumps(listed.to_chrome_v3()), encoding="utf-8")
    return str(path)


def test_real_certificate_is_chrome_compliant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = vectors("ct/sct-real")
    code, data = run_json(
        capsys,
        str(folder / "leaf_google-cert.bin"),
        "--issuer",
        str(folder / "issuer_google-cert.bin"),
        "--log-list",
        _real_log_list(folder, tmp_path),
        "--at",
        "2025-08-01",
    )
    assert code == 0
    assert data["certificate"]["subject"] == "CN=*.google.com"
    assert [(s["log"], s["operator"], s["status"]) for s in data["scts"]] == [
        ("Google Xenon2025h2", "Google", "valid"),
        ("DigiCert Yeti2025", "DigiCert", "valid"),
    ]
    assert data["scts"][0]["timestamp"] == "2025-07-07T09:34:09.149000Z"
    chrome = data["chrome"]
    assert chrome["compliant"] is True
    assert chrome["summary"] == (
        "Chrome CT policy: compliant (2 logs, 2 operators, lifetime 83 days 23:59:59)"
    )
    lines = {line["key"]: line for line in chrome["lines"]}
    assert lines["distinct-logs"]["met"] is True
    assert "at least 2 distinct logs" in lines["distinct-logs"]["requirement"]
    assert lines["distinct-operators"]["found"] == "2: DigiCert, Google"
    apple = data["apple"]
    assert apple["compliant"] is True
    assert {line["key"]: line["found"] for line in apple["lines"]}["lifetime"] == "84 days"


def test_real_certificate_with_a_log_retired_after_its_sct(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = vectors("ct/sct-real")
    # DigiCert's log "retired" on 2025-07-08, after the SCTs of 2025-07-07: still counts.
    code, data = run_json(
        capsys,
        str(folder / "leaf_google-cert.bin"),
        "--issuer",
        str(folder / "issuer_google-cert.bin"),
        "--log-list",
        _real_log_list(folder, tmp_path, DigiCert=LogState.RETIRED),
        "--at",
        "2025-08-01",
    )
    assert code == 0
    assert data["chrome"]["compliant"] is True
    lines = {line["key"]: line for line in data["chrome"]["lines"]}
    assert lines["current-log"]["found"] == "1: Google Xenon2025h2 (Google)"
    # Checked before the SCTs were signed: future timestamps, nothing counts.
    code, data = run_json(
        capsys,
        str(folder / "leaf_google-cert.bin"),
        "--issuer",
        str(folder / "issuer_google-cert.bin"),
        "--log-list",
        _real_log_list(folder, tmp_path),
        "--at",
        "2025-07-01",
    )
    assert code == 1
    assert {s["status"] for s in data["scts"]} == {"future-timestamp"}


def test_real_certificate_with_a_log_retired_before_its_sct(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = vectors("ct/sct-real")
    # DigiCert's log "retired" on 2025-07-06, before the SCTs of 2025-07-07: its SCT does
    # not count, and one log is not enough.
    code, data = run_json(
        capsys,
        str(folder / "leaf_google-cert.bin"),
        "--issuer",
        str(folder / "issuer_google-cert.bin"),
        "--log-list",
        _real_log_list(
            folder, tmp_path, since=dt.datetime(2025, 7, 6, tzinfo=UTC), DigiCert=LogState.RETIRED
        ),
        "--at",
        "2025-08-01",
    )
    assert code == 1
    assert [(s["log"], s["status"]) for s in data["scts"]] == [
        ("Google Xenon2025h2", "valid"),
        ("DigiCert Yeti2025", "log-not-trusted-at-time"),
    ]
    assert "retired at 2025-07-06T00:00:00.000Z" in data["scts"][1]["detail"]
    assert data["chrome"]["compliant"] is False
    lines = {line["key"]: line for line in data["chrome"]["lines"]}
    assert lines["distinct-logs"]["found"] == "1: Google Xenon2025h2 (Google)"
    assert data["apple"]["compliant"] is False


def test_real_certificate_without_issuer_is_undecided(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = vectors("ct/sct-real")
    code = main(
        [
            "ct",
            "check",
            str(folder / "leaf_google-cert.bin"),
            "--log-list",
            _real_log_list(folder, tmp_path),
            "--at",
            "2025-08-01",
        ]
    )
    assert code == 3
    assert "give it with --issuer FILE" in capsys.readouterr().out
