"""``async with`` for the CT reading objects that hold connections: the HTTP
:class:`~pinwarden.ct._http.Fetcher`, the log clients (:class:`~pinwarden.ct.client.LogClient`)
and :class:`~pinwarden.ct.reader.LogReader`.

Separate because those live in three modules that import one another in a line (reader, then
client, then _http); this is the one copy of the protocol they share.
"""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

__all__ = ["AsyncClosing"]

_Self = TypeVar("_Self", bound="AsyncClosing")


class AsyncClosing:
    """Mixin: ``async with obj`` gives ``obj`` and awaits ``obj.aclose()`` when the block
    ends, however it ends. Subclasses define :meth:`aclose`."""

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release what the object holds."""
        raise NotImplementedError
