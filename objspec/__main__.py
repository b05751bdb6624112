"""``python -m objspec``: the ``objspec`` command."""

import sys

from objspec.cli import main

if __name__ == "__main__":
    sys.exit(main())
