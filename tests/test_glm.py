"""GLM's autoregressive blank infilling (Du et al., 2022; specs/glm.objspec): the syntax and its
located errors, the kernel on a hand-checked row, objspec's own checks ('blanks',
'blank_positions', 'block_order') on the compiled collator and, to show they bite, on broken
ones; the 2D positions reaching the tiny model; packing refused; training through the pretrain
loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from objspec import bundled, compile_spec
from objspec import runtime as rt
from objspec.checks import CHECKS, applicable, run_check
from objspec.ir import GLM_TOKENS
from objspec.parser import parse_file, parse_spec
from objspec.runtime import IGNORE_INDEX, BatchError, TinyEncoder, Vocab
from objspec.runtime.rng import Keys
from tests.spec_tools import broken, compiled, spec_error

SPECS = Path(__file__).resolve().parent.parent / "specs"
GLM = (SPECS / "glm.objspec").read_text()
BY_NAME = {c.name: c for c in CHECKS}
PREDICT = 'predict   spans as blanks, shuffled, tokens ["<|startofpiece|>", "<|endofpiece|>"]'

pytestmark = pytest.mark.usefixtures("one_thread")


def line_of(prefix: str, text: str = GLM) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(prefix))


# --- the language ------------------------------------------------------------------------------


def test_glm_parses_to_shuffled_blanks() -> None:
    spec = parse_spec(GLM)
    assert PREDICT in GLM
    assert spec.predict.target == "blanks" and spec.predict.shuffled
    assert spec.predict.tokens == GLM_TOKENS
    table = spec.select.length.table
    assert (table.low, table.high) == (1, 39)
    assert spec.select.budget.of == "all_tokens" and spec.select.budget.rounding == "floor"
    glm = compiled("glm")
    assert glm.Collator.outputs == (
        "input_ids",
        "attention_mask",
        "labels",
        "prefix_mask",
        "position_ids",
        "block_position_ids",
    )
    assert glm.Collator.modes == GLM_TOKENS and glm.Collator.needs == ("mask",)
    assert "STREAM_BLOCK_ORDER = 31" in glm.source
    unshuffled = compile_spec(GLM.replace("blanks, shuffled,", "blanks,"))
    assert "STREAM_BLOCK_ORDER" not in unshuffled.source


@pytest.mark.parametrize(
    ("old", "new", "message", "prefix"),
    [
        (PREDICT, "predict   spans as blanks, sorted", "unexpected clause", "  predict"),
        (PREDICT, 'predict   spans as blanks, tokens ["<a>"]', "two quoted strings", "  predict"),
        (PREDICT, 'predict   spans as blanks, tokens ["<a>", "<a>"]', "must differ", "  predict"),
        (PREDICT, 'predict   spans as blanks, tokens [" a", "b"]', "surrounding", "  predict"),
        (PREDICT, "predict   spans as sentinels, shuffled", "takes no options", "  predict"),
        ("attention prefix", "attention causal", "bidirectionally", "  attention"),
        (
            "attention prefix\n  output    decoder_only",
            "output    encoder_decoder",
            "one decoder-only row",
            "  output",
        ),
        ("collapse: mask 100%", "collapse: mask 90%, random 10%", "one [MASK]", "  replace"),
        ("truncated 1..39", "truncated 0..39", "at least one token", "  select"),
    ],
)
def test_faults_are_located(old: str, new: str, message: str, prefix: str) -> None:
    assert old in GLM
    text = GLM.replace(old, new)
    err = spec_error(text)
    diag = next((d for d in err.diagnostics if message in d.message), None)
    assert diag is not None and diag.loc is not None, str(err)
    assert diag.loc.line == line_of(prefix, text), str(err)


def test_a_control_character_in_a_token_is_refused() -> None:
    err = spec_error(GLM.replace("<|endofpiece|>", "<|end\x85|>"))
    assert any("control character" in d.message for d in err.diagnostics), str(err)


# --- the kernel --------------------------------------------------------------------------------


def test_blank_infilling_kernel_by_hand() -> None:
    """[CLS] a b c d e [SEP] with spans (b c) and (e), in order (no stream): Part A
    [CLS] a M d M [SEP], Part B [sop] b c [sop] e [eop]; a Part B token sits at its [MASK]."""
    cls, sep, mask, sop, eop, pad = 2, 3, 4, 90, 91, 0
    ids = torch.tensor([[cls, 10, 11, 12, 13, 14, sep, pad]])
    valid = ids != pad
    selected = torch.tensor([[0, 0, 1, 1, 0, 1, 0, 0]], dtype=torch.bool)
    span_start = torch.tensor([[-1, -1, 2, 2, -1, 5, -1, -1]])
    keys = Keys(0, 0, torch.zeros(1, dtype=torch.int64))
    out = rt.blank_infilling(
        keys, None, ids, valid, selected, span_start, mask_id=mask,
        piece_ids=torch.tensor([sop, eop]), fill=pad,
    )  # fmt: skip
    assert out["input_ids"][0].tolist() == [cls, 10, mask, 13, mask, sep, sop, 11, 12, sop, 14, eop]
    n = IGNORE_INDEX
    assert out["labels"][0].tolist() == [n, n, n, n, n, n, n, 11, 12, eop, 14, eop]
    assert out["prefix_mask"][0].tolist() == [1] * 6 + [0] * 6
    assert out["position_ids"][0].tolist() == [0, 1, 2, 3, 4, 5, 2, 2, 2, 4, 4, 4]
    assert out["block_position_ids"][0].tolist() == [0] * 6 + [1, 2, 3, 1, 2, 3]
    assert out["attention_mask"][0].tolist() == [1] * 12


def test_touching_spans_stay_two_blanks() -> None:
    """Two spans with no gap (span_start tells them apart) are two [MASK]s, two pieces."""
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    selected = torch.tensor([[0, 1, 1, 1, 0]], dtype=torch.bool)
    span_start = torch.tensor([[-1, 1, 1, 3, -1]])
    keys = Keys(0, 0, torch.zeros(1, dtype=torch.int64))
    out = rt.blank_infilling(
        keys, None, ids, ids != 0, selected, span_start, mask_id=4,
        piece_ids=torch.tensor([90, 91]), fill=0,
    )  # fmt: skip
    assert out["input_ids"][0].tolist() == [2, 4, 4, 3, 90, 10, 11, 90, 12, 91]
    assert out["position_ids"][0].tolist() == [0, 1, 2, 3, 1, 1, 1, 2, 2, 2]


# --- the properties, and that they catch broken collators ----------------------------------------


def test_objspec_check_passes() -> None:
    spec = parse_file(SPECS / "glm.objspec")
    names = {c.name for c in applicable(spec)}
    assert {"blanks", "blank_positions", "block_order", "batch_invariance", "epochs"} <= names
    assert "packed" not in names and "infilling" not in names
    for check in applicable(spec):
        result = run_check(check, spec, compiled("glm"), 15)
        assert result.passed, (check.name, result.detail)


def test_the_unshuffled_variant_passes_its_checks() -> None:
    text = GLM.replace("blanks, shuffled,", "blanks,")
    spec, glm = parse_spec(text), compile_spec(text)
    for name in ("blanks", "blank_positions", "block_order"):
        result = run_check(BY_NAME[name], spec, glm, 10)
        assert result.passed, (name, result.detail)
    shuffled = run_check(BY_NAME["block_order"], parse_spec(GLM), glm, 1)
    assert not shuffled.passed  # spans always in order: not a random permutation


def _part_b(out: dict[str, torch.Tensor]) -> torch.Tensor:
    return out["attention_mask"].bool() & ~out["prefix_mask"].bool()


def change_a_span_token(out: dict[str, torch.Tensor], collator: Any) -> None:
    """A token of Part B's spans changed (and its label with it)."""
    sop, eop = collator.mode_token_ids
    ids = out["input_ids"]
    where = _part_b(out) & (ids != sop) & (ids != eop)
    ids[where] = ids[where] % 50 + 10
    out["labels"][where] = ids[where]


def drop_the_eop_labels(out: dict[str, torch.Tensor], collator: Any) -> None:
    """[eop] never a target (the labels a plain decoder-only copy of Part B would give)."""
    labels = out["labels"]
    labels[labels == collator.mode_token_ids[1]] = IGNORE_INDEX


def open_part_b(out: dict[str, torch.Tensor], collator: Any) -> None:
    """prefix_mask over the whole row: Part B attended bidirectionally."""
    out["prefix_mask"] = out["attention_mask"].clone()


def count_positions_on(out: dict[str, torch.Tensor], collator: Any) -> None:
    """Part B's position_ids count on (0.. over the row), as a plain LM's would."""
    valid = out["attention_mask"].bool()
    out["position_ids"] = torch.where(valid, valid.long().cumsum(dim=1) - 1, 0)


def flatten_block_positions(out: dict[str, torch.Tensor], collator: Any) -> None:
    """block_position_ids 1 on every Part B token (GLM's --no-block-position)."""
    out["block_position_ids"] = _part_b(out).long()


@pytest.mark.parametrize(
    ("damage", "check"),
    [
        (change_a_span_token, "blanks"),
        (drop_the_eop_labels, "blanks"),
        (open_part_b, "blanks"),
        (count_positions_on, "blank_positions"),
        (flatten_block_positions, "blank_positions"),
    ],
)
def test_the_checks_catch_broken_collators(damage: Any, check: str) -> None:
    spec = parse_file(SPECS / "glm.objspec")
    result = run_check(BY_NAME[check], spec, broken("glm", damage), 30)
    assert not result.passed, f"{check} passed a collator with {damage.__name__}"


# --- the model, packing, training ----------------------------------------------------------------


def glm_batch() -> tuple[Vocab, dict[str, torch.Tensor]]:
    tokenizer = bundled.with_special_tokens(bundled.load_tokenizer(), GLM_TOKENS)
    examples = bundled.encode_examples(tokenizer, bundled.load_documents()[:2], 30)[:4]
    vocab = Vocab.from_tokenizer(tokenizer)
    return vocab, compiled("glm").Collator(vocab, seed=0)([dict(e) for e in examples])


def test_block_positions_reach_the_tiny_model() -> None:
    """rt.encode passes block_position_ids: the states change with them; the table starts at
    zero, so a batch without them (every other objective) is embedded as before."""
    vocab, batch = glm_batch()
    torch.manual_seed(0)
    model = TinyEncoder(vocab.size, hidden_size=16, layers=1, heads=2, max_length=128).eval()
    with torch.no_grad():
        model.block_positions.weight.normal_(std=0.02)
        with_blocks = rt.encode(model, batch, causal=True)
        plain = {k: v for k, v in batch.items() if k != "block_position_ids"}
        without = rt.encode(model, plain, causal=True)
    part_b = _part_b(batch)
    assert not torch.allclose(with_blocks[part_b], without[part_b])
    fresh = TinyEncoder(vocab.size, hidden_size=16, layers=1, heads=2, max_length=128)
    assert float(fresh.block_positions.weight.detach().abs().sum()) == 0.0


def test_packing_refuses_glm() -> None:
    vocab, _ = glm_batch()
    tokenizer = bundled.with_special_tokens(bundled.load_tokenizer(), GLM_TOKENS)
    examples = bundled.encode_examples(tokenizer, bundled.load_documents()[:2], 30)[:4]
    collator = compiled("glm").Collator(vocab, seed=0, pack=256)
    with pytest.raises(BatchError, match="GLM's batch cannot be packed"):
        collator([dict(e) for e in examples])


def test_trains_through_the_pretrain_loop(tmp_path: Path) -> None:
    """``objspec pretrain``'s loop (the tiny model, the bundled corpus): 30 steps lose well
    over a nat (measured in the report)."""
    from tests.test_e2e import train

    losses = train(SPECS / "glm.objspec", tmp_path, steps=30)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    print(f"glm: loss {first:.3f} -> {last:.3f}")
    assert last < first - 1.0, f"loss {first:.3f} -> {last:.3f}"
