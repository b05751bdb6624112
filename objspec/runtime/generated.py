"""What generated classes share: they are pickled by value.

A compiled spec's classes live in a module made from generated source, which no other process
can import by name. Pickling one (a DataLoader worker under spawn, ``torch.save`` of a whole
module) therefore carries the generated source, and unpickling loads it again, once per process
(``compiler.codegen.rebuild_generated``). A user's subclass of a generated class is an ordinary
class and pickles by reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

# How an unpickled generated object is rebuilt: set by the compiler that makes generated
# classes (``compiler.codegen.rebuild_generated``), so the runtime never imports the compiler;
# pickle records the function by name and imports the compiler itself when it unpickles.
_REBUILD: Callable[[tuple[str, str, str], dict[str, Any]], Any] | None = None


def register_rebuild(rebuild: Callable[[tuple[str, str, str], dict[str, Any]], Any]) -> None:
    """Called once by the compiler: the function that rebuilds a pickled generated object."""
    global _REBUILD
    _REBUILD = rebuild


class PickledBySource:
    """Mixin of the generated classes; ``compiler.codegen`` sets ``generated_from`` on each:
    (spec name, generated source, class name)."""

    generated_from: ClassVar[tuple[str, str, str] | None] = None

    def __reduce_ex__(self, protocol: Any) -> Any:
        generated_from = type(self).__dict__.get("generated_from")  # not a subclass's
        if generated_from is None:
            return super().__reduce_ex__(protocol)
        if _REBUILD is None:  # no compiler has loaded a generated class in this process
            raise TypeError(f"{type(self).__name__} was not made by objspec's compiler")
        return _REBUILD, (generated_from, self.__getstate__())


class Heads(PickledBySource, torch.nn.Module):
    """The base of every generated ``Heads`` module."""
