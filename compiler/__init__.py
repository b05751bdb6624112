"""The objspec compiler: IR -> plan (:mod:`compiler.lower`) -> source (:mod:`compiler.codegen`)."""

from __future__ import annotations

from compiler.codegen import GeneratedModule, generate, load
from compiler.lower import Plan
from compiler.lower import lower as lower_objective
from objspec.ir import Spec

__all__ = ["GeneratedModule", "Plan", "compile_objective", "generate", "load", "lower_objective"]


def compile_objective(objective: Spec) -> GeneratedModule:
    """IR (an objective or a mixture) -> generated module (lower, then generate)."""
    return generate(lower_objective(objective))
