"""Tokenizers and Hugging Face models for ``objspec pretrain``: local files only, never a
download.

The model class follows the spec's batch (as :func:`objspec.runtime.consumers.hf_inputs`
maps batches to models): a batch the Hugging Face pre-training class reads whole trains that
class with its own loss (``AutoModelForMaskedLM`` for an MLM batch, ``AutoModelForPreTraining``
for MLM with NSP or SOP, ``AutoModelForSeq2SeqLM`` for an encoder-decoder batch,
``AutoModelForCausalLM`` for a decoder-only one); any other batch (SpanBERT's span boundaries,
ELECTRA's sampling keys, a prefix LM's ``prefix_mask``, MASS's decoder positions, contrastive
views, ...) trains the spec's own heads over the base model (``AutoModel``) through
:class:`~objspec.runtime.encoders.HuggingFaceEncoder`, ``HuggingFaceSeq2Seq`` or
``HuggingFaceCausalLM``.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from objspec import bundled
from objspec.runtime.consumers import hf_inputs

OFFLINE = (
    "objspec pretrain never downloads (it runs offline): pass a local folder written by "
    "save_pretrained, or a config.json"
)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)
LOSS_FROM = ("auto", "model", "objspec")
# the special tokens a raw tokenizer names, by the usual spellings (first found wins)
SPECIAL_NAMES = {
    "pad_token": ("[PAD]", "<pad>"),
    "unk_token": ("[UNK]", "<unk>"),
    "cls_token": ("[CLS]", "<cls>"),
    "sep_token": ("[SEP]", "<sep>"),
    "mask_token": ("[MASK]", "<mask>"),
    "bos_token": ("<s>", "[BOS]", "<|endoftext|>"),
    "eos_token": ("</s>", "[EOS]", "<|endoftext|>"),
}


class ModelSetupError(ValueError):
    """A model or tokenizer that cannot be loaded or does not fit the spec (one line)."""


# --- tokenizers ----------------------------------------------------------------------------------


@dataclass
class TokenizerChoice:
    """``data``: what prepares the examples and gives the Vocab (a ``tokenizers.Tokenizer`` or
    a fast ``PreTrainedTokenizerFast``); ``path``: the file or folder it came from (None: the
    bundled one)."""

    data: Any
    path: Path | None

    @property
    def bundled(self) -> bool:
        return self.path is None

    def for_saving(self) -> Any:
        """A ``PreTrainedTokenizerFast`` to ``save_pretrained`` beside a model."""
        if hasattr(self.data, "save_pretrained"):
            return self.data
        from transformers import PreTrainedTokenizerFast

        vocab = self.data.get_vocab(with_added_tokens=True)
        named = {
            key: next((n for n in names if n in vocab), None)
            for key, names in SPECIAL_NAMES.items()
        }
        added = self.data.get_added_tokens_decoder()
        named_texts = {v for v in named.values() if v is not None}
        extra = [
            str(t.content)
            for _, t in sorted(added.items())
            if getattr(t, "special", False) and str(t.content) not in named_texts
        ]
        given = {k: v for k, v in named.items() if v is not None}
        return PreTrainedTokenizerFast(
            tokenizer_object=self.data, additional_special_tokens=extra, **given
        )


def load_tokenizer(path: str | None, modes: tuple[str, ...] = ()) -> TokenizerChoice:
    """The bundled tokenizer (``path`` None), a ``tokenizer.json`` file or a Hugging Face
    tokenizer folder (fast tokenizers only); the spec's mode tokens (``modes``) added as
    special tokens where missing."""
    if path is None:
        return TokenizerChoice(bundled.with_special_tokens(bundled.load_tokenizer(), modes), None)
    where = Path(path)
    if where.is_file():
        from tokenizers import Tokenizer

        try:
            raw = Tokenizer.from_file(str(where))
        except Exception as exc:  # the Rust error: one line
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelSetupError(f"--tokenizer {path}: not a tokenizer.json ({reason})") from None
        return TokenizerChoice(bundled.with_special_tokens(raw, modes), where)
    if where.is_dir():
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(where), local_files_only=True)
        except (OSError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0]
            raise ModelSetupError(f"--tokenizer {path}: cannot load it ({reason})") from None
        if not getattr(tokenizer, "is_fast", False):
            raise ModelSetupError(
                f"--tokenizer {path}: {type(tokenizer).__name__} is not a fast tokenizer; "
                "objspec needs one (its tokenizer.json) for word ids"
            )
        missing = [m for m in dict.fromkeys(modes) if m not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_tokens(missing, special_tokens=True)
        return TokenizerChoice(tokenizer, where)
    raise ModelSetupError(
        f"--tokenizer {path}: no such file or folder; a tokenizer.json or a folder written by "
        "save_pretrained (objspec pretrain never downloads)"
    )


def tokenizer_hash(choice: TokenizerChoice) -> str | None:
    from objspec.pretrain.checkpoints import file_sha256, folder_sha256

    if choice.path is None:
        return None
    if choice.path.is_file():
        return file_sha256(choice.path)
    return folder_sha256(choice.path, TOKENIZER_FILES)


# --- models --------------------------------------------------------------------------------------


@dataclass
class ModelSource:
    """A ``--model``: its config and the folder of its weights (None: initialised from the
    config)."""

    config: Any
    weights: Path | None
    config_file: Path


def load_model_source(path: str) -> ModelSource:
    """``--model``: a local folder (with ``config.json``; weights when there are any) or a
    config.json file. A name that is neither (a hub name) is refused: nothing is downloaded."""
    from transformers import AutoConfig

    where = Path(path)
    if where.is_dir():
        config_file = where / "config.json"
        if not config_file.is_file():
            raise ModelSetupError(f"--model {path}: the folder has no config.json")
        weights = where if any((where / w).exists() for w in WEIGHT_FILES) else None
    elif where.is_file():
        config_file, weights = where, None
    else:
        raise ModelSetupError(f"--model {path}: no such local folder or config.json; {OFFLINE}")
    try:
        if where.is_dir():
            config = AutoConfig.from_pretrained(str(where), local_files_only=True)
        else:
            config = config_from_json(config_file)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelSetupError(f"--model {path}: not a model config ({reason[:200]})") from None
    return ModelSource(config, weights, config_file)


def config_from_json(file: Path) -> Any:
    from transformers import AutoConfig

    values = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(values, dict) or "model_type" not in values:
        raise ValueError("a config.json with a model_type is needed")
    kind = values.pop("model_type")
    return AutoConfig.for_model(kind, **values)


def model_hash(source: ModelSource | None) -> str | None:
    from objspec.pretrain.checkpoints import file_sha256

    return None if source is None else file_sha256(source.config_file)


def named_parameters(model: Any) -> set[str]:
    """The parameters a model's ``forward`` names (not what ``**kwargs`` would swallow)."""
    parameters = inspect.signature(model.forward).parameters.values()
    return {p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def form_of(collator_class: Any) -> str:
    """The batch form: ``encoder_decoder``, ``decoder_only`` or ``encoder``."""
    if "decoder_input_ids" in collator_class.outputs:
        return "encoder_decoder"
    return "decoder_only" if collator_class.decoder_only else "encoder"


def pretraining_class(collator_class: Any) -> Any:
    """The Auto class whose models read this form of batch with their own loss."""
    import transformers

    outputs = set(collator_class.outputs)
    form = form_of(collator_class)
    if form == "encoder_decoder":
        return transformers.AutoModelForSeq2SeqLM
    if form == "decoder_only":
        return transformers.AutoModelForCausalLM
    if outputs & {"next_sentence_label", "sentence_order_label"}:
        return transformers.AutoModelForPreTraining
    return transformers.AutoModelForMaskedLM


def fit_config(config: Any, vocab: Any, form: str, fresh: bool) -> None:
    """A config made to fit the tokenizer: its vocabulary size and special token ids outside
    it (when initialised from the config; GPT-2's 50256), and the ids it names none of."""
    if fresh and getattr(config, "vocab_size", None) != vocab.size:
        config.vocab_size = vocab.size
    for attribute, value in (
        ("pad_token_id", vocab.pad_id),
        ("bos_token_id", vocab.bos_id if vocab.bos_id is not None else vocab.cls_id),
        ("eos_token_id", vocab.eos_id if vocab.eos_id is not None else vocab.sep_id),
    ):
        current = getattr(config, attribute, None)
        outside = isinstance(current, int) and not 0 <= current < vocab.size
        if value is not None and (current is None or (fresh and outside)):
            setattr(config, attribute, value)
    if form == "encoder_decoder" and getattr(config, "decoder_start_token_id", None) is None:
        config.decoder_start_token_id = vocab.pad_id


# the spec heads whose loss each pre-training class computes itself
CLASS_HEADS = {
    "AutoModelForMaskedLM": {"mlm"},
    "AutoModelForPreTraining": {"mlm", "sentence_classification"},
    "AutoModelForSeq2SeqLM": {"seq2seq"},
    "AutoModelForCausalLM": {"seq2seq"},
}


def spec_heads(compiled: Any, vocab: Any) -> set[str]:
    """The names of the heads a spec trains (``mlm``, ``span_boundary``, ``contrastive``, ...),
    read off its Heads built over a throw-away tiny model (the global random state is left as
    it was, so the real model's initial weights do not move)."""
    from objspec.runtime import TinyEncoder, TinySeq2Seq

    seq2seq = "decoder_input_ids" in compiled.Collator.outputs
    with torch.random.fork_rng(devices=[]):
        probe = (TinySeq2Seq if seq2seq else TinyEncoder)(
            vocab.size, hidden_size=16, layers=1, heads=1, max_length=8
        )
        heads = compiled.Heads(probe)
    return {name for name, _ in heads.named_children()} - {"model", "generator"}


class ModelLoss(nn.Module):
    """A Hugging Face pre-training model trained by its own loss: ``forward(batch)`` is
    ``{'loss': model(**hf_inputs(model, batch)).loss}``."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": self.model(**hf_inputs(self.model, batch)).loss}


class ElectraPretraining(nn.Module):
    """ELECTRA with Hugging Face's own classes: the generator (``ElectraForMaskedLM``, its MLM
    loss on the collated batch) and the discriminator (``ElectraForPreTraining``, its
    replaced-token loss on :func:`~objspec.runtime.consumers.electra_discriminator_inputs`:
    the generator's samples, drawn with the Gumbel keys of the spec's own heads), sharing the
    embeddings as ELECTRA does; the spec's weights and temperature."""

    def __init__(
        self,
        discriminator: Any,
        generator: Any,
        weights: tuple[float, float],
        temperature: float,
    ) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.weights = weights
        self.temperature = temperature

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from objspec.runtime.consumers import electra_discriminator_inputs

        keys = ("input_ids", "attention_mask", "labels", "token_type_ids")
        generated = self.generator(**{k: batch[k] for k in keys if k in batch})
        fed = electra_discriminator_inputs(batch, generated.logits, self.temperature)
        replaced = self.discriminator(**fed).loss
        losses = {"mlm": generated.loss, "replaced_token_detection": replaced}
        losses["loss"] = self.weights[0] * generated.loss + self.weights[1] * replaced
        return losses


ELECTRA_CONSTANTS = (
    "MLM_WEIGHT",
    "REPLACED_TOKEN_DETECTION_WEIGHT",
    "GENERATOR_SIZE",
    "GENERATOR_TEMPERATURE",
)


def electra_pair(source: ModelSource, compiled: Any, vocab: Any) -> BuiltModel | None:
    """ELECTRA's generator and discriminator as Hugging Face classes, for an ``electra``
    config and a spec whose heads are ELECTRA's (None otherwise). A ``--model`` folder's
    ``generator/`` subfolder (a checkpoint's) gives the generator's weights."""
    import transformers

    from objspec.runtime.models import heads_for

    config = source.config
    outputs = set(compiled.Collator.outputs)
    constants = [getattr(compiled.module, name, None) for name in ELECTRA_CONSTANTS]
    if (
        getattr(config, "model_type", None) != "electra"
        or spec_heads(compiled, vocab) != {"mlm", "replaced_token_detection"}
        or not outputs <= {"input_ids", "attention_mask", "labels", "sample_keys", "token_type_ids"}
        or not all(isinstance(c, int | float) for c in constants)
    ):
        return None
    mlm_weight, rtd_weight, size, temperature = (float(c) for c in constants)  # type: ignore[arg-type]
    discriminator = _instantiate(transformers.ElectraForPreTraining, source, config)
    _fit_vocabulary(discriminator, vocab)
    hidden = max(1, round(config.hidden_size * size))
    small = config.__class__(
        **{
            **config.to_dict(),
            "vocab_size": discriminator.config.vocab_size,
            "hidden_size": hidden,
            "num_attention_heads": heads_for(hidden, 64),
            "intermediate_size": 4 * hidden,
        }
    )
    saved = source.weights / "generator" if source.weights is not None else None
    if saved is not None and (saved / "config.json").is_file():
        generator = transformers.ElectraForMaskedLM.from_pretrained(
            str(saved), local_files_only=True
        )
    else:
        generator = transformers.ElectraForMaskedLM(small)
    generator.electra.embeddings = discriminator.electra.embeddings  # shared, as ELECTRA's
    if getattr(generator.config, "tie_word_embeddings", True):
        generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight
    module = ElectraPretraining(discriminator, generator, (mlm_weight, rtd_weight), temperature)
    return BuiltModel(
        module,
        discriminator,
        "ElectraForPreTraining with an ElectraForMaskedLM generator, their losses",
        {"generator": generator},
    )


@dataclass
class BuiltModel:
    """``module``: forward(batch) -> dict of losses (``'loss'`` their sum); ``pretrained``:
    the Hugging Face model ``save_pretrained`` writes (None for the tiny model); ``how``: a
    few words for the start-up line; ``also_saved``: more models, each ``save_pretrained``
    into a subfolder of that name (ELECTRA's generator)."""

    module: nn.Module
    pretrained: Any
    how: str
    also_saved: dict[str, Any] = field(default_factory=dict)


def build_hf_model(
    source: ModelSource,
    compiled: Any,
    vocab: Any,
    loss_from: str,
    max_length: int,
) -> BuiltModel:
    """The model for ``compiled``'s batch from ``source``: its pre-training class with its
    own loss where that class reads the whole batch (``loss_from`` auto or model), else the
    spec's heads over the base model (objspec)."""
    import transformers

    collator_class = compiled.Collator
    form = form_of(collator_class)
    config = source.config
    fit_config(config, vocab, form, fresh=source.weights is None)
    positions = getattr(config, "max_position_embeddings", None)
    needed = max_length + (1 if form == "decoder_only" else 0)
    if isinstance(positions, int) and positions < needed:
        raise ModelSetupError(
            f"the model has {positions} positions (max_position_embeddings), fewer than the "
            f"{needed} a row of --max-length {max_length} needs"
        )
    if loss_from != "objspec" and (pair := electra_pair(source, compiled, vocab)) is not None:
        return pair
    if loss_from != "objspec":
        auto = pretraining_class(collator_class)
        try:
            model = _instantiate(auto, source, config)
        except ValueError as exc:  # no such class for this config
            if loss_from == "model":
                raise ModelSetupError(f"--loss-from model: {_first_line(exc)}") from None
            model = None
        if model is not None:
            unread = [k for k in collator_class.outputs if k not in named_parameters(model)]
            untrained = sorted(spec_heads(compiled, vocab) - CLASS_HEADS[auto.__name__])
            unread += [f"{head} head" for head in untrained]
            if collator_class.pack_default is not None:  # its rows hold several documents
                unread.append("document_ids (the spec packs its rows)")
            if "labels" in collator_class.outputs and not unread:
                _fit_vocabulary(model, vocab)
                return BuiltModel(ModelLoss(model), model, f"{type(model).__name__}, its loss")
            if loss_from == "model":
                raise ModelSetupError(
                    f"--loss-from model: {type(model).__name__} does not read the batch's "
                    f"{', '.join(unread) or 'labels'}; use --loss-from objspec (the spec's heads)"
                )
    base = _instantiate(transformers.AutoModel, source, config)
    _fit_vocabulary(base, vocab)
    from objspec.runtime.encoders import (
        HuggingFaceCausalLM,
        HuggingFaceEncoder,
        HuggingFaceSeq2Seq,
    )

    wrapper = {
        "encoder_decoder": HuggingFaceSeq2Seq,
        "decoder_only": HuggingFaceCausalLM,
        "encoder": HuggingFaceEncoder,
    }[form]
    try:
        heads = compiled.Heads(wrapper(base))
    except (TypeError, ValueError) as exc:
        name = type(base).__name__
        raise ModelSetupError(f"the spec's heads over {name}: {_first_line(exc)}") from None
    generator = getattr(getattr(heads, "generator", None), "model", None)
    also = {"generator": generator} if hasattr(generator, "save_pretrained") else {}
    return BuiltModel(heads, base, f"{type(base).__name__} with the spec's heads", also)


def _instantiate(auto: Any, source: ModelSource, config: Any) -> Any:
    if source.weights is None:  # an Auto class's from_config, or a model class itself
        return auto.from_config(config) if hasattr(auto, "from_config") else auto(config)
    try:
        return auto.from_pretrained(str(source.weights), config=config, local_files_only=True)
    except Exception as exc:  # unreadable (SafetensorError, ...) or mismatched weights: one line
        raise ModelSetupError(f"--model {source.weights}: {_first_line(exc)}") from None


def _fit_vocabulary(model: Any, vocab: Any) -> None:
    """Grow a pretrained model's token embedding to the tokenizer's vocabulary (mode tokens a
    spec added); a smaller tokenizer keeps the model's table."""
    embeddings = model.get_input_embeddings()
    if embeddings is not None and embeddings.num_embeddings < vocab.size:
        model.resize_token_embeddings(vocab.size)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
