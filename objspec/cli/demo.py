"""``objspec demo``: every bundled spec compiled, shown and checked, then one trained."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.text import Text

from objspec.cli.args import POSITIVE, SEED_MAX, integer
from objspec.cli.common import EXIT_CHECK, load_spec, out, say
from objspec.cli.pretraining import cmd_pretrain
from objspec.cli.showing import show_one

DEMO_PRETRAIN = "spanbert.objspec"


DEMO_STEPS = ("--steps", "150", "--lr", "2e-3")


def bundled_specs_dir() -> Path:
    """The bundled specs (installed with the package; see :func:`objspec.bundled_specs_dir`)."""
    from objspec import bundled_specs_dir as installed

    return installed()


def cmd_demo(args: argparse.Namespace) -> int:
    from objspec.checks import run_checks

    specs = sorted(bundled_specs_dir().glob("*.objspec"))
    out.rule(
        Text.assemble(("objspec demo", "bold"), ": every bundled spec, compiled, shown and checked")
    )
    failed = []
    for spec in specs:
        out.print()
        show_one(spec, None, args.seed, 0, 40)
        objective, compiled = load_spec(spec)
        results = run_checks(objective, compiled, max_examples=args.examples)
        passed = sum(r.passed for r in results)
        colour = "green" if passed == len(results) else "red"
        say("checks: ", (f"{passed}/{len(results)} passed", colour))
        for r in results:
            if not r.passed:
                say("  ", ("FAIL", "red"), f" {r.name}: {r.detail}")
                failed.append(f"{spec.name}:{r.name}")
    out.print()
    verdict = (
        ("all checks passed", "green") if not failed else (f"{len(failed)} checks failed", "red")
    )
    out.rule(Text.assemble(verdict))
    out.print()
    out.rule(
        Text.assemble(("objspec pretrain", "bold"), ": the tiny model trained with one objective")
    )
    from objspec.cli import build_parser  # the whole parser: pretrain's defaults

    spec = bundled_specs_dir() / DEMO_PRETRAIN
    trained = cmd_pretrain(
        build_parser().parse_args(["pretrain", str(spec), "--out", "runs/demo", *DEMO_STEPS])
    )
    return EXIT_CHECK if failed else trained


def add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="compile, show and check every bundled spec")
    p.add_argument("--seed", type=integer(0, SEED_MAX), default=0, help="the collators' seed")
    p.add_argument("--examples", type=POSITIVE, default=25, help="Hypothesis examples per check")
    p.set_defaults(run=cmd_demo)
