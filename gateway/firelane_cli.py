"""`campus-gateway firelane ...`, registered without loading OpenCV.

gateway.firelane imports cv2 and numpy, and every other command paid for them at start-up (a
district poll starts the CLI too). Here the subcommand takes its words unparsed and hands them to
gateway.firelane's own parser when it runs, so the fire-lane options stay declared once, there.
"""

from __future__ import annotations

import argparse


def add_firelane_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `firelane eval|report|calibrate|worker`, parsed by gateway.firelane when run."""
    firelane = subparsers.add_parser(
        "firelane", help="fire-lane video analytics (SPEC 11): eval|report|calibrate|worker", add_help=False
    )
    # Only a help flag can come before the subcommand's name; after it, everything is the subcommand's.
    firelane.add_argument("-h", "--help", action="store_true", help=argparse.SUPPRESS)
    firelane.add_argument("words", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    firelane.set_defaults(func=_run_firelane)


def _run_firelane(args: argparse.Namespace) -> int:
    from gateway.firelane import main  # OpenCV and numpy load here, for the fire-lane commands only

    return main(["firelane", *(["--help"] if args.help else []), *args.words])
