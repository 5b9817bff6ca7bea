"""The CT monitor's watch list: the file format, its errors, and fail-safe matching."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.ct.watch import WatchItem, WatchList, name_forms
from pinwarden.errors import InputError
from pinwarden.pins import Pin
from pinwarden.testing import generate_key

PIN_A = Pin.from_public_key(generate_key().public_key())
PIN_B = Pin.from_public_key(generate_key().public_key())


def keys(items: list[WatchItem]) -> list[str]:
    return [item.key for item in items]


# -- the format ------------------------------------------------------------------------------


def test_entries_comments_and_blank_lines() -> None:
    watch = WatchList.parse(
        "# my domains\n\nexample.com\n   .example.org   # and everything under it\n\t\n",
        source="w.txt",
    )
    assert [(i.key, i.line, i.subdomains) for i in watch] == [
        ("example.com", 3, False),
        (".example.org", 4, True),
    ]
    assert all(i.source == "w.txt" and not i.has_expectations for i in watch)
    assert len(watch) == 2


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("EXAMPLE.Com.", "example.com"),
        (".Example.ORG.", ".example.org"),
        ("Bücher.DE", "xn--bcher-kva.de"),
        (".xn--BCHER-kva.de", ".xn--bcher-kva.de"),
        ("_dmarc.example.com", "_dmarc.example.com"),
    ],
)
def test_names_are_idna_normalised(written: str, key: str) -> None:
    (item,) = WatchList.parse(written)
    assert item.key == key
    assert item.text == written


def test_a_name_idna_2003_and_2008_spell_differently_is_watched_under_both() -> None:
    (item,) = WatchList.parse(".faß.de")
    assert item.bases == ("xn--fa-hia.de", "fass.de")
    assert item.key == ".xn--fa-hia.de"
    watch = WatchList((item,))
    assert watch.match(["www.fass.de"]) == [item]
    assert watch.match(["www.xn--fa-hia.de"]) == [item]


def test_expectations(tmp_path: Path) -> None:
    (tmp_path / "pins.toml").write_text(
        f'[[pin]]\nhosts = ["shop.example.net"]\npins = ["{PIN_A}", "{PIN_B}"]\n'
    )
    (tmp_path / "watch.txt").write_text(
        f".example.com ca=LetsEncrypt.org,digicert.com. pins={PIN_A},{PIN_B}\n"
        "shop.example.net ca=CAA policy=pins.toml max-validity=90d\n"
        ".example.org names=www.example.org,*.api.example.org,**.cdn.example.org "
        "max-validity=398\n"
        f"quoted.example 'pins={PIN_A}'  # shell quoting\n"
    )
    first, shop, org, quoted = WatchList.load(tmp_path / "watch.txt")
    assert first.cas == ("letsencrypt.org", "digicert.com")
    assert not first.ca_from_caa
    assert first.pins == (PIN_A, PIN_B)
    assert first.has_expectations
    assert shop.ca_from_caa and shop.cas == ()
    assert shop.policy_path == tmp_path / "pins.toml"
    assert shop.policy is not None
    assert shop.policy.rule_for("shop.example.net") is not None
    assert shop.max_validity_days == 90
    assert [(p.base, p.kind) for p in org.names] == [
        ("www.example.org", "exact"),
        ("api.example.org", "one-label"),
        ("cdn.example.org", "subtree"),
    ]
    assert org.max_validity_days == 398
    assert quoted.pins == (PIN_A,)
    assert str(first) == ".example.com"


def test_policy_path_with_spaces_is_quoted(tmp_path: Path) -> None:
    (tmp_path / "my pins.toml").write_text(
        f'[[pin]]\nhosts = ["a.example"]\npins = ["{PIN_A}", "{PIN_B}"]\n'
    )
    (item,) = WatchList.parse('a.example policy="my pins.toml"', base_dir=tmp_path)
    assert item.policy_path == tmp_path / "my pins.toml"


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "watch.txt"
    path.write_bytes(b"\xef\xbb\xbfexample.com\n")
    assert keys(list(WatchList.load(path))) == ["example.com"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("*.example.com", "write .example.com"),
        ("**.example.com", "write .example.com"),
        (".", "not a domain name"),
        ("..example.com", "not a domain name"),
        ("exa$mple.com", "not a valid DNS label"),
        ("a*b.example.com", "'*'"),
        (".127.0.0.1", "IP address"),
        ("192.0.2.7", "the monitor watches DNS names only"),
        ("2001:db8::1", "IP address"),
        ("[2001:db8::1]", "IP address"),
        ("example.com ca", "not key=value"),
        ("example.com colour=blue", "unknown expectation 'colour'"),
        ("example.com ca=a.example ca=b.example", "ca= is given twice"),
        ("example.com ca=", "ca= has no value"),
        ("example.com ca=,", "ca= lists no CA"),
        ("example.com ca=caa,digicert.com", "cannot be combined"),
        ("example.com ca=not_a_ca!", "not a CAA issuer domain name"),
        ("example.com pins=sha256/notapin", "pins="),
        ("example.com policy=/nonexistent/pins.toml", "cannot read policy file"),
        (".example.com names=www.example.org", "outside the entry"),
        ("example.com names=*.x*y.example.com", "names="),
        ("example.com max-validity=ninety", "not a number of days"),
        ("example.com max-validity=0", "not a number of days"),
        ("example.com max-validity=²", "not a number of days"),
        ("example.com 'unclosed", "No closing quotation"),
    ],
)
def test_errors_name_the_file_and_line(line: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        WatchList.parse(f"# first\nok.example\n{line}\n", source="watch.txt")
    assert str(caught.value).startswith("watch.txt:3: ")
    assert message in str(caught.value)


def test_a_name_twice_is_an_error_naming_both_lines() -> None:
    with pytest.raises(InputError, match=r"w:3: 'EXAMPLE.com.' is already watched \(line 1\)"):
        WatchList.parse("example.com\n.example.com\nEXAMPLE.com.\n", source="w")


def test_a_broken_policy_file_is_an_error_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[[pin]]\nhosts = 3\n")
    with pytest.raises(InputError, match=r"w:1: policy=bad.toml: .*bad.toml"):
        WatchList.parse("a.example policy=bad.toml", source="w", base_dir=tmp_path)


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the watch list"):
        WatchList.load(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9.example\n")
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 3\)"):
        WatchList.load(tmp_path / "latin1.txt")


# -- matching --------------------------------------------------------------------------------

WATCH = WatchList.parse(
    "\n".join(
        [
            "example.com",  # 1
            ".example.org",  # 2
            "a.b.example.net",  # 3
            ".c.example.net",  # 4
            ".bücher.de",  # 5
            "www.example.org",  # 6
        ]
    )
)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["example.com"], ["example.com"]),
        (["www.example.com"], []),
        (["example.org"], [".example.org"]),
        (["deep.er.example.org"], [".example.org"]),
        (["www.example.org"], [".example.org", "www.example.org"]),
        (["notexample.org"], []),
        (["example.org.evil.test"], []),
        # wildcards: the subtree entries above, and the entries one label below
        (["*.example.org"], [".example.org", "www.example.org"]),
        (["*.b.example.net"], ["a.b.example.net"]),
        (["*.example.net"], [".c.example.net"]),
        (["*.c.example.net"], [".c.example.net"]),
        (["*.a.b.example.net"], []),
        (["*.example.com"], []),
        # wildcards elsewhere: everything under the fixed part
        (["a.*.example.net"], ["a.b.example.net", ".c.example.net"]),
        (["w*.b.example.net"], ["a.b.example.net"]),
        (["*"], []),
        # odd spellings
        (["EXAMPLE.COM."], ["example.com"]),
        (["example.com.."], ["example.com"]),
        (["..example.com"], ["example.com"]),
        (["  example.com "], ["example.com"]),
        (["a..b.example.net"], ["a.b.example.net"]),
        (["x y.example.org"], [".example.org"]),
        (["bad_label!.example.org"], [".example.org"]),
        (["-x-.EXAMPLE.ORG"], [".example.org"]),
        (["WWW.BÜCHER.DE"], [".bücher.de"]),
        (["www.bücher。de"], [".bücher.de"]),
        (["*.xn--bcher-kva.de"], [".bücher.de"]),
        (["\udcff.bücher.de"], [".bücher.de"]),
        # several names, file order, each entry once
        (
            ["www.example.org", "example.com", "x.example.org"],
            [
                "example.com",
                ".example.org",
                "www.example.org",
            ],
        ),
        ([], []),
    ],
)
def test_match(names: list[str], expected: list[str]) -> None:
    wanted = [item.key for item in WATCH if item.key in expected or item.text in expected]
    assert keys(WATCH.match(names)) == wanted
    assert len(wanted) == len(expected)


def test_matches_says_which_names_matched_each_entry() -> None:
    found = WATCH.matches(["x.example.org", "example.com", "*.example.org", "x.example.org"])
    assert [(m.item.key, m.names) for m in found] == [
        ("example.com", ("example.com",)),
        (".example.org", ("x.example.org", "*.example.org")),
        ("www.example.org", ("*.example.org",)),
    ]


def test_name_forms() -> None:
    assert name_forms("WWW.Example.COM.") == ("www.example.com",)
    assert name_forms("WWW.Bücher。de.") == ("www.xn--bcher-kva.de",)
    assert name_forms("faß.de") == ("xn--fa-hia.de", "fass.de")
    assert name_forms("..a..b..") == ("a.b",)


def test_a_null_prefix_name_is_also_looked_up_as_the_part_before_the_nul() -> None:
    # What a C client reads of www.example.com\0.evil.org is www.example.com.
    assert name_forms("www.example.com\x00.evil.org") == (
        "www.example.com\x00.evil.org",
        "www.example.com",
    )
    assert name_forms("WWW.Example.com\x1b[0m.evil.org")[1] == "www.example.com"
    assert name_forms("faß.de\x85x.org")[-2:] == ("xn--fa-hia.de", "fass.de")
    assert name_forms("\x00only.evil.org") == ("\x00only.evil.org",)
    watch = WatchList.parse("www.example.com\n.example.net")
    for name in ("www.example.com\x00.evil.org", "a.example.net\x7f.evil.org"):
        assert watch.matches([name])[0].names == (name,)


def test_both_spellings_of_a_certificate_name_are_looked_up() -> None:
    # IDNA 2008 keeps ß (xn--fa-hia); IDNA 2003 maps it to ss: a client of either kind may
    # take the certificate for fass.example.de. A log entry has both spellings of its names.
    watch = WatchList.parse("fass.example.de\n.example.org")
    names, unicode = (
        ("www.example.org", "xn--fa-hia.example.de"),
        ("www.example.org", "faß.example.de"),
    )
    assert [m.item.key for m in watch.matches(names)] == [".example.org"]
    found = watch.matches(names, unicode)
    assert [(m.item.key, m.names) for m in found] == [
        ("fass.example.de", ("xn--fa-hia.example.de",)),
        (".example.org", ("www.example.org",)),
    ]
    same = ("www.example.org",)
    assert watch.matches(same, same) == watch.matches(same)


NUL_ENTRIES = st.lists(
    st.sampled_from(["www.example.com", ".example.org", "a.b"]), min_size=1, max_size=3, unique=True
)


@given(
    NUL_ENTRIES, st.sampled_from(["www.example.com", "x.example.org", "a.b"]), st.text(max_size=10)
)
def test_a_control_character_never_hides_a_name(entries: list[str], name: str, rest: str) -> None:
    watch = WatchList.parse("\n".join(entries))
    plain = {m.item.key for m in watch.matches([name])}
    for control in ("\x00", "\n", "\x9f"):
        assert plain <= {m.item.key for m in watch.matches([name + control + rest])}


# -- properties ------------------------------------------------------------------------------

LABELS = st.sampled_from(["a", "b", "www", "xn--bcher-kva", "example", "com", "org", "_x"])
DOMAINS = st.lists(LABELS, min_size=1, max_size=4).map(".".join)
ENTRIES = st.lists(
    st.tuples(st.booleans(), DOMAINS).map(lambda e: ("." if e[0] else "") + e[1]),
    min_size=1,
    max_size=12,
    unique_by=lambda text: text,
)


def reference(watch: WatchList, name: str) -> list[str]:
    """The spec for a plain name: the entries that cover it, by brute force."""
    return [item.key for item in watch if item.covers(name)]


@given(ENTRIES, st.lists(DOMAINS, max_size=4))
def test_plain_names_match_exactly_the_entries_covering_them(
    entries: list[str], names: list[str]
) -> None:
    watch = WatchList.parse("\n".join(entries))
    expected = {key for name in names for key in reference(watch, name)}
    assert {item.key for item in watch.match(names)} == expected


@given(ENTRIES, DOMAINS, st.lists(st.sampled_from(["upper", "dot", "empty", "lead"])))
def test_odd_spellings_of_a_name_match_the_same_entries(
    entries: list[str], name: str, odd: list[str]
) -> None:
    watch = WatchList.parse("\n".join(entries))
    spelled = name
    for change in odd:
        if change == "upper":
            spelled = spelled.upper()
        elif change == "dot":
            spelled += "."
        elif change == "empty":
            spelled = spelled.replace(".", "..", 1)
        else:
            spelled = "." + spelled
    assert keys(watch.match([spelled])) == keys(watch.match([name]))


@given(ENTRIES, LABELS, DOMAINS)
def test_a_wildcard_matches_every_entry_a_name_it_covers_matches(
    entries: list[str], label: str, parent: str
) -> None:
    # Fail safe: *.parent is valid for label.parent, so it must alert wherever that would.
    watch = WatchList.parse("\n".join(entries))
    covered = set(keys(watch.match([f"{label}.{parent}"])))
    assert covered <= set(keys(watch.match([f"*.{parent}"])))


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_any_text_parses_or_raises_input_error(text: str) -> None:
    try:
        watch = WatchList.parse(text)
    except InputError:
        return
    assert all(item.domain for item in watch)


@settings(max_examples=300)
@given(st.lists(st.text(max_size=40), max_size=5))
def test_any_names_can_be_matched(names: list[str]) -> None:
    result = WATCH.match(names)
    assert len({id(item) for item in result}) == len(result)


# -- 10,000 names ----------------------------------------------------------------------------


def big_watch_list(count: int, rng: random.Random) -> tuple[WatchList, list[str]]:
    words = [f"w{n}" for n in range(2000)]
    domains: list[str] = []
    seen: set[str] = set()
    while len(domains) < count:
        depth = rng.randint(1, 3)
        domain = ".".join(rng.choice(words) for _ in range(depth)) + rng.choice([".com", ".net"])
        text = ("." if rng.random() < 0.5 else "") + domain
        if text not in seen:
            seen.add(text)
            domains.append(text)
    return WatchList.parse("\n".join(domains)), domains


def test_ten_thousand_names() -> None:
    rng = random.Random(7)
    watch, texts = big_watch_list(10_000, rng)
    assert len(watch) == 10_000
    # Every entry is found through its own name, a name under it when it has
    # subdomains, and a wildcard covering it; checked against brute force on a sample.
    for item in watch:
        assert item in watch.match([item.domain])
        assert item in watch.match(["*." + item.domain.partition(".")[2]])
        if item.subdomains:
            assert item in watch.match(["deep.er." + item.domain.upper() + "."])
    sample = [f"{rng.choice(texts).lstrip('.')}" for _ in range(200)]
    sample += [f"x.{name}" for name in sample[:100]]
    for name in sample:
        assert keys(watch.match([name])) == reference(watch, name)


def test_matching_does_not_scan_the_list() -> None:
    # A linear scan would make the 10,000-entry list ~1000x slower than the 10-entry one;
    # suffix dictionaries keep them alike. Both measured in this run, with a wide margin.
    rng = random.Random(11)
    big, texts = big_watch_list(10_000, rng)
    small = WatchList(big.items[:10])
    names = [[f"www.{rng.choice(texts).lstrip('.')}", "*.other.example"] for _ in range(5_000)]

    def run(watch: WatchList) -> float:
        start = time.perf_counter()
        for cert_names in names:
            watch.match(cert_names)
        return time.perf_counter() - start

    run(small)
    ratio = min(run(big) for _ in range(3)) / min(run(small) for _ in range(3))
    assert ratio < 10, f"matching 10,000 entries took {ratio:.1f}x the time of 10"
