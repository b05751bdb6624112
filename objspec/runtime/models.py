"""A tiny reference encoder for tests and the demo. Real users bring their own model."""

from __future__ import annotations

import torch
from torch import nn


class TinyEncoder(nn.Module):
    """Token + position embeddings and a small pre-norm Transformer encoder.

    forward(input_ids (B, L) int64, attention_mask (B, L) int/bool) -> hidden (B, L, H).
    ``embeddings`` is the token embedding the heads tie their decoders to.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int = 64,
        layers: int = 2,
        heads: int = 4,
        max_length: int = 512,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.embeddings = nn.Embedding(vocab_size, hidden_size)
        self.positions = nn.Embedding(max_length, hidden_size)
        layer = nn.TransformerEncoderLayer(
            hidden_size,
            heads,
            dim_feedforward=4 * hidden_size,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_size)
        for table in (self.embeddings, self.positions):
            nn.init.normal_(table.weight, std=0.02)  # BERT's initializer range

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.embeddings(input_ids) + self.positions(positions).unsqueeze(0)
        x = self.encoder(x, src_key_padding_mask=~attention_mask.bool())
        return self.norm(x)
