"""Tiny reference models for tests, the demo and ``objspec pretrain``. Real users bring their
own model (see :mod:`objspec.runtime.encoders` for the protocol)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def heads_for(hidden: int, width: int) -> int:
    """The most attention heads of about ``width`` dimensions each that divide ``hidden``."""
    heads = max(1, hidden // width)
    while hidden % heads:
        heads -= 1
    return heads


def allowed_keys(attention_bias: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B, L, L) bool, True where query i attends to key j: allowed by ``attention_bias``
    (B, L, L) bool and j not padding (``valid`` (B, L) bool). A query left with no key (a
    padding row) attends to itself, so no softmax row is empty."""
    allowed = attention_bias.bool() & valid.unsqueeze(1)
    alone = ~allowed.any(dim=2, keepdim=True)
    eye = torch.eye(allowed.shape[1], dtype=torch.bool, device=allowed.device)
    return allowed | (alone & eye)


def allowed_cross_keys(cross_bias: torch.Tensor, memory_valid: torch.Tensor) -> torch.Tensor:
    """(B, T, S) bool, True where decoder query t attends to encoder key s: allowed by
    ``cross_bias`` (B, T, S) bool and s not padding (``memory_valid`` (B, S) bool). A query
    left with no key (decoder padding in a row whose allowed keys are all padding) attends to
    every key, so no softmax row is empty; no loss reads it."""
    allowed = cross_bias.bool() & memory_valid.unsqueeze(1)
    return allowed | ~allowed.any(dim=2, keepdim=True)


class TinyEncoder(nn.Module):
    """Token, position and token-type embeddings and a small pre-norm Transformer encoder,
    following the model protocol of :mod:`objspec.runtime.encoders`.

    forward(input_ids (B, L) int64, attention_mask (B, L), *, token_type_ids=None,
    position_ids=None, attention_bias=None (B, L, L) bool, block_position_ids=None)
    -> hidden (B, L, H). ``block_position_ids`` (GLM's second positions, below
    ``max_length``) index a second position table whose embedding is added, as GLM's; the
    table starts at zero (so it consumes no random draws and changes nothing for batches
    without them) and is trained only by batches that have them.
    ``embeddings`` is the token embedding the heads tie their decoders to; pass one to share it
    (ELECTRA's generator): when its width differs from ``hidden_size`` a linear map projects it.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 64,
        layers: int = 2,
        heads: int = 4,
        max_length: int = 512,
        dropout: float = 0.0,
        embeddings: nn.Embedding | None = None,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.layers = layers
        self.max_length = max_length
        self.dropout = dropout
        self.layer_sizes: dict[str, Any] = {
            "d_model": hidden_size,
            "nhead": heads,
            "dim_feedforward": 4 * hidden_size,
            "dropout": dropout,
            "batch_first": True,
            "norm_first": True,
        }
        self.embeddings = (
            embeddings if embeddings is not None else nn.Embedding(vocab_size, hidden_size)
        )
        width = self.embeddings.embedding_dim
        self.project = nn.Linear(width, hidden_size) if width != hidden_size else nn.Identity()
        self.positions = nn.Embedding(max_length, hidden_size)
        self.token_types = nn.Embedding(2, hidden_size)
        self.block_positions = nn.Embedding(
            max_length, hidden_size, _weight=torch.zeros(max_length, hidden_size)
        )
        self.embedding_dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(**self.layer_sizes)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_size)
        for table in (self.embeddings, self.positions, self.token_types):
            if embeddings is None or table is not embeddings:
                nn.init.normal_(table.weight, std=0.02)  # BERT's initializer range

    def embed(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        block_position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, L, H): token (projected) + position (+ token type) (+ block position)
        embeddings."""
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.project(self.embeddings(input_ids)) + self.positions(position_ids)
        if token_type_ids is not None:
            x = x + self.token_types(token_type_ids)
        if block_position_ids is not None:
            x = x + self.block_positions(block_position_ids)
        return self.embedding_dropout(x)

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
        x = self.embed(input_ids, position_ids, token_type_ids, block_position_ids)
        valid = attention_mask.bool()
        if input_ids.numel() == 0:  # an empty batch: no attention to run
            return self.norm(x)
        if attention_bias is None:
            x = self.encoder(x, src_key_padding_mask=~valid)
        else:
            x = self.encoder(x, mask=self._blocked(attention_bias, valid))
        return self.norm(x)

    def _blocked(self, attention_bias: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B x heads, L, L) bool, True where attention is blocked: outside the bias or at
        padding. A query left with no key (a padding row) attends to itself."""
        heads = self.layer_sizes["nhead"]
        return (~allowed_keys(attention_bias, valid)).repeat_interleave(heads, dim=0)

    def smaller(self, fraction: float) -> TinyEncoder:
        """ELECTRA's generator: ``fraction`` of the hidden size (at least 8), as many layers,
        sharing this model's token embedding."""
        hidden = max(8, round(self.hidden_size * fraction))
        return TinyEncoder(
            self.vocab_size,
            hidden_size=hidden,
            layers=self.layers,
            heads=heads_for(hidden, 16),
            max_length=self.max_length,
            dropout=self.dropout,
            embeddings=self.embeddings,
        )


class TinySeq2Seq(TinyEncoder):
    """:class:`TinyEncoder` plus a causal Transformer decoder with cross-attention, sharing the
    token and position embeddings (for T5-, BART- and MASS-style objectives).

    forward(input_ids (B, L), attention_mask (B, L), decoder_input_ids (B, T),
    decoder_attention_mask (B, T), decoder_position_ids (B, T) or None, *, position_ids=None
    (B, L), attention_bias=None (B, L, L) bool, decoder_attention_bias=None (B, T, T) bool,
    cross_attention_bias=None (B, T, L) bool) -> decoder hidden (B, T, H). The biases (True
    where a query may attend to a key; a packed batch's, from ``rt.encode``) restrict the
    encoder's self-attention, the decoder's (which stays causal whatever its bias says) and
    the cross-attention; padding is masked as always.
    """

    def __init__(self, vocab_size: int, **sizes: Any) -> None:
        super().__init__(vocab_size, **sizes)
        layer = nn.TransformerDecoderLayer(**self.layer_sizes)
        self.decoder = nn.TransformerDecoder(layer, self.layers)
        self.decoder_norm = nn.LayerNorm(self.hidden_size)

    def forward(  # type: ignore[override]
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
        memory = super().forward(
            input_ids, attention_mask, position_ids=position_ids, attention_bias=attention_bias
        )
        y = self.embed(decoder_input_ids, decoder_position_ids)
        if y.numel() == 0 or memory.numel() == 0:  # an empty batch: no attention to run
            return self.decoder_norm(y + memory.sum() * 0.0)
        causal = self._causal(decoder_input_ids.shape[1], y.device)
        if decoder_attention_bias is None and cross_attention_bias is None:
            y = self.decoder(
                y,
                memory,
                tgt_mask=~causal,
                tgt_key_padding_mask=~decoder_attention_mask.bool(),
                memory_key_padding_mask=~attention_mask.bool(),
            )
            return self.decoder_norm(y)
        heads = self.layer_sizes["nhead"]
        self_bias = causal if decoder_attention_bias is None else decoder_attention_bias & causal
        blocked_self = self._blocked(
            self_bias.expand(len(y), -1, -1), decoder_attention_mask.bool()
        )
        valid = attention_mask.bool()
        cross = valid.unsqueeze(1) if cross_attention_bias is None else cross_attention_bias
        blocked_cross = ~allowed_cross_keys(cross.expand(len(y), y.shape[1], -1), valid)
        y = self.decoder(
            y,
            memory,
            tgt_mask=blocked_self,
            memory_mask=blocked_cross.repeat_interleave(heads, dim=0),
        )
        return self.decoder_norm(y)

    @staticmethod
    def _causal(length: int, device: torch.device) -> torch.Tensor:
        """(length, length) bool, True where query i may attend to key j <= i."""
        pos = torch.arange(length, device=device)
        return pos.unsqueeze(1) >= pos.unsqueeze(0)
