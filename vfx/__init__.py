"""vfx: video datasets to HDF5 stores of frames, optical flow and motion features.

    import vfx
    vfx.extract_frames("videos/", "frames.vfx", recipe="tsn-ucf101")   # what `vfx extract-frames` does
    vfx.extract_flow(None, "flow.vfx", from_frames="frames.vfx")       # `vfx extract-flow`
    vfx.extract_features("videos/", "i3d.vfx", model="i3d_rgb")        # `vfx features`
    vfx.train_fusion("run/", frames="frames.vfx", flow="flow.vfx")     # `vfx train-fusion`
    store = vfx.open_store("frames.vfx")

The entry points (`vfx/api.py`) and `RunOptions` load on first use, so `import vfx` stays light.
"""

from importlib import import_module

from vfx.version import __version__

_EXPORTS = {
    "extract_frames": "vfx.api",
    "extract_flow": "vfx.api",
    "extract_features": "vfx.api",
    "train_fusion": "vfx.api",
    "RunOptions": "vfx.engine.options",
}


def open_store(path):
    """Open a vfx store (frames, flow or features) read-only. See `vfx/store/FORMAT.md`."""
    from vfx.store.reader import open_store as _open

    return _open(path)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vfx' has no attribute {name!r}")


__all__ = ["__version__", "open_store", *sorted(_EXPORTS)]
