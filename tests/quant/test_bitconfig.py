"""BitConfig validation and JSON/YAML round trips."""

from __future__ import annotations

import pytest
from ir_models import tiny_resnet

from codesign.errors import BitConfigError, BitWidthError
from codesign.quant.bitconfig import BitConfig, LayerBits

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_round_trip(tmp_path, suffix: str) -> None:
    g = tiny_resnet()
    bc = BitConfig.uniform(g, 4)
    bc.layers["fc"] = LayerBits(8, 6)
    bc.meta["method"] = "test"
    back = BitConfig.load(bc.save(tmp_path / f"bc{suffix}")).validated(g)
    assert back.layers == bc.layers and back.meta == bc.meta and back.default_act_bits == bc.default_act_bits


def test_shorthand_mapping() -> None:
    g = tiny_resnet()
    data = {ly.name: 4 for ly in g.quantizable()}
    bc = BitConfig.from_dict(data).validated(g)
    assert all(lb == LayerBits(4, 4) for lb in bc.layers.values())


def test_unknown_layer_names_are_named() -> None:
    g = tiny_resnet()
    bc = BitConfig.uniform(g, 4)
    bc.layers["conv_that_does_not_exist"] = LayerBits(4, 4)
    bc.layers["pool"] = LayerBits(4, 4)
    with pytest.raises(BitConfigError, match="conv_that_does_not_exist") as err:
        bc.validated(g)
    assert "pool" in str(err.value) and "not Conv2D/Dense" in str(err.value)


def test_missing_layers() -> None:
    g = tiny_resnet()
    bc = BitConfig.uniform(g, 4)
    del bc.layers["fc"]
    with pytest.raises(BitConfigError, match="fc"):
        bc.validated(g)


@pytest.mark.parametrize("bits", [1, 9, 0])
def test_bits_out_of_range(bits: int) -> None:
    with pytest.raises(BitConfigError, match=r"2\.\.8"):
        BitConfig({"a": LayerBits(bits, 8)})
    with pytest.raises(BitWidthError):
        BitConfig.uniform(tiny_resnet(), bits)


def test_corrupt_files(tmp_path) -> None:
    p = tmp_path / "bc.json"
    p.write_text("{oops")
    with pytest.raises(BitConfigError, match="not valid"):
        BitConfig.load(p)
    p.write_text('{"layers": {"a": "eight"}}')
    with pytest.raises(BitConfigError, match="'a'"):
        BitConfig.load(p)
    with pytest.raises(BitConfigError, match="does not exist"):
        BitConfig.load(tmp_path / "missing.json")


def test_size_counts_weights_times_bits() -> None:
    g = tiny_resnet()
    bc = BitConfig.uniform(g, 4)
    n = sum(ly.params["kernel"].size for ly in g.quantizable())
    assert bc.size_bits(g) == 4 * n
    assert bc.size_mbit(g) == pytest.approx(4 * n / 1e6)
