"""Exports of a searched configuration (QKeras model, hls4ml project), each checked against the golden model.

:mod:`codesign.export.runner` runs the requested formats so that one failing exporter is a
warning and never loses the search; :mod:`codesign.export.fidelity` measures how far each
export is from the integer golden model. The exporters themselves are
:mod:`codesign.export.qkeras` and :mod:`codesign.export.hls4ml`. Everything
here needs TensorFlow and is imported lazily (never on the board).
"""
