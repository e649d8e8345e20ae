"""Silence the third-party chatter that codesign's own calls into Keras, QKeras and hls4ml trigger.

Saving the QKeras export as ``.h5`` (the format hls4ml and QKeras read) makes Keras warn that
HDF5 is "legacy" and that the never-compiled model has no compiled metrics, and makes QKeras'
quantizers trip Keras' constraint serializer; hls4ml prints its progress to stdout. None of it
says anything to a codesign user, and it buried the export results in the demo output.

Only those messages are dropped, each matched by its text, and only inside the blocks that
trigger them (:func:`silenced`). codesign's own warnings (calibration, self-check, export
fidelity) and any other third-party message still reach the terminal. Standard library only:
importable on the board, where nothing here is ever used.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import warnings
from collections.abc import Iterator

# Python warnings (UserWarning) Keras raises on calls codesign makes on purpose
KERAS_WARNINGS = (
    r"You are saving your model as an HDF5 file",  # .h5 is what hls4ml and QKeras load
    r"The initializer \w+ is unseeded",  # layers whose weights the exporter sets right after building them
    r"The `keras\.constraints\.serialize\(\)` API should only be used",  # QKeras quantizers held as constraints
)
# TensorFlow logger lines (logger "tensorflow") about the same calls
TF_LOG_LINES = (
    "Compiled the loaded model, but the compiled metrics have yet to be built",  # saving an uncompiled model
    "No training configuration found in the save file",  # loading one
)
# hls4ml's progress prints (stdout); every other printed line is passed through
HLS4ML_PRINTS = re.compile(
    r"^(Recompiling \S+ with tracing|Interpreting \w+|Topology:|Layer name: .*|Creating HLS model|"
    r"Writing HLS project|Done)\s*$"
)


class _DropLines(logging.Filter):
    """A logging filter that drops records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


@contextlib.contextmanager
def silenced(hls4ml_prints: bool = False) -> Iterator[None]:
    """Inside the block: drop the known Keras/TF noise; with ``hls4ml_prints``, hls4ml's progress lines.

    Printed lines that are not hls4ml progress are replayed to stdout when the block ends.
    """
    tf_logger = logging.getLogger("tensorflow")
    drop = _DropLines(TF_LOG_LINES)
    tf_logger.addFilter(drop)
    captured = io.StringIO()
    try:
        with warnings.catch_warnings():
            for pattern in KERAS_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern, category=UserWarning)
            with contextlib.redirect_stdout(captured) if hls4ml_prints else contextlib.nullcontext():
                yield
    finally:
        tf_logger.removeFilter(drop)
        kept = [ln for ln in captured.getvalue().splitlines() if not HLS4ML_PRINTS.match(ln)]
        if kept:
            print("\n".join(kept), file=sys.stdout)


def save_h5(model: object, path: object) -> None:
    """``model.save(path)`` of a Keras model to ``.h5`` without Keras' legacy-format chatter."""
    with silenced():
        model.save(path)  # type: ignore[attr-defined]


__all__ = ["HLS4ML_PRINTS", "KERAS_WARNINGS", "TF_LOG_LINES", "save_h5", "silenced"]
