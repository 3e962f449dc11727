"""Checkpoint plumbing shared by every backbone.

Order of a load: read the file with `torch.load(..., weights_only=True)` (a `.safetensors` file with
`safetensors.torch.load_file`) -> strip training wrappers (`state_dict` / `model_state` / `model`
dicts; the `module.` prefix of DataParallel / DDP, the `model.` prefix of Lightning-style wrappers, the
`backbone.` prefix of detector / mmaction-style recognisers) in one place -> the model family's pure
key-mapping function -> compare names and shapes with the model -> strict
`load_state_dict`. Any difference is a `CheckpointError` listing missing, unexpected and mis-shaped
keys; nothing is ever loaded partially.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import torch
from torch import nn

from vfx.errors import CheckpointError

StateDict = dict[str, torch.Tensor]
KeyMap = Callable[[StateDict], StateDict]

# Wrapper dicts used by the training scripts of the official code: TSM / MSNet save
# {"epoch", "arch", "state_dict", ...}; PySlowFast (the CorrNet re-implementation) saves
# {"epoch", "model_state", "optimizer_state", "cfg"}.
_WRAPPER_KEYS = ("state_dict", "model_state", "model")
# A prefix is a wrapper only for a model that has no parameter under that name itself: TSM / TSN keep
# their ResNet as `backbone.*`, so for them `backbone.` is part of the key and stays.
_PREFIXES = ("module.", "model.", "backbone.")
_LIST_LIMIT = 12


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint file safely (tensors and plain containers only)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.endswith(".safetensors"):
        return _read_safetensors(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a loadable PyTorch checkpoint ({reason})") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return dict(obj)


def _read_safetensors(path: str) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a loadable safetensors file ({reason})") from None


def strip_wrappers(obj: Mapping, source: str = "checkpoint", own_keys=()) -> StateDict:
    """Unwrap `{"state_dict": ...}`-style containers and drop wrapper prefixes (`module.`, `model.`,
    `backbone.`), except those that the model's own key names `own_keys` start with."""
    prefixes = [p for p in _PREFIXES if not any(k.startswith(p) for k in own_keys)]
    sd: Mapping = obj
    for _ in range(3):
        inner = next((sd[k] for k in _WRAPPER_KEYS if isinstance(sd.get(k), Mapping)), None)
        if inner is None:
            break
        sd = inner
    out: StateDict = {}
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor):
            continue
        stripped = True
        while stripped:
            stripped = False
            for prefix in prefixes:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix):], True
        out[key] = value
    if not out:
        raise CheckpointError(f"{source}: no tensors found (top-level keys: {sorted(map(str, obj))[:_LIST_LIMIT]})")
    return out


def _fmt(keys: list[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_LIST_LIMIT])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _LIST_LIMIT else "")


def check_and_load(
    model: nn.Module, state: StateDict, source: str = "checkpoint", classifier_keys: tuple[str, ...] = ()
) -> None:
    """Compare names and shapes with `model.state_dict()`, then load strictly.

    `num_batches_tracked` counters are the one exception: files saved before PyTorch 0.4.1 (the
    released pytorch-i3d weights) have none, and they do not affect inference, so missing ones keep
    the model's value.
    """
    own = model.state_dict()
    state = dict(state)
    for key in own:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = own[key]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mis_shaped = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mis_shaped:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {_fmt(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {_fmt(unexpected)}")
        if mis_shaped:
            parts.append(f"shape mismatch {len(mis_shaped)}: {_fmt(mis_shaped)}")
        hint = ""
        bad = {k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)}
        if not missing and not unexpected and bad and bad <= set(classifier_keys):
            n = state[sorted(bad)[0]].shape[0]
            hint = f" (the checkpoint has {n} classes: pass num_classes={n})"
        raise CheckpointError(f"{source}: does not match {type(model).__name__}; " + "; ".join(parts) + hint)
    model.load_state_dict(state, strict=True)


def load_weights(
    model: nn.Module,
    weights: str | os.PathLike | Mapping,
    key_map: KeyMap | None = None,
    classifier_keys: tuple[str, ...] = (),
) -> None:
    """Load `weights` (a file path or a state dict, official or ours) into `model` strictly.

    `key_map` is the family's pure official->ours renaming; it must leave our own key names alone so
    that checkpoints saved from vfx models load too.
    """
    if isinstance(weights, Mapping):
        source = "state dict"
        raw = weights
    else:
        source = os.fspath(weights)
        raw = read_checkpoint(source)
    state = strip_wrappers(raw, source, own_keys=model.state_dict().keys())
    if key_map is not None:
        state = key_map(state)
    check_and_load(model, state, source, classifier_keys)
