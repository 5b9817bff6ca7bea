"""The TLS presentation-language reader: bounds, lengths and trailing bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinwarden.ct._wire import Reader, u8, u16, u24, u64, vector
from pinwarden.errors import CTFormatError


def test_reads_fields_in_order() -> None:
    data = u8(1) + u16(515) + u24(70000) + u64(2**40 + 3) + vector(b"abc", 2) + b"xy"
    reader = Reader(data, "thing")
    assert reader.u8("a") == 1
    assert reader.u16("b") == 515
    assert reader.u24("c") == 70000
    assert reader.u64("d") == 2**40 + 3
    assert reader.vector(2, "e") == b"abc"
    assert reader.fixed(2, "f") == b"xy"
    reader.end()


def test_truncated_field_names_structure_field_and_offset() -> None:
    reader = Reader(b"\x00\x05abc", "SCT")
    with pytest.raises(CTFormatError, match=r"SCT: truncated at byte 2: extensions needs 5"):
        reader.vector(2, "extensions")


def test_minimum_length_is_enforced() -> None:
    with pytest.raises(CTFormatError, match="at least 1 required"):
        Reader(b"\x00\x00", "list").vector(2, "entry", minimum=1)


def test_trailing_bytes_are_an_error() -> None:
    reader = Reader(b"\x01\x02", "leaf")
    reader.u8("version")
    with pytest.raises(CTFormatError, match="1 unexpected trailing bytes at byte 1"):
        reader.end()


def test_sub_reader_is_confined_to_its_vector() -> None:
    reader = Reader(vector(b"\x07", 2) + b"\x09", "outer")
    inner = reader.sub(2, "inner")
    assert inner.u8("x") == 7
    with pytest.raises(CTFormatError, match="outer: inner"):
        inner.u8("y")
    assert reader.u8("after") == 9


def test_writers_refuse_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="256 does not fit in 1 bytes"):
        u8(256)
    with pytest.raises(ValueError, match="does not fit"):
        vector(b"x" * 256, 1)


@given(st.binary(max_size=64), st.lists(st.sampled_from([1, 2, 3, 8]), max_size=8))
def test_any_bytes_give_values_or_ct_format_error(data: bytes, sizes: list[int]) -> None:
    reader = Reader(data, "fuzz")
    try:
        for size in sizes:
            reader.vector(size, "v") if size < 3 else reader.uint(size, "n")
        reader.end()
    except CTFormatError:
        pass
