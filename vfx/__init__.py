"""vfx: video datasets to HDF5 stores of frames, optical flow and motion features."""

__version__ = "0.1.0"


def open_store(path):
    """Open a vfx store (frames, flow or features) read-only. See `vfx/store/FORMAT.md`."""
    from vfx.store.reader import open_store as _open

    return _open(path)


__all__ = ["__version__", "open_store"]
