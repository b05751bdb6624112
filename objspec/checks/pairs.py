"""Checks of sentence pairs, UniLM's masks, translation pairs and XLNet's permutation order."""

from __future__ import annotations

from typing import Any

import torch

from objspec import ir
from objspec.checks.framework import CLS, SEP, Case, _collate, _fail, _inputs, big_case
from objspec.checks.selection import _binomial_ok
from objspec.runtime import IGNORE_INDEX
from objspec.runtime.attention import blocked_by_order


def _members(example: dict[str, Any]) -> list[int]:
    return [t for t, s in zip(example["input_ids"], example["sentence_ids"], strict=True) if s >= 0]


def _occurs_from(haystack: list[int], needle: list[int], lowest: int) -> bool:
    """Whether ``needle`` occurs in ``haystack`` at an offset of at least ``lowest``."""
    span = len(needle)
    if span == 0:
        return True
    return any(haystack[a : a + span] == needle for a in range(lowest, len(haystack) - span + 1))


def check_pairs(objective: ir.Objective, compiled: Any, case: Case) -> None:
    assert objective.pair is not None
    out = _collate(compiled, case)
    relations = [s.relation for s in objective.pair.shares]
    labels = out[objective.pair.label_key].tolist()
    members = [_members(e) for e in case.examples]
    for row, (ids, kinds) in enumerate(
        zip(out["input_ids"].tolist(), out["token_type_ids"].tolist(), strict=True)
    ):
        n = int(out["attention_mask"][row].sum())
        ids, kinds = ids[:n], kinds[:n]
        sep = ids.index(SEP, 1)
        x, y = ids[1:sep], ids[sep + 1 : n - 1]
        if ids[0] != CLS or ids[n - 1] != SEP or kinds != [0] * (sep + 1) + [1] * (n - sep - 1):
            raise _fail(f"row {row} is not [CLS] A [SEP] B [SEP] with token types 0 then 1")
        doc = members[row]
        relation = relations[labels[row]]
        if relation == "next":
            ok = doc[: len(x)] == x and _occurs_from(doc, y, max(len(x), 1))
        elif relation in ("swapped", "previous"):
            ok = doc[: len(y)] == y and _occurs_from(doc, x, max(len(y), 1))
        else:
            others = [m for r, m in enumerate(members) if r != row]
            ok = doc[: len(x)] == x and any(_occurs_from(m, y, 0) for m in others)
        if not ok:
            raise _fail(f"row {row}: the segments are not a {relation!r} pair of its document")


def check_pair_rates(objective: ir.Objective, compiled: Any, case: Case) -> None:
    assert objective.pair is not None
    big = big_case()
    labels = _collate(compiled, big)[objective.pair.label_key]
    for i, share in enumerate(objective.pair.shares):
        ok, detail = _binomial_ok(int((labels == i).sum()), int(labels.numel()), share.share)
        if not ok:
            raise _fail(f"share of {share.relation!r}: {detail}")


def check_pair_labels(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """The drawn relation is the example's own, alone or in any batch (a random partner's
    tokens are the batch's, so only the label is promised)."""
    assert objective.pair is not None
    key = objective.pair.label_key
    together = _collate(compiled, case)[key]
    for row, example in enumerate(case.examples):
        alone = _collate(compiled, Case(case.vocab, [example], case.seed, case.epoch))[key]
        relation = objective.pair.shares[int(together[row])].relation
        if int(alone[0]) != int(together[row]) and relation != "random":
            raise _fail(f"example {row} draws another relation alone")


# --- UniLM: attention masks -----------------------------------------------------------------------


def _unilm_mask(mode: str, valid: list[bool], segment: list[int]) -> list[list[int]]:
    """The mask a row of this mode must have, entry by entry (1: i may attend to j)."""
    n = len(valid)

    def allowed(i: int, j: int) -> bool:
        if mode == "left_to_right":
            return j <= i
        if mode == "right_to_left":
            return j >= i
        if mode == "seq2seq":
            return segment[j] == 0 or (segment[i] == 1 and j <= i)
        return True

    return [[int(valid[i] and valid[j] and allowed(i, j)) for j in range(n)] for i in range(n)]


def check_segments(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """'pair next 100%' with a masked LM: each row, its labels put back, is [CLS] A [SEP] B
    [SEP] of its document in order, and holds exactly the budget's masked-LM targets."""
    out = _collate(compiled, case)
    labelled = out["labels"] != IGNORE_INDEX
    rows = torch.where(labelled, out["labels"], out["input_ids"])
    sel = objective.select
    assert isinstance(sel, ir.Exact)
    for row, example in enumerate(case.examples):
        n = int(out["attention_mask"][row].sum())
        ids = rows[row, :n].tolist()
        doc = _members(example)
        sep = ids.index(SEP, 1)
        if ids[0] != CLS or ids[n - 1] != SEP or ids[1:sep] + ids[sep + 1 : n - 1] != doc:
            raise _fail(f"row {row} is not [CLS] A [SEP] B [SEP] of its document")
        if bool(labelled[row, [0, sep, n - 1]].any()):
            raise _fail(f"row {row}: [CLS] or a [SEP] got a label")
        want = min(round(sel.budget.rate * (n - 3)), n - 3)
        if int(labelled[row].sum()) != want:
            raise _fail(f"row {row}: {int(labelled[row].sum())} targets, the budget says {want}")


def check_translation(objective: ir.Objective, compiled: Any, case: Case) -> None:
    """XLM's TLM: each row, labels put back, is </s> x </s> y </s>; positions restart at y;
    langs are the sentence's then the translation's; the budget covers both sentences."""
    out = _collate(compiled, case)
    end = compiled.Collator(case.vocab).end_id
    labelled = out["labels"] != IGNORE_INDEX
    rows = torch.where(labelled, out["labels"], out["input_ids"])
    sel = objective.select
    assert isinstance(sel, ir.Exact)
    for row, example in enumerate(case.examples):
        x, y = list(example["input_ids"]), list(example["translation_ids"])
        n = len(x) + len(y) + 3
        if rows[row, :n].tolist() != [end, *x, end, *y, end]:
            raise _fail(f"row {row} is not </s> sentence </s> translation </s>")
        positions = [*range(len(x) + 2), *range(len(y) + 1)]
        if out["position_ids"][row, :n].tolist() != positions:
            raise _fail(f"row {row}: positions do not restart at the translation")
        langs = [example.get("lang", 0)] * (len(x) + 2) + [example.get("translation_lang", 1)] * (
            len(y) + 1
        )
        if out["langs"][row, :n].tolist() != langs:
            raise _fail(f"row {row}: language ids do not follow the two sentences")
        words = sum(t not in case.vocab.special_ids for t in x + y)
        if int(labelled[row].sum()) != min(round(sel.budget.rate * words), words):
            raise _fail(f"row {row}: {int(labelled[row].sum())} targets, not the budget's")


def check_unilm(objective: ir.Objective, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    for row in range(out["input_ids"].shape[0]):
        mode = ir.UNILM_MASKS[int(out["attention_mode"][row])]
        valid = out["attention_mask"][row].bool().tolist()
        segment = (
            out["token_type_ids"][row].tolist() if "token_type_ids" in out else [0] * len(valid)
        )
        if out["self_attention_mask"][row].tolist() != _unilm_mask(mode, valid, segment):
            raise _fail(f"row {row}: the attention mask is not exactly the {mode} mask")


def check_unilm_rates(objective: ir.Objective, compiled: Any, case: Case) -> None:
    big = big_case()
    modes = _collate(compiled, big)["attention_mode"]
    for name, share in objective.attention.mix:
        ok, detail = _binomial_ok(
            int((modes == ir.UNILM_MASKS.index(name)).sum()), int(modes.numel()), share
        )
        if not ok:
            raise _fail(f"share of the {name} mask: {detail}")


# --- XLNet: the factorization order -------------------------------------------------------------


def check_factorization(objective: ir.Objective, compiled: Any, case: Case) -> None:
    out = _collate(compiled, case)
    _, valid, _ = _inputs(case)
    targets = out["labels"] != IGNORE_INDEX
    length = targets.shape[1]
    if "perm_order" in out:  # the sparse layout: the order itself, expanded here
        order = out["perm_order"]
        if not torch.equal(order >= 0, targets):
            raise _fail("perm_order ranks other tokens than the targets")
        blocked = blocked_by_order(order)
    else:
        blocked = out["perm_mask"].bool()
        mapping = out["target_mapping"]
        if not torch.equal(mapping, torch.eye(length).expand_as(mapping)):
            raise _fail("target_mapping is not the identity of each row")
    listed = out["target_positions"]
    want = [row.nonzero().flatten() for row in targets]
    for row, positions in enumerate(listed):
        if not torch.equal(positions[positions >= 0], want[row]) or bool(
            (positions[len(want[row]) :] >= 0).any()
        ):
            raise _fail(f"row {row}: target_positions does not list the targets in order")
    for row in range(targets.shape[0]):
        t = targets[row]
        others = valid[row] & ~t
        if not torch.equal(blocked[row][others], t.expand(int(others.sum()), length)):
            raise _fail(f"row {row}: a non-target sees a target or misses a non-target")
        sub = blocked[row][t][:, t]  # among targets: sub[i, j] = i may not see j
        if not bool(sub.diagonal().all()):
            raise _fail(f"row {row}: a target sees itself")
        sees = ~sub
        k = int(t.sum())
        if bool((sees & sees.T).any()) or bool(((~sees) & (~sees.T)).fill_diagonal_(False).any()):
            raise _fail(f"row {row}: two targets are not ordered one way")
        # a tournament is an order (acyclic) iff its scores are 0, 1, ..., k-1
        if sorted(sees.sum(dim=1).tolist()) != list(range(k)):
            raise _fail(f"row {row}: the targets' order has a cycle")
