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
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from firstorder.data import Dataset
from firstorder.errors import UserValueError
from firstorder.files import atomic
from firstorder.history import History, Record
from firstorder.netcurvature import effective_step, sharpness
from firstorder.nn import unwrap

__all__ = ["History", "LOSSES", "Record", "compare", "train"]

LossFn = Callable[[Tensor, Tensor], Tensor]
LOSSES: dict[str, LossFn] = {
    "cross_entropy": torch.nn.functional.cross_entropy,  # takes logits: the last g is identity
    "mse": torch.nn.functional.mse_loss,
}
QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)  # of α/(√r̂ + ε) over all coordinates
CHECKPOINT_FORMAT = "firstorder.train/1"


# --- the pieces of a step ---------------------------------------------------------------------


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
        raise UserValueError(
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
        raise UserValueError(f"{name} must be an integer >= {low}{tail}; got {value!r}.")


def _optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
    """The optimizer's full state on rank 0 (None elsewhere); a collective call under ZeRO."""
    # Importing torch.distributed.optim compiles TorchScript (seconds); an optimizer can only
    # be a ZeroRedundancyOptimizer if its module was imported already.
    zero = sys.modules.get("torch.distributed.optim")
    if zero is not None and isinstance(optimizer, zero.ZeroRedundancyOptimizer):
        optimizer.consolidate_state_dict(to=0)  # every rank must take part
    return optimizer.state_dict() if _world()[0] == 0 else None


# --- one run ----------------------------------------------------------------------------------


@dataclass
class _Run:
    """One call of :func:`train`: what it was given, and where it is (step k, the history)."""

    model: torch.nn.Module  # what the forward pass calls (DistributedDataParallel, if wrapped)
    optimizer: torch.optim.Optimizer
    data: Dataset
    loss_fn: LossFn
    seed: int
    B: int  # the (global) batch size
    total: int  # the last step
    log_every: int
    checkpoint: str | Path | None
    checkpoint_every: int | None
    sharpness_every: int | None
    history: History = field(default_factory=History)
    k: int = 0
    elapsed_before: float = 0.0  # wall time of the runs this one resumes
    started: float = 0.0
    updating: bool = False  # between optimizer.step() and its record: no checkpoint then

    def __post_init__(self) -> None:
        self.net = unwrap(self.model)  # the network itself, for local computations
        self.n = len(self.data.y_train)
        self.steps_per_epoch = math.ceil(self.n / self.B)
        self.rank, self.world = _world()

    def resume(self, path: str | Path) -> None:
        """Continue from the checkpoint at ``path``, which must be of the same data order."""
        state = torch.load(path, weights_only=True)
        for name, value in (("seed", self.seed), ("batch_size", self.B), ("n_train", self.n)):
            if state[name] != value:
                raise UserValueError(
                    f"{name} must match the checkpoint {path} ({state[name]}) to resume it "
                    f"exactly; got {value}."
                )
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.history = History.from_dict(state["history"])
        self.k, self.elapsed_before = state["step"], state["wall_time"]

    def wall_time(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def record(self, **update_stats: Any) -> Record:
        """Append the record of step k: risks and accuracies on the whole sets (in eval mode),
        the sharpness when it is due, and ``update_stats`` of the update that led here."""
        net, data, k = self.net, self.data, self.k
        classify = data.task == "classification"
        was_training = net.training
        net.eval()
        train_risk, train_acc = _evaluate(net, self.loss_fn, data.x_train, data.y_train, classify)
        test_risk, test_acc = _evaluate(net, self.loss_fn, data.x_test, data.y_test, classify)
        lam = None
        if self.sharpness_every is not None and k % self.sharpness_every == 0:
            lam = sharpness(net, self.loss_fn, data.x_train, data.y_train)[0].item()
        net.train(was_training)
        r = Record(
            step=k,
            epoch=k / self.steps_per_epoch,
            train_risk=train_risk,
            test_risk=test_risk,
            train_accuracy=train_acc,
            test_accuracy=test_acc,
            sharpness=lam,
            wall_time=self.wall_time(),
            **update_stats,
        )
        self.history.records.append(r)
        return r

    def save(self) -> None:
        """Write the checkpoint (on rank 0, atomically: never a half-written one); every rank
        takes part in gathering the optimizer's state."""
        optimizer_state = _optimizer_state(self.optimizer)
        if self.rank != 0:
            return
        state = {"format": CHECKPOINT_FORMAT, "model": self.net.state_dict()}
        state |= {"optimizer": optimizer_state, "step": self.k, "seed": self.seed}
        state |= {"batch_size": self.B, "n_train": self.n, "torch_rng": torch.get_rng_state()}
        state |= {"history": self.history.to_dict(), "wall_time": self.wall_time()}
        with atomic(Path(self.checkpoint), "wb") as fh:
            torch.save(state, fh)

    def logs(self, step: int) -> bool:
        """Whether ``step`` gets a record: every log_every-th, the last, and sharpness steps."""
        return (
            step % self.log_every == 0
            or step == self.total
            or (self.sharpness_every is not None and step % self.sharpness_every == 0)
        )

    def step(self, batch: Tensor) -> Record | None:
        """Update k + 1 on the rows ``batch``, and its record if it has one. A non-finite loss
        (on any process) sets ``history.diverged_at`` instead and leaves θ as it was."""
        net, k = self.net, self.k
        logged = self.logs(k + 1)
        theta_before = _flat(net.parameters()) if logged else None

        self.optimizer.zero_grad(set_to_none=True)
        batch_loss = self.loss_fn(self.model(self.data.x_train[batch]), self.data.y_train[batch])
        seen = batch_loss.detach().clone()
        if self.world > 1:  # any process's non-finite loss stops all of them, at the same step
            dist.all_reduce(seen)
            seen /= self.world
        if not torch.isfinite(seen):
            self.history.diverged_at = k + 1
            self.history.message = f"diverged at step {k + 1}"
            return None
        batch_loss.backward()
        if logged:
            g_norm = _flat(p.grad for p in net.parameters() if p.grad is not None).norm()
        # a step and its record belong together: Ctrl-C inside keeps the last checkpoint
        self.updating = True
        self.optimizer.step()
        self.k += 1
        if not logged:
            return None
        theta = _flat(net.parameters())
        return self.record(
            batch_loss=seen.item(),
            grad_norm=g_norm.item(),
            update_ratio=((theta - theta_before).norm() / theta_before.norm()).item(),
            effective_step=_step_quantiles(self.optimizer),
        )


def _loop(run: _Run, bar: Any) -> None:
    """Step until the last step or a divergence, with the progress bar ``bar`` (or None)."""
    task = bar.add_task("training", total=run.total, completed=run.k) if bar is not None else None
    order, order_epoch = None, None
    while run.k < run.total and run.history.diverged_at is None:
        epoch, position = divmod(run.k, run.steps_per_epoch)
        if order_epoch != epoch:
            order = _epoch_order(run.seed, epoch, run.n) if run.B < run.n else torch.arange(run.n)
            order_epoch = epoch
        batch = order[position * run.B : (position + 1) * run.B]
        if run.world > 1:
            batch = batch.tensor_split(run.world)[run.rank]
        r = run.step(batch)
        if run.history.diverged_at is not None:
            break
        if r is not None and task is not None:
            bar.update(task, description=f"R_train {r.train_risk:.4g}")
        run.updating = False
        if task is not None:
            bar.update(task, completed=run.k)
        if (
            run.checkpoint is not None
            and run.checkpoint_every
            and run.k % run.checkpoint_every == 0
        ):
            run.save()


def _check_train(data: Dataset, batch_size: int | None, **ints: int | None) -> int:
    """Refuse bad arguments of :func:`train`; the batch size B."""
    epochs, steps = ints["epochs"], ints["steps"]
    if (epochs is None) == (steps is None):
        raise UserValueError(
            f"give exactly one of epochs or steps; got epochs={epochs}, steps={steps}."
        )
    for name, value in ints.items():  # counts from 1, the seed from 0; None: not given
        _check_int(name, value, low=0 if name == "seed" else 1, none_ok=name != "seed")
    n = len(data.y_train)
    B = n if batch_size is None else batch_size
    _check_int("batch_size", B)
    if B > n:
        raise UserValueError(f"batch_size must be at most n_train = {n} or None; got {batch_size}.")
    world = _world()[1]
    if world > 1 and (B % world or (n % B) % world):
        raise UserValueError(
            f"batch_size must split evenly over {world} processes, its last batch too "
            f"(n_train % batch_size = {n % B}); got {B}."
        )
    return B


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
    every = {"checkpoint_every": checkpoint_every, "sharpness_every": sharpness_every}
    B = _check_train(
        data, batch_size, epochs=epochs, steps=steps, log_every=log_every, seed=seed, **every
    )
    loss_fn = _loss_fn(loss, data)
    total = steps if steps is not None else epochs * math.ceil(len(data.y_train) / B)
    run = _Run(model, optimizer, data, loss_fn, seed, B, total, log_every, checkpoint, **every)
    if resume is not None:
        run.resume(resume)
    run.started = time.perf_counter()
    if run.k == 0 and not run.history.records:
        run.record()
    bar = _progress_bar() if progress and run.rank == 0 else None
    try:
        with bar if bar is not None else contextlib.nullcontext():
            _loop(run, bar)
    except KeyboardInterrupt:
        # Ctrl-C: what was computed is kept in the checkpoint, which resumes exactly (one that
        # lands between a step and its record keeps the previous checkpoint instead)
        if checkpoint is not None and not run.updating:
            run.save()
        raise
    if checkpoint is not None:
        run.save()
    return run.history


def _progress_bar() -> Any:
    from rich.progress import Progress  # imported only when a bar is shown: rich is slow to load

    return Progress()


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
            raise UserValueError(f"{name} must be None in compare (runs would share the file).")
    initial = make_model()
    rng = torch.get_rng_state()  # e.g. dropout: every run draws the same random numbers
    histories = {}
    for name, make_optimizer in optimizers.items():
        model = copy.deepcopy(initial)
        torch.set_rng_state(rng)
        histories[name] = train(model, make_optimizer(model.parameters()), data, **train_kwargs)
    return histories
