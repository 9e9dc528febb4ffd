"""A warning, once per worker, when X-Forwarded-For arrives from a peer FORWARDED_ALLOW_IPS
does not trust.

uvicorn applies the header only from trusted peers. A reverse proxy left out of
FORWARDED_ALLOW_IPS is then every client at once: the login throttle counts all of their
failures against the proxy's one address (readapi/login_throttle.py), and logs name the
proxy. This wraps the application inside uvicorn's ProxyHeadersMiddleware: where uvicorn
trusted the peer it has replaced the client by an address from the header, so a client that
is none of the header's addresses is the untrusted peer itself.
"""

from __future__ import annotations

import os

import structlog
from litestar.types import ASGIApp, Receive, Scope, Send

log = structlog.get_logger("readapi")


def _forwarded_hosts(values: list[bytes]) -> set[str]:
    """The hosts of X-Forwarded-For's entries ("a.b.c.d", "a.b.c.d:port", "[v6]:port", "v6")."""
    hosts = set()
    for value in values:
        for entry in value.decode("latin-1").split(","):
            entry = entry.strip()
            if entry.startswith("["):
                entry = entry[1 : entry.find("]")] if "]" in entry else entry
            elif entry.count(":") == 1:
                entry = entry.split(":", 1)[0]
            hosts.add(entry)
    return hosts


class ProxyHeadersCheck:
    def __init__(self, app: ASGIApp, forwarded_allow_ips: str) -> None:
        self.app = app
        self.forwarded_allow_ips = forwarded_allow_ips
        self.warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.warned and scope["type"] == "http":
            self._check(scope)
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> None:
        forwarded = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
        hosts = _forwarded_hosts(forwarded)
        client = scope.get("client")
        if not hosts - {""} or not client or client[0] in hosts:
            return
        self.warned = True
        log.warning(
            "proxy_headers_ignored",
            peer=client[0],
            forwarded_allow_ips=self.forwarded_allow_ips,
            worker=os.getpid(),
            hint="X-Forwarded-For came from a peer FORWARDED_ALLOW_IPS does not name; if it "
            "is your reverse proxy, add its address there, or every client counts as the "
            "proxy (one login-failure count for all). Warned once per worker.",
        )
