"""The version of vfx, in a module of its own so that any layer can record it without importing `vfx`."""

__version__ = "0.1.0"
