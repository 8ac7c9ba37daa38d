"""``python -m attrkit`` runs the command line."""

import sys

from attrkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
