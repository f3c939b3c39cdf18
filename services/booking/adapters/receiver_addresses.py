"""Where a webhook URL's host points, for the setting that keeps deliveries off internal networks."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from confbook_common.errors import InvalidInput
from services.booking.domain.webhooks import is_internal_address


def internal_address_of(url: str) -> str | None:
    """The first internal address the URL's host resolves to, or None if all are public.

    A host that does not resolve is refused too: there is nothing to check.
    """
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise InvalidInput("url", f"host {host!r} does not resolve") from None
    for info in infos:
        address = str(info[4][0])
        if is_internal_address(address):
            return address
    return None


def refuse_internal(url: str) -> None:
    address = internal_address_of(url)
    if address is not None:
        raise InvalidInput("url", f"points to an internal address ({address}), which this deployment refuses")
