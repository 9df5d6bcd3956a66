"""``python -m cjmonitor.cli``."""

from cjmonitor.cli import main

main()
