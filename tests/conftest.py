import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import torch_activations as ta  # noqa: E402


@pytest.fixture(params=ta.supported_cpu_capabilities())
def each_isa(request):
    """Runs a test under every instruction set the CPU supports, restoring
    the one in use afterwards."""
    before = ta.cpu_capability()
    ta.set_cpu_capability(request.param)
    yield request.param
    ta.set_cpu_capability(before)
