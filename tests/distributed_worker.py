"""Run by tests/test_training.py under ``torchrun --nproc_per_node=2`` (gloo, CPU).

Each rank writes ``OUT/rank{r}.pt`` with what the test compares against a one-process run:
its contrastive loss and gradients on an uneven shard of a fixed global batch, the example
indices and batches of a few pretraining steps, and the losses of a short DDP run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from objspec.pretrain import PretrainConfig, Pretrainer, init_distributed, step_indices
from objspec.runtime import ContrastiveHead
from objspec.runtime.distributed import world

SPECS = Path(__file__).resolve().parent.parent / "specs"
SHARDS = ((0, 4), (4, 6))  # rank 0 holds rows 0..3, rank 1 rows 4..5 (uneven on purpose)
BATCH_STEPS = (0, 1, 7)


def contrastive_views() -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed global batch: anchors and positives (6, 3, 8) hidden states."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 3, 8, generator=g), torch.randn(6, 3, 8, generator=g)


def contrastive_head() -> ContrastiveHead:
    torch.manual_seed(0)
    return ContrastiveHead(8, temperature=0.1)


def main(out: Path) -> None:
    assert init_distributed(), "run me under torchrun"
    rank, size = world()
    assert size == 2
    result: dict[str, object] = {}

    anchors, positives = contrastive_views()
    lo, hi = SHARDS[rank]
    a = anchors[lo:hi].clone().requires_grad_(True)
    p = positives[lo:hi].clone().requires_grad_(True)
    mask = torch.ones(hi - lo, 3)
    loss = contrastive_head()(a, mask, p, mask)
    loss.backward()
    result["contrastive"] = (loss.detach(), a.grad, p.grad)

    config = PretrainConfig(spec=str(SPECS / "electra.objspec"), out=str(out), batch_size=8)
    trainer = Pretrainer(config)
    batches = {}
    for step in BATCH_STEPS:
        _, indices = step_indices(step, len(trainer.examples), config.batch_size, config.seed)
        batches[step] = (indices, trainer.batch(step))
    result["batches"] = batches

    config = PretrainConfig(
        spec=str(SPECS / "simcse.objspec"), out=str(out / "simcse"), batch_size=8, steps=2
    )
    result["losses"] = Pretrainer(config).run()
    torch.save(result, out / f"rank{rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
