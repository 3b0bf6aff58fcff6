"""Validation errors that name the path of every problem, all at once."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class IntentError(ValueError):
    def __init__(self, problems: tuple[Problem, ...], source: str = "") -> None:
        self.problems = problems
        head = f"{source}: " if source else ""
        super().__init__(head + f"{len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))
