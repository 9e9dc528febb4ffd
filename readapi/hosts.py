"""DJANGO_ALLOWED_HOSTS, enforced on the Host header as Django does; HTTPS_ONLY cookies."""

from __future__ import annotations

import msgspec

# Always accepted, as Django accepts them with DEBUG: the machine itself, and the test client.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "testserver")


def host_without_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8080
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    return host.rsplit(":", 1)[0] if ":" in host else host


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    name = host_without_port(host).rstrip(".")
    if not name:
        return False
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern == "*" or name == pattern:
            return True
        # ".example.com" matches example.com and every subdomain, as in Django.
        if pattern.startswith(".") and (name == pattern[1:] or name.endswith(pattern)):
            return True
    return False


class AllowedHostsMiddleware:
    def __init__(self, app, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed = tuple(allowed_hosts) + LOCAL_HOSTS

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            host = ""
            for key, value in scope["headers"]:
                if key == b"host":
                    host = value.decode("latin-1")
                    break
            if not host_allowed(host, self.allowed):
                body = msgspec.json.encode(
                    {
                        "detail": f"Invalid HTTP_HOST header: {host!r}. You may need to add "
                        f"{host_without_port(host)!r} to ALLOWED_HOSTS."
                    }
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class SecureCookiesMiddleware:
    """HTTPS_ONLY=TRUE: every cookie the service sets is marked Secure (and HttpOnly), as the
    original's SESSION_COOKIE_SECURE/CSRF_COOKIE_SECURE do."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secure(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (key, secure_cookie(value) if key.lower() == b"set-cookie" else value)
                    for key, value in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, send_secure)


def secure_cookie(value: bytes) -> bytes:
    attributes = {part.strip().lower() for part in value.split(b";")[1:]}
    if b"secure" not in attributes:
        value += b"; Secure"
    if b"httponly" not in attributes:
        value += b"; HttpOnly"
    return value
