"""Where a thread waits on the network: an HTTP call to the API server or to Prometheus.

`kube` and `prometheus` wrap their calls in `network()`. The operator's worker pool
(`runtime.Pool`) installs a hook in each of its threads, so that a reconcile waiting long on a
slow server lends its place to another one (a slow tenant does not hold up the others).
Anywhere else (the CLI, tests, Kopf's own threads) `network()` does nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

type Hook = Callable[[], AbstractContextManager[object]]

_local = threading.local()


def install(hook: Hook | None) -> None:
    """``hook()`` wraps every `network()` block of the calling thread (None: nothing does)."""
    _local.hook = hook


@contextlib.contextmanager
def network() -> Iterator[None]:
    """A block that waits on the network (and does little else)."""
    hook: Hook | None = getattr(_local, "hook", None)
    if hook is None:
        yield
        return
    with hook():
        yield
