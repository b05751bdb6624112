"""Loss heads: ``nn.Module``s that turn a model's hidden states into an objective's loss.

Heads take hidden states (B, L, H) from any encoder, plus the collator's outputs, so the model
stays the user's. Decoders are tied to the input embeddings (B, L, H) -> (B, L, V).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from objspec.runtime.distributed import gather_with_grad
from objspec.runtime.replace import IGNORE_INDEX
from objspec.runtime.rng import hash32, mul32


def _zero_loss(hidden: torch.Tensor) -> torch.Tensor:
    """A zero that keeps the graph connected (a batch with no targets)."""
    return hidden.sum() * 0.0


def first_token(hidden: torch.Tensor) -> torch.Tensor:
    """(B, H): each row's first state; zeros for rows of width 0 (an empty batch)."""
    return hidden[:, :1].sum(dim=1)


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
        return self.loss_and_logits(hidden, labels)[0]

    def loss_and_logits(
        self, hidden: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits (N, V) at the N labelled positions in row-major order)."""
        target = labels != IGNORE_INDEX
        logits = self.logits(hidden[target])
        if logits.shape[0] == 0:
            return _zero_loss(hidden), logits
        return F.cross_entropy(logits, labels[target]), logits

    def weighted_loss_and_logits(
        self, hidden: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, total: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits (N, V)): each labelled position's cross-entropy times its weight
        (``weights`` (B, L) float32, the collator's ``label_weights``), summed and divided by
        ``total`` (a () tensor, ``rt.loss_total``): masked diffusion's 1/t-weighted loss."""
        target = labels != IGNORE_INDEX
        logits = self.logits(hidden[target])
        if logits.shape[0] == 0:
            return _zero_loss(hidden), logits
        per_token = F.cross_entropy(logits, labels[target], reduction="none")
        return (per_token * weights[target]).sum() / total, logits


class Seq2SeqHead(MLMHead):
    """Cross-entropy of an encoder-decoder's next-token predictions (T5, BART, MASS).

    forward(decoder hidden (B, T, H), labels (B, T) int64, -100 where nothing is predicted) ->
    loss, with no shift: the collator already shifted the decoder's inputs (its
    ``decoder_input_ids`` are the labels shifted right), so decoder position t predicts
    ``labels[:, t]``, as in Hugging Face's ``...ForConditionalGeneration``. The decoder-only
    form's labels are not shifted: use :class:`CausalLMHead` there.
    """


class CausalLMHead(Seq2SeqHead):
    """The seq2seq head of the decoder-only form (a prefix LM, or a causal LM): the same
    transform and tied decoder, with the label shift a causal LM does itself.

    forward(hidden (B, L, H), labels (B, L) int64, -100 where nothing is predicted) -> loss.
    The labels are the batch's, unshifted (Hugging Face's causal-LM convention: ``labels`` are
    the tokens at their own positions); here ``hidden[:, t]`` predicts ``labels[:, t + 1]``, so
    a label at position 0 has no prediction. ``hidden`` must come from a model run causally
    (bidirectionally within the prefix only; ``rt.encode(model, batch, causal=True)``): then
    no position's loss sees its own target or a later token.
    """

    def loss_and_logits(
        self, hidden: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits (N, V) at the N labelled positions of the shifted labels, predicted
        from the states one position before them, in row-major order)."""
        return super().loss_and_logits(hidden[:, :-1], labels[:, 1:])


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
        return self.classifier(self.pooler(first_token(hidden)))

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


class Replacements(NamedTuple):
    """ELECTRA's corrupted input: ``input_ids`` (B, L) int64 with the generator's samples at
    the selected positions, ``replaced`` (B, L) bool where a sample differs from the original."""

    input_ids: torch.Tensor
    replaced: torch.Tensor


GUMBEL_SALT = 0x2545F491
NOISE_ELEMENTS = 1 << 22  # Gumbel noise is made for this many (position, token) pairs at a time


def gumbel_noise(sample_keys: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(N, V) float32 standard Gumbel noise from (N,) int64 per-position counter keys: each
    (key, token) pair hashed to a 24-bit uniform in (0, 1), so sampling is a pure function of
    (seed, epoch, example, position) on every device, resumable like the corruption itself."""
    tokens = torch.arange(vocab_size, device=sample_keys.device, dtype=torch.int64)
    bits = hash32(sample_keys.unsqueeze(1) ^ hash32(mul32(tokens, GUMBEL_SALT).unsqueeze(0)))
    u = ((bits >> 8).float() + 0.5) / float(1 << 24)
    return -torch.log(-torch.log(u))


@torch.no_grad()
def sample_replacements(
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    logits: torch.Tensor,
    sample_keys: torch.Tensor,
    temperature: float = 1.0,
) -> Replacements:
    """ELECTRA's fake input: at each labelled position (labels != -100; row-major, matching
    ``logits`` (N, V)) a token sampled from ``softmax(logits / temperature)`` by Gumbel-max,
    without gradient. A sample equal to the original counts as original (not replaced)."""
    target = labels != IGNORE_INDEX
    chunk = max(1, NOISE_ELEMENTS // max(logits.shape[1], 1))  # bounds the (N, V) temporaries
    sampled = (
        torch.cat(
            [
                (part.float() / temperature + gumbel_noise(keys, logits.shape[1])).argmax(dim=1)
                for part, keys in zip(
                    logits.split(chunk), sample_keys[target].split(chunk), strict=True
                )
            ]
        )
        if logits.shape[0]
        else logits.new_zeros(0, dtype=torch.int64)
    )
    fake = input_ids.clone()
    fake[target] = sampled
    return Replacements(fake, target & (fake != labels))


class ReplacedTokenDetectionHead(nn.Module):
    """ELECTRA's discriminator: dense -> GELU -> dense(1) per token; sigmoid binary
    cross-entropy against ``replaced`` over every non-pad token ([CLS] and [SEP] included),
    averaged over them.

    forward(hidden (B, L, H), replaced (B, L) bool, attention_mask (B, L)) -> loss.
    ``embeddings`` is unused (the heads share one constructor signature).
    """

    def __init__(self, hidden_size: int, embeddings: nn.Embedding | None = None) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.score = nn.Linear(hidden_size, 1)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, L) float: the logit of "replaced" per token."""
        return self.score(F.gelu(self.dense(hidden))).squeeze(-1)

    def forward(
        self, hidden: torch.Tensor, replaced: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        valid = attention_mask.bool()
        if not bool(valid.any()):
            return _zero_loss(hidden)
        logits = self.logits(hidden)[valid]
        return F.binary_cross_entropy_with_logits(logits, replaced[valid].float())


POOLINGS = ("first", "mean")
SIMILARITIES = ("cosine", "dot")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, H): the first token's state, or the mean over each row's non-pad tokens."""
    if pooling == "first":
        return first_token(hidden)
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class ContrastiveHead(nn.Module):
    """InfoNCE with in-batch negatives (SimCSE; InfoWord's sentence / n-gram pairs).

    Each view is pooled (``first`` token or ``mean``), projected (dense + tanh, SimCSE's MLP;
    ``projection=0`` skips it), and scored by ``cosine`` similarity or ``dot`` product over
    ``temperature``. Row i's positive is the other view of row i; every other row's is a
    negative. Under torch.distributed the views of every rank are all-gathered, so the
    negatives are the global batch, as in SimCSE; the gather's backward sums over the ranks,
    so DDP's averaged step equals one process's step on the global batch.

    forward(anchor (B, L, H), anchor_mask (B, L), positive (B, L', H), positive_mask (B, L'),
    rows (B,) bool or None) -> loss: cross-entropy of each anchor against all positives, labels
    ``arange(N)``; ``rows`` leaves out rows without a real pair (an InfoWord row with nothing
    selected). Set ``gather = False`` to score a rank's rows alone (evaluation on one rank:
    the all-gather is a collective every rank must join).
    """

    gather = True

    def __init__(
        self,
        hidden_size: int,
        embeddings: nn.Embedding | None = None,
        temperature: float = 0.05,
        pooling: str = "first",
        similarity: str = "cosine",
        projection: int = 1,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS or similarity not in SIMILARITIES or temperature <= 0:
            raise ValueError(f"bad contrastive head: {pooling=}, {similarity=}, {temperature=}")
        self.temperature = temperature
        self.pooling = pooling
        self.similarity = similarity
        self.project = (
            nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Tanh())
            if projection
            else nn.Identity()
        )

    def embed(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, H): one view's pooled, projected (and, for cosine, unit-normalised) vectors."""
        z = self.project(pool(hidden, attention_mask, self.pooling))
        return F.normalize(z, dim=-1) if self.similarity == "cosine" else z

    def scores(self, anchors: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        """(N, N) logits: similarity of every anchor to every positive, over the temperature."""
        return anchors @ positives.t() / self.temperature

    def forward(
        self,
        anchor: torch.Tensor,
        anchor_mask: torch.Tensor,
        positive: torch.Tensor,
        positive_mask: torch.Tensor,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        anchors = self.embed(anchor, anchor_mask)
        positives = self.embed(positive, positive_mask)
        if rows is not None:
            anchors, positives = anchors[rows], positives[rows]
        if self.gather:
            anchors, positives = gather_with_grad(anchors), gather_with_grad(positives)
        if anchors.shape[0] == 0:
            return _zero_loss(anchor)
        labels = torch.arange(anchors.shape[0], device=anchors.device)
        return F.cross_entropy(self.scores(anchors, positives), labels)
