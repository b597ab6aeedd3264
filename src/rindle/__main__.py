"""``python -m rindle`` runs the command line."""

from rindle.cli import main

main()
