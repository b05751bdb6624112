"""The objspec compiler: IR -> plan (:mod:`compiler.lower`) -> Python source (:mod:`compiler.codegen`)."""

from compiler.codegen import GeneratedModule, generate, load
from compiler.lower import Plan, lower

__all__ = ["GeneratedModule", "Plan", "compile_objective", "generate", "load", "lower"]


def compile_objective(objective):  # type: ignore[no-untyped-def]
    """IR -> generated module (lower, then generate)."""
    return generate(lower(objective))
