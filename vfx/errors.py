"""Exceptions with one-line messages that name the file and the reason.

`UsageError` stops a whole command (exit 2). `VideoError` concerns one video: the engine records it as
failed in the ledger and the run goes on.
"""


class VfxError(Exception):
    """Base class of every error vfx raises on purpose."""


class UsageError(VfxError):
    """The command cannot proceed: bad flag, missing input, unwritable output, parameter clash."""


class VideoError(VfxError):
    """One video cannot be processed (unreadable, empty, truncated, no video stream, ...)."""


class CheckpointError(VfxError):
    """A checkpoint does not match the model it is loaded into."""
