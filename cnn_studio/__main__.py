"""``python -m cnn_studio``: the same entry point as the ``cnn-studio`` console script."""

import sys

from cnn_studio.cli import main

if __name__ == "__main__":
    sys.exit(main())
