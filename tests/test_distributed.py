"""Data-parallel training on 2 CPU processes (gloo) equals one process on the whole batch.

Each process gets half of every global batch; DistributedDataParallel averages the two halves'
gradients, which for equal halves is the gradient of the whole batch's mean loss. So, in
float64, N steps of our Adam under DDP (and under ZeroRedundancyOptimizer, which shards Adam's
s and r over the processes) must land on the parameters that one process reaches on the whole
batch, up to the rounding of a different summation order.

All cases run in one pair of processes, in one test: starting them (and torch) is the
expensive part.
"""

import datetime
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from firstorder import data, optim
from firstorder.kernels import step
from firstorder.nn import MLP
from firstorder.train import train

WORLD = 2
STEPS = 20
GLOBAL_BATCH = 16
LR = 0.01


@pytest.fixture(autouse=True)
def one_thread():
    """The reference runs in this process: one thread, as in each of the two workers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def batches():
    """The same sequence of global batches on every process: 4 features, 3 classes."""
    gen = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        x = torch.randn(GLOBAL_BATCH, 4, generator=gen, dtype=torch.float64)
        yield x, torch.randint(0, 3, (GLOBAL_BATCH,), generator=gen)


def network(widths=(4, 16, 16, 3)) -> torch.nn.Module:
    return MLP(list(widths), "tanh", seed=0).double()


def spirals_network() -> torch.nn.Module:
    return network((2, 16, 16, 2))


def dataset() -> data.Dataset:
    return data.load("spirals", seed=0, n_train=120, n_test=40).to(torch.float64)


def loop(model, opt, rank=0, world=1) -> list[torch.Tensor]:
    """The plain training loop; process ``rank`` of ``world`` takes its share of each batch."""
    for x, y in batches():
        x, y = x.tensor_split(world)[rank], y.tensor_split(world)[rank]
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def records(history) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in history.to_records()]


def worker(rank: int, port: int, out: str) -> None:
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=60),  # a failure elsewhere raises instead of hanging
    )
    try:
        results = {}
        ddp = DDP(network())
        results["ddp_adam"] = loop(ddp, optim.Adam(ddp.parameters(), lr=LR), rank, WORLD)

        ddp = DDP(network())
        zero = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=optim.Adam, lr=LR)
        results["zero_adam"] = loop(ddp, zero, rank, WORLD)

        # compile=True: the parameters' data become views of flat buffers after DDP has
        # registered them, and the compiled rule runs even on this small model
        min_numel, step.CompiledRule.min_numel = step.CompiledRule.min_numel, 0
        ddp = DDP(network())
        fast = optim.Adam(ddp.parameters(), lr=LR, compile=True)
        results["ddp_adam_compiled"] = loop(ddp, fast, rank, WORLD)
        ddp = DDP(network())
        zero = ZeroRedundancyOptimizer(
            ddp.parameters(), optimizer_class=optim.Adam, lr=LR, compile=True
        )
        results["zero_adam_compiled"] = loop(ddp, zero, rank, WORLD)
        step.CompiledRule.min_numel = min_numel

        # the default (compile=None) with its threshold lowered: flat buffers, the plain rule on
        # them until the kernel is ready (here at once: compile=True built it above), then it
        optim.min_numel, min_numel = 0, optim.min_numel
        ddp = DDP(network())
        results["ddp_adam_default"] = loop(ddp, optim.Adam(ddp.parameters(), lr=LR), rank, WORLD)
        ddp = DDP(network())
        zero = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=optim.Adam, lr=LR)
        results["zero_adam_default"] = loop(ddp, zero, rank, WORLD)
        optim.min_numel = min_numel

        ddp = DDP(spirals_network())
        history = train(ddp, optim.Adam(ddp.parameters(), lr=LR), dataset(), steps=STEPS,
                        batch_size=40, log_every=5)  # fmt: skip
        results["train"] = ([p.detach().clone() for p in ddp.parameters()], records(history))

        ddp = DDP(spirals_network())
        zero = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=optim.Adam, lr=LR)
        train(ddp, zero, dataset(), steps=STEPS, batch_size=40, checkpoint=out + ".ckpt")
        results["train_zero"] = [p.detach().clone() for p in ddp.parameters()]
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_processes(out: str) -> dict:
    context = mp.spawn(worker, args=(free_port(), out), nprocs=WORLD, join=False)
    deadline = time.monotonic() + 240
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.terminate()
            pytest.fail("the 2-process run did not finish within 240 s")
    return torch.load(out, weights_only=True)


def assert_same(got: list[torch.Tensor], expected: list[torch.Tensor], case: str) -> None:
    """Equal up to the rounding of a different summation order, float64.

    Two processes sum 8 terms each and average the two sums; one process sums 16: the
    gradients differ by at most ~16u = 2e-15 relative to the sum of the terms' magnitudes,
    which the cross-entropy gradients here exceed their sum by well under 100x: 2e-13 per
    step. Adam's step is invariant to the scale of g (when |g| ≫ ε), so a relative gradient
    error δ moves a step of α = 0.01 by at most about δ·α, and 20 steps accumulate 20·δ·α,
    even if the dynamics magnified it 1000x still 4e-11·α ≪ 1e-10 |θ| + 1e-12. A wrong
    average (a sum instead of a mean, one shard's gradient) changes θ by 1e-3 or more."""
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        torch.testing.assert_close(
            g, e, rtol=1e-10, atol=1e-12, msg=lambda m, i=i: f"{case}, parameter {i}: {m}"
        )


def test_two_processes_equal_one_process_on_the_whole_batch(tmp_path):
    """One test, so the two processes start once (also under pytest -n 2)."""
    out = str(tmp_path / "results.pt")
    results = run_two_processes(out)

    # DDP + our Adam, and ZeroRedundancyOptimizer(optimizer_class=our Adam), in a plain loop
    model = network()
    expected = loop(model, optim.Adam(model.parameters(), lr=LR))
    assert not torch.equal(expected[0], network().theta[0])  # training did move θ
    assert_same(results["ddp_adam"], expected, "DDP + Adam")
    assert_same(results["zero_adam"], expected, "ZeroRedundancyOptimizer(Adam)")
    cases = ("ddp_adam_compiled", "zero_adam_compiled", "ddp_adam_default", "zero_adam_default")
    for case in cases:
        assert_same(results[case], expected, case)

    # firstorder.train under DDP: same parameters and the same records as in one process
    model = spirals_network()
    history = train(model, optim.Adam(model.parameters(), lr=LR), dataset(), steps=STEPS,
                    batch_size=40, log_every=5)  # fmt: skip
    expected = [p.detach() for p in model.parameters()]
    theta, got_records = results["train"]
    assert_same(theta, expected, "train() under DDP")
    expected_records = records(history)
    assert [r["step"] for r in got_records] == [r["step"] for r in expected_records]
    for got, want in zip(got_records, expected_records, strict=True):
        # the same quantities of θ's that agree as above, through sums of ≤ 120 terms: rel 1e-9
        for key in ("train_risk", "test_risk", "batch_loss", "grad_norm", "update_ratio"):
            assert got[key] == (None if want[key] is None else pytest.approx(want[key], rel=1e-9))

    # train() with ZeroRedundancyOptimizer, checkpointing (the optimizer state is consolidated)
    assert_same(results["train_zero"], expected, "train() with ZeroRedundancyOptimizer")
    state = torch.load(out + ".ckpt", weights_only=True)
    assert state["step"] == STEPS
    assert_same(list(state["model"].values()), expected, "checkpoint")
    assert len(state["optimizer"]["state"]) == len(expected)  # s, r, k of every parameter
