"""``objspec pretrain``: train a model with a spec's compiled collator, on ``accelerate``.

The model is the tiny reference model by default, or a Hugging Face model from a local folder
or ``config.json`` (:mod:`objspec.pretrain.hf`: the pre-training class that reads the spec's
batch, or the spec's heads over the base model); the tokenizer the bundled one or a local
``tokenizer.json`` / tokenizer folder; the data the bundled corpus, ``--text`` files or a
``datasets`` folder (:mod:`objspec.pretrain.data`). ``accelerate`` runs it: one process, or
one per rank under ``torchrun`` / ``accelerate launch`` (DDP), with mixed precision.

Everything random is a function of the seed: the data order of epoch e is a permutation keyed
by (seed, e), the corruption of an example by (seed, e, its index) and ELECTRA's samples by
(seed, e, index, position). So a run resumed from a checkpoint sees exactly the batches the
uninterrupted run would have, and under ``torchrun`` each rank takes an interleaved shard of
every global batch, each example corrupted exactly as a one-process run corrupts it.

A step takes ``batch_size`` examples (the global batch, over all ranks) in ``grad_accum``
micro-batches per rank. Each micro-batch's loss is weighted by its share of the step's targets
(label tokens, over all ranks; equal shares for a batch without ``labels``), so the
accumulated gradient and the logged loss are those of the whole batch at once, not a mean of
per-micro-batch means.

Files written to ``out``: ``losses.csv`` (step, total and per-head losses, averaged over the
ranks), ``eval.csv`` (the evaluation loss, masked as at epoch 0), ``losses.png``,
``tensorboard/`` (``--log tensorboard``) and numbered checkpoint folders (see
:mod:`objspec.pretrain.checkpoints`).

One module per concept: ``config`` (:class:`PretrainConfig`, its checks, what a resume must
share), ``trainer`` (:class:`Pretrainer`: the run's loop, evaluation, checkpoints, resuming),
``optimization`` (AdamW's groups, the learning-rate schedule), ``process`` (accelerate, the
rank's device, torchrun's process group, stop signals), ``hf`` (Hugging Face models and
tokenizers), ``data`` (the corpus and the data order), ``checkpoints`` (their folders and
files) and ``logs`` (the loss curve, TensorBoard). This module re-exports their public names.
"""

from __future__ import annotations

import torch as torch  # ``objspec.pretrain.torch``: what tests patch torch.save through

from objspec.pretrain import hf as hf
from objspec.pretrain.checkpoints import CheckpointError
from objspec.pretrain.config import MIXED_PRECISION as MIXED_PRECISION
from objspec.pretrain.config import RESUME_FIXED as RESUME_FIXED
from objspec.pretrain.config import SCHEDULERS as SCHEDULERS
from objspec.pretrain.config import PretrainConfig
from objspec.pretrain.config import source_hashes as source_hashes
from objspec.pretrain.data import epoch_order, step_indices
from objspec.pretrain.logs import sparkline
from objspec.pretrain.optimization import lr_factor
from objspec.pretrain.optimization import parameter_groups as parameter_groups
from objspec.pretrain.process import StopRequests, init_distributed
from objspec.pretrain.process import make_accelerator as make_accelerator
from objspec.pretrain.process import rank_device as rank_device
from objspec.pretrain.trainer import CHECKPOINT_KEYS as CHECKPOINT_KEYS
from objspec.pretrain.trainer import IGNORE_INDEX as IGNORE_INDEX
from objspec.pretrain.trainer import Pretrainer
from objspec.pretrain.trainer import build_model as build_model
from objspec.pretrain.trainer import build_tiny_model as build_tiny_model

__all__ = [
    "CheckpointError",
    "PretrainConfig",
    "Pretrainer",
    "StopRequests",
    "epoch_order",
    "init_distributed",
    "lr_factor",
    "sparkline",
    "step_indices",
]
