"""Frozen dataclasses that are cheap to build: the decision core's per-reconcile values.

`@dataclass(frozen=True)` stores each field through `object.__setattr__`, the one way past the
frozen guard; on CPython 3.13 that costs about 0.1 us a field, and a replay builds about a
dozen such values (a hundred fields) at every step of a week of 15 s steps. `quick_init` gives
a frozen dataclass an `__init__` that writes the new instance's dict directly: the same
parameters, defaults, default factories and `__post_init__`, the same frozen instances after
(equality, hash, repr, `replace`, pickling and copying do not read how the fields were stored).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import MISSING, fields, is_dataclass
from typing import cast


def quick_init[T](cls: type[T]) -> type[T]:
    """Replace a frozen dataclass's `__init__` with one that stores its fields directly.

    Apply it over `@dataclass(frozen=True)`. Only plain fields are supported (every field in
    `__init__`, positional or keyword): anything else fails here, at import, not at a call.
    """
    if not is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__}: quick_init is for frozen dataclasses")
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: quick_init needs an instance dict (no slots)")
    generated = cls.__init__
    names = [f.name for f in fields(cls)]
    parameters = list(inspect.signature(generated).parameters.values())[1:]
    if (
        [p.name for p in parameters] != names
        or any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters)
        or not _RESERVED.isdisjoint(names)
    ):
        raise TypeError(
            f"{cls.__name__}: quick_init needs every field, and only fields, in __init__"
        )
    init = _compile_init(cls)
    functools.update_wrapper(init, generated)  # the same name, doc and signature
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


_RESERVED = frozenset({"self", "stored", "MISSING"})  # names the generated __init__ uses


def _compile_init(cls: type) -> Callable[..., None]:
    """`__init__(self, <fields>)` writing `self.__dict__`, then `__post_init__` if any."""
    env: dict[str, object] = {"MISSING": MISSING}
    params: list[str] = []
    body: list[str] = []
    for f in fields(cls):
        if f.default is not MISSING:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not MISSING:
            env[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=MISSING")
            body.append(f"    if {f.name} is MISSING:\n        {f.name} = _factory_{f.name}()")
        else:
            params.append(f.name)
    body.append("    stored = self.__dict__")
    body.extend(f"    stored[{f.name!r}] = {f.name}" for f in fields(cls))
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n"
    exec(source, env)  # the way dataclasses builds its own __init__
    return cast("Callable[..., None]", env["__init__"])
