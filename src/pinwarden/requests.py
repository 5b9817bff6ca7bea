"""requests integration: an adapter that uses a pinned context for every HTTPS connection.

    from pinwarden.requests import pinned_session
    session = pinned_session(Policy.load("pins.toml"))
    session.get("https://api.example.com/")

Needs the ``requests`` extra (``pip install pinwarden[requests]``).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from pinwarden.errors import PinwardenError
from pinwarden.policy import Policy
from pinwarden.tls import PinnedSSLContext, create_context

if TYPE_CHECKING:
    from requests.sessions import _Settings

__all__ = ["PinnedAdapter", "PinnedSession", "PlainHTTPGuard", "pinned_session"]


class PinnedAdapter(HTTPAdapter):
    """An :class:`requests.adapters.HTTPAdapter` whose pools use a pinned context.

    ``verify=False`` or a ``verify=<CA bundle path>`` on a request is refused: the first
    would switch off the validation pins add to, the second would load CAs into the
    shared pinned context. Give trust anchors to :func:`pinwarden.create_context`
    (``cafile=``) instead.
    """

    def __init__(self, context: PinnedSSLContext, **kwargs: Any) -> None:
        if not isinstance(context, PinnedSSLContext):
            raise TypeError("PinnedAdapter needs a context from pinwarden.create_context()")
        self.context = context
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["ssl_context"] = self.context
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["ssl_context"] = self.context
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        verify = kwargs.get("verify", True)
        if verify is not True:
            raise PinwardenError(
                f"pinwarden refuses verify={verify!r}: pins are checked on top of CA "
                "validation with the pinned context's own trust anchors; pass a CA bundle "
                "to pinwarden.create_context(cafile=...) (a REQUESTS_CA_BUNDLE or "
                "CURL_CA_BUNDLE environment variable also sets verify)"
            )
        return super().send(request, *args, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # requests would point urllib3 at certifi's bundle, which urllib3 then loads
        # into our (shared) context on every connection. The pinned context already
        # holds its trust anchors; keep only the client-certificate handling.
        super().cert_verify(conn, url, False, cert)  # type: ignore[no-untyped-call]
        if url.lower().startswith("https"):
            conn.cert_reqs = "CERT_REQUIRED"


class PlainHTTPGuard(HTTPAdapter):
    """The ``http://`` adapter of a pinned session: plain HTTP to a host the policy
    pins is refused (it would carry no TLS at all); other hosts are served as usual."""

    def __init__(self, policy: Policy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        host = urlsplit(request.url or "").hostname or ""
        if host and self.policy.rule_for(host) is not None:
            raise PinwardenError(
                f"plain http:// to {host}, which the policy pins, is refused: "
                "a pinned host is only reached over https://"
            )
        return super().send(request, *args, **kwargs)


class PinnedSession(requests.Session):
    """A :class:`requests.Session` with a :class:`PinnedAdapter` for ``https://``.

    Its trust anchors are the pinned context's: the ``REQUESTS_CA_BUNDLE`` and
    ``CURL_CA_BUNDLE`` environment variables, which requests would turn into
    ``verify=<path>``, do not apply (pass ``cafile=`` to :func:`pinned_session`
    instead). An explicit ``verify=`` other than True is refused by the adapter.
    """

    def __init__(self, context: PinnedSSLContext) -> None:
        super().__init__()
        self.mount("https://", PinnedAdapter(context))
        self.mount("http://", PlainHTTPGuard(context.policy))

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> _Settings:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None or verify is True:
            # Only the environment can have turned verify into a path here.
            settings["verify"] = True if self.verify is None else self.verify
        return settings


def pinned_session(policy: Policy | PinnedSSLContext, **context_kwargs: Any) -> PinnedSession:
    """A :class:`requests.Session` whose ``https://`` requests are pinned. Pass a
    :class:`~pinwarden.Policy` (and :func:`~pinwarden.create_context` keyword arguments
    such as ``cafile``) or a ready context."""
    context = (
        policy if isinstance(policy, ssl.SSLContext) else create_context(policy, **context_kwargs)
    )
    if not isinstance(context, PinnedSSLContext):
        raise TypeError(
            "pinned_session needs a Policy or a context from pinwarden.create_context()"
        )
    return PinnedSession(context)
