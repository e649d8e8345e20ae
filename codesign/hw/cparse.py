"""Small text-parsing helpers for C++ and Verilog headers: comments, top-level splits,
bracket matching and constant integer expressions (the port-contract parser's tools)."""

from __future__ import annotations

import ast
import re

from codesign.errors import CodesignError
from codesign.hw.cores.base import clog2


class PortParseError(CodesignError):
    """A rendered HLS top or Verilog header the port parser cannot read."""


def strip_comments(text: str) -> str:
    """C/C++/Verilog source without ``//`` and ``/* */`` comments (pragmas are kept)."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside <>, (), [] and {} nesting."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def balanced(text: str, start: int, open_ch: str = "(", close_ch: str = ")") -> tuple[str, int]:
    """The text inside the bracket opening at ``start`` and the index after its close."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_ch:
            depth += 1
        elif text[i] == close_ch:
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
    raise PortParseError(f"unbalanced '{open_ch}' at offset {start}")


_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a // b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
           ast.LShift: lambda a, b: a << b, ast.RShift: lambda a, b: a >> b, ast.BitOr: lambda a, b: a | b,
           ast.BitAnd: lambda a, b: a & b, ast.Pow: lambda a, b: a**b}


def eval_int(expr: str, names: dict[str, int]) -> int:
    """Evaluate an integer constant expression (Verilog or C++) with ``names``; nothing else runs."""
    src = expr.strip().replace("$clog2", "clog2")
    src = re.sub(r"\b(\d+)'[dD](\d+)\b", r"\2", src)
    src = re.sub(r"\b0b([01]+)\b", lambda m: str(int(m.group(1), 2)), src)

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "clog2" and len(node.args) == 1:
            return clog2(ev(node.args[0]))
        raise PortParseError(f"cannot evaluate '{expr}' (unknown name or operator)")

    try:
        return ev(ast.parse(src, mode="eval").body)
    except SyntaxError as exc:
        raise PortParseError(f"cannot evaluate '{expr}': {exc.msg}") from exc
