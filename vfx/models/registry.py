"""Explicit registry of backbone builders: name -> function(num_classes, **kw) -> model.

No config strings: each model file registers its builders with `@register("name")`. Registering a
name twice is a programming error and raises at import time.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from vfx.errors import UsageError

Builder = Callable[..., nn.Module]

_REGISTRY: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    def deco(fn: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = fn
        return fn

    return deco


def get_builder(name: str) -> Builder:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}") from None


def registered_names() -> list[str]:
    return sorted(_REGISTRY)
