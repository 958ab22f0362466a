"""DistributedDataParallel (gloo, 2 processes on localhost) on a model with
our activations, learnable ones included: every step's gradients and the
final parameters equal a single-process run on the whole batch."""
import os
import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as TF
from torch import nn

import torch_activations as ta
from models import MLP, init_

WORLD = 2
STEPS = 3
BATCH = 16   # split evenly, so the mean of the per-rank mean losses is the full-batch mean


def build_model():
    torch.manual_seed(0)
    model = nn.Sequential(init_(MLP()), ta.nn.Swish(1.2, learnable=True, num_parameters=16)).double()
    ta.replace_activations(model)
    return model


def data():
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(STEPS, BATCH, 16, generator=g, dtype=torch.float64)
    return xs, torch.tanh(xs.flip(-1))


def train(model, rank, world):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xs, ys = data()
    per = BATCH // world
    history = []
    for step in range(STEPS):
        x, y = xs[step, rank * per:(rank + 1) * per], ys[step, rank * per:(rank + 1) * per]
        loss = TF.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        history.append([p.grad.detach().clone() for p in model.parameters()])
        opt.step()
    return history, [p.detach().clone() for p in model.parameters()]


def worker(rank, port, out_path):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=120))
    try:
        model = nn.parallel.DistributedDataParallel(build_model())
        history, params = train(model, rank, WORLD)
        names = [type(m).__module__ + "." + type(m).__name__ for m in model.modules()]
        if rank == 0:
            torch.save({"history": history, "params": params, "modules": names}, out_path)
        # Tearing gloo down while the peer is still inside a collective
        # aborts the peer ("terminate called without an active exception").
        dist.barrier()
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo backend")
def test_ddp_gloo_two_processes_matches_single_process(tmp_path):
    out = tmp_path / "rank0.pt"
    mp.spawn(worker, args=(free_port(), str(out)), nprocs=WORLD, join=True)
    got = torch.load(out)
    assert "torch_activations.nn.PReLU" in got["modules"] and "torch_activations.nn.Swish" in got["modules"]
    assert "torch.nn.modules.activation.GELU" not in got["modules"]

    ref_history, ref_params = train(build_model(), 0, 1)
    assert len(got["history"]) == STEPS
    for step, (g, r) in enumerate(zip(got["history"], ref_history)):
        for a, b in zip(g, r):
            torch.testing.assert_close(a, b, msg=lambda m: f"step {step}: {m}")
    for a, b in zip(got["params"], ref_params):
        torch.testing.assert_close(a, b)
    # The learnable activation parameters were trained, not just carried.
    init = [p.detach() for p in build_model().parameters()]
    assert not torch.equal(got["params"][-1], init[-1])
