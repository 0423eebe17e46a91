"""The ``fraudkeras`` command line: one module per command, each with
``add_parser`` and ``run``.

Keras is imported only after ``--backend`` is applied. Every failure ends in one
``fraudkeras: error: ...`` line on stderr and the exit code of its kind (see
:mod:`fraudkeras._core.errors`); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType

from fraudkeras import __version__
from fraudkeras._core import interrupts
from fraudkeras._core.errors import BackendError, FraudKerasError, first_line
from fraudkeras._core.extras import missing_extra
from fraudkeras._core.logs import configure_logging
from fraudkeras._core.quiet import DEBUG_VARIABLE
from fraudkeras.cli import (
    compare,
    drift,
    evaluate,
    explain,
    export,
    parity,
    report,
    score,
    serve,
    threshold,
    train,
)  # fmt: skip
from fraudkeras.cli.options import Parser, with_flags

log = logging.getLogger("fraudkeras")
EXIT_INTERRUPTED = 130
DESCRIPTION = (
    "A credit-card fraud detector defined once as a Keras 3 model: train, evaluate, "
    "export, score and serve it under JAX, PyTorch or TensorFlow."
)
EPILOG = "Run 'fraudkeras COMMAND --help' for a command's options."
COMMANDS: tuple[ModuleType, ...] = (
    train, evaluate, export, score, compare, parity, threshold, explain, report, drift, serve,
)  # fmt: skip


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser, and each command's own subparser by name."""
    common = Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    parser = Parser(prog="fraudkeras", description=DESCRIPTION, epilog=EPILOG, parents=[common])
    parser.add_argument("--version", action="version", version=f"fraudkeras {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    subparsers = {module.__name__.rsplit(".", 1)[1]: module.add_parser(commands, common)
                  for module in COMMANDS}  # fmt: skip
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:  # third-party C++ output stays visible (see fraudkeras._core.quiet)
        os.environ[DEBUG_VARIABLE] = "1"
    configure_logging()
    interrupts.install()
    parser, subparsers = build_parser()
    chosen: argparse.ArgumentParser | None = None
    command_name: str | None = None
    try:
        args = parser.parse_args(argv)
        command_name = args.command
        chosen = subparsers[args.command]
        command: Callable[[argparse.Namespace], int] = dict(
            zip(subparsers, (m.run for m in COMMANDS), strict=True)
        )[args.command]
        return command(args)
    except FraudKerasError as error:
        if debug:
            traceback.print_exc()
        print(f"fraudkeras: error: {with_flags(str(error), chosen)}", file=sys.stderr)
        return error.exit_code
    except ImportError as error:  # a missing extra, found only when a command needs it
        if debug:
            traceback.print_exc()
        print(f"fraudkeras: error: {missing_extra(error, command_name)}", file=sys.stderr)
        return BackendError.exit_code
    except KeyboardInterrupt:
        print("fraudkeras: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # the last line of defence: one line, not a traceback wall
        if debug:
            traceback.print_exc()
        print(
            f"fraudkeras: internal error: {type(error).__name__}: {first_line(error)} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
