"""The benchmark command: python -m torch_activations bench."""
import math
import os
import re

import pytest
import torch

from torch_activations import bench
from torch_activations.__main__ import main


def _tables(md: str, heading: str):
    """Rows (lists of cells) of the tables under each section whose heading
    starts with `heading`, keyed by the heading."""
    out = {}
    for block in re.split(r"\n(?=## )", md):
        title = block.splitlines()[0]
        if title.startswith(heading):
            out[title] = [[c.strip() for c in line.strip().strip("|").split("|")]
                          for line in block.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return out


def test_quick_run_writes_report_and_chart(tmp_path, capsys):
    import matplotlib.image

    md, png = tmp_path / "B.md", tmp_path / "img" / "b.png"
    threads = torch.get_num_threads()
    # One thread: no parallel regions to stall when other processes hold the cores.
    assert main(["bench", "--quick", "--ops", "relu,cross_entropy", "--no-compile", "--threads", "1",
                 "--output", str(md), "--png", str(png)]) == 0
    assert torch.get_num_threads() == threads
    text = md.read_text()
    for section in ("# Benchmarks", "## Machine", "## Summary", "### Targets missed", "## Method",
                    "## Speed: float32, fwd", "## Speed: float32, fwd+bwd", "## Speed: bfloat16, fwd",
                    "## Speed: bfloat16, fwd+bwd", "## Allocation", "## Peak memory, forward+backward", "## Chart"):
        assert section in text, section
    assert "Quick run" in text
    assert f"| instruction set, ours | {torch.ops.torch_activations._cpu_capability()} |" in text
    assert "| threads (torch.get_num_threads) | 1 |" in text
    assert "![ours/eager per op and size](img/b.png)" in text
    img = matplotlib.image.imread(str(png))
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100

    speed = _tables(text, "## Speed: ")
    assert len(speed) == 4
    for title, rows in speed.items():
        header, body = rows[0], rows[1:]
        assert header[:5] == ["op", "4K ours", "4K compiled", "64K ours", "64K compiled"], title
        assert [r[0] for r in body] == ["relu", "cross_entropy"], title
        for r in body:
            for cell in (r[1], r[3]):
                assert math.isfinite(float(cell)) and float(cell) > 0, (title, r)
            assert r[2] == r[4] == "n/a", (title, r)      # --no-compile
            assert r[5].endswith("%") and float(r[5][:-1]) > 0, (title, r)
    summary = _tables(text, "## Summary")["## Summary"]
    assert summary[0][0] == "dtype" and summary[5][0] == "op"     # then the cheap ops' table
    for r in summary[1:5]:
        assert math.isfinite(float(r[2].rstrip("x"))) and math.isfinite(float(r[3])), r
    # The cross-entropy peak-memory row: the fused op keeps no logits-sized
    # tensor between forward and backward, PyTorch keeps its log-probabilities.
    mem = [r for r in _tables(text, "## Peak memory")["## Peak memory, forward+backward"] if r[0] == "32768"]
    assert len(mem) == 1 and 0 < float(mem[0][-1]) < 0.8, mem
    out = capsys.readouterr().out
    assert "### Targets missed" in out and f"wrote {md}" in out


def _r(op, kind, size, mode, dtype=torch.float32, **times):
    return bench.Result(op, kind, dtype, size, mode, {k: v * 1e-6 for k, v in times.items()})


def test_summary_lists_every_missed_target():
    M16, K64, K4 = 16 << 20, 64 << 10, 4 << 10
    results = [
        _r("relu", "pointwise", M16, "fwd", ours=100, eager=200, copy=90, ours_out=100),       # 90% of memcpy
        _r("hardtanh", "pointwise", M16, "fwd", ours=100, eager=200, copy=50, ours_out=100),   # 50%: missed
        _r("threshold", "pointwise", M16, "fwd", ours=100, eager=200, copy=90),                # no out=: missed
        _r("gelu", "pointwise", K64, "fwd", ours=100, eager=90),                                # 0.9x: missed
        _r("gelu", "pointwise", K4, "fwd", ours=13, eager=10),                                  # 1.3x time: missed
        _r("silu", "pointwise", K4, "fwd", ours=11, eager=10),                                  # 1.1x: fine
        _r("swiglu", "gated", K64, "fwd+bwd", ours=100, eager=140, compiled=120),               # 1.4x: missed
        _r("swiglu_pair", "gated", K64, "fwd+bwd", ours=100, eager=200, compiled=90),           # < compile: missed
        _r("reglu", "gated", K64, "fwd+bwd", ours=100, eager=200, compiled=110),                # fine
        _r("elu", "pointwise", K64, "fwd+bwd", ours=100, eager=50),     # missed; fwd+bwd geomean 1.29x too
    ]
    ce = [dict(vocab=32768, dtype="float32", smoothing=0.0, ratio=0.6), dict(vocab=32768, dtype="bfloat16",
                                                                             smoothing=0.1, ratio=0.3)]
    _, misses = bench.summarize(results, [], ce)
    text = "\n".join(misses)
    assert "hardtanh, float32, 16M, fwd: preallocated output at 50% of memcpy speed" in text
    assert "threshold, float32, 16M, fwd: no out= overload" in text
    assert "gelu, float32, 64K, fwd: ours/eager 0.90x" in text
    assert "gelu, float32, 4K, fwd: per-call time 1.30x" in text
    assert "swiglu, float32, 64K, fwd+bwd: 1.40x the eager composition" in text
    assert "swiglu_pair, float32, 64K, fwd+bwd: 0.90x torch.compile" in text
    assert "cross_entropy peak memory, vocab 32K, float32, smoothing 0.0: 0.60x" in text
    assert "elu, float32, 64K, fwd+bwd: ours/eager 0.50x" in text
    assert any(m.startswith("geometric mean, float32, fwd+bwd: 1.29x") for m in misses), misses
    assert not any(m.startswith("geometric mean, float32, fwd:") for m in misses), misses
    for fine in ("relu,", "silu,", "reglu,", "bfloat16, smoothing 0.1"):
        assert not any(fine in m for m in misses), (fine, misses)
    assert len(misses) == 9, misses


@pytest.mark.parametrize("argv", [["bench", "--ops", "nosuchop"], ["bench", "--sizes", "4Q"],
                                  ["bench", "--modes", "bwd"], ["bench", "--dtypes", "int8"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "bench:" in capsys.readouterr().err


def test_help_lists_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--ops", "--sizes", "--dtypes", "--modes", "--repeats", "--no-compile", "--quick", "--output",
                "--png", "--threads"):
        assert opt in text


def test_every_op_is_benchmarked():
    """Every operator family of the library has a case, so a new op cannot be
    left out of the benchmarks silently."""
    from torch_activations.optable import OPS

    names = set(bench.CASES_BY_NAME)
    assert {op.name for op in OPS} <= names
    assert {"prelu", "swish_learnable", "softmax", "log_softmax", "softmin", "glu", "swiglu", "geglu", "reglu",
            "swiglu_pair", "geglu_pair", "reglu_pair", "cross_entropy", "softmax_masked", "log_softmax_short",
            "softmax_channels",
            "binary_cross_entropy_with_logits"} <= names
    registered = {n.split("::", 1)[1].split(".")[0] for n in torch._C._dispatch_get_all_op_names()
                  if n.startswith("torch_activations::")}
    assert "relu" in registered and "cross_entropy" in registered
    families = {n for n in registered if not n.startswith("_") and not n.endswith(("_backward", "_"))}
    uncovered = {n for n in families if n not in names and n + "_pair" not in names}
    # rrelu is random in training and a leaky_relu otherwise; it has no
    # PyTorch kernel to race against that computes the same thing.
    assert uncovered <= {"rrelu", "rrelu_with_noise"}, sorted(uncovered)
    assert os.path.basename(bench.__file__) == "bench.py"


def test_out_overload_is_found_and_called_with_the_parameters():
    """An op with an out= overload gets a preallocated-output column; its
    parameters reach it in the schema's order."""
    lib = torch.library.Library("ta_bench_test", "DEF")
    lib.define("leaky_relu(Tensor self, float negative_slope=0.01) -> Tensor")
    lib.define("leaky_relu.out(Tensor self, float negative_slope=0.01, *, Tensor(a!) out) -> Tensor(a!)")
    lib.define("relu(Tensor self) -> Tensor")

    def leaky_out(x, negative_slope=0.01, *, out):
        return out.copy_(torch.nn.functional.leaky_relu(x, negative_slope))

    lib.impl("leaky_relu.out", leaky_out, "CPU")
    try:
        ns = torch.ops.ta_bench_test
        assert bench._ours_out("relu", {}, ns) is None
        fn = bench._ours_out("leaky_relu", {"negative_slope": 0.2}, ns)
        x = torch.linspace(-3, 3, 101)
        out = torch.empty_like(x)
        assert fn(x, out) is out
        torch.testing.assert_close(out, torch.nn.functional.leaky_relu(x, 0.2), rtol=0, atol=0)
        fn = bench._ours_out("leaky_relu", {}, ns)      # the schema's default
        fn(x, out)
        torch.testing.assert_close(out, torch.nn.functional.leaky_relu(x, 0.01), rtol=0, atol=0)
    finally:
        lib._destroy()
