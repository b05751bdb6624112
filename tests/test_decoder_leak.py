"""The decoder-only form's heads never let a position's loss see its target.

For every bundled spec that compiles in decoder form, and a prefix LM written here, one
labelled position's loss alone is backpropagated to the token embeddings' outputs: the
gradient must be exactly zero at the target token's own position and every later one (and in
every other row), and non-zero at some earlier one. Both with the tiny reference model and a
tiny Hugging Face GPT-2 and Llama through ``rt.HuggingFaceCausalLM``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

from objspec import SpecError, bundled, compile_file, compile_spec
from objspec import runtime as rt
from objspec.ir import FIM_TOKENS, GLM_TOKENS
from objspec.runtime import IGNORE_INDEX, TinyEncoder, Vocab

SPECS = Path(__file__).resolve().parent.parent / "specs"

PREFIX_LM = """\
objective prefix_lm
  input    single
  exclude  special
  select   suffix 50%
  replace  per token: delete 100%
  predict  original at selected
  output   decoder_only
  loss     cross_entropy
  head     seq2seq
"""


def decoder_form_specs() -> list[str]:
    """The bundled specs with a decoder-only form (the others raise SpecError)."""
    names = []
    for path in sorted(SPECS.glob("*.objspec")):
        try:
            compile_file(path, output="decoder_only")
        except SpecError:
            continue
        names.append(path.stem)
    return names


DECODER_SPECS = decoder_form_specs()


pytestmark = pytest.mark.usefixtures("one_thread")


@cache
def compiled(spec: str) -> Any:
    if spec == "inline_prefix_lm":  # written here; specs/prefix_lm.objspec is bundled
        return compile_spec(PREFIX_LM)
    return compile_file(SPECS / f"{spec}.objspec", output="decoder_only")


@cache
def vocab_and_examples() -> tuple[Vocab, list[dict[str, Any]]]:
    """Three short packed rows of the bundled corpus (sentence ids included); the vocabulary
    has FIM's sentinels and GLM's [sop] / [eop] (the fim and glm specs name them by text)."""
    tokenizer = bundled.with_special_tokens(bundled.load_tokenizer(), FIM_TOKENS + GLM_TOKENS)
    examples = bundled.encode_examples(tokenizer, bundled.load_documents()[:2], 20)[:3]
    return Vocab.from_tokenizer(tokenizer), [dict(e) for e in examples]


def tiny_model(kind: str, vocab_size: int) -> torch.nn.Module:
    """Our tiny encoder, a two-layer GPT-2 of width 16 (eager or SDPA attention), or a
    two-layer Llama of width 16 (grouped-query attention)."""
    torch.manual_seed(0)
    if kind == "tiny":
        return TinyEncoder(vocab_size, hidden_size=16, layers=2, heads=2, max_length=128).eval()
    transformers = pytest.importorskip("transformers")
    if kind == "llama":  # rotary positions, RMSNorm, SDPA: the other common decoder family
        llama = transformers.LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=128,
            bos_token_id=None,
            eos_token_id=None,
            pad_token_id=None,
        )
        return rt.HuggingFaceCausalLM(transformers.LlamaModel(llama).eval())
    config = transformers.GPT2Config(
        vocab_size=vocab_size,
        n_embd=16,
        n_layer=2,
        n_head=2,
        n_positions=128,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,
        eos_token_id=None,
    )
    config._attn_implementation = kind.removeprefix("gpt2_")
    return rt.HuggingFaceCausalLM(transformers.GPT2Model(config).eval())


def embedding_grads(heads: Any, batch: dict[str, torch.Tensor], row: int, t: int) -> torch.Tensor:
    """(B, L) float: the gradient norm at each token embedding's output of the loss of
    ``labels[row, t]`` alone (every other label set to -100)."""
    labels = torch.full_like(batch["labels"], IGNORE_INDEX)
    labels[row, t] = batch["labels"][row, t]
    states: list[torch.Tensor] = []

    def keep(module: Any, args: Any, output: torch.Tensor) -> None:
        output.retain_grad()
        states.append(output)

    handle = heads.model.embeddings.register_forward_hook(keep)
    try:
        heads.zero_grad()
        heads({**batch, "labels": labels})["loss"].backward()
    finally:
        handle.remove()
    (embedded,) = states
    assert embedded.grad is not None
    return embedded.grad.norm(dim=-1)


def probes(labels: torch.Tensor) -> list[tuple[int, int]]:
    """(row, position) pairs to probe: each row's first, middle and last labelled position
    after the first column (a causal LM labels position 0 too, Hugging Face's convention, but
    no state precedes it: the head never scores it)."""
    out = []
    for row in range(labels.shape[0]):
        where = [t for t in (labels[row] != IGNORE_INDEX).nonzero()[:, 0].tolist() if t > 0]
        out += (
            [(row, t) for t in sorted({where[0], where[len(where) // 2], where[-1]})]
            if where
            else []
        )
    return out


MODELS = ["tiny", "gpt2_sdpa", "gpt2_eager", "llama"]
CASES = [(spec, model) for spec in [*DECODER_SPECS, "inline_prefix_lm"] for model in MODELS[:2]]
CASES.append(("inline_prefix_lm", "gpt2_eager"))  # the additive mask under eager attention too
CASES += [("causal_lm", "llama"), ("inline_prefix_lm", "llama")]  # causal, and a 4-d prefix mask


@pytest.mark.parametrize(("spec", "model_kind"), CASES)
def test_no_loss_sees_its_target_or_a_later_token(spec: str, model_kind: str) -> None:
    vocab, examples = vocab_and_examples()
    batch = compiled(spec).Collator(vocab, seed=0)(examples)
    assert "decoder_input_ids" not in batch
    # a prefix LM's batch marks its prefix; a causal one ('attention causal') has none
    assert ("prefix_mask" in batch) == ("prefix_mask" in compiled(spec).Collator.outputs)
    heads = compiled(spec).Heads(tiny_model(model_kind, vocab.size))
    points = probes(batch["labels"])
    assert points, "the batch has labels"
    for row, t in points:
        grads = embedding_grads(heads, batch, row, t)
        assert float(grads[row, t:].abs().max()) == 0.0, (row, t, grads[row].tolist())
        others = torch.cat([grads[:row], grads[row + 1 :]])
        assert float(others.abs().sum()) == 0.0, (row, t)  # rows never mix
        assert float(grads[row, :t].max()) > 0.0, (row, t)


@pytest.mark.parametrize("model_kind", MODELS)
def test_the_prefix_is_bidirectional_and_the_rest_causal(model_kind: str) -> None:
    """The attention the heads give the model: a prefix position's state depends on the
    later prefix tokens, and on no target token."""
    vocab, examples = vocab_and_examples()
    compiled_lm = compiled("inline_prefix_lm")
    batch = compiled_lm.Collator(vocab, seed=0)(examples)
    heads = compiled_lm.Heads(tiny_model(model_kind, vocab.size))
    states: list[torch.Tensor] = []
    handle = heads.model.embeddings.register_forward_hook(
        lambda module, args, output: (output.retain_grad(), states.append(output))[0]
    )
    try:
        hidden = rt.encode(heads.model, batch, causal=True)
    finally:
        handle.remove()
    prefix = int(batch["prefix_mask"][0].sum())
    (hidden[0, 0] * torch.randn(hidden.shape[2])).sum().backward()  # a LayerNorm sums to a constant
    grads = states[0].grad[0].norm(dim=-1)
    assert prefix >= 2 and float(grads[prefix - 1]) > 0.0  # the prefix's last token
    assert float(grads[prefix:].abs().max()) == 0.0


def test_the_decoder_form_head_shifts_the_labels() -> None:
    """Hugging Face's convention: the batch's labels are the tokens themselves; the head
    scores hidden[:, t] against labels[:, t + 1], as a HF causal LM does."""
    torch.manual_seed(0)
    embeddings = torch.nn.Embedding(11, 8)
    shifted = rt.CausalLMHead(8, embeddings)
    plain = rt.Seq2SeqHead(8, embeddings)
    plain.load_state_dict(shifted.state_dict())
    hidden = torch.randn(2, 5, 8)
    labels = torch.tensor([[-100, -100, 3, 4, 5], [-100, 6, 7, -100, -100]])
    assert torch.equal(shifted(hidden, labels), plain(hidden[:, :-1], labels[:, 1:]))
    nothing = torch.full((2, 1), -100)
    assert float(shifted(hidden[:, :1], nothing)) == 0.0  # a label at 0 has no state before it


@pytest.mark.parametrize("spec", ["prefix_lm", "ul2"])
def test_the_decoder_form_still_trains(spec: str, tmp_path: Path) -> None:
    """``objspec pretrain``'s loop on a decoder_only spec (the prefix LM; UL2's mixture with
    its output switched): the loss goes down with the leak closed. 30 steps fall about 1.8
    (prefix LM, 7.3 -> 5.5) and 2.1 nats (UL2) (measured)."""
    from tests.test_e2e import train

    text = PREFIX_LM if spec == "prefix_lm" else (SPECS / f"{spec}.objspec").read_text()
    path = tmp_path / f"{spec}.objspec"
    path.write_text(text.replace("output   encoder_decoder", "output   decoder_only"))
    losses = train(path, tmp_path, steps=30)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 1.0, f"loss {first:.3f} -> {last:.3f}"


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_hugging_face_encoders_block_what_the_bias_says(attention: str) -> None:
    """The 4-d mask is additive, so eager attention (which adds the mask to the scores)
    blocks as SDPA does: with no query but j itself allowed to see key j, changing token j
    changes no other position's state."""
    transformers = pytest.importorskip("transformers")
    from tests.tiny_hf import bert_config

    torch.manual_seed(0)
    config = bert_config(transformers, 50)
    config._attn_implementation = attention
    model = rt.HuggingFaceEncoder(transformers.BertModel(config).eval())
    ids = torch.randint(5, 50, (1, 6))
    bias = torch.ones(1, 6, 6, dtype=torch.bool)
    bias[0, :, 3] = False
    bias[0, 3, 3] = True
    changed = ids.clone()
    changed[0, 3] = (ids[0, 3] + 1 - 5) % 45 + 5
    mask = torch.ones(1, 6, dtype=torch.long)
    with torch.no_grad():
        before = model(ids, mask, attention_bias=bias)
        after = model(changed, mask, attention_bias=bias)
    others = [0, 1, 2, 4, 5]
    assert torch.equal(before[0, others], after[0, others])
    assert not torch.allclose(before[0, 3], after[0, 3])
