"""The ``cnn-studio`` command. No argument: the GUI. A subcommand: the headless CLI.

Each subcommand lives in its own module of this package with two functions:
``register(subparsers)`` adds its parser (no TensorFlow import) and ``run(args) -> int`` does the
work by calling the same engine functions the GUI calls. A subcommand may also set ``check(args)``:
cheap checks of its inputs (a path that does not exist) that run before TensorFlow is imported and
anything is printed, so such an error comes first and alone. Errors the engine raises on purpose
(:class:`~cnn_studio.core.errors.StudioError`) are printed as "what happened / what to do" and give
exit code 2; Ctrl+C cancels cooperatively and gives 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from cnn_studio import __version__
from cnn_studio.core import tf_runtime
from cnn_studio.core.child_side import child_main
from cnn_studio.core.child_start import CHILD_FLAG, QT_PROBE_FLAG
from cnn_studio.core.errors import StudioError

# subcommand name -> module in this package (order = order in --help)
SUBCOMMANDS: dict[str, str] = {
    "scan": "scan",
    "backbones": "backbones",
    "train": "train",
    "resume": "train",
    "evaluate": "evaluate",
    "predict": "predict",
    "export": "export",
    "explain": "explain",
    "robustness": "explain",
    "doctor": "doctor",
    "weights": "weights",
    "runs": "runs",
    "label-issues": "label_issues",
    "suggest": "suggest",
    "sample": "sample",
    "lr-find": "lr_find",
}

# subcommands that load TensorFlow: it is imported up front, quietly (its start-up lines go to a log)
TENSORFLOW_COMMANDS = frozenset({"train", "resume", "lr-find", "evaluate", "predict", "export", "explain", "robustness"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnn-studio",
        description="CNN Studio: fine-tune pretrained CNNs on folders of labeled images. "
        "Run without arguments to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"cnn-studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in dict.fromkeys(SUBCOMMANDS.values()):
        module = importlib.import_module(f"cnn_studio.cli.{module_name}")
        module.register(sub)
    return parser


def gui_arguments(argv: list[str]) -> list[str] | None:
    """The app's arguments when ``argv`` asks for the GUI, else None (a subcommand or an option).

    No argument, ``gui``/``open [FOLDER]``, or ``FOLDER`` (an existing path that is not a subcommand
    name): ``cnn-studio ~/xrays`` opens the app on that folder.
    """
    if not argv:
        return []
    first = argv[0]
    if first in ("gui", "open"):
        return argv[1:]
    if first not in SUBCOMMANDS and not first.startswith("-") and os.path.exists(os.path.expanduser(first)):
        return argv
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cnn-studio`` script and of ``python -m cnn_studio``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [CHILD_FLAG]:  # hidden: the app started this process for a job (cnn_studio.core.child_side)
        return child_main()
    if argv[:1] == [QT_PROBE_FLAG]:  # hidden: doctor's check that Qt can start here
        from cnn_studio.ui.qt_probe import main as qt_probe  # noqa: PLC0415

        return qt_probe()
    gui_argv = gui_arguments(argv)
    if gui_argv is not None:
        # Qt loads only when the window is wanted: the CLI works where Qt's system libraries are missing
        from cnn_studio.ui.app import main as gui_main  # noqa: PLC0415

        return gui_main(gui_argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        if getattr(args, "check", None):  # what the subcommand can check cheaply fails first, and alone
            args.check(args)
        if args.command in TENSORFLOW_COMMANDS:
            tf_runtime.import_tensorflow()
            if args.command in ("train", "resume"):
                print(tf_runtime.device_line(), flush=True)
        return int(args.run(args) or 0)
    except StudioError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        return 130
