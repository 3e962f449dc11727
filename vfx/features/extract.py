"""`extract_features`: the Python entry point behind `vfx features` (resolve, warn, run the stage)."""

from __future__ import annotations

import os
from dataclasses import replace

from vfx.engine import RunOptions, RunSummary, run_stage
from vfx.errors import UsageError
from vfx.features.params import FeatureParams, ResolvedFeatures, resolve, warn_random_init
from vfx.features.stage import FeaturesStage, check_devices
from vfx.store.items import items_from_store
from vfx.store.layout import is_store
from vfx.store.location import Location
from vfx.types import VideoItem


def load_feature_items(input_path: str | os.PathLike | None, params: FeatureParams, **source_kwargs) -> tuple[list[VideoItem], FeatureParams]:
    """Items from INPUT: a video dataset (`vfx.sources.load_items`), or a frames / flow store, which then
    also serves as `from_frames` / `from_flow` unless those are given. No INPUT: every video of
    `from_frames` (else `from_flow`)."""
    from vfx.sources import load_items
    from vfx.store.layout import read_manifest

    if input_path is None:
        store = params.from_frames or params.from_flow
        if store is None:
            raise UsageError("give INPUT (videos, or a frames or flow store), or --from-frames / --from-flow STORE")
        return items_from_store(store), params
    # A store is a path or a URL (vfx.store.location decides which); never Path() a URL: "s3://b" -> "s3:/b".
    path = input_path if isinstance(input_path, str) else os.fspath(input_path)
    if is_store(path):
        kind = read_manifest(path)["kind"]
        store = str(Location.parse(path))
        if kind == "frames" and params.from_frames is None:
            params = replace(params, from_frames=store)
        elif kind == "flow" and params.from_flow is None:
            params = replace(params, from_flow=store)
        elif kind not in ("frames", "flow"):
            raise UsageError(f"{path}: a {kind} store; features are computed from videos, frames or flow stores")
        return items_from_store(path), params
    return load_items(path, **source_kwargs), params


def prepare_features(params: FeatureParams, options: RunOptions = RunOptions()) -> ResolvedFeatures:
    """Check inputs, devices, models and weights (nothing is written) and fill defaults: what a run will do."""
    for label, path, kind in (("--from-frames", params.from_frames, "frames"), ("--from-flow", params.from_flow, "flow")):
        if path is not None:
            _check_input_store(label, path, kind)
    # params.threads None: the engine gives each worker its node's CPUs divided by the workers placed there.
    check_devices(params, options.engine)
    return resolve(params)


def extract_features(
    items: list[VideoItem],
    output: str | os.PathLike,
    params: FeatureParams | ResolvedFeatures,
    options: RunOptions = RunOptions(),
) -> RunSummary:
    """Compute per-clip features of `items` into the features store at `output` (resuming earlier runs).

    `params` may be the result of `prepare_features` (the CLI checks everything before it prints anything).
    Models without weights raise a `RandomWeightsWarning`.
    """
    resolved = params if isinstance(params, ResolvedFeatures) else prepare_features(params, options)
    warn_random_init(resolved)  # printed once to stderr by Python's default warning filter
    stage = FeaturesStage(resolved)
    return run_stage(stage, items, output, options)


def _check_input_store(label: str, path: str, kind: str) -> None:
    from vfx.store.layout import read_manifest

    if not is_store(path):
        raise UsageError(f"{label} {path}: not a vfx store (no vfx-store.json)")
    found = read_manifest(path)["kind"]
    if found != kind:
        hint = " (a flow model needs optical flow: make it with vfx extract-flow)" if kind == "flow" else ""
        raise UsageError(f"{label} {path}: a {found} store, not {kind}{hint}")
