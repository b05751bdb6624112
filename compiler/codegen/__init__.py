"""Plan -> Python source (:mod:`.module`, with :mod:`.steps` for the collator's steps and
:mod:`.heads` for the loss heads), and that source loaded, pickled and verified
(:mod:`.loading`)."""

from __future__ import annotations

from compiler.codegen.loading import (
    header_constants,
    load,
    load_source,
    rebuild_generated,
    verified_source,
)
from compiler.codegen.module import Generator, generate, reserved_names
from compiler.codegen.writing import GeneratedModule, checked_identifier, class_prefix

__all__ = [
    "GeneratedModule",
    "Generator",
    "checked_identifier",
    "class_prefix",
    "generate",
    "header_constants",
    "load",
    "load_source",
    "rebuild_generated",
    "reserved_names",
    "verified_source",
]
