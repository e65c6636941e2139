"""Address lists in settings: IPs and CIDR networks (``PARLEY_TRUSTED_PROXIES``)."""

from __future__ import annotations

import ipaddress

from .errors import SettingsError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str, key: str) -> list[Network] | None:
    """Comma-separated IPs/CIDRs; ``*`` means any address (returned as None)."""
    entries = [e.strip() for e in spec.split(",") if e.strip()]
    if "*" in entries:
        return None
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise SettingsError(f"{key}: {entry!r} is not an IP address or CIDR") from None
    return networks
