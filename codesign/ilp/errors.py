"""The ILP's errors: inconsistent inputs, and budgets no assignment can meet."""

from __future__ import annotations

from codesign.errors import CodesignError


class IlpError(CodesignError):
    """The ILP inputs are inconsistent (unknown tie/pin names, missing costs, bad beta...)."""


class InfeasibleBudgetError(CodesignError):
    """No bit assignment meets the budgets; the message gives the feasible range."""

