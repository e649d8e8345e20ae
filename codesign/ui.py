"""Console tables and progress bars: rich and tqdm when installed, plain lines otherwise.

The on-board runtime needs only NumPy and PuLP (a PYNQ image has neither rich nor tqdm, and
a 512 MB board should not install them), so the search, OQA and ``inspect`` go through this
module: same calls, and without the packages a plain aligned table and one progress line
per tenth of the work on stderr.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_MARKUP = re.compile(r"\[/?[a-z][a-z _#0-9]*\]|\[/\]")  # rich style tags such as [bold] [/] [yellow]

try:
    from rich.console import Console
    from rich.table import Table
except ImportError:  # plain fallbacks with the subset of the API codesign uses

    class Table:  # type: ignore[no-redef]
        """A titled text table (rich.table.Table's add_column/add_row)."""

        def __init__(self, title: str = "") -> None:
            self.title = title
            self.columns: list[tuple[str, str]] = []
            self.rows: list[list[str]] = []

        def add_column(self, name: str, justify: str = "left", **_kw: Any) -> None:
            """Add a column ('right' justification aligns numbers)."""
            self.columns.append((name, justify))

        def add_row(self, *cells: Any) -> None:
            """Add a row of cells (str() of each)."""
            self.rows.append([str(c) for c in cells])

        def __str__(self) -> str:
            heads = [n for n, _ in self.columns]
            widths = [max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h) for i, h in enumerate(heads)]

            def line(cells: list[str]) -> str:
                return "  ".join(c.rjust(w) if j == "right" else c.ljust(w)
                                 for c, w, (_n, j) in zip(cells, widths, self.columns)).rstrip()

            out = [self.title] if self.title else []
            out += [line(heads), "  ".join("-" * w for w in widths)] + [line(r) for r in self.rows]
            return "\n".join(out)

    class Console:  # type: ignore[no-redef]
        """print() with rich's markup tags stripped (rich.console.Console's print)."""

        def __init__(self, stderr: bool = False, width: int | None = None, **_kw: Any) -> None:
            self.file = sys.stderr if stderr else sys.stdout
            self.width = width

        @property
        def is_terminal(self) -> bool:
            """True when writing to a TTY."""
            return bool(getattr(self.file, "isatty", lambda: False)())

        def print(self, *objs: Any, **_kw: Any) -> None:
            """Print objects (tables as text, strings without markup)."""
            text = " ".join(str(o) if isinstance(o, Table) else _MARKUP.sub("", str(o)) for o in objs)
            print(text, file=self.file, flush=True)


class _PlainBar:
    """A progress 'bar' that prints one line per tenth of the work to stderr."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.n, self._next = max(int(total), 0), desc, 0, 0
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        """Advance by ``n``."""
        self.n += n
        if self.total and self.n >= self._next:
            print(f"{self.desc}: {self.n}/{self.total}{self.postfix}", file=sys.stderr, flush=True)
            self._next = self.n + max(1, self.total // 10)

    def set_postfix(self, refresh: bool = False, **kw: Any) -> None:
        """Values shown after the count on the next line."""
        self.postfix = " " + " ".join(f"{k}={v}" for k, v in kw.items())

    def close(self) -> None:
        """Nothing to clean up."""


def progress(total: int, desc: str, disable: bool = False, **kw: Any) -> Any:
    """A tqdm bar on stderr, or plain progress lines without tqdm (a no-op when ``disable``)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PlainBar(0 if disable else total, desc)
    return tqdm(total=total, desc=desc, disable=disable, leave=False, **kw)


def progress_iter(items: Iterable[T], desc: str, disable: bool = False) -> Iterator[T]:
    """Iterate ``items`` with a progress bar."""
    seq = list(items)
    bar = progress(len(seq), desc, disable)
    for item in seq:
        yield item
        bar.update(1)
    bar.close()


__all__ = ["Console", "Table", "progress", "progress_iter"]
