"""The TLS presentation language (RFC 8446 section 3) that CT structures are written in:
big-endian integers and length-prefixed opaque vectors.

Hand-written because no maintained library reads these structures from arbitrary bytes
(cryptography parses SCTs only inside a certificate). Every read is bounds-checked and a
short or malformed input raises :class:`~pinwarden.errors.CTFormatError` naming the structure,
the field and the offset.
"""

from __future__ import annotations

from pinwarden.errors import CTFormatError

__all__ = ["Reader", "u8", "u16", "u24", "u64", "vector"]


class Reader:
    """Reads fields in order from ``data``; ``what`` names the structure in error messages."""

    __slots__ = ("_data", "_offset", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self._data = memoryview(bytes(data))
        self._offset = 0
        self.what = what

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def remaining(self) -> int:
        return len(self._data) - self._offset

    def _take(self, count: int, field: str) -> memoryview:
        start = self._offset
        if count > len(self._data) - start:
            raise CTFormatError(
                f"{self.what}: truncated at byte {start}: {field} needs {count} bytes, "
                f"{len(self._data) - start} left"
            )
        self._offset = start + count
        return self._data[start : start + count]

    def uint(self, size: int, field: str) -> int:
        return int.from_bytes(self._take(size, field), "big")

    def u8(self, field: str) -> int:
        return self.uint(1, field)

    def u16(self, field: str) -> int:
        return self.uint(2, field)

    def u24(self, field: str) -> int:
        return self.uint(3, field)

    def u64(self, field: str) -> int:
        return self.uint(8, field)

    def fixed(self, count: int, field: str) -> bytes:
        return bytes(self._take(count, field))

    def vector(self, length_size: int, field: str, *, minimum: int = 0) -> bytes:
        """An ``opaque field<minimum..2^(8*length_size)-1>``."""
        length = self.uint(length_size, f"length of {field}")
        if length < minimum:
            raise CTFormatError(
                f"{self.what}: {field} at byte {self._offset - length_size} is {length} bytes, "
                f"at least {minimum} required"
            )
        return bytes(self._take(length, field))

    def sub(self, length_size: int, field: str) -> Reader:
        """A reader over the next length-prefixed vector, for nested lists."""
        return Reader(self.vector(length_size, field), f"{self.what}: {field}")

    def end(self) -> None:
        """Fail if bytes are left over: trailing garbage is malformed, not ignorable."""
        if self.remaining:
            raise CTFormatError(
                f"{self.what}: {self.remaining} unexpected trailing bytes at byte {self._offset}"
            )


def _uint(value: int, size: int) -> bytes:
    if not 0 <= value < 1 << (8 * size):
        raise ValueError(f"{value} does not fit in {size} bytes")
    return value.to_bytes(size, "big")


def u8(value: int) -> bytes:
    return _uint(value, 1)


def u16(value: int) -> bytes:
    return _uint(value, 2)


def u24(value: int) -> bytes:
    return _uint(value, 3)


def u64(value: int) -> bytes:
    return _uint(value, 8)


def vector(data: bytes, length_size: int) -> bytes:
    """``data`` with its big-endian length prefix of ``length_size`` bytes."""
    return _uint(len(data), length_size) + data
