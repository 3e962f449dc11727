"""Two-stream fusion training on vfx stores (Feichtenhofer et al., CVPR 2016).

`data` (datasets over frames / flow / features stores), `fusion` (spatial and temporal fusion), `model`
(the two-stream network), `params`, `loop` (training, checkpoints, evaluation), `metrics`, `synthetic`
(a dataset whose classes differ only by motion).

The names below load on first use, so `import vfx.train.synthetic` (the dataset script) does not pull in torch.
"""

from importlib import import_module

_EXPORTS = {
    "DataConfig": "vfx.train.data",
    "build_feature_datasets": "vfx.train.data",
    "build_video_datasets": "vfx.train.data",
    "ModelConfig": "vfx.train.model",
    "TwoStreamNet": "vfx.train.model",
    "TrainParams": "vfx.train.params",
    "TrainResult": "vfx.train.loop",
    "evaluate_checkpoint": "vfx.train.loop",
    "train_fusion": "vfx.train.loop",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vfx.train' has no attribute {name!r}")
