"""`vfx show`: frames, colour-coded flow and MSNet maps drawn with labels (above the three stages it reads)."""

from vfx.show.render import Rendered, render

__all__ = ["Rendered", "render"]
