"""Input gradients of the float IR (codesign.graph.grad) against finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest
from ir_models import Builder, concat_net, tiny_mobilenet, tiny_resnet

from codesign.graph import ops
from codesign.graph.execute import run_float
from codesign.graph.grad import backward, canonical_order, conv2d_input_grad, forward
from codesign.graph.ir import Graph, Reshape

pytestmark = pytest.mark.unit

REL_TOL = 1e-5


def tiny_misc(seed: int = 0) -> Graph:
    """The ops the two tiny nets miss: general groups, depthwise x2, global max, reshape, broadcasts."""
    b = Builder((9, 10, 4), seed)
    x = b.conv("input", "gconv", 6, 3, 2, groups=2, bias=True)  # cin_g = 2: general grouped conv
    x = b.act(b.bn(x, "gconv_bn"), "gconv_relu6", "relu6")
    d = b.conv(x, "dwx2", 12, 3, 1, groups=6)  # depthwise with channel multiplier 2
    d = b.act(d, "dw_hsig", "hsigmoid")
    m = b.pool(d, "maxpool_s1", "max", 3, 1, 1)  # overlapping windows with padding
    a = b.pool(d, "avgpool_s1", "avg", 3, 1, 1)
    y = b.mul(m, a, "mul_same")  # same-shape multiply (both operands need gradients)
    g = b.gpool(y, "gmax", "max", keepdims=True)
    y = b.add(y, g, "add_bcast")  # [N,H,W,C] + [N,1,1,C]
    y = b.act(y, "hswish", "hswish")
    y = b.pad(y, "zpad", (1, 0, 2, 1))
    y = b.conv(y, "conv_s2", 5, 3, 2)
    y = b._add(Reshape("reshape", [y], target=(-1, 5)))
    y = b.dense(y, "dense_rank2", 3)  # Dense on the last axis of a rank-2 (per-sample) tensor
    y = b.flatten(y, "flat")
    y = b.act(y, "sig", "sigmoid")
    g2 = b.gpool(x, "gmax2", "max")
    y2 = b.dense(g2, "fc2", y_units(b, y))
    y = b.mul(y, y2, "mul_vec")
    return b.graph("tiny_misc", b.softmax(y, "softmax"))


def y_units(b: Builder, name: str) -> int:
    """Width of a rank-1 tensor in a Builder."""
    return b.shapes[name][-1]


MODELS = {"tiny_resnet": tiny_resnet, "tiny_mobilenet": tiny_mobilenet, "tiny_misc": tiny_misc,
          "concat_net": concat_net}


def weighted_loss(tape_outputs: dict[str, np.ndarray], weights: dict[str, np.ndarray]) -> float:
    """L = sum_t <w_t, y_t>: a linear probe, so dL/dy_t = w_t."""
    return float(sum((tape_outputs[t] * w).sum() for t, w in weights.items()))


def probe(graph: Graph, x: np.ndarray, targets: list[str], seed: int = 1):
    """Analytic gradient of a random linear probe on ``targets`` and a closure computing L(x)."""
    rng = np.random.default_rng(seed)
    tape = forward(graph, x, targets, dtype=np.float64)
    weights = {t: rng.normal(size=tape.outputs[t].shape) for t in targets}
    grad = backward(tape, weights)

    def loss(xx: np.ndarray) -> float:
        return weighted_loss(forward(graph, xx, targets, dtype=np.float64).outputs, weights)

    return grad, loss


def assert_fd(grad: np.ndarray, loss, x: np.ndarray, seed: int = 2, n_dirs: int = 4, n_coords: int = 24) -> None:
    """Central differences: each random direction, and the vector of single-coordinate partials.

    Single partials can be tiny, so those are compared as one vector (relative error of the
    vector, the usual gradient-check metric); each random direction is compared on its own.
    """
    rng = np.random.default_rng(seed)
    eps = 1e-6

    def fd(v: np.ndarray) -> float:
        return (loss(x + eps * v) - loss(x - eps * v)) / (2 * eps)

    for _ in range(n_dirs):
        v = rng.normal(size=x.shape)
        num, an = fd(v), float((grad * v).sum())
        assert abs(num - an) / max(abs(num), abs(an)) <= REL_TOL, (num, an)
    coords = rng.choice(x.size, n_coords, replace=False)
    num = np.array([fd(np.eye(1, x.size, k).reshape(x.shape)) for k in coords])
    an = grad.reshape(-1)[coords]
    rel = np.linalg.norm(num - an) / max(np.linalg.norm(num), np.linalg.norm(an))
    assert rel <= REL_TOL, (rel, num, an)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_gradient_of_every_layer_output_matches_finite_differences(model: str) -> None:
    g = MODELS[model]()
    x = np.random.default_rng(0).normal(size=(2, *g.input_shape))
    targets = [ly.name for ly in g.layers if ly.op != "input"]  # every op type is exercised
    grad, loss = probe(g, x, targets)
    assert grad.shape == x.shape and grad.dtype == np.float64
    assert_fd(grad, loss, x)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_gradient_of_head_only_matches_finite_differences(model: str) -> None:
    g = MODELS[model]()
    x = np.random.default_rng(3).normal(size=(2, *g.input_shape))
    grad, loss = probe(g, x, [g.outputs[0]], seed=4)
    assert np.abs(grad).max() > 0
    assert_fd(grad, loss, x, seed=5)


def test_every_ir_op_is_covered_by_the_fd_models() -> None:
    from codesign.graph.ir import OPS

    seen = {ly.op for f in MODELS.values() for ly in f().layers}
    kinds = {ly.kind for f in MODELS.values() for ly in f().layers if ly.op == "activation"}
    assert seen == set(OPS)
    assert kinds == {"relu", "relu6", "hswish", "hsigmoid", "sigmoid"}


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "padding", "groups"),
    [
        (3, 5, (3, 3), (1, 1), (1, 1, 1, 1), 1),
        (4, 6, (3, 2), (2, 3), (0, 1, 2, 0), 1),
        (4, 6, (1, 1), (2, 2), (0, 0, 0, 0), 2),
        (5, 7, (1, 1), (1, 1), (0, 0, 0, 0), 1),
        (6, 6, (5, 5), (2, 2), (2, 2, 2, 2), 6),
        (3, 6, (3, 3), (2, 1), (1, 0, 0, 1), 3),
        (8, 4, (2, 3), (1, 2), (1, 1, 0, 2), 4),
    ],
)
def test_conv_input_grad_is_the_adjoint_of_conv(cin, cout, k, stride, padding, groups) -> None:
    """Conv without bias is linear: <conv(x), dy> must equal <x, conv_grad(dy)> to rounding."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 9, 11, cin))
    w = rng.normal(size=(*k, cin // groups, cout))
    y = ops.conv2d(x, w, stride, padding, groups)
    dy = rng.normal(size=y.shape)
    dx = conv2d_input_grad(dy, w, x.shape, stride, padding, groups)
    assert dx.shape == x.shape
    np.testing.assert_allclose((y * dy).sum(), (x * dx).sum(), rtol=1e-12)


def test_forward_stops_at_the_last_needed_layer_and_matches_run_float() -> None:
    g = tiny_resnet()
    x = np.random.default_rng(0).normal(size=(3, *g.input_shape)).astype(np.float32)
    tape = forward(g, x, ["b2c2"])
    ran = {ly.name for ly in tape.order}
    assert "fc" not in ran and "softmax" not in ran and "b2sc" not in ran and "gap" not in ran
    ref = run_float(g, x, collect=True)
    np.testing.assert_array_equal(tape.outputs["b2c2"], ref["b2c2"])


def test_float32_gradient_is_close_to_float64() -> None:
    g = tiny_mobilenet()
    x = np.random.default_rng(0).normal(size=(2, *g.input_shape))
    w = np.random.default_rng(1).normal(size=(2, 10))
    g64 = backward(forward(g, x, ["fc"], dtype=np.float64), {"fc": w})
    g32 = backward(forward(g, x, ["fc"], dtype=np.float32), {"fc": w.astype(np.float32)})
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-4 * np.abs(g64).max())


def test_canonical_order_ignores_the_list_order_of_independent_branches() -> None:
    g = tiny_resnet()
    names = [ly.name for ly in g.layers]
    # Move the projection shortcut (b2sc*) before the main branch b2c1/b2c2: still topological.
    sc = [n for n in names if n.startswith("b2sc")]
    rest = [n for n in names if n not in sc]
    i = rest.index("b2c1")
    perm = Graph(g.name, [g[n] for n in rest[:i] + sc + rest[i:]], list(g.outputs))
    assert [ly.name for ly in perm.layers] != names
    everything = set(names)
    assert [ly.name for ly in canonical_order(perm, everything)] == [ly.name for ly in canonical_order(g, everything)]
    x = np.random.default_rng(0).normal(size=(2, *g.input_shape)).astype(np.float32)
    w = np.ones((2, 10), np.float32)
    np.testing.assert_array_equal(backward(forward(g, x, ["fc"]), {"fc": w}), backward(forward(perm, x, ["fc"]), {"fc": w}))


def test_backward_rejects_a_gradient_for_a_layer_not_run() -> None:
    g = tiny_resnet()
    x = np.zeros((1, *g.input_shape), np.float32)
    tape = forward(g, x, ["stem"])
    with pytest.raises(KeyError, match="fc"):
        backward(tape, {"fc": np.ones((1, 10), np.float32)})


def test_no_gradient_reaching_the_input_gives_zeros() -> None:
    g = tiny_resnet()
    x = np.ones((2, *g.input_shape), np.float32)
    dx = backward(forward(g, x, ["stem"]), {})
    assert dx.shape == x.shape and dx.dtype == np.float32 and not dx.any()
