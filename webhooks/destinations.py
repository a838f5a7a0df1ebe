"""Where a webhook may be sent: the public internet, unless the operator allows more.

A webhook URL is an attempt to reach inside the operator's network until checked (SSRF). Refused:
loopback, private (RFC 1918, 100.64/10, fc00::/7), link-local (169.254/16, fe80::/10), multicast,
unspecified, reserved and documentation ranges, and IPv6 addresses that carry an IPv4 one (mapped,
6to4) pointing at any of those, in every spelling a resolver accepts (``2130706433``,
``0x7f.1``, ``0177.0.0.1``, ``127.1``, ``[::ffff:127.0.0.1]``), and names under ``localhost``.
``PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS`` (CIDRs) allows internal receivers.

Checked twice: when a URL is saved (``check_destination``: literal addresses and local names,
without a DNS lookup, which may not answer from where the URL is typed), and when a delivery is
made (``resolve_destination``: every address the name resolves to must be allowed, and the POST
goes to the address that was checked, so a DNS answer that changes in between is not followed).
"""

import ipaddress
import socket

from django.conf import settings

LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class DestinationRefused(ValueError):
    """The URL's host is, or resolves to, an address webhooks may not reach; says which."""


def allowed_networks():
    return [ipaddress.ip_network(cidr.strip(), strict=False)
            for cidr in settings.PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS if cidr.strip()]


def literal_address(host):
    """The address ``host`` spells, in any form the resolver accepts, or None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # the old numeric forms: 2130706433, 0x7f.1, 0177.0.0.1, 127.1
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _public(address):
    embedded = getattr(address, "ipv4_mapped", None) or getattr(address, "sixtofour", None)
    if embedded is not None and not _public(embedded):
        return False
    return address.is_global and not address.is_multicast


def refusal(address):
    """Why ``address`` may not be reached, or None when it may."""
    if any(address in network for network in allowed_networks()):
        return None
    if _public(address):
        return None
    return (f"{address} is not a public address (loopback, private, link-local, multicast or reserved); "
            "an operator can allow internal receivers with PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS")


def check_destination(host):
    """Raise ``DestinationRefused`` for a host that is a refused literal address or a local name."""
    name = host.strip("[]").rstrip(".").lower()
    address = literal_address(name)
    if address is None:
        if name in LOCAL_NAMES or name.endswith(".localhost"):
            if not any(ipaddress.ip_address("127.0.0.1") in net for net in allowed_networks()):
                raise DestinationRefused(f"'{host}' is this machine; webhooks go to receivers on other hosts")
        return
    problem = refusal(address)
    if problem:
        raise DestinationRefused(problem)


def resolve_destination(host, port):
    """The address to connect to for ``host``: every address it resolves to must be allowed."""
    check_destination(host)
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise OSError(f"could not resolve {host}") from exc
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        problem = refusal(address)
        if problem:
            raise DestinationRefused(f"{host} resolves to {problem}")
        addresses.append(address)
    if not addresses:
        raise OSError(f"could not resolve {host}")
    return min(addresses, key=lambda a: a.version)  # IPv4 first: a receiver may listen on it alone
