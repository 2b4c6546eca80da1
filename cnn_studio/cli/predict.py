"""``cnn-studio predict MODEL IMAGE_OR_DIR...``: classify images with a trained model.

MODEL is a run folder or a ``.keras`` file (with ``labels.txt`` beside it). One line per image on
stdout (or JSON with ``--json``); ``--csv`` also writes a CSV (of the plain images).

A NIfTI file or a folder holding a DICOM series is answered per *study* (:mod:`cnn_studio.predict.studies`):
its slices are classified and aggregated (the run's ``study_aggregate``, mean by default), and the
line names the slices that drove the answer. With studies among the inputs, ``--json`` prints
``{"studies": [...], "images": [...]}`` instead of the plain list. Unreadable files are reported per
row and do not stop the others; files in the folders that are not images CNN Studio reads (.heic,
.txt, ...) are listed as SKIPPED rows with the reason (and in ``--csv``). Exit codes: 0 all
classified (skipped non-image files included), 1 some files unreadable, 2 bad input, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnn_studio.cli.progress import TerminalProgress, cancel_on_interrupt
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.errors import ConfigError, DatasetError
from cnn_studio.data.formats import describe_formats
from cnn_studio.data.records import SLICE_AXES, VolumeSlicing, slice_name
from cnn_studio.evaluation.studies import AGGREGATES
from cnn_studio.predict.predictor import Classifier, Prediction, skipped_predictions, write_csv
from cnn_studio.predict.studies import (
    FoundStudies,
    StudyPrediction,
    StudyPredictOptions,
    classify_studies,
    find_studies,
    run_settings,
)
from cnn_studio.training.config import parse_slices


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (argparse prints the message and exits with 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, received {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand (no TensorFlow import)."""
    p = subparsers.add_parser(
        "predict", help="classify images with a trained model",
        description="Classify image files and folders (searched recursively) with a run's best model "
                    "or a .keras file.")
    p.add_argument("model", metavar="RUN_DIR_OR_MODEL", help="run folder or .keras file")
    p.add_argument("paths", metavar="IMAGE_OR_DIR", nargs="+", help="images and/or folders of images")
    p.add_argument("--top-k", type=int, default=3, metavar="K", help="how many classes to show per image (default 3)")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                   help="images per forward pass (default 32)")
    p.add_argument("--csv", metavar="OUT", default=None, help="also write the predictions to this CSV file")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON on stdout")
    p.add_argument("--uncertain-below", type=float, default=None, metavar="P",
                   help="answer 'uncertain' when the top probability is below P (e.g. 0.6) instead of a label "
                        "that may be wrong; the run's probabilities are calibrated on its validation images")
    p.add_argument("--slice-axis", type=int, choices=SLICE_AXES, default=None, metavar="AXIS",
                   help="cut volumes across this axis (default: the run's)")
    p.add_argument("--slices", default=None, metavar="WHICH",
                   help="which slices of a study to classify: content, all or middle:K (default: the run's)")
    p.add_argument("--study-aggregate", choices=AGGREGATES, default=None,
                   help="how a study's slices make its answer: mean or max of their probabilities (default: the run's)")
    p.add_argument("--top-slices", type=int, default=3, metavar="N",
                   help="how many of the slices that drove a study's answer to name (default 3)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Classify and print; return the exit code."""

    if args.top_k < 1:
        raise ConfigError(f"--top-k: expected a whole number >= 1, received {args.top_k}.")
    found, how = _find_inputs(args)
    try:
        with cancel_on_interrupt() as token:
            studies, predictions = _classify(args, found, how, token)
    except Cancelled:
        print("prediction cancelled", file=sys.stderr)
        return 130
    predictions += skipped_predictions(found.skipped)  # every file found is accounted for
    if args.csv and predictions:
        print(f"wrote {write_csv(predictions, args.csv, answer_column=args.uncertain_below is not None)}",
              file=sys.stderr)
    _print_answers(args, studies, predictions)
    return _report_problems(args, studies, predictions)


def _find_inputs(args: argparse.Namespace) -> tuple[FoundStudies, str]:
    """The studies and images among the paths (volumes cut as the options or the run say), and the study aggregate."""
    if args.slices is not None:
        parse_slices(args.slices)
    run_slicing, run_how = run_settings(args.model)
    slicing = VolumeSlicing(run_slicing.axis if args.slice_axis is None else args.slice_axis,
                            args.slices or run_slicing.slices)
    found = find_studies(args.paths, slicing)
    if not found.images and not found.studies:
        others = (f" ({len(found.skipped)} file(s) of other types, e.g. {Path(found.skipped[0][0]).name})"
                  if found.skipped else "")
        raise DatasetError(f"No images found in {', '.join(args.paths)}{others}.",
                           f"Give image files, or folders that contain images ({describe_formats()}).")
    return found, args.study_aggregate or run_how


def _classify(args: argparse.Namespace, found: FoundStudies, how: str,
              token: CancelToken) -> tuple[list[StudyPrediction], list[Prediction]]:
    """Load the model once; answer the studies, then the plain images."""
    studies: list[StudyPrediction] = []
    predictions: list[Prediction] = []
    clf = Classifier.load(args.model)
    if found.studies:
        options = StudyPredictOptions(aggregate_by=how, top_k=args.top_k, top_slices=max(1, args.top_slices),
                                      batch_size=args.batch_size, uncertain_below=args.uncertain_below)
        studies = classify_studies(clf, found, options, sink=TerminalProgress(), cancel=token)
    if found.images:
        predictions = clf.classify(found.images, top_k=args.top_k, batch_size=args.batch_size,
                                   uncertain_below=args.uncertain_below, sink=TerminalProgress(), cancel=token)
    return studies, predictions


def _print_answers(args: argparse.Namespace, studies: list[StudyPrediction], predictions: list[Prediction]) -> None:
    """JSON, or one line per study and per image, on stdout."""
    if args.json:
        payload = ({"studies": [s.to_dict() for s in studies], "images": [p.to_dict() for p in predictions]}
                   if studies else [p.to_dict() for p in predictions])
        json.dump(payload, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    for st in studies:
        print(_study_line(st, args.uncertain_below))
    for p in predictions:
        if p.skipped:
            print(f"{p.path}\tSKIPPED: {p.error.removeprefix('skipped: ') if p.error else ''}")
        elif p.error:
            print(f"{p.path}\tERROR: {p.error}")
        elif p.uncertain:
            print(f"{p.path}\tuncertain (below {args.uncertain_below:g}; best guesses: "
                  + "  ".join(f"{name} {prob:.3f}" for name, prob in p.top) + ")")
        else:
            print(f"{p.path}\t" + "  ".join(f"{name} {prob:.3f}" for name, prob in p.top))


def _report_problems(args: argparse.Namespace, studies: list[StudyPrediction], predictions: list[Prediction]) -> int:
    """The warnings and notes on stderr; the exit code (1 when a file or study could not be read)."""
    failed_studies = sum(1 for st in studies if st.error)
    if failed_studies:
        print(f"warning: {failed_studies} of {len(studies)} stud{'y' if len(studies) == 1 else 'ies'} could not "
              "be classified", file=sys.stderr)
    unsure = sum(1 for p in predictions if p.uncertain)
    if unsure:
        print(f"{unsure} of {len(predictions)} image(s) answered 'uncertain' (top probability below "
              f"{args.uncertain_below:g})", file=sys.stderr)
    left_out = sum(1 for p in predictions if p.skipped)
    if left_out:
        print(f"{left_out} file(s) skipped: not image types CNN Studio reads (listed above)", file=sys.stderr)
    failed = sum(1 for p in predictions if p.error and not p.skipped)
    if failed:
        print(f"warning: {failed} of {len(predictions) - left_out} file(s) could not be read", file=sys.stderr)
    return 1 if failed or failed_studies else 0


def _study_line(st: StudyPrediction, threshold: float | None) -> str:
    """``STUDY<TAB>lesion 0.874  healthy 0.126  (18 slices, mean; drove it: slice 9 0.99, ...)``."""
    if st.error:
        return f"{st.study}\tERROR: {st.error}"
    guesses = "  ".join(f"{name} {prob:.3f}" for name, prob in st.top)
    head = f"uncertain (below {threshold:g}; best guesses: {guesses})" if st.uncertain else guesses
    drove = ", ".join(f"{slice_name(k)} {p:.2f}" for k, p in st.top_slices)
    unread = f", {st.unreadable_slices} unreadable" if st.unreadable_slices else ""
    return f"{st.study}\t{head}  ({st.slices} slices{unread}, {st.aggregate}; drove it: {drove})"
