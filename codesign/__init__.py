"""codesign: on-chip hardware-aware mixed-precision quantization (OHQ) for FPGA edge SoCs."""

import os as _os

# TensorFlow (only ever imported lazily, off-board) logs C++ banners to stderr on import;
# keep CLI error output to the single paragraph users should read.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
