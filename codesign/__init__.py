"""codesign: on-chip hardware-aware mixed-precision quantization (OHQ) for FPGA edge SoCs."""

__version__ = "0.1.0"
