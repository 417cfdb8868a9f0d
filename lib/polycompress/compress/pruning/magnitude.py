"""Iterative magnitude pruning (IMP) during fine-tuning, as Ogueji et al. (2022) use it.

Scopes (which weights may be pruned):

- ``partial``: every ``nn.Linear`` weight of the encoder (attention Q/K/V/output and both FFN
  matrices); not biases, not LayerNorm, not the embeddings;
- ``incl_embeddings``: those plus the word, position and token-type embedding matrices.

The new classification head is never pruned: it has 384 x 7 weights, is trained from scratch,
and the paper prunes the pre-trained model, not the task layer.

Granularity ``per_tensor`` (the default) prunes each tensor to the target sparsity, as
TensorFlow's model_pruning library does (the paper does not say which it did; its appendix A.2's
"pruning end step" and "pruning frequency" are that library's hyper-parameters); ``global`` ranks
all weights of the scope together. Exactly ``round(s * n)`` weights are pruned at each update
(ties broken by position), so achieved = the update's target (the schedule's last target can fall
just short of the final sparsity, :mod:`.schedule`).
Pruned weights are set to zero after every optimizer step, so they stay exactly zero.

The word embeddings are kept at zero another way once :meth:`MagnitudePruner.attach` has the
optimizer (``training.train`` hands it over): a step changes only the rows of the batch's tokens
(the others get a zero gradient), so instead of multiplying the whole matrix by its mask after
every step (tens of millions of entries in the trimmed models here: half or more of the per-step
masking, ``benchmarks/train_speed.py``), the gradient
of the batch's rows is masked before the optimizer steps, and at each mask update AdamW's moments
of the newly pruned entries are zeroed. A pruned entry then has weight, gradient and both moments
at zero, so AdamW's update of it is exactly zero (decoupled weight decay of a zero is zero): the
same weights as masking the whole matrix, bit for bit, for a few thousand rows' work a step
(tests/test_pruning.py checks both against each other). No PyTorch or Hugging Face utility masks
row-wise this way (``torch.nn.utils.prune`` re-multiplies the whole tensor in a forward hook).

``outside`` ranks weights the model does not hold together with a tensor of its own: the
word-embedding rows a vocabulary-trimmed model lacks (:func:`polycompress.encoders.vocab.removed_rows`),
so that the embedding sparsity is over the full matrix as in the paper while only the rows the
corpora use are trained. Those rows are fixed (no gradient reaches them in the full model
either), so only their magnitudes are kept (pruned ones zeroed); the report counts them. This is the
pruning of the full matrix, without holding and updating 167k unused rows in the optimizer
(tests/test_pruning.py checks the masks against pruning the untrimmed matrix). Because they never
change, their magnitudes are sorted once (:class:`OutsidePool`) and each mask update counts into
them instead of ranking them again: a default update of the word embeddings (83k own rows, 167k
outside) drops from about 2.2 s to about 0.5 s, after a sort of about 1 s when the run starts
(one thread; ``benchmarks/train_speed.py`` measures it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .report import SparsityReport, TensorSparsity
from .schedule import Schedule

EMBEDDING_SUFFIXES = ("word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight")


def scope_parameters(model: nn.Module, scope: str) -> dict[str, nn.Parameter]:
    """Name -> parameter of every weight in ``scope`` (see the module docstring)."""
    base = getattr(model, model.base_model_prefix, model)
    prefix = model.base_model_prefix + "." if base is not model else ""
    out: dict[str, nn.Parameter] = {}
    for name, module in base.named_modules():
        if isinstance(module, nn.Linear) and ".encoder." in f".{name}.":
            out[prefix + name + ".weight"] = module.weight
    if scope == "incl_embeddings":
        for name, param in base.named_parameters():
            if name.endswith(EMBEDDING_SUFFIXES):
                out[prefix + name] = param
    elif scope != "partial":
        raise ValueError(f"unknown scope {scope!r}")
    if not out:
        raise ValueError(f"no prunable weights found in {type(model).__name__}")
    return out


def kth_smallest(x: np.ndarray, k: int, sample: int = 1_000_000) -> float:
    """The ``k``-th smallest value of ``x`` (1-based), exactly.

    For large ``x`` (a full embedding matrix: 96M entries) a random sample of about ``sample``
    values brackets the answer, one pass counts the values below the bracket, and only the few
    inside it are partitioned: about 0.2 s instead of 0.8 s for ``np.partition`` of everything
    (one CPU thread). Where the bracket misses (rarely: it is 4 standard errors of the sample's
    quantile wide; nothing depends on that) the whole array is partitioned.
    """
    return kth_smallest_of([(x.reshape(-1), False)], k, sample)


def kth_smallest_of(parts: list[tuple[np.ndarray, bool]], k: int, sample: int = 1_000_000) -> float:
    """The ``k``-th smallest value (1-based) of the union of ``parts``, exactly.

    ``parts`` are ``(values, is_sorted)``: flat arrays in any order, or sorted ascending (an
    :class:`OutsidePool`), which are counted by binary search instead of scanned. See
    :func:`kth_smallest` for the bracketing.
    """
    n = sum(a.size for a, _ in parts)
    if not 1 <= k <= n:
        raise ValueError(f"k = {k} outside 1..{n}")
    if n < 4 * sample:
        return np.partition(np.concatenate([a for a, _ in parts]), k - 1)[k - 1]
    stride = n // sample
    # every stride-th value of a sorted part is an exact quantile sample; an unsorted part is
    # sampled at random positions (a fixed seed): a stride would sample a matrix by columns (96
    # divides the 384 of a row), whose scales differ, and the bracket would miss
    rng = np.random.default_rng(0)
    probe = np.concatenate([a[::stride] if is_sorted else a[rng.integers(0, a.size, max(a.size // stride, 1))]
                            for a, is_sorted in parts])
    m = probe.size
    margin = max(int(0.002 * m), 50)  # quantile error of a 1M sample is ~0.05%: 4x that, or 50 values
    i = k * m // n
    lo_i, hi_i = max(i - margin, 0), min(i + margin, m - 1)
    part = np.partition(probe, [lo_i, hi_i])
    lo, hi = part[lo_i], part[hi_i]
    below, band = 0, []
    for a, is_sorted in parts:
        if is_sorted:
            first = int(np.searchsorted(a, lo, "left"))
            below += first
            band.append(a[first:int(np.searchsorted(a, hi, "right"))])
        else:
            below += int(np.count_nonzero(a < lo))
            band.append(a[(a >= lo) & (a <= hi)])
    within = np.concatenate(band)
    r = k - below
    if not 1 <= r <= within.size:
        return np.partition(np.concatenate([a for a, _ in parts]), k - 1)[k - 1]
    return np.partition(within, r - 1)[r - 1]


class OutsidePool:
    """|weights| ranked with a model tensor but not held by the model (a trimmed model's missing
    word-embedding rows), sorted ascending once.

    They never train, so the only change is pruning, which zeroes the smallest: a prefix of the
    sorted order, ties taken in the order of their positions (:meth:`zero_positions`). The values
    are cast to the tensor's dtype first, so that ties compare as they would inside the tensor.
    """

    def __init__(self, rows: torch.Tensor, dtype: torch.dtype):
        flat = rows.detach().abs().flatten().to(dtype).to(torch.float32).cpu().numpy()
        # values only (equal values are interchangeable): numpy's vectorised quicksort sorts the
        # 64M outside entries of the default model in about 1 s, a stable sort in 4 s
        self.values = np.sort(flat)
        self.row_width = rows.shape[1]

    @property
    def numel(self) -> int:
        return self.values.size

    def prune(self, count: int) -> None:
        """Zero the ``count`` smallest (a sorted array stays sorted: magnitudes are >= 0)."""
        self.values[:count] = 0

    def zeros(self) -> int:
        # a zero of the values' own dtype: a Python 0 would make numpy cast all 64M values to
        # float64 first (90 ms a call instead of microseconds)
        return int(np.searchsorted(self.values, self.values.dtype.type(0), "right"))

    def zero_positions(self, rows: torch.Tensor) -> torch.Tensor:
        """Which entries of ``rows`` (the rows this pool was built from; flat bool) are zero now:
        the first :meth:`zeros` in their stable order of magnitude."""
        flat = rows.detach().abs().flatten().to(torch.float32).cpu().numpy()
        if flat.size != self.numel:
            raise ValueError(f"{flat.size} entries given for a pool of {self.numel}")
        zero = np.zeros(flat.size, dtype=bool)
        zero[np.argsort(flat, kind="stable")[: self.zeros()]] = True
        return torch.from_numpy(zero)


def _prune_smallest(parts: list[tuple[np.ndarray, bool]], n_prune: int,
                    sample: int = 1_000_000) -> list[np.ndarray | int]:
    """Prune the ``n_prune`` smallest values of the union of ``parts`` (see
    :func:`kth_smallest_of`), ties at the threshold pruned in the parts' order (position order in
    an unsorted part, stable order in a sorted one) and kept from the end, as :func:`_keep_mask`
    does for one tensor. Returns per part: for an unsorted part its keep mask (bool), for a sorted
    one how many of its smallest are pruned."""
    n = sum(a.size for a, _ in parts)
    if n_prune == 0:
        return [np.ones(a.size, dtype=bool) if not s else 0 for a, s in parts]
    threshold = kth_smallest_of(parts, n_prune, sample)
    out: list[np.ndarray | int] = []
    ties: list[tuple[int, int]] = []  # sorted parts: [first tie, after the last tie)
    kept = 0
    for a, is_sorted in parts:
        if is_sorted:
            lt, le = int(np.searchsorted(a, threshold, "left")), int(np.searchsorted(a, threshold, "right"))
            out.append(le)  # every tie pruned, unless kept below
            ties.append((lt, le))
            kept += a.size - le
        else:
            keep = a > threshold
            out.append(keep)
            ties.append((0, 0))
            kept += int(np.count_nonzero(keep))
    missing = (n - n_prune) - kept  # ties at the threshold that must stay: the last ones
    for i in reversed(range(len(parts))):
        if missing <= 0:
            break
        a, is_sorted = parts[i]
        if is_sorted:
            lt, le = ties[i]
            take = min(missing, le - lt)
            out[i] = le - take
        else:
            at = np.flatnonzero(a == threshold)
            take = min(missing, at.size)
            if take:
                out[i][at[at.size - take:]] = True
        missing -= take
    return out


def _magnitudes(p: torch.Tensor) -> np.ndarray:
    """|p| flat as float32 numpy (exact for float32 and the half types)."""
    return p.detach().abs().flatten().to(torch.float32).cpu().numpy()


def _keep_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask (flat) keeping the ``n - round(sparsity * n)`` largest scores; among scores
    equal to the threshold the later positions are kept.

    The threshold is the k-th smallest score, found by selection rather than ``topk``: on the
    96M entries of a full embedding matrix (one CPU thread, measured once on an idle machine)
    ``topk`` of the kept half took 5.9 s and ``torch.kthvalue`` 1.4-2.9 s, numpy's introselect
    (``np.partition``) 0.1-0.8 s and :func:`kth_smallest` about 0.3 s: numpy on the CPU,
    ``kthvalue`` elsewhere.
    """
    flat = scores.detach().flatten()
    n = flat.numel()
    n_prune = int(round(sparsity * n))
    if n_prune == 0:
        return torch.ones(n, dtype=torch.bool, device=flat.device)
    if flat.device.type == "cpu" and flat.dtype in (torch.float32, torch.float64):
        threshold = torch.as_tensor(kth_smallest(flat.numpy(), n_prune))
    else:
        threshold = flat.kthvalue(n_prune).values
    keep = flat > threshold
    missing = (n - n_prune) - int(torch.count_nonzero(keep))  # ties at the threshold that must stay
    if missing > 0:
        ties = (flat == threshold).nonzero().flatten()
        keep[ties[-missing:]] = True
    return keep


class MagnitudePruner:
    """Gradual magnitude pruning: call :meth:`step` after every optimizer step."""

    def __init__(self, model: nn.Module, schedule: Schedule, scope: str = "partial", granularity: str = "per_tensor",
                 outside: dict[str, torch.Tensor] | None = None, **context):
        self.schedule = schedule
        self.scope = scope
        self.granularity = granularity
        self.params = scope_parameters(model, scope)
        # name of a scope tensor -> the rows ranked with it but not in the model (their |weights|,
        # sorted); ``outside`` keys are name suffixes ("word_embeddings.weight")
        self.outside: dict[str, OutsidePool] = {}
        for suffix, rows in (outside or {}).items():
            match = [n for n in self.params if n.endswith(suffix)]
            if len(match) != 1:
                raise ValueError(f"outside rows for {suffix!r} match {len(match)} tensors of scope {scope!r}")
            p = self.params[match[0]]
            if rows.dim() != 2 or rows.shape[1:] != p.shape[1:]:
                raise ValueError(f"outside rows of shape {tuple(rows.shape)} do not fit {match[0]} {tuple(p.shape)}")
            self.outside[match[0]] = OutsidePool(rows, p.dtype)
        # 1.0 keeps, 0.0 prunes; stored in the weights' dtype so that the per-step multiply
        # needs no conversion (a bool mask would be cast to float on every step)
        self.masks: dict[str, torch.Tensor] = {}
        self.current = 0.0
        self.total_parameters = sum(p.numel() for p in model.parameters()) + sum(
            o.numel for o in self.outside.values())
        self.history: list[tuple[int, float]] = []  # (step, target sparsity) at each update
        # the word embeddings, kept pruned row by row once the optimizer is attached (module doc)
        self.optimizer: torch.optim.Optimizer | None = None
        self._row_wise = next((n for n in self.params if n.endswith("word_embeddings.weight")), None)
        self._embedding = None if self._row_wise is None else next(
            m for m in model.modules() if isinstance(m, nn.Embedding) and m.weight is self.params[self._row_wise])
        self._batch_ids: list[torch.Tensor] = []  # token ids of the forward passes since the last backward
        self._hooks: list = []

    def _store(self, name: str, p: torch.Tensor, keep: torch.Tensor | np.ndarray) -> None:
        """The mask of ``name`` from ``keep`` (flat, bool)."""
        keep = torch.from_numpy(keep) if isinstance(keep, np.ndarray) else keep
        self.masks[name] = keep.view(p.shape).to(device=p.device, dtype=p.dtype)

    def _parts(self, names: list[str]) -> tuple[list[tuple[np.ndarray, bool]], list[tuple[str, bool]]]:
        """The tensors ``names`` as ranking parts, each followed by its outside rows."""
        parts, owners = [], []
        for name in names:
            parts.append((_magnitudes(self.params[name]), False))
            owners.append((name, False))
            if name in self.outside:
                parts.append((self.outside[name].values, True))
                owners.append((name, True))
        return parts, owners

    def _prune_parts(self, names: list[str], sparsity: float) -> None:
        """Rank ``names`` (and their outside rows) together and prune ``sparsity`` of them."""
        parts, owners = self._parts(names)
        n = sum(a.size for a, _ in parts)
        for (name, is_pool), result in zip(owners, _prune_smallest(parts, int(round(sparsity * n)))):
            if is_pool:
                self.outside[name].prune(result)
            else:
                self._store(name, self.params[name], result)

    @torch.no_grad()
    def update_masks(self, sparsity: float) -> None:
        """Recompute the masks at ``sparsity`` from the current weight magnitudes."""
        if self.granularity == "per_tensor":
            for name, p in self.params.items():
                if name in self.outside:
                    self._prune_parts([name], sparsity)
                else:
                    self._store(name, p, _keep_mask(p.detach().abs().flatten(), sparsity))
        elif self.granularity == "global":
            if self.outside:
                self._prune_parts(list(self.params), sparsity)
            else:
                scores = [p.detach().abs().flatten() for p in self.params.values()]
                keep = _keep_mask(torch.cat(scores), sparsity)
                for (name, p), part in zip(self.params.items(), keep.split([s.numel() for s in scores])):
                    self._store(name, p, part)
        else:
            raise ValueError(f"unknown granularity {self.granularity!r}")
        self.current = sparsity

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Take the optimizer that trains the model (``training.train``'s ``on_optimizer``): from
        then on the word embeddings are kept pruned row by row (module docstring). A later call
        (a second fine-tuning, with a fresh optimizer) replaces it. The optimizer must leave an
        entry whose gradient and state are zero where it is, as Adam(W) and SGD do (our loop's
        AdamW; its moments ``exp_avg``/``exp_avg_sq`` are what :meth:`prune_to` zeroes)."""
        self.optimizer = optimizer
        if self._row_wise is None or self._hooks:
            return

        def record(module: nn.Module, args: tuple) -> None:
            if module.training and torch.is_grad_enabled():  # a forward pass that a backward follows
                self._batch_ids.append(args[0].detach().flatten())

        self._hooks = [self._embedding.register_forward_pre_hook(record),
                       self.params[self._row_wise].register_post_accumulate_grad_hook(self._mask_batch_rows)]

    @torch.no_grad()
    def _mask_batch_rows(self, p: torch.Tensor) -> None:
        """After the backward pass: mask the gradient of the rows the batch's tokens used (the
        other rows' gradient is zero already)."""
        ids, self._batch_ids = self._batch_ids, []
        mask = self.masks.get(self._row_wise)
        if mask is None or p.grad is None or not ids:
            return
        rows = torch.unique(torch.cat(ids))
        p.grad[rows] *= mask[rows]

    @torch.no_grad()
    def apply(self, whole: bool = False) -> None:
        """Zero the pruned weights: every tensor's with ``whole``, else all but the row-wise word
        embeddings once an optimizer is attached (their pruned entries cannot move)."""
        skip = self._row_wise if (self.optimizer is not None and not whole) else None
        pairs = [(p, self.masks[n]) for n, p in self.params.items() if n in self.masks and n != skip]
        if pairs:
            # one call over every tensor: the loop's per-tensor overhead is a measurable share here
            torch._foreach_mul_([p for p, _ in pairs], [m for _, m in pairs])

    @torch.no_grad()
    def _zero_moments(self) -> None:
        """Zero the attached optimizer's moments of the row-wise tensor's pruned entries."""
        if self.optimizer is None or self._row_wise not in self.masks:
            return
        state = self.optimizer.state.get(self.params[self._row_wise], {})
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if key in state:
                state[key].mul_(self.masks[self._row_wise])

    def prune_to(self, sparsity: float, step: int) -> None:
        """Set the masks at ``sparsity`` from the weights as they are, zero the pruned ones and
        record the update at ``step`` (the schedule's updates; prune_at "before" and "after")."""
        self.update_masks(sparsity)
        self.history.append((step, sparsity))
        self.apply(whole=True)
        self._zero_moments()

    def step(self, step: int) -> None:
        """After optimizer step ``step``: update masks on schedule, then zero pruned weights."""
        if self.schedule.is_update_step(step):
            self.prune_to(self.schedule.sparsity(step), step)
        else:
            self.apply()

    def finish(self) -> None:
        """Nothing to do after training: the masks already hold."""

    def report(self) -> SparsityReport:
        """Zeros per tensor; a tensor with outside rows counts them (its full matrix)."""
        tensors = []
        for name, p in self.params.items():
            numel, zeros = p.numel(), int((p.detach() == 0).sum())
            if name in self.outside:
                numel += self.outside[name].numel
                zeros += self.outside[name].zeros()
            tensors.append(TensorSparsity(name, numel, zeros, self.current))
        return SparsityReport(self.scope, self.granularity, self.schedule.final, tensors, self.total_parameters)

    def outside_report(self) -> dict[str, dict[str, float]]:
        """Per tensor with outside rows: their count and the share of their entries pruned, next
        to the share pruned of the rows the model holds (which the run's sentences use)."""
        out = {}
        for name, o in self.outside.items():
            p = self.params[name]
            out[name] = {"outside_rows": o.numel // o.row_width, "outside_entries_pruned": o.zeros() / o.numel,
                         "model_rows": p.shape[0], "model_entries_pruned": float((p.detach() == 0).float().mean())}
        return out


class DensePruner:
    """The method ``dense``: prunes nothing, reports the zeros a dense model happens to have."""

    def __init__(self, model: nn.Module, schedule: Schedule | None = None, scope: str = "partial",
                 granularity: str = "per_tensor", **context):
        self.params = scope_parameters(model, scope)
        self.scope, self.granularity = scope, granularity
        self.total_parameters = sum(p.numel() for p in model.parameters())
        self.history: list[tuple[int, float]] = []

    def step(self, step: int) -> None:
        pass

    def finish(self) -> None:
        pass

    def report(self) -> SparsityReport:
        tensors = [TensorSparsity(n, p.numel(), int((p.detach() == 0).sum()), 0.0) for n, p in self.params.items()]
        return SparsityReport(self.scope, self.granularity, 0.0, tensors, self.total_parameters)
