"""`vfx` command line: a thin layer over the library. One module per command group."""

from vfx.cli.app import app, main
from vfx.cli import frames_cmd  # noqa: F401,E402
from vfx.cli import info_cmd  # noqa: F401,E402
from vfx.cli import features_cmd  # noqa: F401,E402
from vfx.cli import train_cmd  # noqa: F401,E402
from vfx.cli import models_cmd  # noqa: F401,E402
from vfx.cli import flow_cmd  # noqa: F401,E402
from vfx.cli import export_cmd  # noqa: F401,E402
from vfx.cli import show_cmd  # noqa: F401,E402
from vfx.cli import store_cmd  # noqa: F401,E402

__all__ = ["app", "main"]
