"""The HTTP/1.1 protocol readapi runs under uvicorn: h11, with a deadline for each request head.

uvicorn waits for a request head for ever (its keep-alive timer stops at the first byte). A
slow client costs the event loop nothing, but holds a socket and a file descriptor for as long
as it likes, so a few thousand of them (slowloris) exhaust the process. Here the head must be
complete within READAPI_HEADER_TIMEOUT_SECONDS. The body's deadline is an ASGI middleware
(readapi/body_deadline.py), which can answer in the application's JSON. The protocol also
turns Nagle's algorithm off, which uvicorn leaves on with several workers.
"""

from __future__ import annotations

import asyncio
import socket

import h11
import msgspec
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

log = structlog.get_logger("readapi")


def _raw_json_response(status: int, reason: bytes, body: dict) -> bytes:
    """A whole response as bytes, for the moments h11 will not send one (no request yet)."""
    content = msgspec.json.encode(body)
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n%s" % (status, reason, len(content), content)
    )


def _disable_nagle(transport: asyncio.Transport) -> None:
    """asyncio sets TCP_NODELAY only on sockets whose protocol number says TCP. With
    N_WORKER_PROCESSES > 1 uvicorn binds the listening socket itself with protocol 0, so
    Nagle stays on, and as h11 writes a response's head and body separately, every response
    waited ~40 ms for the client's delayed ACK."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request head.

    The deadline runs from the connection's start, and again from the end of each response
    on a kept-alive connection; only a complete head stops it. Bytes trickling in (a head, or
    the rest of a body the application did not read) do not move it.
    """

    def __init__(self, *args, head_timeout: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout = head_timeout
        self._head_deadline: asyncio.TimerHandle | None = None
        # The request cycle that was current when the deadline started: a new one means a
        # new head arrived.
        self._cycle_before_head: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _disable_nagle(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_deadline is not None and self.cycle is not self._cycle_before_head:
            self._stop_deadline()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        super().on_response_complete()
        # Unless a pipelined request was already read, the next head is now awaited.
        if self.cycle is cycle and not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        # Malformed HTTP: answered in JSON like every other error of the service.
        self.transport.write(_raw_json_response(400, b"Bad Request", {"detail": msg}))
        self.transport.close()

    def _await_head(self) -> None:
        self._stop_deadline()
        self._cycle_before_head = self.cycle
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _stop_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        partial_head, _ = self.conn.trailing_data
        waiting_for_head = self.conn.their_state is h11.IDLE
        log.info(
            "request_head_timeout",
            client=self.client[0] if self.client else None,
            seconds=self.head_timeout,
            bytes_received=len(partial_head),
        )
        if waiting_for_head and partial_head:
            message = f"The request head did not arrive within {self.head_timeout:g} seconds."
            self.transport.write(_raw_json_response(408, b"Request Timeout", {"detail": message}))
        self.transport.close()
