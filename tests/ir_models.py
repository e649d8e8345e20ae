"""Small NumPy-built IR models for tests that must not need TensorFlow."""

from __future__ import annotations

import numpy as np

from codesign.graph.ir import (
    Activation,
    Add,
    Affine,
    BatchNorm,
    Concat,
    Conv2D,
    Crop2D,
    Dense,
    Flatten,
    GlobalPool,
    Graph,
    Input,
    Layer,
    Multiply,
    Pool2D,
    Softmax,
    ZeroPad2D,
)
from codesign.hwtable import HwRow, HwTable


class Builder:
    """Tiny sequential-ish builder with random He-init weights and random BN statistics."""

    def __init__(self, shape: tuple[int, int, int], seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.layers: list[Layer] = [Input("input", shape=shape)]
        self.shapes = {"input": shape}

    def _add(self, layer: Layer) -> str:
        self.layers.append(layer)
        g = Graph("tmp", list(self.layers), [layer.name])
        g.infer_shapes()
        self.shapes[layer.name] = layer.output_shape
        return layer.name

    def conv(self, x: str, name: str, filters: int, k: int = 3, s: int = 1, groups: int = 1, bias: bool = False) -> str:
        cin = self.shapes[x][-1]
        pad = (k // 2, k // 2, k // 2, k // 2)
        w = self.rng.normal(0, np.sqrt(2.0 / (k * k * cin / groups)), (k, k, cin // groups, filters)).astype(np.float32)
        params = {"kernel": w}
        if bias:
            params["bias"] = self.rng.normal(0, 0.1, filters).astype(np.float32)
        return self._add(Conv2D(name, [x], filters=filters, kernel=(k, k), strides=(s, s), padding=pad,
                                groups=groups, use_bias=bias, params=params))

    def bn(self, x: str, name: str) -> str:
        c = self.shapes[x][-1]
        r = self.rng
        p = {"gamma": r.uniform(0.5, 1.5, c), "beta": r.normal(0, 0.2, c), "mean": r.normal(0, 0.3, c), "var": r.uniform(0.5, 2, c)}
        return self._add(BatchNorm(name, [x], params={k: v.astype(np.float32) for k, v in p.items()}))

    def act(self, x: str, name: str, kind: str) -> str:
        return self._add(Activation(name, [x], kind=kind))

    def cbr(self, x: str, name: str, filters: int, k: int = 3, s: int = 1, act: str | None = "relu", groups: int = 1) -> str:
        y = self.bn(self.conv(x, name, filters, k, s, groups), name + "_bn")
        return self.act(y, name + "_act", act) if act else y

    def add(self, a: str, b: str, name: str) -> str:
        return self._add(Add(name, [a, b]))

    def mul(self, a: str, b: str, name: str) -> str:
        return self._add(Multiply(name, [a, b]))

    def pool(self, x: str, name: str, kind: str = "max", k: int = 2, s: int = 2, pad: int = 0) -> str:
        return self._add(Pool2D(name, [x], kind=kind, pool=(k, k), strides=(s, s), padding=(pad,) * 4))

    def gpool(self, x: str, name: str, kind: str = "avg", keepdims: bool = False) -> str:
        return self._add(GlobalPool(name, [x], kind=kind, keepdims=keepdims))

    def pad(self, x: str, name: str, p: tuple[int, int, int, int]) -> str:
        return self._add(ZeroPad2D(name, [x], padding=p))

    def affine(self, x: str, name: str, scale: float, offset: float) -> str:
        return self._add(Affine(name, [x], params={"scale": np.array([scale], np.float32), "offset": np.array([offset], np.float32)}))

    def flatten(self, x: str, name: str) -> str:
        return self._add(Flatten(name, [x]))

    def dense(self, x: str, name: str, units: int) -> str:
        n = self.shapes[x][-1]
        w = self.rng.normal(0, np.sqrt(1.0 / n), (n, units)).astype(np.float32)
        return self._add(Dense(name, [x], units=units, params={"kernel": w, "bias": self.rng.normal(0, 0.1, units).astype(np.float32)}))

    def softmax(self, x: str, name: str) -> str:
        return self._add(Softmax(name, [x]))

    def graph(self, name: str, out: str) -> Graph:
        g = Graph(name, list(self.layers), [out])
        g.infer_shapes()
        return g


def tiny_resnet(seed: int = 0, hw: int = 16) -> Graph:
    """Residual net with BN, ReLU, max-pool, projection shortcut, GAP, dense and softmax."""
    b = Builder((hw, hw, 3), seed)
    x = b.affine("input", "rescale", 2.0, -1.0)
    x = b.cbr(x, "stem", 8, 3)
    x = b.pool(x, "pool", "max", 3, 2, 1)
    y = b.cbr(x, "b1c1", 8)
    y = b.cbr(y, "b1c2", 8, act=None)
    x = b.act(b.add(x, y, "b1add"), "b1relu", "relu")
    y = b.cbr(x, "b2c1", 16, s=2)
    y = b.cbr(y, "b2c2", 16, act=None)
    sc = b.cbr(x, "b2sc", 16, 1, 2, act=None)
    x = b.act(b.add(sc, y, "b2add"), "b2relu", "relu")
    x = b.gpool(x, "gap")
    x = b.dense(x, "fc", 10)
    return b.graph("tiny_resnet", b.softmax(x, "softmax"))


def tiny_mobilenet(seed: int = 0, hw: int = 16) -> Graph:
    """Depthwise/inverted-residual net with ReLU6, h-swish, squeeze-excite and avg-pool."""
    b = Builder((hw, hw, 1), seed)
    x = b.cbr("input", "stem", 8, 3, 2, act="hswish")
    y = b.cbr(x, "ex", 16, 1, act="relu6")
    y = b.cbr(y, "dw", 16, 3, groups=16, act="relu6")
    s = b.gpool(y, "se_pool", keepdims=True)
    s = b.act(b.conv(s, "se_fc1", 4, 1, bias=True), "se_relu", "relu")
    s = b.act(b.conv(s, "se_fc2", 16, 1, bias=True), "se_hsig", "hsigmoid")
    y = b.mul(y, s, "se_mul")
    y = b.cbr(y, "proj", 8, 1, act=None)
    x = b.add(x, y, "res")
    x = b.act(x, "post_hswish", "hswish")
    x = b.pool(x, "avg", "avg", 3, 2, 1)
    x = b.act(x, "sig", "sigmoid")
    x = b.pad(x, "pad", (0, 1, 0, 1))
    x = b.flatten(x, "flat")
    x = b.dense(x, "fc", 10)
    return b.graph("tiny_mobilenet", b.softmax(x, "softmax"))


def concat_net(seed: int = 0) -> Graph:
    """Two branches at very different scales (x1 vs x40) concatenated, then cropped.

    Sigmoid activations keep it smooth for finite-difference gradient checks (a ReLU kink
    within the step makes them fail for reasons unrelated to concat/crop).
    """
    b = Builder((10, 10, 2), seed)
    x = b.cbr("input", "stem", 4, act="sigmoid")
    a = b.cbr(x, "br_a", 3, k=1, act="sigmoid")
    c = b.affine(b.cbr(x, "br_b", 5, k=3, act="sigmoid"), "br_b_x40", 40.0, 0.0)
    y = b._add(Concat("cat", [a, c, x]))
    y = b._add(Crop2D("crop", [y], cropping=(1, 2, 0, 3)))
    y = b.cbr(y, "head", 6, s=2, act="sigmoid")
    y = b.dense(b.gpool(y, "gap"), "fc", 4)
    return b.graph("concat_net", b.softmax(y, "sm"))


def fixture_table(g: Graph, bits=(4, 8)) -> HwTable:
    """A plumbing-only hardware table (cycles proportional to MACs); never a hardware figure."""
    rows = []
    for ly in g.quantizable():
        macs = ly.macs(g.in_shapes(ly))
        for b in bits:
            c = macs // (8 * (64 // b)) + 50
            rows.append(HwRow(ly.name, b, 10, c, 5, 5, c + 20, (c + 20) / 1e5, c * 1e-4 * b, macs, 0.9))
    return HwTable(rows, {"device": "fixture", "clock_mhz": "100"})


def saved_tiny_resnet(folder) -> Graph:
    """tiny_resnet saved as an IR folder (``folder/ir``) with its fixture table (``folder/hw.csv``):
    what the CLI tests pass as ``--model`` and ``--hw-table``."""
    from codesign.graph.serialize import save_graph

    g = tiny_resnet()
    save_graph(g, folder / "ir")
    fixture_table(g).save(folder / "hw.csv")
    return g
