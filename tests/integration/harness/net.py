"""Small networking and polling helpers shared by the harness."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a free TCP port on the loopback interface.

    The port is released before it is returned, so a child process can bind it.
    The tiny race with other processes is acceptable in tests.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until[T](
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "condition",
    abort_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``probe`` until it returns something truthy; return that value.

    Exceptions from the probe count as "not yet" (servers refuse connections while
    starting), but the last one is attached to the TimeoutError to ease debugging.
    Exceptions of the ``abort_on`` types end the wait at once (e.g. "the process died").
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = probe()
        except abort_on:
            raise
        except Exception as exc:  # a starting server refuses or resets connections
            last_exc = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}") from last_exc
        time.sleep(interval)


def http_get(url: str, *, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET a URL with the standard library; return (status, body) even for HTTP errors."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
