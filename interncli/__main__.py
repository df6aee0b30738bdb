"""Run as ``python -m interncli``."""

from interncli.cli import main

main()
