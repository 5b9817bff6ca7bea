"""Where the monitor's store is: the default SQLite file, ``sqlite:`` URLs, and store URLs
with their password taken out for messages.

Separate from :mod:`pinwarden.ct.store` because it is URL and path handling only, needed by
the CLI without any database. The public names are re-exported by :mod:`pinwarden.ct.store`,
their documented home.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pinwarden.errors import InputError

__all__ = ["default_sqlite_path", "default_store_url", "redact_url", "sqlite_path_of"]

_QUERY_PASSWORD = re.compile(r"((?:^|[&?])password=)[^&]*", re.IGNORECASE)


def default_sqlite_path() -> Path:
    """``$XDG_STATE_HOME/pinwarden/monitor.sqlite3``, by default
    ``~/.local/state/pinwarden/monitor.sqlite3``."""
    state = os.environ.get("XDG_STATE_HOME")
    # The XDG spec: a relative value is invalid and must be ignored.
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local/state"
    return base / "pinwarden" / "monitor.sqlite3"


def default_store_url() -> str:
    return "sqlite:///" + str(default_sqlite_path())


def redact_url(url: str) -> str:
    """``url`` without its password (in the user part or a ``password=`` parameter), for
    messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{hostport}")
    # A stray "#" in the host moves the query into the fragment: redact both.
    return urlunsplit(
        parts._replace(
            query=_QUERY_PASSWORD.sub(r"\1***", parts.query),
            fragment=_QUERY_PASSWORD.sub(r"\1***", parts.fragment),
        )
    )


def sqlite_path_of(url: str) -> Path | None:
    """The file of a ``sqlite:`` URL (None for ``:memory:``); see :mod:`pinwarden.ct.store`."""
    rest = url[len("sqlite:") :]
    if "?" in rest or "#" in rest:
        raise InputError(f"store URL {url!r}: sqlite URLs take no query or fragment")
    if rest in ("", "//", "///"):
        return default_sqlite_path()
    if not rest.startswith("///"):
        raise InputError(
            f"store URL {url!r}: write sqlite:///relative/path or sqlite:////absolute/path"
        )
    path = rest[3:]
    if path == ":memory:":
        return None
    return Path(path).expanduser()
