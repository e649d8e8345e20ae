"""Bit-allocation methods (OHQ and the baselines) behind one interface (``base.Problem`` in, ``base.MethodResult`` out).

``METHODS`` maps a name to a factory returning a :class:`~codesign.methods.base.Method`;
keyword arguments go to the method's constructor, e.g. ``METHODS["hawq-v3"](max_samples=20)``.
Every method module is imported only when its factory is called, so importing this package
needs NumPy and PuLP only (no TensorFlow: HAWQ-v3 imports it when it runs).

=============  =====================================================================
``int8``       uniform INT8 PTQ (:mod:`codesign.methods.uniform`)
``int4``       uniform INT4 PTQ
``hawq-v3``    Hutchinson Hessian trace x quantization perturbation, ILP (:mod:`.hawq`)
``zeroq``      KL sensitivity on distilled data, Pareto-frontier DP (:mod:`.zeroq`)
``direct``     direct Eq. 5 sensitivity + the OHQ ILP, "Direct+OQA" (:mod:`.direct`)
``haq``        DDPG agent with hardware feedback from the table, PTQ reward (:mod:`.haq`)
``ohq``        OHQ, improved: per-width Fisher sensitivity of the PTQ's own b-bit weights, min sum omega_i(b_i) under the budgets, measured refinement (:mod:`.ohq`, :mod:`.refine`)
``ohq-fisher`` ablation: ``ohq`` without the measured refinement (the ILP's choice as it is)
``ohq-mqe``    ablation: ``ohq-fisher`` with the measured per-width noise-matched MQE (4 draws) instead
``ohq-paper``  the paper's OHQ unchanged: MQE + OQA + linear ILP, beta = 0.5
``ohq-b0.75``  the paper's OHQ with beta = 0.75 (more weight on sensitivity)
``ohq-w-linear``  ablation: per-width MQE through the paper's linear ILP
``ohq-1draw``  ablation: ``ohq-mqe`` with one noise draw
``ohq-mqe-only``  ablation: MQE sensitivity only (beta = 1)
``ohq-oqa-only``  ablation: hardware cost only
=============  =====================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codesign.methods.base import Method, SensitivityMethod


def _uniform(bits: int) -> Callable[..., Method]:
    def make(**kw: Any) -> Method:
        from codesign.methods.uniform import UniformMethod

        return UniformMethod(bits=kw.pop("bits", bits), **kw)

    make.__doc__ = f"Uniform INT{bits} PTQ."
    return make


def _hawq(**kw: Any) -> Method:
    """HAWQ-v3 (Hessian trace + ILP)."""
    from codesign.methods.hawq import HawqV3Method

    return HawqV3Method(**kw)


def _zeroq(**kw: Any) -> Method:
    """ZeroQ (KL sensitivity + Pareto DP)."""
    from codesign.methods.zeroq import ZeroQMethod

    return ZeroQMethod(**kw)


def _direct(**kw: Any) -> Method:
    """Direct Eq. 5 sensitivity + OHQ ILP."""
    from codesign.methods.direct import DirectMethod

    return DirectMethod(**kw)


def _haq(**kw: Any) -> Method:
    """HAQ (DDPG, hardware feedback from the table)."""
    from codesign.methods.haq import HaqMethod

    return HaqMethod(**kw)


def _ohq(beta: float, name: str) -> Callable[..., Method]:
    def make(**kw: Any) -> Method:
        from codesign.methods.ohq import OhqMethod

        return OhqMethod(beta=kw.pop("beta", beta), name=name, **kw)

    make.__doc__ = f"OHQ with beta = {beta}."
    return make


# configurations ``ohq``'s measured refinement quantizes and runs on the distilled images
# (:mod:`codesign.methods.refine`), the ILP's own choice included
REFINE_EVALS = 16


def _ohq_width(name: str, **defaults: Any) -> Callable[..., Method]:
    def make(**kw: Any) -> Method:
        from codesign.methods.ohq import OhqWidthMethod

        return OhqWidthMethod(**{**defaults, **kw, "name": name})

    make.__doc__ = f"OHQ with a per-width sensitivity ({name})."
    return make


def _oqa_only(**kw: Any) -> Method:
    """Ablation: hardware cost only."""
    from codesign.methods.ohq import OqaOnlyMethod

    return OqaOnlyMethod(**kw)


METHODS: dict[str, Callable[..., Method]] = {
    "ohq": _ohq_width("ohq", refine=REFINE_EVALS),
    "ohq-paper": _ohq(0.5, "ohq-paper"),
    "ohq-mqe": _ohq_width("ohq-mqe", estimator="mqe"),
    "ohq-fisher": _ohq_width("ohq-fisher"),
    "ohq-w-linear": _ohq_width("ohq-w-linear", linear=True, estimator="mqe"),
    "ohq-1draw": _ohq_width("ohq-1draw", draws=1, estimator="mqe"),
    "ohq-b0.75": _ohq(0.75, "ohq-b0.75"),
    "ohq-mqe-only": _ohq(1.0, "ohq-mqe-only"),
    "ohq-oqa-only": _oqa_only,
    "haq": _haq,
    "int8": _uniform(8),
    "int4": _uniform(4),
    "hawq-v3": _hawq,
    "zeroq": _zeroq,
    "direct": _direct,
}


# The methods `python -m codesign.search --method` runs: those with a sensitivity step the run folder
# caches (codesign.methods.base.SensitivityMethod) and no labelled data. Value: the method settings
# the search's command line may pass (--beta, --alpha); the others keep the registry's values.
SEARCH_METHODS: dict[str, tuple[str, ...]] = {
    "ohq": (),
    "ohq-paper": ("beta", "alpha"),
    "ohq-fisher": (),
    "ohq-mqe": (),
    "ohq-w-linear": ("beta",),
    "ohq-1draw": (),
    "ohq-b0.75": ("alpha",),
    "ohq-mqe-only": ("alpha",),
}
DEFAULT_METHOD = "ohq"


def get_method(name: str, **kw: Any) -> Method:
    """The method registered as ``name`` (unknown names raise a CodesignError listing the registry)."""
    from codesign.errors import CodesignError

    try:
        factory = METHODS[name]
    except KeyError:
        raise CodesignError(f"unknown method {name!r}; known: {', '.join(METHODS)}.") from None
    return factory(**kw)


def search_method(name: str, **kw: Any) -> SensitivityMethod:
    """A method of :data:`SEARCH_METHODS` (sensitivity step + ILP), as ``python -m codesign.search`` runs it."""
    from codesign.errors import CodesignError
    from codesign.methods.base import SensitivityMethod

    if name not in SEARCH_METHODS:
        raise CodesignError(f"the search runs the methods {', '.join(SEARCH_METHODS)}, not {name!r}.")
    method = get_method(name, **kw)
    if not isinstance(method, SensitivityMethod):
        raise TypeError(f"SEARCH_METHODS lists {name!r}, which has no sensitivity step")
    return method


__all__ = ["DEFAULT_METHOD", "METHODS", "SEARCH_METHODS", "get_method", "search_method"]
