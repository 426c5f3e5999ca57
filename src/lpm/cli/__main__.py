"""``python -m lpm.cli``."""

from lpm.cli import main

main()
