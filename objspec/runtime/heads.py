"""Loss heads: ``nn.Module``s that turn a model's hidden states into an objective's loss.

Heads take hidden states (B, L, H) from any encoder, plus the collator's outputs, so the model
stays the user's. Decoders are tied to the input embeddings (B, L, H) -> (B, L, V).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from objspec.runtime.replace import IGNORE_INDEX


def _zero_loss(hidden: torch.Tensor) -> torch.Tensor:
    """A zero that keeps the graph connected (a batch with no targets)."""
    return hidden.sum() * 0.0


class TiedDecoder(nn.Module):
    """Logits over the vocabulary with the input embedding matrix as output weights, plus a bias."""

    def __init__(self, embeddings: nn.Embedding) -> None:
        super().__init__()
        self.embeddings = embeddings
        self.bias = nn.Parameter(torch.zeros(embeddings.num_embeddings))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.embeddings.weight.t() + self.bias


class MLMHead(nn.Module):
    """BERT's masked-LM head: dense -> GELU -> LayerNorm -> tied decoder; cross-entropy on labels.

    forward(hidden (B, L, H), labels (B, L) int64 with -100 where nothing is predicted) -> loss.
    Only labelled positions go through the decoder (a gather first, as Google's BERT does).
    """

    def __init__(self, hidden_size: int, embeddings: nn.Embedding, eps: float = 1e-12) -> None:
        super().__init__()
        dim = embeddings.embedding_dim
        self.transform = nn.Sequential(
            nn.Linear(hidden_size, dim), nn.GELU(), nn.LayerNorm(dim, eps=eps)
        )
        self.decoder = TiedDecoder(embeddings)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden))

    def forward(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        target = labels != IGNORE_INDEX
        if not bool(target.any()):
            return _zero_loss(hidden)
        return F.cross_entropy(self.logits(hidden[target]), labels[target])


class Seq2SeqHead(MLMHead):
    """Cross-entropy of a decoder's next-token predictions (T5, BART, MASS; a prefix LM).

    forward(decoder hidden (B, T, H), labels (B, T) int64, -100 where nothing is predicted) ->
    loss. The labels are the targets themselves: the collator's ``decoder_input_ids`` are them
    shifted right, so position t predicts ``labels[:, t]``. For the decoder-only form, pass a
    causal model's states and labels shifted left by one (``labels[:, 1:]`` against
    ``hidden[:, :-1]``), as a causal LM does.
    """


class SentenceClassificationHead(nn.Module):
    """BERT's pooler and a classifier over the pair relation (NSP 2-way, SOP 2-way,
    StructBERT 3-way): first token -> dense -> tanh -> linear(classes); cross-entropy.

    forward(hidden (B, L, H), labels (B,) int64) -> loss. ``embeddings`` is unused (the heads
    share one constructor signature).
    """

    def __init__(self, hidden_size: int, embeddings: nn.Embedding, classes: int = 2) -> None:
        super().__init__()
        self.pooler = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Tanh())
        self.classifier = nn.Linear(hidden_size, classes)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pooler(hidden[:, 0]))

    def forward(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if hidden.shape[0] == 0:
            return _zero_loss(hidden)
        return F.cross_entropy(self.logits(hidden), labels)


class SpanBoundaryHead(nn.Module):
    """SpanBERT's span boundary objective (Joshi et al., 2020, eq. 1-2).

    Each token x_i of a span (s, e) is predicted from the boundary states h_{s-1}, h_{e+1} and
    a relative position embedding p_{i-s}: a 2-layer MLP (GELU, LayerNorm) and the tied decoder.
    forward(hidden (B, L, H), labels, span_start, span_end (B, L) int64; -1 outside spans) -> loss.
    Tokens beyond ``max_span`` from their span's start, and spans whose boundary would fall
    outside the row, give no SBO target (as in SpanBERT).
    """

    def __init__(
        self,
        hidden_size: int,
        embeddings: nn.Embedding,
        max_span: int = 10,
        position_dim: int = 200,
        eps: float = 1e-12,
    ) -> None:
        super().__init__()
        dim = embeddings.embedding_dim
        self.max_span = max_span
        self.position = nn.Embedding(max_span, position_dim)
        self.mlp = nn.Sequential(
            nn.Linear(2 * hidden_size + position_dim, hidden_size),
            nn.GELU(),
            nn.LayerNorm(hidden_size, eps=eps),
            nn.Linear(hidden_size, dim),
            nn.GELU(),
            nn.LayerNorm(dim, eps=eps),
        )
        self.decoder = TiedDecoder(embeddings)

    def forward(
        self,
        hidden: torch.Tensor,
        labels: torch.Tensor,
        span_start: torch.Tensor,
        span_end: torch.Tensor,
    ) -> torch.Tensor:
        length = hidden.shape[1]
        offset = torch.arange(length, device=hidden.device).unsqueeze(0) - span_start
        target = (
            (labels != IGNORE_INDEX)
            & (span_start >= 1)
            & (span_end < length)
            & (offset < self.max_span)
        )
        if not bool(target.any()):
            return _zero_loss(hidden)
        rows = target.nonzero()[:, 0]
        left = hidden[rows, span_start[target] - 1]
        right = hidden[rows, span_end[target]]
        features = torch.cat([left, right, self.position(offset[target])], dim=-1)
        return F.cross_entropy(self.decoder(self.mlp(features)), labels[target])
