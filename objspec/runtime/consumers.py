"""Batches to the right consumer: a compiled batch fed to a Hugging Face model.

A Hugging Face model takes ``**batch`` without a word when a key means something else to it
(ELECTRA's generator batch has token-id ``labels``, where ``ElectraForPreTraining`` wants 0/1)
or when its ``**kwargs`` swallows a key it never reads (ALBERT's ``span_start``). ``hf_inputs``
maps a batch to a model's forward: it refuses the pairings known to be wrong, drops what the
model cannot read with a warning naming each key and what reads it instead, and converts the
batches that need it (XLNet, ELECTRA's discriminator). docs/consumers.md lists, per bundled
spec, which models a batch feeds.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import torch

from objspec.runtime.attention import xlnet_inputs
from objspec.runtime.heads import sample_replacements
from objspec.runtime.tasks import task_names

# Batch keys no Hugging Face model reads, and what reads them instead.
OBJSPEC_ONLY = {
    "span_start": "the SBO head (rt.SpanBoundaryHead)",
    "span_end": "the SBO head (rt.SpanBoundaryHead)",
    "sample_keys": "ELECTRA's sampling (rt.electra_discriminator_inputs)",
    "prefix_mask": "a prefix LM's attention (our heads)",
    "view_input_ids": "the contrastive head (rt.ContrastiveHead)",
    "view_attention_mask": "the contrastive head (rt.ContrastiveHead)",
    "shuffled_mask": "StructBERT's word-order loss (our heads)",
    "sentence_structure_label": "StructBERT's sentence head (rt.SentenceClassificationHead)",
    "attention_mode": "UniLM's heads",
    "self_attention_mask": "UniLM's heads (as an attention bias)",
    "target_positions": "rt.xlnet_inputs",
    "perm_order": "rt.xlnet_inputs",
}


class ConsumerError(ValueError):
    """A batch fed to a model that would read it wrongly."""


def hf_inputs(model: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keyword arguments of ``model.forward`` (a Hugging Face model) for a compiled batch.

    Refuses a known wrong pairing (an ELECTRA generator batch to a discriminator; a packed
    batch, whose documents the model would not keep apart, unless it is padding-free and the
    model's attention is flash attention; the batches of several tasks); converts a
    permutation-LM batch (``rt.xlnet_inputs``); keeps only the keys the forward names, with a
    warning for each key dropped and what reads it instead.
    """
    name = type(model).__name__
    if "sample_keys" in batch and name.endswith("ForPreTraining") and "Electra" in name:
        raise ConsumerError(
            f"this is ELECTRA's generator batch (labels are token ids); {name} wants 0/1 "
            "replaced labels: feed it rt.electra_discriminator_inputs(batch, generator_logits)"
        )
    if "label_weights" in batch and "label_weights" not in _named_parameters(model):
        raise ConsumerError(
            f"this batch's loss is weighted per position (label_weights, e.g. masked "
            f"diffusion's 1/t); {name} would compute an unweighted loss from its labels: use "
            "the compiled Heads, or weight the per-token cross-entropy of its logits yourself"
        )
    if "decoder_input_ids" in batch and "document_ids" in batch:
        raise ConsumerError(
            f"this is a packed encoder-decoder batch; {name} takes one 2-d attention_mask "
            "for its encoder and its cross-attention, so every token would attend across "
            "documents: run it through rt.HuggingFaceSeq2Seq and the compiled Heads (T5), "
            "or collate with pack=None"
        )
    if "document_ids" in batch and not _varlen_attention(model, batch):
        raise ConsumerError(
            f"this is a packed batch (several documents per row); {name} would attend across "
            "documents: collate with pack='flat' for a model with flash attention "
            "(attn_implementation='flash_attention_2' reads each document's bounds), train "
            "through the compiled Heads (rt.encode keeps documents apart), or pack=None"
        )
    tasks = sorted(task_names(batch))
    if tasks:
        raise ConsumerError(
            f"this batch holds the batches of several tasks ({', '.join(tasks)}): train it "
            f"through the compiled Heads, or feed {name} one task's, "
            f"rt.task_batch(batch, {tasks[0]!r})"
        )
    if "target_positions" in batch and ("perm_order" in batch or "perm_mask" in batch):
        batch = xlnet_inputs(batch)
    accepted = _named_parameters(model)
    batch = _labels_for_a_classifier(batch, accepted)
    dropped = [k for k in batch if k not in accepted]
    if dropped:
        reasons = "; ".join(f"{k} (read by {OBJSPEC_ONLY.get(k, 'no model')})" for k in dropped)
        warnings.warn(f"objspec: {name} does not read {reasons}", RuntimeWarning, stacklevel=2)
    return {k: v for k, v in batch.items() if k in accepted}


def _varlen_attention(model: Any, batch: dict[str, Any]) -> bool:
    """Whether ``model`` keeps a packed batch's documents apart: a padding-free batch
    (``pack='flat'``: restarted ``position_ids`` and ``cu_seq_lens``) read by flash attention,
    as Hugging Face's ``DataCollatorWithFlattening`` batches are."""
    implementation = str(getattr(getattr(model, "config", None), "_attn_implementation", ""))
    return "cu_seq_lens_q" in batch and implementation.startswith("flash_attention")


def _labels_for_a_classifier(
    batch: dict[str, torch.Tensor], accepted: set[str]
) -> dict[str, torch.Tensor]:
    """A pair task's label as ``labels`` for a model that names no pair label of its own
    (``BertForNextSentencePrediction``), when the batch has no token labels."""
    if "labels" in batch or "labels" not in accepted:
        return batch
    for key in ("next_sentence_label", "sentence_order_label"):
        if key in batch and key not in accepted:
            renamed = {k: v for k, v in batch.items() if k != key}
            return {**renamed, "labels": batch[key]}
    return batch


def _named_parameters(model: Any) -> set[str]:
    """The parameters ``model.forward`` names (not what a ``**kwargs`` would swallow)."""
    parameters = inspect.signature(model.forward).parameters.values()
    return {p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


@torch.no_grad()
def electra_discriminator_inputs(
    batch: dict[str, torch.Tensor], generator_logits: torch.Tensor, temperature: float = 1.0
) -> dict[str, torch.Tensor]:
    """ELECTRA's discriminator batch, as ``ElectraForPreTraining`` takes it, from the
    generator's batch and its logits (B, L, V) (e.g. ``ElectraForMaskedLM(**gen).logits``):
    ``input_ids`` with a token sampled at each masked position (the same Gumbel draws as our
    heads, keyed by ``sample_keys``), ``labels`` (B, L) int64 1 where the sample differs from
    the original, 0 elsewhere."""
    labels = batch["labels"]
    target = labels != -100
    fake = sample_replacements(
        batch["input_ids"], labels, generator_logits[target], batch["sample_keys"], temperature
    )
    out = {"input_ids": fake.input_ids, "attention_mask": batch["attention_mask"]}
    out["labels"] = fake.replaced.long()
    if "token_type_ids" in batch:
        out["token_type_ids"] = batch["token_type_ids"]
    return out
