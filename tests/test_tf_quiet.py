"""Third-party chatter is dropped where codesign triggers it; every other message still shows."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from codesign.tf_quiet import save_h5, silenced


@pytest.mark.unit
def test_known_keras_warnings_dropped_others_kept() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with silenced():
            warnings.warn("You are saving your model as an HDF5 file via `model.save()`.", UserWarning, stacklevel=1)
            warnings.warn("calibration: 3 layers saturate", UserWarning, stacklevel=1)  # one of ours
    assert [str(w.message) for w in seen] == ["calibration: 3 layers saturate"]


@pytest.mark.unit
def test_known_tf_log_lines_dropped_only_inside(caplog) -> None:
    log = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"), silenced():
        log.warning("Compiled the loaded model, but the compiled metrics have yet to be built. x")
        log.warning("something else")
    log.warning("Compiled the loaded model, but the compiled metrics have yet to be built. y")  # outside: kept
    assert [r.getMessage() for r in caplog.records] == [
        "something else", "Compiled the loaded model, but the compiled metrics have yet to be built. y"]


@pytest.mark.unit
def test_hls4ml_progress_dropped_other_prints_replayed(capsys) -> None:
    with silenced(hls4ml_prints=True):
        print("Recompiling net_hls with tracing")
        print("Writing HLS project")
        print("WARNING: layer fc has no precision")
    assert capsys.readouterr().out == "WARNING: layer fc has no precision\n"


@pytest.mark.tf
def test_save_h5_of_a_qkeras_model_is_quiet(tmp_path: Path) -> None:
    """The oracle: the same save outside the helper does warn (so the test can fail)."""
    tf = pytest.importorskip("tensorflow")
    qkeras = pytest.importorskip("qkeras")
    inp = tf.keras.Input((4,))
    model = tf.keras.Model(inp, qkeras.QDense(2, kernel_quantizer="quantized_bits(4,0,1)")(inp))
    with warnings.catch_warnings(record=True) as loud:
        warnings.simplefilter("always")
        model.save(tmp_path / "loud.h5")
    assert loud, "Keras no longer warns on .h5 saves: this test lost its oracle"
    with warnings.catch_warnings(record=True) as quiet:
        warnings.simplefilter("always")
        save_h5(model, tmp_path / "quiet.h5")
    assert [str(w.message) for w in quiet] == []
    assert (tmp_path / "quiet.h5").stat().st_size > 0
