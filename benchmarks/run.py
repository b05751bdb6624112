"""Throughput of compiled collators against their incumbents, side by side in one run.

    python -m benchmarks.run                 # CPU, one thread, B=64, L in {128, 512}
    python -m benchmarks.run --device cuda   # the same on a GPU (CUDA events)
    python -m benchmarks.run --quick         # tiny sizes, a smoke run

Each pair times the same batch through ours and the incumbent: the median of repeated runs after
warm-up, the spread (interquartile range over the median), tokens per second (B x L / seconds),
and the ratio. The int64 copy of the batch is the memory-bandwidth bound of any collator that
reads and writes its input once. Results go to docs/benchmarks.md (and a PNG of the ratios when
matplotlib is installed: ``pip install objspec[bench]``).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch._inductor import metrics as inductor_metrics
from torch.utils._python_dispatch import TorchDispatchMode

import objspec
from benchmarks.references import bart_collate, fim_collate, spanbert_collate, t5_span_collate
from objspec import bundled
from objspec.runtime import Vocab, read_batch, use_compiled_hash, xlnet_inputs
from objspec.runtime.fused import toolchain_reason

ROOT = Path(__file__).resolve().parent.parent
FUSED_SPECS = ("bert_mlm", "spanbert", "t5_span", "bart", "xlnet_sparse")
FALLBACKS: dict[str, str] = {}  # fused specs that ran eager in this run, and why
FUSED_NAMES = {  # pair -> the spec of its fused row
    "MLM 80/10/10": "bert_mlm",
    "SpanBERT spans + 80/10/10": "spanbert",
    "T5 span corruption": "t5_span",
    "BART infilling + permutation": "bart",
    "XLNet PLM (sparse perm_order, target_positions)": "xlnet_sparse",
}
SPAN_REF = "per-example SpanBERT reference"
T5_REF = "per-example T5 reference (numpy port)"
BART_REF = "per-example fairseq-style reference"


@dataclass(frozen=True)
class Timing:
    median_s: float
    spread: float  # interquartile range / median


@dataclass(frozen=True)
class Row:
    pair: str
    form: str
    length: int
    ours: Timing
    theirs: Timing | None
    incumbent: str
    tokens: int
    out_bytes: int  # the bytes of one batch of our outputs
    peak_bytes: int | None  # CUDA: the most memory one call of ours holds at once
    ops: int | None  # aten ops one call of ours dispatches (None: not counted)
    batch: int
    compile_s: float | None = None  # fused: the first call (trace + compile), not timed above
    kernels: int | None = None  # fused: the kernels inductor generated for the corruption

    @property
    def ratio(self) -> float | None:
        return None if self.theirs is None else self.theirs.median_s / self.ours.median_s


def time_it(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> Timing:
    """Median and spread of ``repeats`` calls after ``warmup`` calls (CUDA events on a GPU)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    median = statistics.median(times)
    return Timing(median, (q[2] - q[0]) / median if median else 0.0)


def output_bytes(out: Any) -> int:
    """The bytes of a collator's outputs (a dict of tensors, or one tensor)."""
    values = out.values() if isinstance(out, dict) else [out]
    return sum(t.numel() * t.element_size() for t in values if isinstance(t, torch.Tensor))


def peak_bytes(fn: Callable[[], Any], device: torch.device) -> int | None:
    """CUDA: the peak memory allocated during one call, above what was held before it. CPU:
    None (PyTorch keeps no peak statistics for host memory)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


class _OpCounter(TorchDispatchMode):
    """Counts the aten ops that reach the kernels (composite ops as their parts)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops += 1
        return func(*args, **(kwargs or {}))


def op_count(fn: Callable[[], Any]) -> int:
    """The aten ops one call of ``fn`` dispatches: on one CPU thread each costs microseconds
    whatever its size."""
    with _OpCounter() as counter:
        fn()
    return counter.ops


def corpus_rows(tokenizer: Any, batch: int, length: int) -> list[list[int]]:
    """``batch`` rows of ``length`` tokens ([CLS] ... [SEP]) cut from the bundled corpus."""
    text = " ".join(s for doc in bundled.load_documents() for s in doc)
    stream = tokenizer.encode(text, add_special_tokens=False).ids
    body = length - 2
    need = batch * body
    stream = (stream * (need // len(stream) + 1))[:need]
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    return [[cls, *stream[i * body : (i + 1) * body], sep] for i in range(batch)]


def word_ids(rows: list[list[int]], vocab: Vocab) -> list[list[int]]:
    """Per-token word indices from the vocabulary's word-start table (-1 at specials)."""
    assert vocab.word_start is not None
    special = set(vocab.special_ids)
    out = []
    for row in rows:
        ids, word = [], -1
        for t in row:
            if t in special:
                ids.append(-1)
                continue
            word += vocab.word_start[t]
            ids.append(word)
        out.append(ids)
    return out


def sentence_ids(rows: list[list[int]], full_stop: int) -> list[list[int]]:
    """Per-token sentence indices, a sentence ending at each full stop (-1 at [CLS]/[SEP])."""
    out = []
    for row in rows:
        ids, sentence = [-1], 0
        for t in row[1:-1]:
            ids.append(sentence)
            sentence += t == full_stop
        out.append([*ids, -1])
    return out


def offsets(rows: list[list[int]], vocab: Vocab) -> list[list[tuple[int, int]]]:
    """Offsets consistent with the word starts (a word start leaves a one-character gap)."""
    assert vocab.word_start is not None
    special = set(vocab.special_ids)
    out = []
    for row in rows:
        pos, offs = 0, []
        for t in row:
            if t in special:
                offs.append((0, 0))
                continue
            pos += 1 if vocab.word_start[t] else 0
            offs.append((pos, pos + 2))
            pos += 2
        out.append(offs)
    return out


def run(
    device: torch.device,
    batch: int,
    lengths: list[int],
    warmup: int,
    repeats: int,
    only: set[tuple[str, str]] | None = None,
) -> list[Row]:
    """Time every pair (or the (name, form) pairs in ``only``) at each length."""
    from transformers import (
        DataCollatorForLanguageModeling,
        DataCollatorForPermutationLanguageModeling,
        DataCollatorWithFlattening,
    )

    torch.set_num_threads(1)
    hf_tok = bundled.load_hf_tokenizer()
    tokenizer = bundled.load_tokenizer()
    vocab = Vocab.from_tokenizer(tokenizer)
    specs = ROOT / "specs"
    mlm = objspec.compile_file(specs / "bert_mlm.objspec").Collator(vocab, seed=0, device=device)
    wwm = objspec.compile_file(specs / "wwm.objspec").Collator(vocab, seed=0, device=device)
    span = objspec.compile_file(specs / "spanbert.objspec").Collator(vocab, seed=0, device=device)
    t5 = objspec.compile_file(specs / "t5_span.objspec").Collator(vocab, seed=0, device=device)
    bart = objspec.compile_file(specs / "bart.objspec").Collator(vocab, seed=0, device=device)
    xlnet = objspec.compile_file(specs / "xlnet.objspec").Collator(vocab, seed=0, device=device)
    xlnet_sparse = objspec.compile_file(specs / "xlnet_sparse.objspec").Collator(
        vocab, seed=0, device=device
    )
    fim_tokens = ("<fim_prefix>", "<fim_middle>", "<fim_suffix>")
    fim_vocab = Vocab.from_tokenizer(
        bundled.with_special_tokens(bundled.load_tokenizer(), fim_tokens)
    )
    fim = objspec.compile_file(specs / "fim.objspec").Collator(fim_vocab, seed=0, device=device)
    causal = objspec.compile_file(specs / "causal_lm.objspec")
    packed = causal.Collator(vocab, seed=0, device=device, pack="flat")
    hf_flat = DataCollatorWithFlattening(return_flash_attn_kwargs=True, return_seq_idx=True)
    prefix_id, middle_id, suffix_id = (fim_vocab.id_of(t) for t in fim_tokens)
    fim_ids = (prefix_id, middle_id, suffix_id)
    fused = {  # the same specs with fused=True (runtime/fused.py), where a compiler exists
        name: objspec.compile_file(specs / f"{name}.objspec").Collator(
            vocab, seed=0, device=device, fused=True
        )
        for name in FUSED_SPECS
    }
    for collator in (mlm, wwm, span, t5, bart, xlnet, xlnet_sparse, fim, packed, *fused.values()):
        collator.set_epoch(0)  # told, as in training: no watch for a forgotten epoch
    fused_reason = toolchain_reason(device)
    hf_plm = DataCollatorForPermutationLanguageModeling(
        hf_tok, plm_probability=1 / 6, max_span_length=5
    )
    full_stop = tokenizer.token_to_id(".")
    if full_stop is None:
        raise SystemExit("the tokenizer has no '.' token to find sentences by")
    word_start_table = torch.tensor(vocab.word_start or ())
    hf_mlm = DataCollatorForLanguageModeling(hf_tok, mlm_probability=0.15)
    hf_wwm = DataCollatorForLanguageModeling(hf_tok, mlm_probability=0.15, whole_word_mask=True)
    special = set(vocab.special_ids)
    word_start = list(vocab.word_start or ())
    mask_id = vocab.require("mask")
    results: list[Row] = []

    def at_length(length: int) -> None:
        rows = corpus_rows(tokenizer, batch, length)
        words = word_ids(rows, vocab)
        listed = [{"input_ids": r, "index": i} for i, r in enumerate(rows)]
        listed_words = [{**e, "word_ids": w} for e, w in zip(listed, words, strict=True)]
        hf_listed = [{"input_ids": r} for r in rows]
        hf_offsets = [
            {"input_ids": r, "offset_mapping": o}
            for r, o in zip(rows, offsets(rows, vocab), strict=True)
        ]
        ids = torch.tensor(rows, device=device)
        padded = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "index": torch.arange(batch, device=device),
        }
        padded_words = {**padded, "word_ids": torch.tensor(words, device=device)}
        specials = torch.isin(ids, torch.tensor(sorted(special), device=device))
        tokens = batch * length

        def pair(
            name: str,
            form: str,
            ours: Callable[[], Any],
            theirs: Callable[[], Any] | None,
            incumbent: str,
            count_ops: bool = True,
        ) -> None:
            if only is not None and (name, form) not in only:
                return
            results.append(
                Row(
                    name,
                    form,
                    length,
                    time_it(ours, device, warmup, repeats),
                    time_it(theirs, device, warmup, repeats) if theirs else None,
                    incumbent,
                    tokens,
                    output_bytes(ours()),
                    peak_bytes(ours, device),
                    op_count(ours) if count_ops else None,
                    batch,
                )
            )

        def hf_mask() -> Any:
            return hf_mlm.torch_mask_tokens(ids.clone(), special_tokens_mask=specials)

        def fused_pair(
            spec: str,
            name: str,
            given: Any,
            theirs: Callable[[], Any],
            incumbent: str,
        ) -> None:
            """A fused row: its first call (trace and compile) timed apart and left out of the
            throughput; the row is written only where the corruption traced whole (else the
            collator ran eager, and a note says why)."""
            collator = fused[spec]
            row_name = f"{name}, fused (torch.compile)"
            if only is not None and (row_name, "padded") not in only:
                return
            before = inductor_metrics.generated_kernel_count
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                collator(given)
            compile_s = time.perf_counter() - t0
            kernels = inductor_metrics.generated_kernel_count - before
            reason = collator._fuser.reason
            if reason is not None:
                FALLBACKS[spec] = reason
                return

            def ours() -> Any:
                return collator(given)

            results.append(
                Row(
                    row_name,
                    "padded",
                    length,
                    time_it(ours, device, warmup, repeats),
                    time_it(theirs, device, warmup, repeats),
                    incumbent,
                    tokens,
                    output_bytes(ours()),
                    peak_bytes(ours, device),
                    None,
                    batch,
                    compile_s,
                    kernels,
                )
            )

        pair("int64 copy (bandwidth bound)", "padded", lambda: ids.clone(), None, "")

        def read(given: Any) -> torch.Tensor:  # every collator's first step
            return read_batch(given, vocab.pad_id, vocab_size=vocab.size).input_ids

        for form, given in (("padded", padded), ("list", listed)):
            pair(
                "batch read: id checks, example keys, alignment",
                form,
                partial(read, given),
                None,
                "",
            )
        pair(
            "MLM 80/10/10",
            "padded",
            lambda: mlm(padded),
            lambda: hf_mlm.torch_mask_tokens(ids.clone(), special_tokens_mask=specials),
            "HF torch_mask_tokens",
        )
        pair(
            "MLM 80/10/10",
            "list",
            lambda: mlm(listed),
            lambda: hf_mlm(hf_listed),
            "HF DataCollatorForLanguageModeling",
        )
        pair(
            "whole-word MLM",
            "list",
            lambda: wwm(listed_words),
            lambda: hf_wwm(hf_offsets),
            "HF whole_word_mask=True",
        )

        def ref() -> dict[str, torch.Tensor]:
            return spanbert_collate(
                rows,
                word_start,
                special,
                mask_id=mask_id,
                pad_id=0,
                vocab_size=vocab.size,
            )

        pair(
            "SpanBERT spans + 80/10/10",
            "padded",
            lambda: span(padded_words),
            ref,
            "per-example SpanBERT reference",
        )
        pair(
            "SpanBERT spans + 80/10/10",
            "list",
            lambda: span(listed_words),
            ref,
            "per-example SpanBERT reference",
        )

        def t5_ref() -> dict[str, torch.Tensor]:
            return t5_span_collate(
                rows, special, vocab_size=vocab.size, eos_id=vocab.require("sep"), pad_id=0
            )

        for form, t5_in in (("padded", padded), ("list", listed)):
            pair(
                "T5 span corruption",
                form,
                partial(t5, t5_in),
                t5_ref,
                "per-example T5 reference (numpy port)",
            )
        sentences = sentence_ids(rows, full_stop)
        listed_docs = [
            {**e, "sentence_ids": s} for e, s in zip(listed_words, sentences, strict=True)
        ]
        padded_docs = {**padded_words, "sentence_ids": torch.tensor(sentences, device=device)}

        def bart_ref() -> dict[str, torch.Tensor]:
            return bart_collate(
                rows, word_start_table, full_stop, mask_id=mask_id, pad_id=0, vocab_size=vocab.size
            )

        for form, docs in (("padded", padded_docs), ("list", listed_docs)):
            pair(
                "BART infilling + permutation",
                form,
                partial(bart, docs),
                bart_ref,
                "per-example fairseq-style reference",
            )

        if shutil.which("c++") or shutil.which("g++"):  # torch.compile's CPU backend needs one
            use_compiled_hash(True)  # the opt-in path, measured side by side; then back to eager
            try:
                pair(
                    "MLM 80/10/10, hash fused by torch.compile",
                    "padded",
                    lambda: mlm(padded),
                    lambda: hf_mlm.torch_mask_tokens(ids.clone(), special_tokens_mask=specials),
                    "HF torch_mask_tokens",
                    count_ops=False,  # a dispatch mode would see the eager ops, not the kernel
                )
            finally:
                use_compiled_hash(False)
        if fused_reason is None:
            fused_pairs = (
                ("bert_mlm", "MLM 80/10/10", padded, hf_mask, "HF torch_mask_tokens"),
                ("spanbert", "SpanBERT spans + 80/10/10", padded_words, ref, SPAN_REF),
                ("t5_span", "T5 span corruption", padded, t5_ref, T5_REF),
                ("bart", "BART infilling + permutation", padded_docs, bart_ref, BART_REF),
                (
                    "xlnet_sparse",
                    "XLNet PLM (sparse perm_order, target_positions)",
                    padded,
                    lambda: hf_plm.torch_mask_tokens(ids.clone()),
                    "HF PLM torch_mask_tokens",
                ),
            )
            for spec, name, given, theirs, incumbent in fused_pairs:
                fused_pair(spec, name, given, theirs, incumbent)
        pair(
            "causal LM, packed padding-free (pack='flat')",
            "list",
            lambda: packed(listed),
            lambda: hf_flat(hf_listed),
            "HF DataCollatorWithFlattening",
        )
        pair(
            "fill-in-the-middle (50%, PSM/SPM)",
            "list",
            lambda: fim(listed),
            lambda: fim_collate(rows, fim_ids, eos_id=vocab.require("sep"), pad_id=0),
            "per-example FIM reference (bigcode's permute, token-level)",
        )
        pair(
            "(B, L, L) float32 x 2 write (dense PLM bound)",
            "padded",
            lambda: torch.ones((2, batch, length, length), device=device),
            None,
            "",
        )
        pair(
            "XLNet PLM (dense perm_mask, target_mapping)",
            "padded",
            lambda: xlnet(padded),
            lambda: hf_plm.torch_mask_tokens(ids.clone()),
            "HF PLM torch_mask_tokens",
        )
        pair(
            "XLNet PLM (dense perm_mask, target_mapping)",
            "list",
            lambda: xlnet(listed),
            lambda: hf_plm(hf_listed),
            "HF DataCollatorForPermutationLanguageModeling",
        )
        pair(
            "XLNet PLM (sparse perm_order, target_positions)",
            "padded",
            lambda: xlnet_sparse(padded),
            lambda: hf_plm.torch_mask_tokens(ids.clone()),
            "HF PLM torch_mask_tokens",
        )
        pair(
            "XLNet PLM (sparse, then expanded by rt.xlnet_inputs)",
            "padded",
            lambda: xlnet_inputs(xlnet_sparse(padded)),
            lambda: hf_plm.torch_mask_tokens(ids.clone()),
            "HF PLM torch_mask_tokens",
        )
        pair(
            "XLNet PLM (sparse perm_order, target_positions)",
            "list",
            lambda: xlnet_sparse(listed),
            lambda: hf_plm(hf_listed),
            "HF DataCollatorForPermutationLanguageModeling",
        )

    for length in lengths:
        at_length(length)
    return results


def render(
    results: list[Row], device: torch.device, batch: int, scaling: list[Row] | None = None
) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {platform.system()} {cpu}, {torch.get_num_threads()} torch thread(s), "
        f"device `{device}`"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
        + f", torch {torch.__version__}, B={batch}.",
        "",
        "Regenerate with `make bench` (CPU) or `python -m benchmarks.run --device cuda`.",
        "Median of repeated runs after warm-up; spread = interquartile range / median;",
        "ratio = incumbent time / our time (above 1: ours is faster).",
        "",
        "| objective | input | L | ours (M tok/s) | spread | incumbent | theirs (M tok/s) "
        "| ratio | batch out (MB) | peak (MB) | ops |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        peak = f"{r.peak_bytes / 1e6:.2f}" if r.peak_bytes is not None else "n/a"
        lines.append(
            f"| {r.pair} | {r.form} | {r.length} | {_speeds(r)} | "
            f"{r.out_bytes / 1e6:.2f} | {peak} | {r.ops if r.ops is not None else 'n/a'} |"
        )
    if scaling:
        lines += [
            "",
            "## Batch size",
            "",
            f"Some pairs again at L={scaling[0].length} and larger batches (same machine, same"
            " run): our ops per call (above) do not grow with B, the incumbents' work does.",
            "",
            "| objective | input | B | ours (M tok/s) | spread | incumbent | theirs (M tok/s) "
            "| ratio |",
            "|---|---|---:|---:|---:|---|---:|---:|",
        ]
        lines += [f"| {r.pair} | {r.form} | {r.batch} | {_speeds(r)} |" for r in scaling]
    return "\n".join(lines + fused_table(results) + goals_table(results) + NOTES) + "\n"


FUSED_SUFFIX = ", fused (torch.compile)"


def fused_table(results: list[Row]) -> list[str]:
    """Each fused row beside the eager row of the same pair, input and length (same run), with
    its one-time compile and the kernels inductor generated."""
    eager = {(r.pair, r.form, r.length): r for r in results}
    lines = [
        "",
        "## Fused (`Collator(..., fused=True)`)",
        "",
        "The corruption (after the batch read, before pass-through and padding) through",
        "`torch.compile(fullgraph=True)`, inductor's C++/OpenMP kernels on CPU, the same bits as",
        "eager (tests/test_fused.py). Compile = the first call of a shape (trace, compile and",
        "one eager warm-up run), timed apart and left out of every throughput above. Kernels =",
        "those inductor generated for the corruption. Fused / eager = eager time / fused time.",
        "",
        "Use: `Collator(vocab, fused=True, pad_to_multiple_of=64)` (the multiple buckets the",
        "widths, so a run compiles once per bucket and batch size). Every bundled spec, in",
        "every output form, traces whole (tests/test_fused.py). Without a C++ compiler, or",
        "where a step does not trace (a user's own runtime function with a host read), it",
        "warns once and runs eager, the same batches.",
        "",
        "| objective | input | L | eager (M tok/s) | fused (M tok/s) | fused / eager "
        "| compile (s) | kernels | eager ops |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if not r.pair.endswith(FUSED_SUFFIX):
            continue
        base = eager.get((r.pair.removesuffix(FUSED_SUFFIX), r.form, r.length))
        if base is None:
            continue
        lines.append(
            f"| {base.pair} | {r.form} | {r.length} | {r.tokens / base.ours.median_s / 1e6:.2f} "
            f"| {r.tokens / r.ours.median_s / 1e6:.2f} "
            f"| {base.ours.median_s / r.ours.median_s:.2f}x "
            f"| {r.compile_s or 0.0:.1f} | {r.kernels} | {base.ops} |"
        )
    for spec, reason in sorted(FALLBACKS.items()):
        short = reason.split("(unhinted")[0][:160].rstrip()
        lines.append(f"\n- `{spec}`: fused=True ran eager in this run (not traced whole): {short}")
    return lines


GOALS = {  # (pair, input) -> the throughput issue's goal ratio at (L=128, L=512)
    ("MLM 80/10/10", "padded"): (2, 2),
    ("MLM 80/10/10", "list"): (3, 3),
    ("SpanBERT spans + 80/10/10", "padded"): (20, 10),
    ("T5 span corruption", "padded"): (20, 10),
    ("BART infilling + permutation", "padded"): (30, 30),
    ("XLNet PLM (sparse perm_order, target_positions)", "padded"): (30, 30),
    ("MLM 80/10/10, fused (torch.compile)", "padded"): (2, 2),
    ("SpanBERT spans + 80/10/10, fused (torch.compile)", "padded"): (5, 10),
    ("T5 span corruption, fused (torch.compile)", "padded"): (20, 10),
    ("BART infilling + permutation, fused (torch.compile)", "padded"): (30, 30),
}
COPY_ROW = "int64 copy (bandwidth bound)"
BANDWIDTH_GOAL = ("MLM 80/10/10, fused (torch.compile)", 512, 0.10)  # of the copy bound


def goals_table(results: list[Row]) -> list[str]:
    """Each goal against this run: met or not, and, as ours runs a fixed sequence of ops, the
    time per op ours takes and the time per op the goal would leave."""
    lines = [
        "",
        "## Goals",
        "",
        "Ours per op = our time per batch / ops; the goal's per op = the incumbent's time / the",
        "goal ratio / ops: what each op could take if the op count stayed as it is (fused rows:",
        "per generated kernel; the host-side batch read and layout ops are outside them).",
        "",
        "| objective | input | L | goal | ratio | met | ours per op (µs) | goal's per op (µs) |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in results:
        goal = GOALS.get((r.pair, r.form))
        if goal is None or r.ratio is None or r.length not in (128, 512):
            continue
        want = goal[0] if r.length == 128 else goal[1]
        ops = r.ops or r.kernels  # fused rows: per kernel
        ours = f"{r.ours.median_s / ops * 1e6:.2f}" if ops else "n/a"
        needed = f"{r.theirs.median_s / want / ops * 1e6:.2f}" if r.theirs and ops else "n/a"
        lines.append(
            f"| {r.pair} | {r.form} | {r.length} | {want}x | {r.ratio:.2f}x | "
            f"{'yes' if r.ratio >= want else 'no'} | {ours} | {needed} |"
        )
    pair, length, share = BANDWIDTH_GOAL
    copy = next((r for r in results if r.pair == COPY_ROW and r.length == length), None)
    mlm = next((r for r in results if r.pair == pair and r.length == length), None)
    if copy is not None and mlm is not None:
        got = copy.ours.median_s / mlm.ours.median_s
        lines += [
            "",
            f"{pair}, L={length}: {got:.1%} of the int64 copy bound (goal {share:.0%}: "
            f"{'met' if got >= share else 'not met'}).",
        ]
    return lines


def _speeds(r: Row) -> str:
    """ours | spread | incumbent | theirs | ratio, as table cells."""
    ours = r.tokens / r.ours.median_s / 1e6
    theirs = f"{r.tokens / r.theirs.median_s / 1e6:.2f}" if r.theirs else ""
    ratio = f"{r.ratio:.2f}x" if r.ratio else ""
    return f"{ours:.2f} | {r.ours.spread:.0%} | {r.incumbent} | {theirs} | {ratio}"


NOTES = [
    "",
    "Notes on what is compared:",
    "",
    "- Batch read: every collator of ours first checks its input (ids inside the vocabulary,",
    "  integer dtypes, 0/1 masks without holes), left-aligns the rows and makes each example's",
    "  key from its index and its tokens (so that padding side and width, and colliding",
    "  indices, change nothing). The 'batch read' rows time that step alone: about 34 ops,",
    "  which the MLM rows include. The incumbents check nothing and key nothing.",
    "- MLM, padded: HF's `torch_mask_tokens` gets a precomputed `special_tokens_mask` and draws",
    "  from torch's global generator. Ours finds the candidates from the vocabulary and keys",
    "  every draw by (seed, epoch, example key), so it is batch-invariant and resumable.",
    "- Causal LM, packed: HF's `DataCollatorWithFlattening` concatenates the lists in Python",
    "  and writes `position_ids`, `cu_seq_lens_q/k`, `max_length_q/k` and `seq_idx`; ours",
    "  (`pack='flat'`) reads and checks the rows, appends the end-of-text target, packs them",
    "  and writes the same keys plus `document_ids`.",
    "- Fill-in-the-middle: the incumbent is bigcode's per-document `permute` (token-level,",
    "  the same rates), Python slicing per row, cheap at B=64; ours is a fixed sequence of",
    "  ops over the whole batch, the same draws on any device and batch.",
    "- MLM, list: both pad the same list of dicts into tensors, then mask.",
    "- Whole-word, list: HF (5.x) selects 15% of words i.i.d. and masks 100% of them, with words",
    "  taken from `offset_mapping`. Ours fills an exact token budget with whole words and applies",
    "  80/10/10 per token (Google's whole-word masking), with words taken from `word_ids`.",
    "- SpanBERT: the incumbent is a per-example loop written from SpanBERT's `masking.py`",
    "  (`benchmarks/references.py`).",
    "- T5 span corruption: the incumbent is a numpy port of T5's `random_spans_noise_mask` run",
    "  per row (as HF's Flax `FlaxDataCollatorForT5MLM` does), then sentinels and padding in",
    "  Python. HF's own collator needs equal-length rows and has no PyTorch form.",
    "- BART: the incumbent follows fairseq's `DenoisingDataset` per example (sentence",
    "  permutation at full stops, whole-word span-Poisson masking with replace_length=1 and",
    "  insertions), with torch's global RNG; both start from the same lists. Ours reads",
    "  sentences from `sentence_ids`, which the benchmark derives from the same full stops.",
    "- The per-example references (SpanBERT, T5, BART) have no padded-tensor form: in the",
    "  padded rows they are timed from the same lists.",
    "- XLNet: HF's `DataCollatorForPermutationLanguageModeling` (plm_probability 1/6, spans up",
    "  to 5), from lists and, padded, its `torch_mask_tokens` alone. In the dense rows both",
    "  write `perm_mask` and `target_mapping` as (B, L, L) float32 (ours also writes",
    "  `target_positions`); the bound row times writing those two tensors (`torch.ones`, so",
    "  every page is touched). The sparse rows (`specs/xlnet_sparse.objspec`) draw the same",
    "  targets and order and write them as `perm_order` (B, L) and `target_positions` (B, P);",
    "  the model's device expands them (`rt.xlnet_inputs`, or `rt.encode` for our heads).",
    "  The row 'then expanded by rt.xlnet_inputs' adds that expansion on the same device, for",
    "  a pipeline that has to hand HF's model dense tensors from the collator's side.",
    "",
    "Batch out is the bytes of one batch of our outputs. Peak memory is measured on CUDA",
    "(`max_memory_allocated` during one call); PyTorch keeps no peak statistics for host memory,",
    "so it reads n/a on CPU. Only the (B, L, L) attention outputs grow with L squared. Ops is",
    "the number of aten ops one call of ours dispatches (as a `TorchDispatchMode` sees them);",
    "it does not grow with B (a few data-dependent steps, such as rounds of span-length",
    "draws, can add some).",
    "",
    "Where the goals of the throughput issue are not met, and why:",
    "",
    "- One CPU thread: a collator is a fixed sequence of tensor ops (the ops column), each a",
    "  pass over (B, L) or smaller int64 tensors. Each op costs a fixed few microseconds",
    "  (dispatch, allocation) plus its work, a fraction of a nanosecond per element. The goals",
    "  table sets our time per op beside the time per op each goal would leave: for the span",
    "  objectives (exact budgets, whole words, spans kept apart, every decision a counter-keyed",
    "  draw) the goals at B=64 leave about what one eager PyTorch op costs here on a tensor of",
    "  one element (about 2 microseconds when measured on 2026-11-25), or less.",
    "- The batch-size table separates the two costs. As B grows the fixed part shrinks per",
    "  token and the ratios grow (T5 and BART most), until the per-element work dominates: the",
    "  span collators touch every position in every pass, while the per-example references",
    "  touch little more than the tokens they mask (15% for SpanBERT), so SpanBERT stays",
    "  within a few times of its reference even at B=1024.",
    "- Every random decision is a 32-bit hash of (seed, epoch, example, stream, position),",
    "  about ten integer ops per draw; that is the price of batch invariance, exact resume and",
    "  CPU/GPU agreement, which the incumbents (torch's global generator, Python's `random`) do",
    "  not offer. MLM spends most of its time in three such draws (selection, action, random",
    "  token).",
    "- XLNet's dense layout at L=512 is bound by writing its (B, L, L) outputs (see the bound",
    "  row), as HF's collator is; the sparse layout writes O(L) per row.",
    "- Fused rows (`Collator(..., fused=True)`, runtime/fused.py): the generated `corrupt()`",
    "  compiled whole by `torch.compile(fullgraph=True, dynamic=False)`; the kernels take",
    "  static widths from the row length when traced (no `nonzero`, no host reads, one static",
    "  round of span lengths, six of whole words' first-fit, pair rows two rows wide), the",
    "  same bits as eager; a bound a batch exceeds is seen on the host and that batch is",
    "  redone eager. What stays outside the compiled part is",
    "  the host side of every call: the batch read (its own rows above), the example keys,",
    "  pass-through, padding, and, for rewriting objectives, one host read per output group to",
    "  cut the static width to the longest row (the width eager gives). At B=64 that host side",
    "  is most of a fused MLM call, so it bounds MLM's fused ratios: the 'batch read' rows",
    "  time it. Measured apart on this machine (2026-11-28, L=128, B=64, one thread): batch",
    "  read 0.20 ms; MLM's corruption 0.30 ms eager, 0.07 ms fused (one kernel). HF's",
    "  `torch_mask_tokens` takes about 0.4 ms there, so MLM's 2x goal at L=128 would need",
    "  the batch read itself (about 34 eager ops of checks and keys) under 0.1 ms.",
    "- The span objectives' fused graphs take their static widths from bounds of the",
    "  budget and of T5's counts (`rt.budget_bound`, `full_row_counts`: the most a row of L",
    "  columns can get, checked on the host, a row over a bound redone eager), no longer from",
    "  the row length: no full-row top-k or sort of span slots. A rewrite is L+1 wide where",
    "  it only drops tokens (BART's deletions; its insertions then 2L+2) and 2L+1 where it",
    "  also inserts (T5's sentinels). Runs on this machine vary by up to about 1.5x between",
    "  repeats of the whole harness (a shared 2-core machine).",
    "- What bounds the fused CPU rows, measured apart (2026-11-28, one thread, B=64, L=512):",
    "  inductor's C++ for this integer and boolean code is slower per element than torch's",
    "  eager kernels. A compiled `first.long() + keep.long()` took 69 µs against 31 µs for the",
    "  three eager ops (an empty compiled call: 23 µs); T5's two rewrites (a cumulative sum and",
    "  two scatters each) took 1.1 to 1.5 ms compiled against 0.53 to 0.58 ms eager; sorts,",
    "  top-k and cumulative sums stay library calls inside the graph. So fusing saves the",
    "  eager ops' fixed costs, which dominate at short rows, and not the passes over the",
    "  elements: the rewriting objectives (T5, BART), whose kernels are mostly such passes,",
    "  gain little or lose against eager on this CPU (the table above; two runs on",
    "  2026-11-28 put T5 at 1.25x / 0.80x and 0.77x / 1.04x at L=128 / 512). Segmented scans",
    "  in place of sorts, and the GPU (Triton) figures, are the remaining work.",
    "- A compiled batch read (the checks and example keys as one fused graph, tried on",
    "  2026-11-28, L=128, B=64, with another job on the machine) took 0.28 ms against the",
    "  eager read's 0.20 ms: at this size the compiled call's fixed cost (guards, dispatch)",
    "  exceeds the passes it saves, so the read stays eager.",
    "- Compile (s) is the first call of each shape in this process; inductor's on-disk cache",
    "  keeps kernels between runs (MLM's 0.2 s here followed earlier runs of the same graph), so",
    "  a cold compile is longer.",
    "- `objspec.runtime.use_compiled_hash()` compiles the hash alone (opt-in, the same bits),",
    "  measured in its own rows: it pays on long rows and costs on short ones.",
]


def plot(results: list[Row], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    bars = [(f"{r.pair}\n{r.form}, L={r.length}", ratio) for r in results if (ratio := r.ratio)]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(bars) + 1))
    ax.barh([label for label, _ in bars], [ratio for _, ratio in bars])
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("speed-up over the incumbent (log scale)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


SCALED = {  # the pairs timed again at larger batches
    ("MLM 80/10/10", "padded"),
    ("SpanBERT spans + 80/10/10", "padded"),
    ("T5 span corruption", "padded"),
    ("BART infilling + permutation", "padded"),
    ("XLNet PLM (sparse perm_order, target_positions)", "padded"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--scaling", type=int, nargs="*", default=[256, 1024], help="larger batches, first L"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes; nothing written")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.quick:
        args.batch, args.lengths, args.repeats, args.warmup, args.scaling = 4, [16], 2, 1, [8]
    results = run(device, args.batch, args.lengths, args.warmup, args.repeats)
    scaling = []
    for batch in args.scaling:
        scaling += run(device, batch, args.lengths[:1], args.warmup, args.repeats, SCALED)
    text = render(results, device, args.batch, scaling)
    print(text)
    if not args.quick:
        out = Path(args.out)
        out.write_text(text, encoding="utf-8")
        if plot(results, out.with_suffix(".png")):
            with out.open("a", encoding="utf-8") as f:
                f.write(f"\n![speed-up over the incumbents]({out.with_suffix('.png').name})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
