"""Packing several documents into one row: each document corrupted exactly as alone, no
attention and no label across a document, positions restarting; the same loss packed and
unpacked with our tiny model and a Hugging Face causal model. The encoder-decoder form (T5,
BART, MASS, UL2) likewise, on both sides with one assignment: each document's encoder and
decoder parts as alone, no gradient from another document on either side, the same loss with
TinySeq2Seq and a tiny T5, and a refusal where a model would attend across documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import objspec
from objspec import bundled
from objspec.runtime import BatchError, TinyEncoder, TinySeq2Seq
from objspec.runtime.encoders import attention_bias
from objspec.runtime.packing import pack_assignment, pack_rows

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: fastest on one thread

ROOT = Path(__file__).resolve().parent.parent
ENCODER = ["bert_mlm", "roberta", "wwm", "spanbert", "electra", "structbert_word", "xlm_mlm"]
DECODER = ["bart_text_infilling", "bart_token_deletion", "t5_span", "mass", "ul2", "causal_lm"]
DECODER += ["fim", "cm3", "prefix_lm", "ul2_decoder"]
CASES = [(s, None) for s in ENCODER] + [(s, "decoder_only") for s in DECODER]


@pytest.fixture(scope="module")
def examples() -> list[dict[str, Any]]:
    tokenizer = bundled.load_tokenizer()
    rows = bundled.encode_examples(tokenizer, bundled.load_documents()[:10], 40)
    return [dict(e) for e in rows[:9]]


def collator(spec: str, output: str | None, **kwargs: Any) -> Any:
    tokenizer = bundled.load_tokenizer()
    compiled = objspec.compile_file(ROOT / "specs" / f"{spec}.objspec", output=output)
    tokenizer = bundled.with_special_tokens(tokenizer, compiled.Collator.modes)
    kwargs.update(bundled.run_time_inputs(tokenizer, compiled.Collator.needs))
    return compiled.Collator(tokenizer, seed=5, epoch=1, **kwargs)


def documents(packed: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(row, first column, length) of each packed document, in order."""
    found = []
    ids = packed["document_ids"]
    for r in range(ids.shape[0]):
        for d in range(int(ids[r].max()) + 1):
            cols = (ids[r] == d).nonzero().flatten()
            found.append((r, int(cols[0]), len(cols)))
    return found


@pytest.mark.parametrize("pack", [96, 160, "flat"])
@pytest.mark.parametrize("spec,output", CASES, ids=[f"{s}-{o or 'own'}" for s, o in CASES])
def test_each_document_is_corrupted_as_alone(
    spec: str, output: str | None, pack: Any, examples: list[dict[str, Any]]
) -> None:
    alone = collator(spec, output)(examples)
    packed = collator(spec, output, pack=pack)(examples)
    places = documents(packed)
    assert len(places) == len(examples)
    decoder_only = output == "decoder_only"
    for b, (r, start, n) in enumerate(places):
        assert n == int(alone["attention_mask"][b].sum())
        for key, value in alone.items():
            got = packed[key][r, start : start + n]
            want = value[b, :n]
            if key in ("span_start", "span_end"):
                got = torch.where(got >= 0, got - start, got)
            if key == "labels" and decoder_only:
                assert got[0] == -100
                got, want = got[1:], want[1:]
            assert torch.equal(got, want), (key, b)
        assert packed["position_ids"][r, start : start + n].tolist() == list(range(n))


def backward_one_label(heads: Any, packed: dict[str, Any], row: int, column: int) -> None:
    """Backpropagate the loss of the one label at (row, column) of a packed batch alone."""
    one = dict(packed)
    one["labels"] = torch.full_like(packed["labels"], -100)
    one["labels"][row, column] = packed["labels"][row, column]
    heads.zero_grad()
    heads(one)["loss"].backward()


@pytest.mark.parametrize("spec,output", CASES[:2] + CASES[-2:], ids=lambda v: str(v))
def test_no_attention_crosses_a_document(
    spec: str, output: str | None, examples: list[dict[str, Any]]
) -> None:
    packed = collator(spec, output, pack=160)(examples)
    bias = attention_bias(packed, causal=output == "decoder_only")
    assert bias is not None
    docs = packed["document_ids"]
    real = docs >= 0
    crossing = bias & (docs.unsqueeze(2) != docs.unsqueeze(1)) & real.unsqueeze(2)
    assert not bool(crossing.any())


def gradient_leaks(compiled: Any, model: Any, packed: dict[str, Any]) -> float:
    """The largest gradient a document's loss sends to another document's token embeddings."""
    heads = compiled.Heads(model).eval()
    embedded: list[torch.Tensor] = []

    def keep(module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        output.retain_grad()
        embedded.append(output)
        return output

    hook = model.embeddings.register_forward_hook(keep)
    worst = 0.0
    try:
        docs = packed["document_ids"]
        labelled = (packed["labels"] != -100).nonzero()
        for r, c in labelled[:: max(1, len(labelled) // 6)].tolist():
            embedded.clear()
            backward_one_label(heads, packed, r, c)
            grad = embedded[0].grad[r].norm(dim=-1)
            others = (docs[r] != docs[r, c]) & (docs[r] >= 0)
            worst = max(worst, float(grad[others].max()) if others.any() else 0.0)
    finally:
        hook.remove()
    return worst


@pytest.mark.parametrize(
    "spec,output", [("bert_mlm", None), ("bart_text_infilling", "decoder_only")]
)
def test_no_loss_sees_another_document(
    spec: str, output: str | None, examples: list[dict[str, Any]]
) -> None:
    compiled = objspec.compile_file(ROOT / "specs" / f"{spec}.objspec", output=output)
    packed = collator(spec, output, pack=160)(examples)
    torch.manual_seed(0)
    model = TinyEncoder(bundled.BUNDLED_VOCAB_SIZE, hidden_size=32, layers=2, heads=2, dropout=0.0)
    assert gradient_leaks(compiled, model, packed) == 0.0


def test_the_same_loss_packed_and_alone(examples: list[dict[str, Any]]) -> None:
    transformers = pytest.importorskip("transformers")
    from objspec.runtime import HuggingFaceCausalLM

    compiled = objspec.compile_file(
        ROOT / "specs" / "bart_text_infilling.objspec", output="decoder_only"
    )
    alone = collator("bart_text_infilling", "decoder_only")(examples)
    packed = collator("bart_text_infilling", "decoder_only", pack=160)(examples)
    assert packed["input_ids"].shape[0] < alone["input_ids"].shape[0]
    config = transformers.GPT2Config(
        vocab_size=bundled.BUNDLED_VOCAB_SIZE, n_embd=32, n_layer=2, n_head=2, n_positions=256
    )
    torch.manual_seed(0)
    for model in (
        HuggingFaceCausalLM(transformers.GPT2Model(config)),
        TinyEncoder(bundled.BUNDLED_VOCAB_SIZE, hidden_size=32, layers=2, heads=2, dropout=0.0),
    ):
        heads = compiled.Heads(model).eval()
        with torch.no_grad():
            assert float(heads(packed)["loss"]) == pytest.approx(
                float(heads(alone)["loss"]), abs=1e-5
            )


def test_flat_layout_is_hugging_faces(examples: list[dict[str, Any]]) -> None:
    packed = collator("bart_text_infilling", "decoder_only", pack="flat")(examples)
    lengths = [n for _, _, n in documents(packed)]
    assert packed["input_ids"].shape == (1, sum(lengths))
    assert packed["attention_mask"].all()
    assert packed["cu_seq_lens_q"].tolist() == [0, *torch.tensor(lengths).cumsum(0).tolist()]
    assert packed["cu_seq_lens_q"].dtype == torch.int32
    assert packed["max_length_q"] == max(lengths)
    starts = packed["cu_seq_lens_q"][:-1].long()
    assert (packed["labels"][0, starts] == -100).all()
    assert (packed["position_ids"][0, starts] == 0).all()


def test_what_cannot_be_packed_is_refused(examples: list[dict[str, Any]]) -> None:
    with pytest.raises(BatchError, match="next_sentence_label"):
        collator("bert", None, pack=160)(examples)
    with pytest.raises(BatchError, match="several tasks cannot be packed yet"):
        alone = collator("bert_mlm", None)(examples)
        pack_rows({**alone, "mlm.labels": alone["labels"]}, 160, 0, False)
    with pytest.raises(BatchError, match="more than pack=16"):
        collator("bert_mlm", None, pack=16)(examples)
    with pytest.raises(ValueError, match="pack must be"):
        collator("bert_mlm", None, pack=0)


def test_greedy_assignment_fills_rows_in_order() -> None:
    import numpy as np

    rows, offsets = pack_assignment(np.array([5, 3, 4, 8, 1]), 8)
    assert rows.tolist() == [0, 0, 1, 2, 3] and offsets.tolist() == [0, 5, 0, 0, 0]


BUNDLED = sorted(p.stem for p in (ROOT / "specs").glob("*.objspec"))


@pytest.mark.parametrize("name", BUNDLED)
def test_a_pack_statement_compiles_only_where_the_batch_packs(
    name: str, examples: list[dict[str, Any]]
) -> None:
    """'pack 64' added to a bundled spec (as a variant): either the spec refuses it with a
    located error, or its collator packs by default, and pack=None turns that off."""
    text = f"objective packed from {name}\n  pack     64\n"
    try:
        compiled = objspec.compile_spec(text)
    except objspec.errors.SpecError as error:
        assert "cannot be packed" in error.first.message or "shared by the whole" in str(error)
        return
    tokenizer = bundled.with_special_tokens(bundled.load_tokenizer(), compiled.Collator.modes)
    tables = bundled.run_time_inputs(bundled.load_tokenizer(), compiled.Collator.needs)
    rows = (
        bundled.parallel_examples(tokenizer, 40)[:5]
        if "langs" in compiled.Collator.outputs
        else bundled.stand_in_fields(examples, compiled.Collator.fields)
    )
    packed = compiled.Collator(tokenizer, seed=1, max_length=64, **tables)(rows)
    assert "document_ids" in packed and packed["input_ids"].shape[1] == 64
    plain = compiled.Collator(tokenizer, seed=1, max_length=64, pack=None, **tables)(rows)
    assert "document_ids" not in plain


SEQ2SEQ = ["t5_span", "bart", "mass", "ul2"]  # their own form: encoder_decoder
DECODER_KEYS = ("labels", "decoder_input_ids", "decoder_attention_mask", "decoder_position_ids")


def decoder_documents(packed: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(row, first column, length) of each packed document's decoder part, in order."""
    return documents({"document_ids": packed["decoder_document_ids"]})


@pytest.mark.parametrize("pack", [96, "flat"])
@pytest.mark.parametrize("spec", SEQ2SEQ)
def test_each_encoder_decoder_document_is_corrupted_as_alone(
    spec: str, pack: Any, examples: list[dict[str, Any]]
) -> None:
    """Both parts of every document land in the same row, in the same order, each exactly
    the document's unpacked row; positions restart; each decoder part starts with its own
    start token (MASS's: the token before its fragment)."""
    make = collator(spec, None)
    alone = make(examples)
    packed = collator(spec, None, pack=pack)(examples)
    inputs, targets = documents(packed), decoder_documents(packed)
    assert len(inputs) == len(targets) == len(examples)
    if pack == "flat":
        assert packed["input_ids"].shape[0] == packed["decoder_input_ids"].shape[0] == 1
    else:
        assert packed["input_ids"].shape[1] == 96
        widest = max(start + m for _, start, m in targets)
        assert packed["decoder_input_ids"].shape[1] == widest  # the longest packed row
    for b, ((r, start, n), (r_dec, dstart, m)) in enumerate(zip(inputs, targets, strict=True)):
        assert r_dec == r
        assert n == int(alone["attention_mask"][b].sum())
        assert m == int(alone["decoder_attention_mask"][b].sum())
        for key in ("input_ids", "attention_mask"):
            assert torch.equal(packed[key][r, start : start + n], alone[key][b, :n]), (key, b)
        for key in DECODER_KEYS:
            got = packed[key][r, dstart : dstart + m]
            want = alone[key][b, :m] if key in alone else torch.arange(m)
            assert torch.equal(got, want), (key, b)
        assert packed["position_ids"][r, start : start + n].tolist() == list(range(n))
        if spec != "mass":
            assert int(packed["decoder_input_ids"][r, dstart]) == make.decoder_start_id
    if pack == "flat":
        enc = [0, *torch.tensor([n for *_, n in inputs]).cumsum(0).tolist()]
        dec = [0, *torch.tensor([m for *_, m in targets]).cumsum(0).tolist()]
        assert packed["cu_seq_lens_k"].tolist() == enc
        assert packed["cu_seq_lens_q"].tolist() == dec
        assert packed["max_length_k"] == max(n for *_, n in inputs)
        assert packed["max_length_q"] == max(m for *_, m in targets)


def seq2seq_gradient_leaks(
    compiled: Any, model: Any, packed: dict[str, Any], embedders: tuple[Any, ...] = ()
) -> float:
    """The largest gradient one label's loss sends to the token embeddings of another
    document (encoder or decoder side) or of a later decoder token of its own. The encoder's
    embedding runs first: ``embedders`` are the modules embedding each side
    (``model.embeddings``, called twice, by default)."""
    heads = compiled.Heads(model).eval()
    embedded: list[torch.Tensor] = []

    def keep(module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        output.retain_grad()
        embedded.append(output)
        return output

    hooks = [e.register_forward_hook(keep) for e in embedders or (model.embeddings,)]
    worst = 0.0
    try:
        docs, dec_docs = packed["document_ids"], packed["decoder_document_ids"]
        labelled = (packed["labels"] != -100).nonzero()
        for r, c in labelled[:: max(1, len(labelled) // 5)].tolist():
            embedded.clear()
            backward_one_label(heads, packed, r, c)
            encoder, decoder = (e.grad[r].norm(dim=-1) for e in embedded)  # encoder runs first
            d = dec_docs[r, c]
            columns = torch.arange(len(dec_docs[r]))
            others = (docs[r] != d) & (docs[r] >= 0)
            later = ((dec_docs[r] != d) | (columns > c)) & (dec_docs[r] >= 0)
            for grad, seen in ((encoder, others), (decoder, later)):
                worst = max(worst, float(grad[seen].max()) if seen.any() else 0.0)
    finally:
        for hook in hooks:
            hook.remove()
    return worst


@pytest.mark.parametrize("spec", SEQ2SEQ)
def test_no_seq2seq_loss_sees_another_document(spec: str, examples: list[dict[str, Any]]) -> None:
    """TinySeq2Seq: a label's loss gets exactly zero gradient from every other document's
    encoder and decoder tokens; the packed loss equals the unpacked one (the mean over the
    same labels, so the sums agree too) within float32 rounding, relative 1e-5."""
    compiled = objspec.compile_file(ROOT / "specs" / f"{spec}.objspec")
    alone = collator(spec, None)(examples)
    packed = collator(spec, None, pack=96)(examples)
    assert packed["input_ids"].shape[0] < alone["input_ids"].shape[0]
    torch.manual_seed(0)
    model = TinySeq2Seq(bundled.BUNDLED_VOCAB_SIZE, hidden_size=32, layers=2, heads=2)
    assert seq2seq_gradient_leaks(compiled, model, packed) == 0.0
    heads = compiled.Heads(model).eval()
    with torch.no_grad():
        assert float(heads(packed)["loss"]) == pytest.approx(float(heads(alone)["loss"]), rel=1e-5)


def test_a_tiny_t5_runs_a_packed_batch_as_alone(examples: list[dict[str, Any]]) -> None:
    """T5 (relative positions, a custom 4-d mask per attention) through rt.HuggingFaceSeq2Seq:
    the same loss packed and unpacked (relative 1e-5), and no gradient across documents."""
    transformers = pytest.importorskip("transformers")
    from objspec.runtime import HuggingFaceSeq2Seq, Vocab
    from tests.tiny_hf import seq2seq_model

    vocab = Vocab.from_tokenizer(bundled.load_tokenizer())
    compiled = objspec.compile_file(ROOT / "specs" / "t5_span.objspec")
    alone = collator("t5_span", None)(examples)
    packed = collator("t5_span", None, pack=96)(examples)
    torch.manual_seed(0)
    model = HuggingFaceSeq2Seq(seq2seq_model(transformers, "t5", vocab, base=True))
    heads = compiled.Heads(model).eval()
    with torch.no_grad():
        assert float(heads(packed)["loss"]) == pytest.approx(float(heads(alone)["loss"]), rel=1e-5)
    stacks = (model.model.encoder.embed_tokens, model.model.decoder.embed_tokens)
    assert seq2seq_gradient_leaks(compiled, model, packed, stacks) == 0.0


def test_models_that_would_cross_documents_refuse_a_packed_batch(
    examples: list[dict[str, Any]],
) -> None:
    """BART places tokens by their column (no position_ids): rt.HuggingFaceSeq2Seq refuses a
    packed batch; any Hugging Face model fed a packed encoder-decoder batch through
    rt.hf_inputs is refused (one attention_mask for its encoder and cross-attention)."""
    transformers = pytest.importorskip("transformers")
    from objspec.runtime import HuggingFaceSeq2Seq, Vocab
    from objspec.runtime.consumers import ConsumerError, hf_inputs
    from tests.tiny_hf import seq2seq_model

    vocab = Vocab.from_tokenizer(bundled.load_tokenizer())
    compiled = objspec.compile_file(ROOT / "specs" / "bart.objspec")
    packed = collator("bart", None, pack=96)(examples)
    bart = HuggingFaceSeq2Seq(seq2seq_model(transformers, "bart", vocab, base=True))
    with pytest.raises(ValueError, match="BartModel .* cannot run a packed"):
        compiled.Heads(bart)(packed)
    t5 = seq2seq_model(transformers, "t5", vocab)
    with pytest.raises(ConsumerError, match="packed encoder-decoder batch"):
        hf_inputs(t5, packed)
