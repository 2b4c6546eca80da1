"""The frozen app's entry point: the same ``main`` as the ``cnn-studio`` console script.

PyInstaller runs this file as ``__main__`` in the bundled executable. Children (training,
evaluation, the model server, doctor's Qt probe) start this same executable with a hidden flag
(:func:`cnn_studio.core.child_start.program_command`), never ``python -m``.
"""

import sys

from cnn_studio.cli import main

if __name__ == "__main__":
    sys.exit(main())
