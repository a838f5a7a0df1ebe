"""Who asked, as the audit trail records it, without trusting what the client says about itself.

- The **request id** is made here, one per request (``X-Request-ID`` on the response carries it);
  an id the client sent is kept apart, cleaned (letters, digits and ``._:-``) and capped, in the
  event's data as ``client_request_id``.
- The **client IP** is the TCP peer, unless the peer is a proxy listed in
  ``PROMPTLEDGER_TRUSTED_PROXIES`` (CIDRs; none by default): then ``X-Forwarded-For`` is read from
  the right, skipping trusted proxies, and the first other address is the client. A client that
  writes its own ``X-Forwarded-For`` therefore changes nothing unless it is a trusted proxy.
- The **user agent** is capped and loses control characters.
"""

import ipaddress
import random
import re

from django.conf import settings

META_KEY = "promptledger.request_id"
_CLIENT_ID = re.compile(r"[^A-Za-z0-9._:\-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _address(text):
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address):
    return address is not None and any(
        address in ipaddress.ip_network(cidr, strict=False) for cidr in settings.PROMPTLEDGER_TRUSTED_PROXIES
    )


def client_ip(meta):
    peer_text = meta.get("REMOTE_ADDR", "") or ""
    peer = _address(peer_text)
    if not _trusted(peer):
        return str(peer) if peer is not None else peer_text[:64]
    hops = [hop for hop in (meta.get("HTTP_X_FORWARDED_FOR", "") or "").split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage from beyond the last trusted proxy: keep the last address we can vouch for
        client = address
        if not _trusted(address):
            break
    return str(client)


def client_ip_of_request(request):
    """``client_ip`` for a request (django-axes keys its lockouts on it)."""
    return client_ip(request.META)


def new_request_id():
    """32 random hex digits. An id names a request in logs and audit events; it is not a secret, so
    it comes from ``random`` (reseeded in every forked worker) rather than ``uuid4``'s ``os.urandom``:
    a system call on every request, and under gunicorn's threads a release of the GIL that another
    thread takes, which cost resolve about a twentieth of its throughput (issue 18)."""
    return f"{random.getrandbits(128):032x}"  # noqa: S311 - unique, not unguessable


def request_id(meta):
    """This request's id, made once (by ``RequestIdMiddleware``, or here for a request without it)."""
    if META_KEY not in meta:
        meta[META_KEY] = new_request_id()
    return meta[META_KEY]


def client_request_id(meta):
    return _CLIENT_ID.sub("", meta.get("HTTP_X_REQUEST_ID", "") or "")[:64]


def user_agent(meta):
    return _CONTROL.sub("", meta.get("HTTP_USER_AGENT", "") or "")[:300]


def context(meta):
    """The keyword arguments of an ``Actor`` for a request's ``META``."""
    return {
        "request_id": request_id(meta),
        "client_request_id": client_request_id(meta),
        "ip": client_ip(meta),
        "user_agent": user_agent(meta),
    }
