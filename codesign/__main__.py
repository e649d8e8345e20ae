"""``python -m codesign <command>``: the umbrella CLI (user errors exit 2 without a traceback)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from codesign.errors import run_cli

COMMANDS = {
    "search": ("codesign.search", "the OHQ search end to end: distill, OQA table, MQE, ILP, report, exports"),
    "deploy": ("codesign.deploy", "run a (mixed-precision) network end to end on the overlay: bit-exact, latency measured"),
    "oqa": ("codesign.oqa", "measure the per-layer hardware table on the (simulated) board"),
    "ip": ("codesign.ip", "generate, C-simulate and check the IP cores (make ip)"),
    "overlay": ("codesign.hw.overlay", "render the OQA overlay's top-level Verilog from generated IP"),
    "synth": ("codesign.synth", "open synthesis (Yosys) of the cores and the overlay: fit and timing (make synth)"),
    "finetune": ("codesign.finetune", "QAT of a search run's config in QKeras, re-imported into the golden model (needs TensorFlow)"),
    "inspect": ("codesign.inspect_model", "print a model's IR (layers, shapes, params, MACs, quantized size)"),
    "models": ("codesign.models.__main__", "list the model zoo and build/cache its ImageNet-shape models"),
    "train": ("codesign.models.train", "train a small zoo model (needs TensorFlow)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a sub-command's ``main``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m codesign <command> [args]\n\ncommands:")
        for name, (_mod, text) in COMMANDS.items():
            print(f"  {name:10s} {text}")
        print("\n`python -m codesign <command> --help` explains a command's options; each command is also "
              "`python -m <module>` (e.g. python -m codesign.search).\nVivado implementation of the overlay runs "
              "through `make bitstream` (needs Vivado; docs/board.md).")
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    if cmd not in COMMANDS:
        from codesign.errors import CodesignError

        raise CodesignError(f"unknown command {cmd!r}; commands: {', '.join(COMMANDS)}.")
    import importlib

    module = importlib.import_module(COMMANDS[cmd][0])
    return module.main(rest)


def cli() -> None:
    """Console-script entry point."""
    sys.exit(run_cli(main))


if __name__ == "__main__":
    cli()
