"""``objspec materialize``: whole epochs of corruption written to Parquet (docs/materialize.md)."""

from __future__ import annotations

import argparse
from typing import Any

from objspec.cli.args import LENGTH, POSITIVE, SEED_MAX, add_corpus_arguments, integer
from objspec.cli.common import EXIT_OK, UsageError, say, spec_file

EPOCH_MAX = (1 << 32) - 1


def epochs(text: str) -> list[int]:
    """``--epochs``: a count N (epochs 0..N-1) or a comma-separated list of epochs (``2,`` is
    epoch 2 alone)."""
    try:
        if "," not in text and text.strip().isdigit():
            count = int(text)
            if not 1 <= count <= 1 << 16:
                raise ValueError
            return list(range(count))
        given = [int(part) for part in text.split(",") if part.strip()]
        if not given:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a count of epochs (3) or a list of epochs (0,1,2)"
        ) from None
    if any(not 0 <= e <= EPOCH_MAX for e in given) or len(set(given)) != len(given):
        raise argparse.ArgumentTypeError(f"{text!r}: distinct epochs in [0, 2**32)")
    return given


def cmd_materialize(args: argparse.Namespace) -> int:
    import objspec
    from objspec.materialize import MaterializeError, materialize, refusal

    compiled = objspec.compile_file(spec_file(args.spec))
    cls = compiled.Collator
    try:
        tokenizer = _tokenizer(args.tokenizer, cls.modes)
        collator = cls(tokenizer.data, seed=args.seed, pack=None, **_tables(cls, tokenizer))
    except ValueError as exc:  # a tokenizer that cannot be read, a vocabulary without a token
        raise UsageError(str(exc)) from None
    reason = refusal(collator)
    if reason is not None:  # before any data is read
        raise UsageError(f"cannot materialize {reason}")
    examples = _examples(
        args, tokenizer.data, "translation" in str(cls.needs) or "tlm" in compiled.name
    )
    missing = [name for name, _ in cls.fields if examples and name not in examples[0]]
    if missing:
        raise UsageError(
            f"{args.spec} reads the per-token field {missing[0]!r} "
            f"({dict(cls.fields)[missing[0]]}), which the data does not have"
        )
    try:
        folders = materialize(
            collator,
            examples,
            args.out,
            args.epochs,
            batch_size=args.batch_size,
            num_proc=args.num_proc,
            rows_per_shard=args.rows_per_shard,
        )
    except MaterializeError as exc:
        raise UsageError(str(exc)) from None
    for folder in folders:
        say(("wrote ", "green"), str(folder))
    return EXIT_OK


def _tokenizer(path: str | None, modes: tuple[str, ...]) -> Any:
    from objspec.pretrain.hf import load_tokenizer

    return load_tokenizer(path, modes)


def _tables(cls: Any, tokenizer: Any) -> dict[str, Any]:
    """The run-time tables the spec reads: the bundled stand-ins with the bundled tokenizer."""
    from objspec import bundled

    needs = set(cls.needs) & {"counts", "similar", "pool"}
    if not needs:
        return {}
    if not tokenizer.bundled:
        raise UsageError(
            f"this objective reads run-time tables ({', '.join(sorted(needs))}); "
            "objspec materialize builds them for the bundled tokenizer only"
        )
    return bundled.run_time_inputs(tokenizer.data, cls.needs)


def _examples(args: argparse.Namespace, tokenizer: Any, parallel: bool) -> Any:
    from objspec.pretrain.data import load_dataset_folder, load_text

    if args.dataset is not None and args.text:
        raise UsageError("give --dataset or --text, not both")
    try:
        if args.dataset is not None:
            rows, _ = load_dataset_folder(
                args.dataset,
                tokenizer,
                args.max_length,
                text_column=args.text_column,
                train_split=args.split,
                eval_split=None,
                fraction=0.0,
                language=args.language,
                workers=args.num_proc,
            )
            return getattr(rows, "dataset", rows)
        return load_text(tokenizer, args.text or [], args.max_length, 0.0, parallel)[0]
    except ValueError as exc:  # DataError: a missing folder, split or column
        raise UsageError(str(exc)) from None


def add_materialize(sub: Any) -> None:
    p = sub.add_parser(
        "materialize",
        help="write the corruption of whole epochs to Parquet (one row per example)",
        description="Write each epoch's corrupted examples as Parquet shards with a manifest; "
        "objspec.materialize.load_epoch reads them back into the live collator's batches, "
        "bit for bit. Objectives whose rows depend on their batch are refused.",
    )
    p.add_argument("spec", help="an .objspec file or a bundled spec name")
    p.add_argument("--out", required=True, help="the output folder (epoch-<e>/ under it)")
    p.add_argument(
        "--epochs",
        type=epochs,
        default=[0],
        help="a count N (epochs 0..N-1) or a list 0,1,2; '5,' is epoch 5 alone (default: 1, "
        "epoch 0)",
    )
    p.add_argument(
        "--seed", type=integer(0, SEED_MAX), default=0, help="the collator's seed (default: 0)"
    )
    p.add_argument(
        "--tokenizer",
        default=None,
        help="a tokenizer.json or a Hugging Face tokenizer folder (fast); default: the bundled "
        "WordPiece tokenizer",
    )
    p.add_argument(
        "--max-length", type=LENGTH, default=64, help="tokens per example row (default: 64)"
    )
    add_corpus_arguments(p)
    p.add_argument("--split", default="train", help="the DatasetDict split (default: train)")
    p.add_argument(
        "--num-proc",
        type=integer(1, 256),
        default=1,
        help="datasets.map processes (default: 1); the output is the same for any count",
    )
    p.add_argument(
        "--batch-size",
        type=POSITIVE,
        default=256,
        help="examples corrupted at once (default: 256); the output is the same for any size",
    )
    p.add_argument(
        "--rows-per-shard",
        type=POSITIVE,
        default=100_000,
        help="rows per Parquet file (default: 100000)",
    )
    p.set_defaults(run=cmd_materialize)
