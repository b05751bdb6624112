"""Generated source -> a module: loaded once per process, rebuilt when unpickled, and
verified (recompiled from the spec it embeds) before source from elsewhere runs."""

from __future__ import annotations

import ast
import hashlib
import linecache
import types
from collections.abc import Iterator
from typing import Any

from compiler.codegen.module import generate
from compiler.codegen.writing import GeneratedModule
from objspec import __version__
from objspec.errors import IntegrityError
from objspec.runtime.generated import PickledBySource, register_rebuild


def load(module: GeneratedModule) -> types.ModuleType:
    """Execute generated source as a module; tracebacks show its lines (via linecache). The
    same source is executed once per process, so its classes stay the same objects."""
    return load_source(module.name, module.source)


_LOADED: dict[tuple[str, str], types.ModuleType] = {}  # (name, source) -> module; small


def load_source(name: str, source: str) -> types.ModuleType:
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    filename = f"<objspec:{name}:{digest}>"  # one per source: tracebacks show the right lines
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    if (name, source) not in _LOADED:
        mod = types.ModuleType(f"objspec_generated_{name}")
        mod.__file__ = filename
        exec(compile(source, filename, "exec"), mod.__dict__)  # noqa: S102 - our own output
        for value in list(vars(mod).values()):  # what a pickle needs to rebuild them elsewhere
            own = isinstance(value, type) and value.__module__ == mod.__name__
            if own and issubclass(value, PickledBySource):
                value.generated_from = (name, source, value.__name__)
        _LOADED[name, source] = mod
    return _LOADED[name, source]


def rebuild_generated(generated_from: tuple[str, str, str], state: dict[str, Any]) -> Any:
    """A pickled instance of a generated class, unpickled: its module loaded from the source it
    carries (once per process), its state restored. A source this process did not load already
    runs only if this compiler generates exactly it from the spec it embeds
    (:func:`verified_source`); else IntegrityError, and nothing of it runs."""
    name, source, class_name = generated_from
    if (name, source) not in _LOADED:
        verified_source(name, source)
    cls = getattr(load_source(name, source), class_name)
    obj = cls.__new__(cls)
    if hasattr(obj, "__setstate__"):  # nn.Module restores its own state
        obj.__setstate__(state)
    else:
        obj.__dict__.update(state)
    return obj


HEADER_CONSTANTS = ("SPEC_NAME", "SPEC_SHA256", "OBJSPEC_VERSION", "SPEC_SOURCE")
OUTPUT_FORMS = (None, "encoder", "encoder_decoder", "decoder_only")  # None: the spec's own


def verified_source(name: str, source: str) -> str:
    """``source`` if this compiler generates exactly it from the spec source it embeds (the
    sha256 chain checked first), else IntegrityError. Nothing of ``source`` is run: its header
    is read with ``ast`` and the spec compiled again."""
    header = header_constants(source)
    spec_source, recorded = header["SPEC_SOURCE"], header["SPEC_SHA256"]
    if header["OBJSPEC_VERSION"] != __version__:
        raise IntegrityError(
            f"refusing generated code of objspec {header['OBJSPEC_VERSION']}: this is objspec "
            f"{__version__}; recompile its spec (objspec.load_shared)"
        )
    if hashlib.sha256(spec_source.encode("utf-8")).hexdigest() != recorded:
        raise IntegrityError("refusing generated code whose spec source does not match its sha256")
    if header["SPEC_NAME"] != name:
        raise IntegrityError(f"refusing generated code of {header['SPEC_NAME']!r} named {name!r}")
    if source not in _recompiled(spec_source):
        raise IntegrityError(
            f"refusing generated code of {name!r}: it is not what objspec {__version__} "
            "generates from the spec it embeds"
        )
    return source


def header_constants(source: str) -> dict[str, str]:
    """SPEC_NAME, SPEC_SHA256, OBJSPEC_VERSION and SPEC_SOURCE of generated source, read as
    literals (never run). IntegrityError if one is missing or not a string."""
    try:
        tree = ast.parse(source)
        found = {
            node.targets[0].id: ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in HEADER_CONSTANTS
        }
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise IntegrityError(f"refusing generated code that cannot be read: {exc}") from None
    if any(not isinstance(found.get(key), str) for key in HEADER_CONSTANTS):
        raise IntegrityError("refusing generated code without its spec header")
    return found


def _recompiled(spec_source: str) -> Iterator[str]:
    """The sources this compiler generates from a spec, in each batch form it compiles to (the
    spec's own first; generated lazily, so a match stops the compiling)."""
    from compiler.lower import lower
    from objspec.errors import SpecError
    from objspec.parser import parse_spec

    try:
        spec = parse_spec(spec_source)
    except SpecError as exc:
        raise IntegrityError(
            f"refusing generated code whose spec does not compile:\n{exc}"
        ) from None
    for form in OUTPUT_FORMS:
        try:
            shaped = spec if form is None else spec.with_output(form)
        except SpecError:
            continue  # a form this spec has not
        yield generate(lower(shaped)).source


register_rebuild(rebuild_generated)  # how generated objects unpickle (runtime/generated.py)
