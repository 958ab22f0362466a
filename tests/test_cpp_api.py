"""The generated LibTorch C++ API (include/torch_activations/ops.h and
csrc/cpp_api.cpp) matches the registered operators. The C++ side itself is
built and tested by CMake/CTest (tests/cpp, `make cpp-test`)."""
import importlib.util
import os
import re

import torch

import torch_activations  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_cpp_api", os.path.join(ROOT, "tools", "gen_cpp_api.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generated_files_are_up_to_date(capsys):
    assert load_generator().main(["--check"]) == 0, capsys.readouterr().out


def test_every_registered_operator_has_a_cpp_function():
    header = open(os.path.join(ROOT, "include", "torch_activations", "ops.h")).read()
    source = open(os.path.join(ROOT, "csrc", "cpp_api.cpp")).read()
    declared = set(re.findall(r"^TORCH_ACTIVATIONS_API [^(]*?\b(\w+)\(", header, flags=re.M))
    schemas = [s for s in torch._C._jit_get_all_schemas() if s.name.startswith("torch_activations::")]
    assert len(schemas) >= 100
    for s in schemas:
        op = s.name.split("::")[1]
        assert op.lstrip("_") in declared, op
        assert f'findSchemaOrThrow("{s.name}", "")' in source, op


def test_cpp_signatures_follow_the_schemas():
    header = open(os.path.join(ROOT, "include", "torch_activations", "ops.h")).read()
    assert ('TORCH_ACTIVATIONS_API at::Tensor gelu(const at::Tensor& self, c10::string_view approximate = "none");'
            in header)
    assert "TORCH_ACTIVATIONS_API at::Tensor& relu_(at::Tensor& self);" in header
    assert ("TORCH_ACTIVATIONS_API std::tuple<at::Tensor, at::Tensor> prelu_backward(const at::Tensor& grad_output, "
            "const at::Tensor& self, const at::Tensor& weight);") in header
    assert ("std::tuple<at::Tensor, at::Tensor> rrelu_with_noise(const at::Tensor& self, double lower = 0.125, "
            "double upper = 0.3333333333333333, bool training = false, "
            "std::optional<at::Generator> generator = std::nullopt);") in header
