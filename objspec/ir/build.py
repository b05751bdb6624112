"""The parser's located dict form to a validated objective, mixture or composition; pydantic's
errors mapped back to the source location of the node that failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from objspec.errors import Diagnostic, Loc, SpecError
from objspec.ir.base import _dedup
from objspec.ir.composed import Composition, Mixture, Spec
from objspec.ir.objective import Objective
from objspec.ir.reader import _loc, _Reader, _show
from objspec.ir.words import KEEP_ALL, OUTPUTS, RESERVED_STATEMENTS, VIEWS


def _read_statements(tree: dict[str, Any], reader: _Reader) -> dict[str, Any]:
    """Fold the statement list into Objective fields, reporting duplicates and reserved ones."""
    by_kind: dict[str, dict[str, Any]] = {}
    heads: list[dict[str, Any]] = []
    transforms: list[dict[str, Any] | None] = []
    for st in tree["statements"]:
        kind = st["statement"]
        if kind in RESERVED_STATEMENTS:
            reader.error(
                f"'{kind}' is not supported by this version of objspec",
                st["loc"],
                f"reserved for {RESERVED_STATEMENTS[kind]}",
            )
        elif kind == "head":
            heads.append(reader.head(st))
        elif kind == "transform":
            transforms.append(reader.transform(st))
        elif kind == "pair":
            if "pair" in by_kind:
                reader.error("duplicate 'pair' statement", st["loc"])
            by_kind["pair"] = st
        elif kind in by_kind:
            reader.error(
                f"duplicate '{kind}' statement",
                st["loc"],
                f"first given on line {by_kind[kind]['loc'].line}",
            )
        else:
            by_kind[kind] = st

    fields: dict[str, Any] = {"name": tree["name"], "loc": tree["loc"], "heads": heads}
    fields["transforms"] = [t for t in transforms if t is not None]
    readers: dict[str, Callable[[dict[str, Any]], Any]] = {
        "input": lambda st: {
            "kind": reader.bare_call(st["call"], "input", ("single", "parallel")),
            "loc": st["loc"],
        },
        "unit": reader.unit,
        "exclude": reader.exclude,
        "replace": reader.replace,
        "predict": reader.predict,
        "loss": reader.loss,
        "masks": reader.masks,
        "pack": reader.pack,
        "output": lambda st: {
            "kind": reader.bare_call(st["call"], "output form", OUTPUTS),
            "loc": st["loc"],
        },
        "attention": reader.attention,
        "pair": reader.pair,
        "views": lambda st: {
            "kind": reader.bare_call(st["call"], "views", VIEWS),
            "loc": st["loc"],
        },
    }
    for kind, read in readers.items():
        if kind in by_kind:
            fields[kind] = read(by_kind[kind])
    budget = reader.budget(by_kind["budget"]) if "budget" in by_kind else None
    if "select" in by_kind:
        fields["select"] = reader.select(by_kind["select"], budget)
    elif budget is not None:
        reader.error("a 'budget' without a 'select' statement", budget["loc"])
    selects_nothing = "select" in by_kind and by_kind["select"]["kind"] == "none"
    if selects_nothing:
        if "replace" in by_kind:
            reader.error(
                "'select none' leaves nothing to replace",
                by_kind["replace"]["loc"],
                "remove the 'replace' statement",
            )
        fields["replace"] = dict(KEEP_ALL, loc=by_kind["select"]["loc"])
    for required in ("select", "replace", "predict"):
        if required not in by_kind and not (required == "replace" and selects_nothing):
            reader.error(
                f"the objective has no '{required}' statement",
                tree["name_loc"],
                REQUIRED_USAGE[required],
            )
    if not heads and not reader.diagnostics:
        reader.error("the objective has no 'head' statement", tree["name_loc"], "e.g. 'head mlm'")
    return fields


REQUIRED_USAGE = {
    "select": "e.g. 'select bernoulli 15%'",
    "replace": "e.g. 'replace per token: mask 80%, random 10%, keep 10%'",
    "predict": "e.g. 'predict original at selected'",
}


def build_objective(tree: dict[str, Any], source: str = "", path: str | None = None) -> Spec:
    """Validate the parser's dict form into an :class:`Objective` (or a :class:`Mixture` of
    them). Raises SpecError."""
    mixtures = [st for st in tree["statements"] if st["statement"] == "mixture"]
    if mixtures:
        return _build_mixture(tree, mixtures, source, path)
    tasks = [st for st in tree["statements"] if st["statement"] == "task"]
    if tasks:
        return _build_composition(tree, tasks, source, path)
    reader = _Reader()
    fields = _read_statements(tree, reader)
    if reader.diagnostics:
        raise SpecError(reader.diagnostics, source=source, path=path)
    fields["source"] = source
    fields["path"] = path
    return _validated(Objective, fields, source, path)


def _validated(model: Any, fields: dict[str, Any], source: str, path: str | None) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        diags = [_diagnostic_from_pydantic(err, fields) for err in exc.errors()]
        raise SpecError(_dedup(diags), source=source, path=path) from None


TASK_OWN = ("select", "budget", "replace", "predict", "transform", "pair", "head", "output")
MEMBER_FORBIDS = ("head", "output", "loss", "masks", "input", "mixture", "task", "pack")


def _build_mixture(
    tree: dict[str, Any], mixtures: list[dict[str, Any]], source: str, path: str | None
) -> Mixture:
    """Each member is an objective: the statements above the mixture, then its own (which
    replace those of the same kind)."""
    reader = _Reader()
    if len(mixtures) > 1:
        reader.error("an objective has one mixture", mixtures[1]["loc"])
    mixture = mixtures[0]
    if mixture["per"] != "example":
        reader.error(
            f"a mixture is chosen per example, not per {mixture['per']!r}",
            mixture["loc"],
            "write 'mixture per example:'",
        )
    shared = [st for st in tree["statements"] if st["statement"] != "mixture"]
    for st in shared:
        if st["statement"] in ("select", "budget", "replace", "predict", "transform"):
            reader.error(
                f"'{st['statement']}' belongs inside each mixture member",
                st["loc"],
                "the statements above a mixture are shared: input, unit, exclude, output, "
                "loss, head, masks",
            )
    members: list[dict[str, Any]] = []
    for m in mixture["members"]:
        for st in m["body"]:
            if st["statement"] in MEMBER_FORBIDS:
                reader.error(
                    f"'{st['statement']}' is shared by the whole mixture",
                    st["loc"],
                    "give it once, above 'mixture'",
                )
        mode = mode_loc = None
        for clause in m["clauses"]:
            if clause.get("option") == "mode" and isinstance(clause.get("value"), str):
                mode, mode_loc = clause["value"], clause["loc"]
            else:
                reader.error(
                    "unexpected clause for a mixture member",
                    clause["loc"],
                    "e.g. 'r_short 1/7, mode \"[NLU]\":'",
                )
        fields = _sub_objective(tree, shared, m["name"], m["body"], reader)
        fields["source"], fields["path"] = source, path
        loc = _loc(m["rate"], mixture["loc"])
        rate = reader.rate(m["rate"], f"the rate of {m['name']!r}", loc)
        members.append(
            {
                "name": m["name"],
                "rate": rate,
                "mode": mode,
                "mode_loc": mode_loc,
                "objective": fields,
                "loc": loc,
            }
        )
    if reader.diagnostics:
        raise SpecError(_dedup(reader.diagnostics), source=source, path=path)
    built = [
        dict(m, objective=_validated(Objective, m["objective"], source, path)) for m in members
    ]
    fields = {
        "name": tree["name"],
        "members": built,
        "source": source,
        "path": path,
        "loc": mixture["loc"],
    }
    return _validated(Mixture, fields, source, path)


def _sub_objective(
    tree: dict[str, Any],
    shared: list[dict[str, Any]],
    name: str,
    body: list[dict[str, Any]],
    reader: _Reader,
) -> dict[str, Any]:
    """The fields of a member or task: the shared statements, then its own (which replace
    those of the same kind; heads add up)."""
    own = {st["statement"] for st in body}
    inherited = [st for st in shared if st["statement"] not in own or st["statement"] == "head"]
    sub = {**tree, "name": f"{tree['name']}_{name}", "statements": inherited + body}
    sub_reader = _Reader()
    fields = _read_statements(sub, sub_reader)
    reader.diagnostics += sub_reader.diagnostics
    return fields


def _build_composition(
    tree: dict[str, Any], tasks: list[dict[str, Any]], source: str, path: str | None
) -> Composition:
    """Each task is an objective (the shared statements, then its own); the pair task builds
    the rows the masked-LM task then corrupts, and their losses add with the task weights."""
    reader = _Reader()
    shared = [st for st in tree["statements"] if st["statement"] != "task"]
    for st in shared:
        if st["statement"] in TASK_OWN:
            reader.error(
                f"'{st['statement']}' belongs inside each task",
                st["loc"],
                "the statements above the tasks are shared: input, unit, exclude, masks",
            )
    built = []
    for t in tasks:
        fields = _sub_objective(tree, shared, t["name"], t["body"], reader)
        fields["source"], fields["path"] = source, path
        weight = 1.0 if t["weight"] is None else reader.number(t["weight"], "task weight", t["loc"])
        built.append({"name": t["name"], "weight": weight, "objective": fields, "loc": t["loc"]})
    if reader.diagnostics:
        raise SpecError(_dedup(reader.diagnostics), source=source, path=path)
    for t in built:
        t["objective"] = _validated(Objective, t["objective"], source, path)
    fields = {
        "name": tree["name"],
        "tasks": built,
        "source": source,
        "path": path,
        "loc": tree["loc"],
    }
    return _validated(Composition, fields, source, path)


def _diagnostic_from_pydantic(err: Any, fields: dict[str, Any]) -> Diagnostic:
    """Map one Pydantic error to a Diagnostic located at the deepest input node with a ``loc``."""
    node: Any = fields
    loc = fields.get("loc")
    for key in err["loc"]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            continue  # a union tag such as 'spans' is in the error path, not in the input
        if isinstance(node, dict) and isinstance(node.get("loc"), Loc):
            loc = node["loc"]
    ctx = err.get("ctx") or {}
    loc = ctx.get("at") or loc
    hint = ctx.get("hint")
    message = err["msg"]
    if err["type"] != "objspec":
        field = ".".join(str(k) for k in err["loc"] if not isinstance(k, int))
        last_two = ".".join(field.split(".")[-2:])
        what = FIELD_NAMES.get(field) or FIELD_NAMES.get(last_two, field)
        bound = BOUND_WORDS.get(err["type"])
        if bound is not None:
            limit = next(ctx[k] for k in ("gt", "ge", "lt", "le") if k in ctx)
            message = f"{what} must be {bound} {_limit(limit)}, got {_show(err['input'])}"
        elif err["type"] in ("int_type", "int_parsing", "int_from_float"):
            message = f"{what} must be a whole number, got {_show(err['input'])}"
        else:
            message = f"{what}: {message}" if field else message
    return Diagnostic(message, loc, hint)


def _limit(value: float) -> str:
    """A bound as a person writes it: 1048576, not 1.04858e+06."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


BOUND_WORDS = {
    "greater_than": "greater than",
    "greater_than_equal": "at least",
    "less_than": "less than",
    "less_than_equal": "at most",
}
FIELD_NAMES = {
    "select.random_spans.density": "the noise density",
    "select.random_spans.mean": "the mean span length",
    "select.suffix.rate": "the suffix rate",
    "heads.weight": "a head weight",
    "heads.params": "a head parameter",
    "masks.copies": "the number of static mask copies",
    "transforms.rate": "a transform rate",
    "members.rate": "a member rate",
    "tasks.weight": "a task weight",
    "budget.min": "the budget's min",
    "budget.max": "the budget's max",
    "exact.alpha": "alpha",
    "windows.rate": "the window rate",
}
