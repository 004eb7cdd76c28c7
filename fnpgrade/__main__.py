"""``python -m fnpgrade`` runs the command line (see :mod:`fnpgrade.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
