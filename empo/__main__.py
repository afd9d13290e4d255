"""``python -m empo``: see :mod:`empo.cli`."""

import sys

from empo.cli import main

if __name__ == "__main__":
    sys.exit(main())
