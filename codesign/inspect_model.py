"""``python -m codesign inspect MODEL [--bits B|bitconfig.json] [--emit-bitconfig F]``: print the IR as a table.

A QKeras model's own quantizers show as its W/A bits (and their grids below the table);
``--emit-bitconfig F`` writes them as a BitConfig for ``codesign.search``/``finetune``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from codesign import validate
from codesign.errors import BitConfigError
from codesign.graph.ir import Graph
from codesign.graph.quant_hints import QuantHints
from codesign.quant.bitconfig import BitConfig, derived_bitconfig
from codesign.quant.dyadic import check_bits
from codesign.ui import Console, Table


def load_model_spec(spec: str, input_shape: tuple[int, ...] | None = None, trust_model: bool = False) -> Graph:
    """Resolve a zoo name, an IR directory or a .h5/.keras file to a Graph."""
    from codesign.models import resolve_model  # lazy: the zoo may pull TF for ImageNet models

    return resolve_model(spec, input_shape=input_shape, trust_model=trust_model)


def bitconfig_from_arg(graph: Graph, arg: str) -> BitConfig:
    """``--bits`` is either one width (uniform W/A) or a BitConfig JSON/YAML file."""
    if Path(arg).suffix in (".json", ".yaml", ".yml"):
        return BitConfig.load(arg).validated(graph)
    try:
        bits = int(arg)
    except ValueError:
        from codesign.errors import BitWidthError

        raise BitWidthError(f"--bits must be a width in 2..8 or a BitConfig .json/.yaml file, got {arg!r}.") from None
    return BitConfig.uniform(graph, check_bits(bits, "--bits"))


def _fmt_int(n: int) -> str:
    return f"{n:,}" if n else "-"


def render(graph: Graph, bc: BitConfig | None = None, console: Console | None = None) -> None:
    """Print the layer table and totals (and quantized size when a BitConfig is given)."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped/captured: do not squeeze the table into 80 columns
            console = Console(width=220)
    table = Table(title=f"{graph.name}: {len(graph)} layers, input {graph.input_shape}")
    for col in ("#", "name", "type", "inputs", "output shape", "params", "MACs"):
        table.add_column(col, justify="right" if col in ("#", "params", "MACs") else "left")
    if bc is not None:
        table.add_column("W/A bits", justify="right")
        table.add_column("size (kbit)", justify="right")
    for i, ly in enumerate(graph.layers):
        op = ly.op + ("/dw" if getattr(ly, "is_depthwise", False) else "")
        row = [str(i), ly.name, op, ",".join(ly.inputs), str(tuple(ly.output_shape)),
               _fmt_int(ly.num_params), _fmt_int(ly.macs(graph.in_shapes(ly)))]
        if bc is not None:
            if ly.name in bc.layers:
                lb = bc[ly.name]
                row += [f"{lb.w_bits}/{lb.a_bits}", f"{ly.params['kernel'].size * lb.w_bits / 1e3:,.1f}"]
            else:
                row += ["", ""]
        table.add_row(*row)
    console.print(table)
    n_params = sum(ly.num_params for ly in graph.layers)
    n_q = len(graph.quantizable())
    console.print(f"params: {n_params:,}   MACs/image: {graph.total_macs():,}   quantizable layers: {n_q}")
    console.print(f"float32 size: {n_params * 32 / 1e6:.3f} Mbit")
    if bc is not None:
        console.print(f"quantized weight size: {bc.size_mbit(graph):.3f} Mbit (weights only; biases int32 on top)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``codesign inspect``."""
    ap = argparse.ArgumentParser(prog="codesign inspect", description="Print a model's IR.")
    ap.add_argument("model", help="zoo name, IR directory (graph.json + weights.npz) or .h5/.keras file")
    ap.add_argument("--bits", help="uniform width 2..8, or a BitConfig .json/.yaml, to show the quantized size "
                                   "(default for a QKeras model: the widths of its own quantizers)")
    ap.add_argument("--emit-bitconfig", metavar="FILE",
                    help="write the BitConfig of the model's own quantizers (QKeras) to FILE (.json/.yaml)")
    validate.add_model_options(ap)
    args = ap.parse_args(argv)
    graph = load_model_spec(args.model, validate.input_shape(args.input_shape), args.trust_model)
    found = derived_bitconfig(graph) if graph.hints else None
    if args.emit_bitconfig and found is None:
        raise BitConfigError(f"model {args.model!r} carries no quantizers (not a QKeras model with kernel or "
                             "activation quantizers), so there is no BitConfig to emit; pass widths with --bits.")
    bc = bitconfig_from_arg(graph, args.bits) if args.bits else found
    render(graph, bc)
    if found is not None and graph.hints is not None:  # found comes from the hints
        _print_grids(graph.hints)
    if args.emit_bitconfig and found is not None:  # None raised above
        out = found.save(args.emit_bitconfig)
        print(f"BitConfig of the model's quantizers written to {out}")
    return 0


def _print_grids(hints: QuantHints) -> None:
    """The quantizers found in the model, as the quantized model will use them."""
    print("quantizers found in the model (they fix these grids; W/A bits above are theirs unless --bits):")
    for name, w in hints.weights.items():
        print(f"  weights {name}: {w.bits} bit, per-channel step {float(w.scale.min()):.3g}..{float(w.scale.max()):.3g}"
              f"  [{w.source}]")
    for name, t in hints.tensors.items():
        sign = "signed" if t.signed else "unsigned"
        print(f"  tensor  {name}: {t.bits} bit {sign}, scale {t.scale:.6g}  [{t.source}]")
