"""vfx: video datasets to HDF5 stores of frames, optical flow and motion features."""

from vfx.version import __version__


def open_store(path):
    """Open a vfx store (frames, flow or features) read-only. See `vfx/store/FORMAT.md`."""
    from vfx.store.reader import open_store as _open

    return _open(path)


__all__ = ["__version__", "open_store"]
