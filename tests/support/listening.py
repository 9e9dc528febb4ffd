"""Which addresses a TCP port listens on, read from Linux's /proc/net/tcp and tcp6.

Only the standard library: the clean-install smoke test imports it with the system Python.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path

_LISTEN = "0A"


def listening_addresses(port: int) -> set[str]:
    """Every local address with a socket listening on `port`, e.g. {"127.0.0.1"}."""
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] != _LISTEN or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host byte order.
            words = struct.unpack(f"={len(raw) // 4}I", raw)
            packed = struct.pack(f"!{len(words)}I", *words)
            found.add(str(ipaddress.ip_address(socket.inet_ntop(family, packed))))
    return found
