"""User-facing errors and the CLI wrapper that turns them into one-paragraph messages.

Every error a user can cause (bad model file, bad bits, bad budget, ...) is raised as a
``CodesignError`` subclass. CLIs wrap their ``main`` with :func:`run_cli`, which prints the
message as a single paragraph on stderr and exits non-zero without a traceback. Programming
errors (anything else) still raise normally so that bugs stay visible.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Sequence

EXIT_USER_ERROR = 2


class CodesignError(Exception):
    """Base class of every error caused by user input; carries a one-paragraph message."""


class UnsupportedLayerError(CodesignError):
    """A model contains a layer type codesign cannot represent or run."""


class ModelFileError(CodesignError):
    """A model/IR/weights file is missing, corrupt or does not match its architecture."""


class ShapeError(CodesignError):
    """An input tensor does not have the shape the model expects."""


class BitWidthError(CodesignError):
    """A bit-width or bit-width list is outside the supported range or malformed."""


class BitConfigError(CodesignError):
    """A BitConfig is malformed or names layers the model does not have."""


class DatasetError(CodesignError):
    """A dataset is missing or unreadable."""


def one_paragraph(message: str) -> str:
    """Collapse whitespace so a message prints as a single paragraph."""
    return " ".join(str(message).split())


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a CLI ``main``; user errors print one paragraph to stderr and exit 2, no traceback."""
    try:
        code = main(argv)
    except CodesignError as err:
        msg = one_paragraph(f"error: {err}")
        print(textwrap.fill(msg, width=100), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
