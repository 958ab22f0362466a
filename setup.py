"""Build of the torch_activations C++ operator library (torch_activations._C).

The CPU kernels are compiled once per instruction set (csrc/cpu/kernels_*.cpp
select their target themselves) and picked at run time, so the default build
needs no -march flags and runs on any x86-64 CPU.
"""
import glob
import os
import platform

from setuptools import find_packages, setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def sources():
    srcs = [os.path.join("csrc", f) for f in ("ops.cpp", "autograd.cpp", "special.cpp", "module.cpp", "autocast.cpp")]
    srcs += [os.path.join("csrc", f) for f in ("nonpointwise.cpp", "softmax.cpp", "gated.cpp", "loss.cpp")]
    srcs.append(os.path.join("csrc", "pointwise_out.cpp"))
    # The C++ API, and the Python callables that call the operators through it.
    srcs += [os.path.join("csrc", "cpp_api.cpp"), os.path.join("csrc", "python", "calls.cpp")]
    srcs.append(os.path.join("csrc", "cpu", "kernels_DEFAULT.cpp"))
    macros = []
    if platform.machine().lower() in ("x86_64", "amd64"):
        for isa in ("AVX2", "AVX512"):
            srcs.append(os.path.join("csrc", "cpu", f"kernels_{isa}.cpp"))
            macros.append((f"TA_HAVE_{isa}", "1"))
    return srcs, macros


srcs, macros = sources()
cxx_flags = [
    "-O3",
    "-g0",
    # The standard PyTorch itself is built with.
    "-std=c++20",
    # Only the explicit fused multiply-adds in the math fuse; the compiler may
    # not contract others, so results do not depend on its choices.
    "-ffp-contract=off",
    "-fno-math-errno",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-psabi",
    "-Wno-maybe-uninitialized",
    # at::parallel_for is inline: without OpenMP here it runs serially in
    # every loop this library starts itself (those not through TensorIterator).
    "-fopenmp",
]

# TORCH_ACTIVATIONS_SANITIZE=1: AddressSanitizer and UndefinedBehaviorSanitizer
# build for `make sanitize` (which builds it outside the source tree).
# Undefined behaviour aborts instead of printing and going on.
link_flags = ["-fopenmp"]
if os.environ.get("TORCH_ACTIVATIONS_SANITIZE") == "1":
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    cxx_flags = [f for f in cxx_flags if f not in ("-O3", "-g0")] + ["-O1", "-g"] + sanitize
    link_flags = link_flags + sanitize

setup(
    name="torch_activations",
    version="0.1.0",
    packages=find_packages(include=["torch_activations", "torch_activations.*"]),
    ext_modules=[
        CppExtension(
            "torch_activations._C",
            srcs,
            include_dirs=[os.path.join(ROOT, "csrc"), os.path.join(ROOT, "include")],
            define_macros=macros,
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=link_flags,
            depends=sorted(glob.glob(os.path.join("csrc", "**", "*.h"), recursive=True)),
        )
    ],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    zip_safe=False,
)
