"""``python -m objspec.cli`` (what ``torchrun -m objspec.cli pretrain ...`` runs)."""

import sys

from objspec.cli import main

sys.exit(main())
