"""The command line: python -m torch_activations demo | check | plot."""
import json
import os
import subprocess
import sys

import pytest
import torch

import torch_activations as ta
from torch_activations import demo
from torch_activations.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["check", "--help"], ["plot", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m torch_activations")
    if argv[0] == "--help":
        assert all(cmd in text for cmd in ("demo", "check", "plot"))


@pytest.mark.parametrize("argv", [[], ["nosuchcommand"], ["demo", "--steps", "0"], ["plot", "--xmax", "x"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def test_check_unknown_op_fails(capsys):
    assert main(["check", "nosuchop"]) == 2
    assert "unknown op(s): nosuchop" in capsys.readouterr().out


def test_module_entry_point_and_exit_codes():
    for argv, code in ((["--help"], 0), (["check", "nosuchop"], 2), (["nosuchcommand"], 2)):
        out = subprocess.run([sys.executable, "-m", "torch_activations", *argv], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == code, (argv, out.stdout[-2000:], out.stderr[-2000:])


def test_demo_command(tmp_path, capsys):
    trace = tmp_path / "trace.json"
    assert main(["demo", "--steps", "3", "--trace", str(trace)]) == 0
    text = capsys.readouterr().out
    assert "encoder.1: torch.nn.GELU -> torch_activations.nn.GELU" in text
    assert "parity (assert_close, float64 tolerances): ok" in text
    assert "patch() routed: {'torch.nn.functional.silu': 1}" in text
    assert "3/3" in text and "demo passed" in text
    # The op table lists our forward and backward ops with their times.
    rows = [line.split() for line in text.splitlines() if line.strip().startswith("torch_activations::")]
    listed = {r[0] for r in rows}
    for op in ("gelu", "prelu", "silu", "hardswish"):
        assert f"torch_activations::{op}" in listed and f"torch_activations::{op}_backward" in listed
    assert all(float(r[2]) > 0 for r in rows)
    events = json.loads(trace.read_text())["traceEvents"]
    names = {e.get("name") for e in events}
    assert {"torch_activations::silu", "torch_activations::silu_backward", "train_step"} <= names
    assert str(trace) in text


def test_demo_fails_when_parity_fails(tmp_path, monkeypatch):
    # A GELU that is not PyTorch's: the parity step must catch it.
    monkeypatch.setattr(ta.nn.GELU, "forward", lambda self, x: ta.functional.gelu(x, approximate="tanh"))
    lines = []
    assert demo.run(steps=1, trace=str(tmp_path / "t.json"), out=lines.append) == 1
    assert "  parity (assert_close, float64 tolerances): FAILED" in lines
    assert lines[-1].strip() == "demo FAILED"


def test_plot_writes_a_readable_png(tmp_path):
    import matplotlib.image

    path = tmp_path / "acts.png"
    assert main(["plot", "--output", str(path)]) == 0
    img = matplotlib.image.imread(str(path))
    assert img.shape[0] > 800 and img.shape[1] > 1500
    # Not a blank canvas: plenty of non-white pixels.
    assert (img[..., :3].mean(-1) < 0.9).mean() > 0.02


def test_plot_ranges_and_regions():
    from torch_activations.plot import _range_text, _regions, panels

    ranges = {title.split("(")[0]: _range_text(f) for title, f, _ in panels()}
    assert ranges["sigmoid"] == "range (0, 1)"
    assert ranges["tanh"] == "range (-1, 1)"
    assert ranges["relu"] == "range [0, inf)"
    assert ranges["relu6"] == "range [0, 6]"
    assert ranges["elu"] == "range (-1, inf)"
    assert ranges["selu"] == "range (-1.76, inf)"
    assert ranges["silu"] == "range [-0.278, inf)"
    assert ranges["hardswish"] == "range [-0.375, inf)"
    assert ranges["logsigmoid"] == "range (-inf, 0)"
    assert ranges["leaky_relu"] == "range (-inf, inf)"
    assert ranges["threshold"] == "range [-2, inf)"
    x = torch.linspace(-1, 1, 5)
    assert _regions(x, torch.tensor([True, True, False, False, True])) == [(-1.0, -0.5), (1.0, 1.0)]
    assert len(panels()) == len(ta.optable.OPS) + 2
