"""The model protocol: how compiled heads call the user's model.

An **encoder** is any ``nn.Module`` with

- ``hidden_size: int`` and ``embeddings: nn.Embedding`` (the input token embedding; decoders
  are tied to it);
- ``forward(input_ids (B, L) int64, attention_mask (B, L), *, token_type_ids=None,
  position_ids=None, attention_bias=None) -> hidden states (B, L, H)``, where
  ``attention_bias`` is (B, L, L) bool, True where query i may attend to key j (UniLM's masks,
  XLNet's ``perm_mask`` inverted or built from ``perm_order``); a model for GLM's batches
  also takes ``block_position_ids=None`` (B, L) int64, GLM's second positions (0 in Part A,
  1.. within each span of Part B), which :func:`encode` passes when the batch has them;
- optionally ``smaller(fraction) -> encoder``: a model with ``fraction`` of the hidden size and
  the same token embedding, for ELECTRA's generator.

An **encoder-decoder** takes ``(input_ids, attention_mask, decoder_input_ids,
decoder_attention_mask, decoder_position_ids=None)`` and returns the decoder's states (B, T, H).
For a packed batch (``document_ids`` and ``decoder_document_ids``, see
:mod:`objspec.runtime.packing`) :func:`encode` also passes, by keyword, ``position_ids`` (B, L)
int64 (restarting at each document) and three bool masks, True where a query may attend to a
key (:func:`packed_seq2seq_attention`): ``attention_bias`` (B, L, L) the encoder's
self-attention, ``decoder_attention_bias`` (B, T, T) the decoder's (causal, within a
document), ``cross_attention_bias`` (B, T, L) from a decoder token to the encoder tokens of its
own document. A model that takes no such keywords fails loudly on a packed batch (a
TypeError), never attends across documents silently.

A **decoder-only** model is an encoder run with an ``attention_bias``: the decoder-only form's
batch (``output decoder_only``) carries ``prefix_mask``, from which :func:`encode` builds the
prefix-LM attention (causal, bidirectional within the prefix: :func:`prefix_lm_attention`).

:func:`encode` reads those inputs from a collator's batch. :class:`HuggingFaceEncoder` adapts a
Hugging Face ``AutoModel`` encoder (BERT, RoBERTa, ELECTRA, ...), :class:`HuggingFaceSeq2Seq`
an encoder-decoder base model (T5, BART), :class:`HuggingFaceCausalLM` a decoder-only base
model (GPT-2, ...) for the decoder-only form.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, Protocol

import torch
from torch import nn

from objspec.runtime.attention import order_attention
from objspec.runtime.models import allowed_cross_keys, allowed_keys, heads_for


class Encoder(Protocol):
    hidden_size: int
    embeddings: nn.Embedding

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        attention_bias: torch.Tensor | None = None,
    ) -> torch.Tensor: ...


OPTIONAL_INPUTS = ("token_type_ids", "position_ids", "block_position_ids")
DECODER_INPUTS = ("decoder_input_ids", "decoder_attention_mask", "decoder_position_ids")


def prefix_lm_attention(prefix_mask: torch.Tensor) -> torch.Tensor:
    """(B, L, L) bool, True where query i may attend to key j in the decoder-only form: causal
    (j <= i) everywhere, and bidirectional within the prefix (i and j both in it). From
    ``prefix_mask`` (B, L) int or bool, 1 on each row's prefix (a packed row's encoder input);
    all zeros gives a plain causal LM. No query sees a later token outside the prefix, and the
    prefix sees no target token."""
    pos = torch.arange(prefix_mask.shape[1], device=prefix_mask.device)
    causal = pos.unsqueeze(1) >= pos.unsqueeze(0)  # (L, L): key j <= query i
    prefix = prefix_mask.bool()
    return causal.unsqueeze(0) | (prefix.unsqueeze(2) & prefix.unsqueeze(1))


def document_attention(document_ids: torch.Tensor) -> torch.Tensor:
    """(B, L, L) bool, True where a query may attend to a key of a packed row: keys of its own
    document only (``document_ids`` (B, L) int64, -1 on padding; a padding query may attend
    anywhere, so that no attention row is empty)."""
    same = document_ids.unsqueeze(2) == document_ids.unsqueeze(1)
    return same | (document_ids < 0).unsqueeze(2)


def cross_document_attention(
    decoder_document_ids: torch.Tensor, document_ids: torch.Tensor
) -> torch.Tensor:
    """(B, T, L) bool, True where a decoder token may attend to an encoder token of a packed
    row: those of its own document only (``decoder_document_ids`` (B, T) and ``document_ids``
    (B, L) int64, -1 on padding; a padding query may attend anywhere)."""
    same = decoder_document_ids.unsqueeze(2) == document_ids.unsqueeze(1)
    return same | (decoder_document_ids < 0).unsqueeze(2)


def causal_attention(length: int, device: torch.device) -> torch.Tensor:
    """(length, length) bool, True where query i may attend to key j <= i."""
    pos = torch.arange(length, device=device)
    return pos.unsqueeze(1) >= pos.unsqueeze(0)


def packed_seq2seq_attention(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keyword inputs of an encoder-decoder on a packed batch (``document_ids`` (B, L),
    ``decoder_document_ids`` (B, T)): ``position_ids`` (B, L) int64 and three bool masks, True
    where a query may attend to a key: ``attention_bias`` (B, L, L) within a document,
    ``decoder_attention_bias`` (B, T, T) causal and within a document,
    ``cross_attention_bias`` (B, T, L) from a decoder token to its own document's encoder
    tokens. Padding is the models' to mask (``attention_mask``, ``decoder_attention_mask``)."""
    if "decoder_document_ids" not in batch:
        raise ValueError(
            "a packed encoder-decoder batch (document_ids) needs decoder_document_ids, which "
            "Collator(pack=...) adds: without it the decoder would attend across documents"
        )
    documents, targets = batch["document_ids"], batch["decoder_document_ids"]
    causal = causal_attention(targets.shape[1], targets.device)
    return {
        "position_ids": batch["position_ids"],
        "attention_bias": document_attention(documents),
        "decoder_attention_bias": document_attention(targets) & causal,
        "cross_attention_bias": cross_document_attention(targets, documents),
    }


def attention_bias(batch: dict[str, torch.Tensor], causal: bool = False) -> torch.Tensor | None:
    """The batch's attention (:func:`objective_attention`), kept inside each document of a
    packed row (``document_ids``)."""
    bias = objective_attention(batch, causal)
    if "document_ids" not in batch:
        return bias
    documents = document_attention(batch["document_ids"])
    return documents if bias is None else bias & documents


def objective_attention(
    batch: dict[str, torch.Tensor], causal: bool = False
) -> torch.Tensor | None:
    """(B, L, L) bool, True where a query may attend to a key, from the batch's attention
    outputs: the decoder-only form's prefix-LM attention from ``prefix_mask`` (causal
    everywhere when ``causal`` is set and the batch has none), UniLM's ``self_attention_mask``
    as is, XLNet's ``perm_mask`` (1 = may not attend) inverted, or the mask built from the
    sparse layout's ``perm_order``. None when the batch has none of them (full bidirectional
    attention)."""
    if causal or "prefix_mask" in batch:
        prefix = batch.get("prefix_mask")
        if prefix is None:
            prefix = torch.zeros_like(batch["input_ids"])
        return prefix_lm_attention(prefix)
    if "self_attention_mask" in batch:
        return batch["self_attention_mask"].bool()
    if "perm_mask" in batch:
        return batch["perm_mask"] == 0
    if "perm_order" in batch:
        return order_attention(batch["perm_order"])
    return None


def encode(
    model: Any,
    batch: dict[str, torch.Tensor],
    input_ids: torch.Tensor | None = None,
    *,
    causal: bool = False,
) -> torch.Tensor:
    """Hidden states (B, L, H) of ``model`` on ``batch``; the decoder's states (B, T, H) when
    the batch has decoder inputs. ``input_ids`` (B, L) replaces the batch's tokens in the same
    layout (ELECTRA's sampled tokens, a contrastive view of the same rows).

    A decoder-only batch (one with ``prefix_mask``) runs with :func:`prefix_lm_attention`;
    ``causal=True`` (the decoder-only form's heads) insists on it: a batch without
    ``prefix_mask`` then runs causally, never bidirectionally. A packed encoder-decoder batch
    runs with :func:`packed_seq2seq_attention`'s positions and masks."""
    ids = batch["input_ids"] if input_ids is None else input_ids
    mask = batch["attention_mask"]
    if causal and "decoder_input_ids" in batch:
        raise ValueError(
            "the decoder-only form's heads take a decoder-only batch (input_ids, "
            "attention_mask, labels, prefix_mask), not an encoder-decoder one"
        )
    if "decoder_input_ids" in batch:
        packed = packed_seq2seq_attention(batch) if "document_ids" in batch else {}
        return model(
            ids,
            mask,
            batch["decoder_input_ids"],
            batch["decoder_attention_mask"],
            batch.get("decoder_position_ids"),
            **packed,
        )
    extra = {key: batch[key] for key in OPTIONAL_INPUTS if key in batch}
    bias = attention_bias(batch, causal)
    if bias is not None:
        extra["attention_bias"] = bias
    return model(ids, mask, **extra)


class HuggingFaceStates(nn.Module):
    """A Hugging Face base model as an objspec model: its last hidden state, its input
    embeddings, an ``attention_bias`` passed as a 4-d additive attention mask
    (:func:`additive_attention_mask`; eager attention adds a bool mask unmasked).
    ``call_options`` are passed on every call."""

    call_options: dict[str, Any] = {}

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.hidden_size = int(model.config.hidden_size)
        self.embeddings = model.get_input_embeddings()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        attention_bias: torch.Tensor | None = None,
        block_position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # a Hugging Face base model has no table for GLM's block positions: they are not
        # passed on (its position_ids, Part B's at its spans' [MASK]s, are)
        mask: torch.Tensor = attention_mask
        if attention_bias is not None:
            dtype = self.embeddings.weight.dtype
            mask = additive_attention_mask(attention_bias, attention_mask, dtype)
        extra = {"token_type_ids": token_type_ids, "position_ids": position_ids}
        kwargs = {k: v for k, v in extra.items() if v is not None} | self.call_options
        return self.model(input_ids=input_ids, attention_mask=mask, **kwargs).last_hidden_state


class HuggingFaceEncoder(HuggingFaceStates):
    """A Hugging Face ``AutoModel`` encoder (``BertModel``, ``RobertaModel``, ``ElectraModel``,
    ...) as an objspec encoder (see :class:`HuggingFaceStates`)."""

    def smaller(self, fraction: float) -> HuggingFaceEncoder:
        """The same architecture with ``fraction`` of the hidden size (heads of 64, FFN 4x, as
        ELECTRA's ``get_generator_config``) sharing the token embedding. Needs a config with a
        separate ``embedding_size`` (ELECTRA's), so the shared table fits the smaller model."""
        config: Any = self.model.config
        if not hasattr(config, "embedding_size"):
            raise TypeError(
                f"{type(self.model).__name__} has no separate embedding size, so a smaller "
                "generator cannot share its token embedding; pass generator= to the heads"
            )
        hidden = max(1, round(config.hidden_size * fraction))
        small = config.__class__(
            **{
                **config.to_dict(),
                "hidden_size": hidden,
                "num_attention_heads": heads_for(hidden, 64),
                "intermediate_size": 4 * hidden,
            }
        )
        generator: Any = type(self.model)(small)
        generator.set_input_embeddings(self.embeddings)
        return HuggingFaceEncoder(generator)


# Encoder-decoders whose Hugging Face stacks were verified to run a packed batch as each
# document alone: relative positions (a document's own, wherever it sits in the row) and a
# custom 4-d mask taken as is by the encoder's, the decoder's and the cross attention
# (transformers 5's masking_utils). BART, mBART, Pegasus, Marian embed a token by its column
# and take no position_ids, so a later document would sit at other positions than alone
# (verified by hand: a tiny BART's packed loss differs from its unpacked one).
PACKABLE_SEQ2SEQ = ("t5", "mt5", "umt5")
MASKED_ATTENTION = ("eager", "sdpa")  # take a 4-d additive mask; flash / flex do not


class HuggingFaceSeq2Seq(nn.Module):
    """A Hugging Face encoder-decoder base model (``T5Model``, ``BartModel``, ``MBartModel``,
    ...) as an objspec encoder-decoder: the decoder's last hidden state, the shared token
    embedding. ``decoder_position_ids`` (MASS) are not passed on: these models place decoder
    tokens by their own positions.

    A packed batch (the keyword masks :func:`encode` passes) runs the model's encoder and
    decoder stacks with three 4-d additive masks (:func:`additive_attention_mask`), one per
    attention, since the model's own forward takes one ``attention_mask`` for both the
    encoder's and the cross attention. Only T5, mT5 and UMT5 with eager or SDPA attention
    (``PACKABLE_SEQ2SEQ``) take it; any other model refuses a packed batch with a ValueError.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        config = model.config
        self.hidden_size = int(getattr(config, "d_model", None) or config.hidden_size)
        self.embeddings = model.get_input_embeddings()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        decoder_input_ids: torch.Tensor,
        decoder_attention_mask: torch.Tensor,
        decoder_position_ids: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        attention_bias: torch.Tensor | None = None,
        decoder_attention_bias: torch.Tensor | None = None,
        cross_attention_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        biases = (attention_bias, decoder_attention_bias, cross_attention_bias)
        if all(bias is None for bias in biases):
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                decoder_input_ids=decoder_input_ids,
                decoder_attention_mask=decoder_attention_mask,
            )
            return out.last_hidden_state
        if any(bias is None for bias in biases):
            raise ValueError(
                "a packed encoder-decoder batch needs all three attention biases (encoder, "
                "decoder, cross); rt.encode passes them"
            )
        assert attention_bias is not None and decoder_attention_bias is not None
        assert cross_attention_bias is not None
        require_packable_seq2seq(self.model)
        dtype = self.embeddings.weight.dtype
        states = self.model.get_encoder()(
            input_ids=input_ids,
            attention_mask=additive_attention_mask(attention_bias, attention_mask, dtype),
        ).last_hidden_state
        causal = causal_attention(decoder_input_ids.shape[1], decoder_input_ids.device)
        out = self.model.get_decoder()(
            input_ids=decoder_input_ids,
            attention_mask=additive_attention_mask(
                decoder_attention_bias & causal, decoder_attention_mask, dtype
            ),
            encoder_hidden_states=states,
            encoder_attention_mask=additive_cross_attention_mask(
                cross_attention_bias, attention_mask, dtype
            ),
            use_cache=False,
        )
        return out.last_hidden_state


def require_packable_seq2seq(model: Any) -> None:
    """A ValueError unless ``model`` (a Hugging Face encoder-decoder) runs a packed batch's
    documents as alone: ``PACKABLE_SEQ2SEQ``, eager or SDPA attention, and transformers 5 or
    later (whose masking takes a custom 4-d mask as is; verified with 5.24)."""
    config = model.config
    name = type(model).__name__
    kind = getattr(config, "model_type", None)
    attention = getattr(config, "_attn_implementation", None) or "eager"
    if kind not in PACKABLE_SEQ2SEQ:
        raise ValueError(
            f"{name} ({kind}) cannot run a packed encoder-decoder batch as each document "
            "alone: only T5, mT5 and UMT5 are known to (relative positions, a custom 4-d mask "
            "per attention); BART-like models place tokens by their column; use pack=None"
        )
    if attention not in MASKED_ATTENTION:
        raise ValueError(
            f"{name} with {attention} attention takes no custom 4-d mask, so a packed "
            "encoder-decoder batch would attend across documents: load it with "
            "attn_implementation='sdpa' or 'eager', or use pack=None"
        )
    release = version("transformers")
    if int(release.split(".")[0]) < 5:
        raise ValueError(
            f"transformers {release} may not take {name}'s custom 4-d masks as they are, so a "
            "packed encoder-decoder batch could attend across documents: transformers>=5, or "
            "pack=None"
        )


def additive_cross_attention_mask(
    cross_attention_bias: torch.Tensor, attention_mask: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """(B, 1, T, L) ``dtype``: the cross-attention's 4-d additive mask, 0 where decoder query
    t attends to encoder key s (:func:`~objspec.runtime.models.allowed_cross_keys` of the bias
    (B, T, L) bool and the encoder's padding mask (B, L)), the dtype's most negative value
    elsewhere."""
    allowed = allowed_cross_keys(cross_attention_bias, attention_mask.bool())
    blocked = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return blocked.masked_fill(~allowed, torch.finfo(dtype).min).unsqueeze(1)


def additive_attention_mask(
    attention_bias: torch.Tensor, attention_mask: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """(B, 1, L, L) ``dtype``: Hugging Face's custom 4-d attention mask in its additive form, 0
    where query i attends to key j (:func:`~objspec.runtime.models.allowed_keys` of the bias
    (B, L, L) bool and the padding mask (B, L)), the dtype's most negative value elsewhere.
    Eager and SDPA attention both take it; a blocked key's weight underflows to exactly 0."""
    allowed = allowed_keys(attention_bias, attention_mask.bool())
    blocked = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return blocked.masked_fill(~allowed, torch.finfo(dtype).min).unsqueeze(1)


class HuggingFaceCausalLM(HuggingFaceStates):
    """A Hugging Face decoder-only base model (``GPT2Model``, ``LlamaModel``, ...; not the
    ``...ForCausalLM`` with its own LM head) as an objspec model for the decoder-only form: its
    last hidden state, its input embeddings.

    ``attention_bias`` (the prefix-LM attention :func:`encode` builds from the batch's
    ``prefix_mask``) goes in as a 4-d additive mask (:func:`additive_attention_mask`), which
    replaces the model's own causal mask: models that take a custom 4-d mask as is (those
    built on ``transformers.masking_utils``, GPT-2 among them) then attend the prefix
    bidirectionally and the rest causally. Without ``attention_bias`` the model's own causal
    and padding masks apply, so a prefix is attended causally. Rows are right-padded, so the
    model's default positions count from each row's first token.
    """

    call_options = {"use_cache": False}


def smaller(model: Any, fraction: float) -> Any:
    """ELECTRA's generator for ``model``: its ``smaller(fraction)``, with a clear error when the
    model has none."""
    if not hasattr(model, "smaller"):
        raise TypeError(
            f"{type(model).__name__} has no smaller(fraction) method to build ELECTRA's "
            "generator from; pass generator= (an encoder sharing model.embeddings) to the heads"
        )
    return model.smaller(fraction)
