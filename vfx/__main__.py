"""`python -m vfx ...` is the same as the `vfx` command."""

from vfx.cli import main

main()
