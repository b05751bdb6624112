"""What generated classes share: they are pickled by value.

A compiled spec's classes live in a module made from generated source, which no other process
can import by name. Pickling one (a DataLoader worker under spawn, ``torch.save`` of a whole
module) therefore carries the generated source, and unpickling loads it again, once per process
(``compiler.codegen.rebuild_generated``). A user's subclass of a generated class is an ordinary
class and pickles by reference.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch


class PickledBySource:
    """Mixin of the generated classes; ``compiler.codegen`` sets ``generated_from`` on each:
    (spec name, generated source, class name)."""

    generated_from: ClassVar[tuple[str, str, str] | None] = None

    def __reduce_ex__(self, protocol: Any) -> Any:
        generated_from = type(self).__dict__.get("generated_from")  # not a subclass's
        if generated_from is None:
            return super().__reduce_ex__(protocol)
        from compiler.codegen import rebuild_generated

        return rebuild_generated, (generated_from, self.__getstate__())


class Heads(PickledBySource, torch.nn.Module):
    """The base of every generated ``Heads`` module."""
