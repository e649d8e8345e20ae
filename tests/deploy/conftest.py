"""Deployment tests share the board tests' overlay and simulator fixtures."""

from board.conftest import overlay, sim_board  # noqa: F401  (fixtures)
