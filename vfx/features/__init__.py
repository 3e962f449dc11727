"""Per-clip backbone features of videos into a features store (`vfx features`).

    >>> from vfx.features import FeatureParams, ModelChoice, ClipParams, extract_features
    >>> params = FeatureParams(models=(ModelChoice.of("i3d_rgb", "rgb_imagenet.pt"),), clips=ClipParams(clip_len=16, stride=4))
    >>> extract_features(vfx.sources.load_items("videos/"), "i3d.store", params)
    >>> vfx.open_store("i3d.store").read_features(video_id)   # [num_clips, 1024]

Modules: params (what the user chooses, resolved against the models' input specs), preprocess (resize, crops,
value ranges), clips (clip placement and streaming from videos / frames stores / flow stores), runner
(prefetch thread + batches across videos), stage (the engine Stage); MSNet maps are drawn by vfx/show/motion.py.
"""

from vfx.features.extract import extract_features, load_feature_items, prepare_features
from vfx.features.params import (
    ClipParams,
    FeatureParams,
    ModelChoice,
    RandomWeightsWarning,
    SpatialParams,
    resolve,
)
from vfx.features.stage import FeaturesStage
from vfx.store.items import items_from_store

__all__ = [
    "ClipParams",
    "FeatureParams",
    "FeaturesStage",
    "ModelChoice",
    "RandomWeightsWarning",
    "SpatialParams",
    "extract_features",
    "items_from_store",
    "load_feature_items",
    "prepare_features",
    "resolve",
]
