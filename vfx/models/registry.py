"""Explicit registry of backbones: name -> builder function(num_classes, **kw) -> model, plus its card.

No config strings: each model file registers its builders with `@register("name", card=ModelCard(...))`.
The card says where the official weights are published, which file `--weights` takes, and the paper's
own size and cost figures, so that `vfx models` can print them beside ours. Registering a name twice is
a programming error and raises at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from vfx.errors import UsageError

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelCard:
    """What a user needs to know to get real weights for a model and compare it with its paper.

    weights: where the official weights are published (release page, download URL or hub id).
    weights_format: the file `--weights` takes (its container and key names), in words.
    paper_gflops / paper_params_m: the paper's (or the reference model zoo's) multiply-adds x 1e-9 of one
    clip at the default input and parameters in millions; None where they publish none.
    paper_source: where those figures come from. A source starting with "~" is a rounded figure: shown,
    but no percentage is computed against it.
    """

    weights: str
    weights_format: str
    paper_gflops: float | None = None
    paper_params_m: float | None = None
    paper_source: str = ""


_REGISTRY: dict[str, Builder] = {}
_CARDS: dict[str, ModelCard] = {}


def register(name: str, card: ModelCard | None = None) -> Callable[[Builder], Builder]:
    def deco(fn: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = fn
        if card is not None:
            _CARDS[name] = card
        return fn

    return deco


def get_builder(name: str) -> Builder:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}") from None


def get_card(name: str) -> ModelCard | None:
    """The card registered with `name`, or None."""
    get_builder(name)  # unknown names raise the same UsageError
    return _CARDS.get(name)


def build_on_meta(name: str, **kw) -> nn.Module:
    """Model `name` on the meta device, in eval mode: its attributes and shapes without memory or weights."""
    import torch

    with torch.device("meta"):
        return get_builder(name)(**kw).eval()


def registered_names() -> list[str]:
    return sorted(_REGISTRY)
