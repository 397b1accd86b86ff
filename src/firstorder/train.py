"""Training the network of E8 with any ``torch.optim`` optimizer, with diagnostics.

One step k = 1, 2, … takes a minibatch B_k, computes g = ∇R_B(θ) and lets the optimizer update
θ. The minibatches of an epoch are a permutation of the training set drawn from (seed, epoch),
so two runs with the same seed see the same data in the same order whatever the optimizer, and
a run resumed from a checkpoint sees exactly the batches the uninterrupted run would have.

Each logged step records (see :class:`Record`) the risk R(θ) on the whole training and test
sets, ‖g‖, ‖Δθ‖/‖θ‖, for adaptive optimizers the quantiles of the per-coordinate step
α/(√r̂ + ε), optionally the sharpness λ_max(H), and the wall time.

A non-finite loss ends the run, not the program: ``History.diverged_at`` is the step, the
message says "diverged at step k", and every record before it is kept.

Under ``torch.distributed`` (e.g. ``torchrun --nproc_per_node=2``) with the model wrapped in
``DistributedDataParallel``, ``batch_size`` is the global batch and each process takes an equal
contiguous share of it, so the averaged gradient is the global batch's gradient.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from firstorder.data import Dataset
from firstorder.files import atomic, to_json
from firstorder.netcurvature import effective_step, sharpness

__all__ = ["History", "LOSSES", "Record", "compare", "train"]

LossFn = Callable[[Tensor, Tensor], Tensor]
LOSSES: dict[str, LossFn] = {
    "cross_entropy": torch.nn.functional.cross_entropy,  # takes logits: the last g is identity
    "mse": torch.nn.functional.mse_loss,
}
QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)  # of α/(√r̂ + ε) over all coordinates
CHECKPOINT_FORMAT = "firstorder.train/1"


@dataclass
class Record:
    """The state of training after ``step`` updates (step 0: the initialization).

    ``batch_loss``, ``grad_norm`` and ``update_ratio`` describe update ``step`` itself: the
    minibatch loss and ‖g‖ at θ_{k−1}, and ‖θ_k − θ_{k−1}‖ / ‖θ_{k−1}‖. ``effective_step`` maps
    "q0", "q10", "q50", "q90", "q100" to quantiles of α/(√r̂ + ε) after the update (adaptive
    optimizers only). Accuracies are for classification; ``epoch`` counts passes over the
    training set (fractional); ``wall_time`` is seconds since training started.
    """

    step: int
    epoch: float
    train_risk: float
    test_risk: float
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    batch_loss: float | None = None
    grad_norm: float | None = None
    update_ratio: float | None = None
    effective_step: dict[str, float] | None = None
    sharpness: float | None = None
    wall_time: float = 0.0


@dataclass
class History:
    """The records of one run, and where it diverged (``None``: it did not)."""

    records: list[Record] = field(default_factory=list)
    diverged_at: int | None = None
    message: str | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, name: str) -> list[Any]:
        """One column, e.g. ``history["train_risk"]``."""
        if name not in {f.name for f in fields(Record)}:
            allowed = ", ".join(f.name for f in fields(Record))
            raise ValueError(f"name must be one of {allowed}; got {name!r}.")
        return [getattr(r, name) for r in self.records]

    @property
    def final(self) -> Record:
        """The last record."""
        return self.records[-1]

    def to_records(self) -> list[dict[str, Any]]:
        """The records as plain dictionaries (e.g. for ``pandas.DataFrame``)."""
        return [asdict(r) for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.to_records(),
            "diverged_at": self.diverged_at,
            "message": self.message,
        }

    def to_json(self, indent: int | None = None) -> str:
        """Strict JSON: a non-finite number (a diverged risk) is written as null."""
        return to_json(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        return cls([Record(**r) for r in d["records"]], d["diverged_at"], d["message"])

    @classmethod
    def from_json(cls, text: str) -> History:
        return cls.from_dict(json.loads(text))


def _finite_or_none(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite_or_none(v) for v in x]
    return x


# --- the pieces of a step ---------------------------------------------------------------------


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def _world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    # A generator per (seed, epoch), hashed by SeedSequence: the order of epoch e never depends
    # on how many random numbers earlier epochs used, which is what makes resuming exact.
    state = int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0] >> 1)
    return torch.randperm(n, generator=torch.Generator().manual_seed(state))


def _loss_fn(loss: str | LossFn | None, data: Dataset) -> LossFn:
    if callable(loss):
        return loss
    if loss is None:
        return LOSSES["cross_entropy" if data.task == "classification" else "mse"]
    wanted = {"classification": "cross_entropy", "regression": "mse"}[data.task]
    if loss != wanted:
        raise ValueError(
            f"loss must be {wanted!r} (or a callable) for the {data.task} dataset {data.name}; "
            f"got {loss!r}."
        )
    return LOSSES[loss]


def _flat(tensors: Iterator[Tensor]) -> Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


@torch.no_grad()
def _evaluate(net: torch.nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, classify: bool):
    out = net(x)
    risk = loss_fn(out, y).item()
    accuracy = (out.argmax(-1) == y).double().mean().item() if classify else None
    return risk, accuracy


def _step_quantiles(optimizer: torch.optim.Optimizer) -> dict[str, float] | None:
    stepped = [p for g in optimizer.param_groups for p in g["params"] if optimizer.state.get(p)]
    steps = effective_step(optimizer, stepped) if stepped else None
    if steps is None:
        return None
    q = np.quantile(steps.double().cpu().numpy(), QUANTILES)
    return {f"q{round(100 * p)}": float(v) for p, v in zip(QUANTILES, q, strict=True)}


def _check_int(name: str, value: object, low: int = 1, none_ok: bool = True) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        tail = " or None" if none_ok else ""
        raise ValueError(f"{name} must be an integer >= {low}{tail}; got {value!r}.")


# --- checkpoints ------------------------------------------------------------------------------


def _save(path: Path, state: dict[str, Any]) -> None:
    """torch.save, atomically: never a half-written checkpoint."""
    with atomic(path, "wb") as fh:
        torch.save(state, fh)


def _optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
    """The optimizer's full state on rank 0 (None elsewhere); a collective call under ZeRO."""
    # Importing torch.distributed.optim compiles TorchScript (seconds); an optimizer can only
    # be a ZeroRedundancyOptimizer if its module was imported already.
    zero = sys.modules.get("torch.distributed.optim")
    if zero is not None and isinstance(optimizer, zero.ZeroRedundancyOptimizer):
        optimizer.consolidate_state_dict(to=0)  # every rank must take part
    return optimizer.state_dict() if _world()[0] == 0 else None


# --- the loop ---------------------------------------------------------------------------------


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Dataset,
    *,
    loss: str | LossFn | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    log_every: int = 1,
    progress: bool = False,
    checkpoint: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: str | Path | None = None,
    sharpness_every: int | None = None,
) -> History:
    """Train ``model`` on ``data`` for ``epochs`` passes or ``steps`` updates (give one).

    ``loss``: "cross_entropy" (classification, the default there), "mse" (regression, the
    default there) or a callable ``loss(output, y)``. ``batch_size=None`` is full-batch gradient
    descent on R(θ); otherwise minibatches in an order fixed by ``seed``. A record is kept every
    ``log_every`` steps, at the last step, and at every ``sharpness_every``-th step, where the
    top Hessian eigenvalue of the training risk is measured too.

    ``checkpoint``: a file written (atomically) at the end and every ``checkpoint_every``
    steps with the model, the optimizer, the step, the RNG state and the history. ``resume``: a
    checkpoint to continue from; ``epochs``/``steps`` still count from the start of the run, so
    the resumed run ends where, and exactly as, the uninterrupted one would.
    """
    if (epochs is None) == (steps is None):
        raise ValueError(
            f"give exactly one of epochs or steps; got epochs={epochs}, steps={steps}."
        )
    _check_int("epochs", epochs)
    _check_int("steps", steps)
    _check_int("log_every", log_every, none_ok=False)
    _check_int("seed", seed, low=0, none_ok=False)
    _check_int("checkpoint_every", checkpoint_every)
    _check_int("sharpness_every", sharpness_every)
    n = len(data.y_train)
    B = n if batch_size is None else batch_size
    _check_int("batch_size", B)
    if B > n:
        raise ValueError(f"batch_size must be at most n_train = {n} or None; got {batch_size}.")
    rank, world = _world()
    if world > 1 and (B % world or (n % B) % world):
        raise ValueError(
            f"batch_size must split evenly over {world} processes, its last batch too "
            f"(n_train % batch_size = {n % B}); got {B}."
        )
    loss_fn = _loss_fn(loss, data)
    net = _unwrap(model)
    classify = data.task == "classification"
    steps_per_epoch = math.ceil(n / B)
    total = steps if steps is not None else epochs * steps_per_epoch

    history, k, elapsed_before = History(), 0, 0.0
    if resume is not None:
        state = torch.load(resume, weights_only=True)
        for name, value in (("seed", seed), ("batch_size", B), ("n_train", n)):
            if state[name] != value:
                raise ValueError(
                    f"{name} must match the checkpoint {resume} ({state[name]}) to resume it "
                    f"exactly; got {value}."
                )
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        history = History.from_dict(state["history"])
        k, elapsed_before = state["step"], state["wall_time"]

    started = time.perf_counter()

    def record(**update_stats: Any) -> Record:
        was_training = net.training
        net.eval()
        train_risk, train_acc = _evaluate(net, loss_fn, data.x_train, data.y_train, classify)
        test_risk, test_acc = _evaluate(net, loss_fn, data.x_test, data.y_test, classify)
        lam = None
        if sharpness_every is not None and k % sharpness_every == 0:
            lam = sharpness(net, loss_fn, data.x_train, data.y_train)[0].item()
        net.train(was_training)
        r = Record(
            step=k,
            epoch=k / steps_per_epoch,
            train_risk=train_risk,
            test_risk=test_risk,
            train_accuracy=train_acc,
            test_accuracy=test_acc,
            sharpness=lam,
            wall_time=elapsed_before + time.perf_counter() - started,
            **update_stats,
        )
        history.records.append(r)
        return r

    def save() -> None:
        optimizer_state = _optimizer_state(optimizer)
        if rank == 0:
            _save(
                Path(checkpoint),
                {
                    "format": CHECKPOINT_FORMAT,
                    "model": net.state_dict(),
                    "optimizer": optimizer_state,
                    "step": k,
                    "seed": seed,
                    "batch_size": B,
                    "n_train": n,
                    "torch_rng": torch.get_rng_state(),
                    "history": history.to_dict(),
                    "wall_time": elapsed_before + time.perf_counter() - started,
                },
            )

    if k == 0 and not history.records:
        record()
    bar = None
    if progress and rank == 0:
        from rich.progress import Progress

        bar = Progress()
    updating = False
    try:
        with bar if bar is not None else contextlib.nullcontext():
            task = bar.add_task("training", total=total, completed=k) if bar is not None else None
            order, order_epoch = None, None
            while k < total and history.diverged_at is None:
                epoch, position = divmod(k, steps_per_epoch)
                if order_epoch != epoch:
                    order = _epoch_order(seed, epoch, n) if B < n else torch.arange(n)
                    order_epoch = epoch
                batch = order[position * B : (position + 1) * B]
                if world > 1:
                    batch = batch.tensor_split(world)[rank]
                logged = (
                    (k + 1) % log_every == 0
                    or k + 1 == total
                    or (sharpness_every is not None and (k + 1) % sharpness_every == 0)
                )
                theta_before = _flat(net.parameters()) if logged else None

                optimizer.zero_grad(set_to_none=True)
                batch_loss = loss_fn(model(data.x_train[batch]), data.y_train[batch])
                seen = batch_loss.detach().clone()
                if world > 1:  # any process's non-finite loss stops all of them, at the same step
                    dist.all_reduce(seen)
                    seen /= world
                if not torch.isfinite(seen):
                    history.diverged_at = k + 1
                    history.message = f"diverged at step {k + 1}"
                    break
                batch_loss.backward()
                if logged:
                    g_norm = _flat(p.grad for p in net.parameters() if p.grad is not None).norm()
                # a step and its record belong together: Ctrl-C inside keeps the last checkpoint
                updating = True
                optimizer.step()
                k += 1

                if logged:
                    theta = _flat(net.parameters())
                    r = record(
                        batch_loss=seen.item(),
                        grad_norm=g_norm.item(),
                        update_ratio=((theta - theta_before).norm() / theta_before.norm()).item(),
                        effective_step=_step_quantiles(optimizer),
                    )
                    if task is not None:
                        bar.update(task, description=f"R_train {r.train_risk:.4g}")
                updating = False
                if task is not None:
                    bar.update(task, completed=k)
                if checkpoint is not None and checkpoint_every and k % checkpoint_every == 0:
                    save()
    except KeyboardInterrupt:
        # Ctrl-C: what was computed is kept in the checkpoint, which resumes exactly (one that
        # lands between a step and its record keeps the previous checkpoint instead)
        if checkpoint is not None and not updating:
            save()
        raise
    if checkpoint is not None:
        save()
    return history


def compare(
    make_model: Callable[[], torch.nn.Module],
    optimizers: Mapping[str, Callable[[Iterator[torch.nn.Parameter]], torch.optim.Optimizer]],
    data: Dataset,
    **train_kwargs: Any,
) -> dict[str, History]:
    """Train one copy of the same initial network with each optimizer, on the same data order.

    ``optimizers`` maps a name to a function of the parameters, e.g.
    ``{"adam": lambda p: Adam(p, lr=1e-3), "sgd": lambda p: torch.optim.SGD(p, lr=0.1)}``.
    ``train_kwargs`` go to :func:`train` (the same ``seed``, hence the same minibatches, for all).
    """
    for name in ("checkpoint", "resume"):
        if train_kwargs.get(name) is not None:
            raise ValueError(f"{name} must be None in compare (runs would share the file).")
    initial = make_model()
    rng = torch.get_rng_state()  # e.g. dropout: every run draws the same random numbers
    histories = {}
    for name, make_optimizer in optimizers.items():
        model = copy.deepcopy(initial)
        torch.set_rng_state(rng)
        histories[name] = train(model, make_optimizer(model.parameters()), data, **train_kwargs)
    return histories
