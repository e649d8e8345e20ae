"""``BitConfig``: per-layer weight and activation bit-widths, keyed by IR layer name.

``a_bits`` of a layer is the width of that layer's *input* activations (what its GEMM
engine consumes); the tensor a layer produces takes the width its consumers ask for (see
``codesign.quant.qgraph``). Tensors that no quantizable layer reads use ``default_act_bits``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codesign.errors import BitConfigError, BitWidthError
from codesign.graph.ir import Graph
from codesign.graph.quant_hints import QuantHints, input_grid
from codesign.quant.dyadic import check_bits

FORMAT = "codesign-bitconfig"
FORMAT_VERSION = 1



def _yaml(path: Path) -> Any:
    """PyYAML, imported on first use (optional: the board runtime reads and writes JSON)."""
    try:
        import yaml
    except ImportError:
        raise BitConfigError(f"{path}: YAML BitConfig files need PyYAML (pip install pyyaml); "
                             "use a .json file instead.") from None
    return yaml

@dataclass(frozen=True)
class LayerBits:
    """Weight and input-activation widths of one quantizable layer."""

    w_bits: int
    a_bits: int


@dataclass
class BitConfig:
    """Per-layer bit-widths for a model's quantizable (Conv2D/Dense) layers."""

    layers: dict[str, LayerBits]
    default_act_bits: int = 8
    model: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            check_bits(self.default_act_bits, "default_act_bits")
            for name, lb in self.layers.items():
                check_bits(lb.w_bits, f"w_bits of layer {name!r}")
                check_bits(lb.a_bits, f"a_bits of layer {name!r}")
        except BitWidthError as err:
            raise BitConfigError(str(err)) from None

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def uniform(cls, graph: Graph, bits: int, a_bits: int | None = None, default_act_bits: int | None = None) -> BitConfig:
        """Every quantizable layer at ``bits`` weights and ``a_bits`` (default ``bits``) activations."""
        check_bits(bits)
        a = check_bits(a_bits if a_bits is not None else bits, "a_bits")
        layers = {ly.name: LayerBits(bits, a) for ly in graph.quantizable()}
        dflt = default_act_bits if default_act_bits is not None else max(8, a)
        return cls(layers, default_act_bits=dflt, model=graph.name)

    @classmethod
    def from_widths(cls, graph: Graph, widths: dict[str, int], **kw: Any) -> BitConfig:
        """Same width for weights and activations per layer (the OHQ W/A setting)."""
        return cls({k: LayerBits(int(v), int(v)) for k, v in widths.items()}, model=graph.name, **kw).validated(graph)

    # ---- checks ---------------------------------------------------------------------
    def validated(self, graph: Graph) -> BitConfig:
        """Check the names against the model: unknown or missing layers raise BitConfigError."""
        names = {ly.name for ly in graph.quantizable()}
        unknown = sorted(set(self.layers) - names)
        if unknown:
            non_q = [n for n in unknown if n in graph]
            hint = f" ({', '.join(non_q)} exist but are not Conv2D/Dense layers)" if non_q else ""
            raise BitConfigError(
                f"BitConfig names {len(unknown)} layer(s) that model {graph.name!r} does not have as "
                f"quantizable layers: {', '.join(unknown[:8])}{'...' if len(unknown) > 8 else ''}{hint}. "
                f"Quantizable layers are: {', '.join(sorted(names)[:8])}{'...' if len(names) > 8 else ''}."
            )
        missing = [ly.name for ly in graph.quantizable() if ly.name not in self.layers]
        if missing:
            raise BitConfigError(
                f"BitConfig gives no bits for {len(missing)} quantizable layer(s) of model {graph.name!r}: "
                f"{', '.join(missing[:8])}{'...' if len(missing) > 8 else ''}."
            )
        return self

    def __getitem__(self, name: str) -> LayerBits:
        return self.layers[name]

    # ---- size -----------------------------------------------------------------------
    def size_bits(self, graph: Graph) -> int:
        """Total bits of all quantized weights (biases excluded, as in HAWQ/OHQ)."""
        return sum(graph[n].params["kernel"].size * lb.w_bits for n, lb in self.layers.items())

    def size_mbit(self, graph: Graph) -> float:
        """Quantized weight size in Mbit (10^6 bits); ``codesign.budgets`` uses the same arithmetic."""
        return self.size_bits(graph) / 1e6

    # ---- (de)serialisation ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-ready dict."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "model": self.model,
            "default_act_bits": self.default_act_bits,
            "layers": {n: {"w_bits": lb.w_bits, "a_bits": lb.a_bits} for n, lb in self.layers.items()},
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "BitConfig") -> BitConfig:
        """Parse a dict produced by :meth:`to_dict` (or a plain ``{layer: bits}`` mapping)."""
        if not isinstance(data, dict):
            raise BitConfigError(f"{source} must be a mapping, got {type(data).__name__}.")
        if "layers" not in data:  # shorthand {layer: bits} or {layer: {w_bits, a_bits}}
            data = {"layers": data}
        if data.get("format", FORMAT) != FORMAT or data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise BitConfigError(f"{source} has format {data.get('format')} v{data.get('version')}; expected {FORMAT} v{FORMAT_VERSION}.")
        layers = {}
        raw = data["layers"]
        if not isinstance(raw, dict):
            raise BitConfigError(f"{source}: 'layers' must map layer names to bits.")
        for name, v in raw.items():
            if isinstance(v, int) and not isinstance(v, bool):
                layers[str(name)] = LayerBits(v, v)
            elif isinstance(v, dict) and {"w_bits", "a_bits"} <= set(v):
                layers[str(name)] = LayerBits(v["w_bits"], v["a_bits"])
            else:
                raise BitConfigError(f"{source}: layer {name!r} needs an int or {{w_bits, a_bits}}, got {v!r}.")
        return cls(
            layers,
            default_act_bits=data.get("default_act_bits", 8),
            model=data.get("model"),
            meta=dict(data.get("meta") or {}),
        )

    def save(self, path: str | Path) -> Path:
        """Write JSON (``.json``) or YAML (``.yaml``/``.yml``)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix in (".yaml", ".yml"):
            p.write_text(_yaml(p).safe_dump(self.to_dict(), sort_keys=False))
        else:
            p.write_text(json.dumps(self.to_dict(), indent=2))
        return p

    @classmethod
    def load(cls, path: str | Path) -> BitConfig:
        """Read a BitConfig from JSON or YAML; corrupt files raise BitConfigError."""
        p = Path(path)
        if not p.is_file():
            raise BitConfigError(f"BitConfig file {p} does not exist.")
        is_yaml = p.suffix in (".yaml", ".yml")
        yaml_error = _yaml(p).YAMLError if is_yaml else json.JSONDecodeError
        try:
            text = p.read_text()
            data = _yaml(p).safe_load(text) if is_yaml else json.loads(text)
        except (json.JSONDecodeError, yaml_error, UnicodeDecodeError) as err:
            raise BitConfigError(f"BitConfig file {p} is not valid {p.suffix.lstrip('.') or 'JSON'} ({err}).") from None
        return cls.from_dict(data, source=f"BitConfig file {p}")


def derived_bitconfig(graph: Graph, default_bits: int = 8) -> BitConfig:
    """The BitConfig the model's own quantizers describe (``default_bits`` where a layer has none)."""
    hints = graph.hints or QuantHints()
    layers = {}
    for ly in graph.quantizable():
        w = hints.weights.get(ly.name)
        a = input_grid(graph, ly.name)
        layers[ly.name] = LayerBits(w.bits if w else default_bits, a.bits if a else default_bits)
    return BitConfig(layers, default_act_bits=default_bits, model=graph.name,
                     meta={"source": "quantizers of the imported model"})
