"""``objspec check``: property-test each compiled collator; a table or ``--json``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from objspec.cli.args import OUTPUT_FORMS, POSITIVE
from objspec.cli.common import EXIT_CHECK, EXIT_OK, load_spec, out, spec_file


def check_table(title: str, results: Sequence[Any]) -> Table:
    table = Table(title=Text(title), title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("promise / failure")
    for r in results:
        verdict = Text("pass", style="green") if r.passed else Text("FAIL", style="red")
        table.add_row(Text(r.name), verdict, Text(r.promise if r.passed else r.detail))
    return table


def check_record(spec: str, objective: Any, form: str | None, results: Sequence[Any]) -> dict:
    """One spec's results for ``check --json``."""
    checks = [
        {"name": r.name, "passed": r.passed, "promise": r.promise, "detail": r.detail}
        for r in results
    ]
    passed = all(r.passed for r in results)
    return {
        "spec": spec,
        "objective": objective.name,
        "form": form,
        "passed": passed,
        "checks": checks,
    }


def cmd_check(args: argparse.Namespace) -> int:
    from objspec.checks import run_checks

    records = []
    for spec in args.specs:
        objective, compiled = load_spec(spec_file(spec), args.form)
        results = run_checks(objective, compiled, max_examples=args.examples)
        records.append(check_record(spec, objective, args.form, results))
        if not args.json:
            form = f", output {args.form}" if args.form else ""
            out.print(check_table(f"{objective.name} ({spec}{form})", results))
    passed = all(r["passed"] for r in records)
    if args.json:
        print(json.dumps({"passed": passed, "specs": records}, indent=2))
    return EXIT_OK if passed else EXIT_CHECK


def add_check(sub: Any) -> None:
    p = sub.add_parser("check", help="property-test the compiled collator of each spec")
    p.add_argument("specs", nargs="+", help=".objspec files or bundled spec names")
    p.add_argument("--examples", type=POSITIVE, default=40, help="Hypothesis examples per check")
    p.add_argument(
        "--output",
        "--form",
        dest="form",
        choices=OUTPUT_FORMS,
        help="check the spec compiled in another batch form (as 'objspec compile --form'; "
        "default: the spec's own)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the results as JSON (per spec, per check: name, passed, promise, detail)",
    )
    p.set_defaults(run=cmd_check)
