"""``python -m codesign <command>``: the umbrella CLI (user errors exit 2 without a traceback)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from codesign.errors import run_cli

COMMANDS = {
    "inspect": ("codesign.inspect_model", "print a model's IR (layers, shapes, params, MACs, quantized size)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a sub-command's ``main``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m codesign <command> [args]\n\ncommands:")
        for name, (_mod, text) in COMMANDS.items():
            print(f"  {name:10s} {text}")
        print("\nother entry points: python -m codesign.ip, python -m codesign.models.train")
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
