"""Model-in-the-loop heads (ELECTRA, contrastive), the model protocol, and ``objspec pretrain``:
resume, torchrun shards, the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from objspec import compile_file
from objspec.cli import main
from objspec.pretrain import PretrainConfig, Pretrainer, epoch_order, step_indices
from objspec.runtime import (
    IGNORE_INDEX,
    ContrastiveHead,
    HuggingFaceEncoder,
    TinyEncoder,
    encode,
    sample_replacements,
)
from objspec.runtime.heads import gumbel_noise
from tests import distributed_worker
from tests.tiny_hf import bert_config, bundled_batch, seq2seq_model

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
VOCAB = 50


# --- ELECTRA -------------------------------------------------------------------------------------


@given(
    rows=st.integers(1, 4),
    length=st.integers(1, 12),
    seed=st.integers(0, 2**31 - 1),
    temperature=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_discriminator_labels_are_sampled_differs_from_original(
    rows: int, length: int, seed: int, temperature: float
) -> None:
    """replaced = (sample != original) at selected positions, False elsewhere; unselected
    tokens are left as they were."""
    g = torch.Generator().manual_seed(seed)
    original = torch.randint(0, 6, (rows, length), generator=g)  # a small vocabulary: ties
    selected = torch.rand(rows, length, generator=g) < 0.4
    input_ids = torch.where(selected, torch.full_like(original, 5), original)
    labels = torch.where(selected, original, torch.full_like(original, IGNORE_INDEX))
    logits = torch.randn(int(selected.sum()), 6, generator=g)
    keys = torch.randint(0, 2**32, (rows, length), generator=g)
    fake = sample_replacements(input_ids, labels, logits, keys, temperature)
    assert torch.equal(fake.input_ids[~selected], input_ids[~selected])
    assert torch.equal(fake.replaced, selected & (fake.input_ids != original))
    again = sample_replacements(input_ids, labels, logits, keys, temperature)
    assert torch.equal(again.input_ids, fake.input_ids)  # a function of the keys


def test_gumbel_max_samples_the_softmax() -> None:
    """Token frequencies of 40,000 Gumbel-max samples against softmax(logits / T), within 6
    binomial sigmas each (T = 2)."""
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5])
    n = 40_000
    keys = torch.randint(0, 2**32, (n,), generator=torch.Generator().manual_seed(3))
    noise = gumbel_noise(keys, logits.numel())
    sampled = (logits / 2.0 + noise).argmax(dim=1)
    p = torch.softmax(logits / 2.0, dim=0)
    counts = torch.bincount(sampled, minlength=logits.numel()).double()
    sigma = (n * p * (1 - p)).sqrt()
    assert bool(((counts - n * p).abs() < 6 * sigma).all()), (counts / n, p)


def _electra_heads() -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    vocab, batch = bundled_batch("electra", 32, documents=4)
    torch.manual_seed(0)
    model = TinyEncoder(vocab.size, hidden_size=32, layers=1, heads=2, max_length=64)
    return compile_file(SPECS / "electra.objspec").Heads(model), batch


def test_generated_heads_save_and_load_whole(tmp_path: Path) -> None:
    """torch.save of a whole Heads module (its generated class carries its source) loads back
    as the same class, with the generator's shared embedding still shared and the same losses."""
    heads, batch = _electra_heads()
    heads.eval()
    torch.save(heads, tmp_path / "heads.pt")
    loaded = torch.load(tmp_path / "heads.pt", weights_only=False)
    assert type(loaded) is type(heads)
    assert loaded.generator.embeddings is loaded.model.embeddings
    with torch.no_grad():
        want, got = heads(batch), loaded(batch)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_no_gradient_reaches_the_generator_from_the_discriminator() -> None:
    """The discriminator's loss trains the discriminator and the shared embedding, never the
    generator or its MLM head: its samples are drawn without gradient."""
    heads, batch = _electra_heads()
    assert heads.generator.hidden_size == 8  # a quarter of 32
    assert heads.generator.embeddings is heads.model.embeddings
    heads(batch)["replaced_token_detection"].backward()
    generator_own = [
        (n, p) for n, p in heads.generator.named_parameters() if not n.startswith("embeddings")
    ]
    assert generator_own
    for name, p in [*generator_own, *heads.mlm.named_parameters()]:
        if name != "decoder.embeddings.weight":
            assert p.grad is None or not bool(p.grad.any()), name
    assert heads.model.embeddings.weight.grad is not None
    assert heads.replaced_token_detection.score.weight.grad is not None


def test_electra_loss_weights_and_labels() -> None:
    heads, batch = _electra_heads()
    losses = heads(batch)
    total = losses["mlm"] + 50.0 * losses["replaced_token_detection"]
    assert torch.allclose(losses["loss"], total)
    assert set(batch) == {"input_ids", "attention_mask", "labels", "sample_keys"}


# --- contrastive ---------------------------------------------------------------------------------


def test_identical_views_at_a_tiny_temperature_cost_nothing() -> None:
    """Two identical views of distinct rows: each anchor's positive is itself, by far the
    closest at temperature 1e-3, so InfoNCE is ~0."""
    torch.manual_seed(0)
    head = ContrastiveHead(16, temperature=1e-3)
    hidden = torch.randn(8, 5, 16)
    mask = torch.ones(8, 5)
    assert float(head(hidden, mask, hidden, mask).detach()) < 1e-4


def test_contrastive_negatives_are_the_other_rows() -> None:
    """InfoNCE by hand: cross-entropy of cosine / T against arange labels, first-token pooling
    through the projection."""
    torch.manual_seed(0)
    head = ContrastiveHead(4, temperature=0.5, pooling="mean", projection=0)
    a, b = torch.randn(3, 2, 4), torch.randn(3, 2, 4)
    mask = torch.ones(3, 2)
    za = torch.nn.functional.normalize(a.mean(1), dim=-1)
    zb = torch.nn.functional.normalize(b.mean(1), dim=-1)
    expected = torch.nn.functional.cross_entropy(za @ zb.t() / 0.5, torch.arange(3))
    assert torch.allclose(head(a, mask, b, mask), expected)


def test_an_empty_batch_has_zero_contrastive_loss() -> None:
    head = ContrastiveHead(4)
    empty = torch.zeros(0, 3, 4, requires_grad=True)
    loss = head(empty, torch.zeros(0, 3), empty, torch.zeros(0, 3))
    assert float(loss.detach()) == 0.0
    loss.backward()


PAIRED = """
objective paired
  select   none
  predict  views
  views    paired
  head     contrastive(temperature=0.05)
"""


def test_paired_views_come_from_positive_ids() -> None:
    """'views paired' (supervised SimCSE): the example's positive_ids are the other view, from
    lists or padded tensors; a batch without them gets a clear error."""
    from objspec import compile_spec
    from objspec.runtime import BatchError, Vocab

    compiled = compile_spec(PAIRED)
    vocab = Vocab(size=VOCAB, pad_id=0, cls_id=1, sep_id=2, mask_id=3)
    examples = [
        {"input_ids": [1, 10, 11, 2], "positive_ids": [1, 12, 2]},
        {"input_ids": [1, 13, 2], "positive_ids": [1, 14, 15, 16, 2]},
    ]
    batch = compiled.Collator(vocab)(examples)
    assert batch["view_input_ids"].tolist() == [[1, 12, 2, 0, 0], [1, 14, 15, 16, 2]]
    padded = compiled.Collator(vocab)(
        {"input_ids": batch["input_ids"], "positive_ids": batch["view_input_ids"]}
    )
    assert torch.equal(padded["view_attention_mask"], batch["view_attention_mask"])
    torch.manual_seed(0)
    heads = compiled.Heads(TinyEncoder(VOCAB, hidden_size=16, layers=1, heads=2, max_length=8))
    loss = heads(batch)["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    with pytest.raises(BatchError, match="positive_ids"):
        compiled.Collator(vocab)([{"input_ids": [1, 10, 2]}])


# --- the model protocol --------------------------------------------------------------------------


def test_attention_bias_blocks_what_it_says() -> None:
    """With no query but j itself allowed to attend to key j, changing token j changes no
    other position's state (two layers: nothing can route around the block)."""
    torch.manual_seed(0)
    model = TinyEncoder(VOCAB, hidden_size=16, layers=2, heads=2, max_length=16).eval()
    ids = torch.randint(5, VOCAB, (1, 6))
    bias = torch.ones(1, 6, 6, dtype=torch.bool)
    bias[0, :, 3] = False
    bias[0, 3, 3] = True
    mask = torch.ones(1, 6, dtype=torch.long)
    changed = ids.clone()
    changed[0, 3] = (ids[0, 3] + 1 - 5) % (VOCAB - 5) + 5
    with torch.no_grad():
        before = model(ids, mask, attention_bias=bias)
        after = model(changed, mask, attention_bias=bias)
    others = [0, 1, 2, 4, 5]
    assert torch.allclose(before[0, others], after[0, others], atol=1e-6)
    assert not torch.allclose(before[0, 3], after[0, 3])


def test_hugging_face_encoders_follow_the_protocol() -> None:
    """An ElectraModel through the adapter: ELECTRA's heads build its smaller generator sharing
    the embedding, and a training step backpropagates. A BertModel has no separate embedding
    size, so the generator must be passed in: the error says so."""
    transformers = pytest.importorskip("transformers")
    heads_electra, batch = _electra_heads()
    vocab_size = heads_electra.model.embeddings.num_embeddings
    config = transformers.ElectraConfig(
        vocab_size=vocab_size,
        embedding_size=16,
        hidden_size=64,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    model = HuggingFaceEncoder(transformers.ElectraModel(config))
    heads = compile_file(SPECS / "electra.objspec").Heads(model)
    assert heads.generator.hidden_size == 16
    assert heads.generator.embeddings is model.embeddings
    loss = heads(batch)["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    bert = bert_config(transformers, vocab_size)
    with pytest.raises(TypeError, match="pass generator="):
        compile_file(SPECS / "electra.objspec").Heads(
            HuggingFaceEncoder(transformers.BertModel(bert))
        )
    hidden = encode(HuggingFaceEncoder(transformers.BertModel(bert)), batch)
    assert hidden.shape == (*batch["input_ids"].shape, 32)


@pytest.mark.parametrize("spec", ["bart", "t5_span"])
def test_hugging_face_encoder_decoders_follow_the_protocol(spec: str) -> None:
    """A BartModel / T5Model through the adapter: the compiled seq2seq heads run it on the
    collated batch, and the loss backpropagates."""
    transformers = pytest.importorskip("transformers")
    from objspec.runtime import HuggingFaceSeq2Seq

    vocab, batch = bundled_batch(spec, 40)
    base = seq2seq_model(transformers, "bart" if spec == "bart" else "t5", vocab, base=True)
    compiled = compile_file(SPECS / f"{spec}.objspec")
    heads = compiled.Heads(HuggingFaceSeq2Seq(base))
    loss = heads(batch)["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    assert base.get_input_embeddings().weight.grad is not None


# --- objspec pretrain ----------------------------------------------------------------------------


def test_epoch_order_is_a_permutation_that_changes_with_the_epoch() -> None:
    first, second = epoch_order(100, 0, 0), epoch_order(100, 0, 1)
    assert sorted(first.tolist()) == list(range(100))
    assert not torch.equal(first, second)
    assert torch.equal(first, epoch_order.__wrapped__(100, 0, 0))  # recomputed, not the cache
    epoch, indices = step_indices(7, 100, 16, 0)  # 6 full batches per epoch: step 7 is epoch 1
    assert epoch == 1 and torch.equal(indices, second[16:32])


def _config(tmp_path: Path, steps: int, spec: str = "electra") -> PretrainConfig:
    return PretrainConfig(
        spec=str(SPECS / f"{spec}.objspec"),
        out=str(tmp_path),
        steps=steps,
        batch_size=8,
        max_length=32,
        hidden_size=32,
        checkpoint_every=3,
        limit=40,
    )


def test_a_resumed_run_continues_exactly(tmp_path: Path) -> None:
    """Stopped at step 3 and resumed from its checkpoint, a run sees the same next batches and
    reaches the same losses as the run that never stopped (ELECTRA: sampling, dropout and the
    optimizer state all resume)."""
    straight = Pretrainer(_config(tmp_path / "straight", 6))
    expected = straight.run()
    Pretrainer(_config(tmp_path / "stopped", 3)).run()
    resumed = Pretrainer(_config(tmp_path / "stopped", 6))
    assert resumed.resume() and resumed.step == 3
    for step in (3, 4, 5):
        for key, value in straight.batch(step).items():
            assert torch.equal(resumed.batch(step)[key], value), (step, key)
    assert resumed.run() == pytest.approx(expected[3:], abs=1e-6)
    assert [r["loss"] for r in resumed.rows] == pytest.approx(expected, abs=1e-6)


def test_resume_refuses_another_runs_checkpoint(tmp_path: Path) -> None:
    Pretrainer(_config(tmp_path, 3)).run()
    other = _config(tmp_path, 6)
    other.seed = 1
    with pytest.raises(ValueError, match="seed"):
        Pretrainer(other).resume()


def test_pretrain_command_writes_its_curve_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["pretrain", str(SPECS / "spanbert.objspec"), "--out", str(tmp_path), "--steps", "4"]
    args += ["--batch-size", "8", "--hidden-size", "32", "--checkpoint-every", "2"]
    assert main(args) == 0
    rows = (tmp_path / "losses.csv").read_text().splitlines()
    assert rows[0] == "step,mlm,span_boundary,loss" and len(rows) == 5
    assert (tmp_path / "losses.png").stat().st_size > 0
    assert main([*args[:5], "6", *args[6:], "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert len((tmp_path / "losses.csv").read_text().splitlines()) == 7


def test_pretrain_reads_the_users_text_files(tmp_path: Path) -> None:
    corpus = tmp_path / "mine.txt"
    sentences = [
        f"the harbour town number {i} grew up around a sheltered inlet ." for i in range(40)
    ]
    corpus.write_text("\n".join(sentences[:20]) + "\n\n" + "\n".join(sentences[20:]) + "\n")
    config = _config(tmp_path / "run", 2, spec="bert_mlm")
    config.text, config.limit = [str(corpus)], None
    trainer = Pretrainer(config)
    from objspec import bundled

    documents = bundled.load_documents(corpus)
    assert [len(d) for d in documents] == [20, 20]
    expected = bundled.encode_examples(bundled.load_tokenizer(), documents, 32)
    assert [e["input_ids"] for e in trainer.examples] == [e["input_ids"] for e in expected]
    assert len(trainer.run()) == 2


def test_pretrain_reports_bad_settings_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad command-line settings end with a one-line error and exit code 2 (usage), not a
    traceback."""
    spec = str(SPECS / "bert_mlm.objspec")
    for bad in (["--hidden-size", "50"], ["--batch-size", "0"], ["--max-length", "2"]):
        assert main(["pretrain", spec, "--out", str(tmp_path), *bad]) == 2
        assert "error:" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["pretrain", spec, "--out", str(tmp_path), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


def test_pretrain_rejects_a_batch_larger_than_the_corpus(tmp_path: Path) -> None:
    config = _config(tmp_path, 2)
    config.batch_size = 64  # limit=40 examples
    with pytest.raises(ValueError, match="fewer than one batch"):
        Pretrainer(config)


def test_two_ranks_under_torchrun_match_one_process(tmp_path: Path) -> None:
    """torchrun --nproc_per_node=2 on CPU (gloo): each rank's rows are the one-process run's
    rows of the same examples (corruption depends only on seed, epoch and index); the
    all-gathered contrastive loss and gradients equal the one-process ones on the whole batch;
    a DDP SimCSE run trains and checkpoints."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    command += ["--standalone", str(ROOT / "tests" / "distributed_worker.py"), str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FutureWarning" not in done.stderr, done.stderr[-3000:]  # no deprecated collective
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]

    anchors, positives = distributed_worker.contrastive_views()
    a, p = anchors.clone().requires_grad_(True), positives.clone().requires_grad_(True)
    mask = torch.ones(6, 3)
    loss = distributed_worker.contrastive_head()(a, mask, p, mask)
    loss.backward()
    for rank, (lo, hi) in enumerate(distributed_worker.SHARDS):
        rank_loss, grad_a, grad_p = ranks[rank]["contrastive"]
        assert torch.allclose(rank_loss, loss.detach(), atol=1e-6)
        # each rank's rows get their gradient summed over the 2 ranks' (equal) losses: DDP's
        # average then gives the parameters the one-process gradient of the global batch
        assert torch.allclose(grad_a, 2 * a.grad[lo:hi], atol=1e-6)
        assert torch.allclose(grad_p, 2 * p.grad[lo:hi], atol=1e-6)

    electra = PretrainConfig(spec=str(SPECS / "electra.objspec"), out=str(tmp_path), batch_size=8)
    one = Pretrainer(electra)
    for step in distributed_worker.BATCH_STEPS:
        _, indices = step_indices(step, len(one.examples), 8, 0)
        whole = one.batch(step)
        for rank in (0, 1):
            shard, batch = ranks[rank]["batches"][step]
            assert torch.equal(shard, indices[rank::2])
            for row, index in enumerate(shard.tolist()):
                at = indices.tolist().index(index)
                n = int(whole["attention_mask"][at].sum())
                for key in ("input_ids", "labels", "sample_keys"):
                    assert torch.equal(batch[key][row, :n], whole[key][at, :n]), (step, key)
    for rank in (0, 1):
        assert len(ranks[rank]["losses"]) == 2
    assert (tmp_path / "simcse" / "checkpoint-2" / "objspec_state.pt").exists()


# --- edge cases and rejected combinations --------------------------------------------------------

DROPOUT_WITH_SBO = """
objective views_and_spans
  select   spans length ~ geometric(p=0.2) truncated 1..10
  budget   15% of tokens, ceil
  replace  per span: mask 80%, random 10%, keep 10%
  predict  original at selected
  views    dropout
  head     span_boundary
  head     contrastive
"""


def test_dropout_views_feed_every_other_head() -> None:
    """With 'views dropout', the corrupted row is still encoded for the other heads (here the
    span boundary head, without an MLM head)."""
    from objspec import compile_spec
    from objspec.runtime import Vocab

    compiled = compile_spec(DROPOUT_WITH_SBO)
    vocab = Vocab(size=VOCAB, pad_id=0, cls_id=1, sep_id=2, mask_id=3)
    batch = compiled.Collator(vocab)([{"input_ids": [1, *range(10, 30), 2], "index": 0}])
    model = TinyEncoder(VOCAB, hidden_size=16, layers=1, heads=2, max_length=32)
    losses = compiled.Heads(model)(batch)
    assert set(losses) == {"span_boundary", "contrastive", "loss"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "select none\n  predict views\n  views dropout\n  head contrastive\n  head mlm",
            "its one head is 'contrastive'",
        ),
        (
            "select spans length ~ fixed(2)\n  budget 15% of tokens\n  replace per span: mask 100%"
            "\n  predict original at selected\n  head mlm\n  head replaced_token_detection"
            "\n  head span_boundary",
            "the discriminator alone",
        ),
        ("select none\n  predict views\n  head contrastive", "go together"),
        ("select none\n  predict views\n  views selected\n  head contrastive", "needs a selection"),
        (
            "select exact\n  budget 15% of tokens\n  replace per token: mask 100%"
            "\n  predict original at selected\n  head replaced_token_detection",
            "trained by the masked LM",
        ),
    ],
)
def test_model_in_the_loop_specs_that_cannot_work_are_rejected(body: str, message: str) -> None:
    from objspec import parse_spec
    from objspec.errors import SpecError

    with pytest.raises(SpecError, match=message):
        parse_spec(f"objective bad\n  {body}\n")


def test_a_generator_for_any_hidden_size() -> None:
    """ELECTRA's generator picks a head count that divides its hidden size (200 x 0.25 = 50)."""
    generator = TinyEncoder(VOCAB, hidden_size=200, heads=4).smaller(0.25)
    assert generator.hidden_size == 50 and 50 % generator.layer_sizes["nhead"] == 0
    hidden = generator(torch.randint(5, VOCAB, (2, 7)), torch.ones(2, 7))
    assert hidden.shape == (2, 7, 50)


@pytest.mark.parametrize("spec", ["electra", "simcse", "infoword", "bart"])
def test_an_empty_batch_trains_to_a_zero_loss(spec: str) -> None:
    """An empty list of examples gives empty outputs, and the heads a zero loss that
    backpropagates (a step that changes nothing), never a crash."""
    from objspec import bundled
    from objspec.runtime import TinySeq2Seq, Vocab

    vocab = Vocab.from_tokenizer(bundled.load_tokenizer())
    compiled = compile_file(SPECS / f"{spec}.objspec")
    batch = compiled.Collator(vocab)([])
    seq2seq = "decoder_input_ids" in compiled.Collator.outputs
    model = (TinySeq2Seq if seq2seq else TinyEncoder)(vocab.size, hidden_size=16, heads=2)
    loss = compiled.Heads(model)(batch)["loss"]
    assert float(loss.detach()) == 0.0
    loss.backward()


def test_rows_without_a_pair_are_left_out_of_infonce() -> None:
    torch.manual_seed(0)
    head = ContrastiveHead(8, temperature=0.5)
    a, b = torch.randn(4, 3, 8), torch.randn(4, 3, 8)
    mask = torch.ones(4, 3)
    rows = torch.tensor([True, False, True, True])
    kept = head(a[rows], mask[rows], b[rows], mask[rows])
    assert torch.allclose(head(a, mask, b, mask, rows=rows), kept)
