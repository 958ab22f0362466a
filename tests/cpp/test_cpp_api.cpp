// The C++ API (include/torch_activations/ops.h) from a LibTorch program:
// values against ATen's activations, gradients through autograd against
// central finite differences in double, second derivatives, the parametric
// ops' weight gradients, in-place ops, error messages, and that every op of
// the registry has a C++ function.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "registry.h"
#include "torch_activations/ops.h"

namespace api = torch_activations;

namespace {

int g_failures = 0;
int g_checks = 0;
std::string g_case;

void expect(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::printf("FAIL [%s] %s\n", g_case.c_str(), what.c_str());
  }
}

// assert_close's float64 defaults unless given.
void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what, double rtol = 1e-7,
                  double atol = 1e-7) {
  const bool same_shape = got.sizes() == want.sizes();
  expect(same_shape, what + ": shape");
  if (!same_shape) return;
  const at::Tensor g = got.to(at::kDouble), w = want.to(at::kDouble);
  const at::Tensor bad = ((g - w).abs() > atol + rtol * w.abs()) & ~(g.isnan() & w.isnan());
  const int64_t nbad = bad.sum().item<int64_t>();
  std::string msg = what;
  if (nbad) msg += ": " + std::to_string(nbad) + " elements differ, max |diff| = " +
                   std::to_string((g - w).abs().max().item<double>());
  expect(nbad == 0, msg);
}

using Fn = std::function<at::Tensor(const at::Tensor&)>;

// d/dx sum(f(x) * g) by central differences, elementwise (f is pointwise).
at::Tensor finite_difference(const Fn& f, const at::Tensor& x, const at::Tensor& g, double h = 1e-6) {
  at::NoGradGuard no_grad;
  return (f(x + h) - f(x - h)) / (2 * h) * g;
}

at::Tensor input(int64_t seed, std::vector<int64_t> shape = {4, 3, 5}) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kDouble)) * 3;
}

// Values within `margin` of a kink moved off it: central differences across
// a kink measure the average of the two one-sided slopes.
at::Tensor away_from(at::Tensor x, std::vector<double> kinks, double margin = 1e-3) {
  for (double k : kinks) x = at::where((x - k).abs() < margin, x + 4 * margin, x);
  return x;
}

struct Pointwise {
  std::string name;
  Fn ours, aten;
  std::vector<double> kinks;
};

std::vector<Pointwise> pointwise_cases() {
  return {
      {"sigmoid", [](const at::Tensor& x) { return api::sigmoid(x); }, [](const at::Tensor& x) { return at::sigmoid(x); }, {}},
      {"tanh", [](const at::Tensor& x) { return api::tanh(x); }, [](const at::Tensor& x) { return at::tanh(x); }, {}},
      {"relu", [](const at::Tensor& x) { return api::relu(x); }, [](const at::Tensor& x) { return at::relu(x); }, {0.0}},
      {"leaky_relu(0.2)", [](const at::Tensor& x) { return api::leaky_relu(x, 0.2); },
       [](const at::Tensor& x) { return at::leaky_relu(x, 0.2); }, {0.0}},
      {"elu(0.5)", [](const at::Tensor& x) { return api::elu(x, 0.5); },
       [](const at::Tensor& x) { return at::elu(x, 0.5); }, {0.0}},
      {"selu", [](const at::Tensor& x) { return api::selu(x); }, [](const at::Tensor& x) { return at::selu(x); }, {0.0}},
      {"softplus(2, 10)", [](const at::Tensor& x) { return api::softplus(x, 2.0, 10.0); },
       [](const at::Tensor& x) { return at::softplus(x, 2.0, 10.0); }, {5.0}},
      {"silu", [](const at::Tensor& x) { return api::silu(x); }, [](const at::Tensor& x) { return at::silu(x); }, {}},
      {"gelu", [](const at::Tensor& x) { return api::gelu(x); }, [](const at::Tensor& x) { return at::gelu(x); }, {}},
      {"gelu(tanh)", [](const at::Tensor& x) { return api::gelu(x, "tanh"); },
       [](const at::Tensor& x) { return at::gelu(x, "tanh"); }, {}},
      {"mish", [](const at::Tensor& x) { return api::mish(x); }, [](const at::Tensor& x) { return at::mish(x); }, {}},
      {"hardswish", [](const at::Tensor& x) { return api::hardswish(x); },
       [](const at::Tensor& x) { return at::hardswish(x); }, {-3.0, 3.0}},
      {"logsigmoid", [](const at::Tensor& x) { return api::logsigmoid(x); },
       [](const at::Tensor& x) { return at::log_sigmoid(x); }, {}},
      {"softsign", [](const at::Tensor& x) { return api::softsign(x); },
       [](const at::Tensor& x) { return x / (1 + x.abs()); }, {}},
      {"tanhshrink", [](const at::Tensor& x) { return api::tanhshrink(x); },
       [](const at::Tensor& x) { return x - at::tanh(x); }, {}},
      {"hardtanh(-2, 0.5)", [](const at::Tensor& x) { return api::hardtanh(x, -2.0, 0.5); },
       [](const at::Tensor& x) { return at::hardtanh(x, -2.0, 0.5); }, {-2.0, 0.5}},
  };
}

void test_forward_matches_aten() {
  for (const auto& c : pointwise_cases()) {
    const at::Tensor x = input(1);
    expect_close(c.ours(x), c.aten(x), c.name + " forward");
    expect_close(c.ours(x.to(at::kFloat)), c.aten(x.to(at::kFloat)), c.name + " float32", 1.3e-6, 1e-5);
  }
}

void test_backward_matches_finite_differences() {
  for (const auto& c : pointwise_cases()) {
    const at::Tensor x = away_from(input(2), c.kinks).requires_grad_(true);
    const at::Tensor g = input(3);
    at::Tensor y = c.ours(x);
    y.backward(g);
    // Central differences in double are good to about h^2 f''' + eps / h.
    expect_close(x.grad(), finite_difference(c.ours, x.detach(), g), c.name + " d/dx vs finite differences", 1e-6, 1e-6);
    const at::Tensor xr = x.detach().clone().requires_grad_(true);
    c.aten(xr).backward(g);
    expect_close(x.grad(), xr.grad(), c.name + " d/dx vs ATen");
  }
}

void test_second_derivative() {
  for (const auto& c : pointwise_cases()) {
    if (!c.kinks.empty()) continue;  // piecewise linear parts: f'' is 0 or undefined
    const at::Tensor x = input(4).requires_grad_(true);
    const at::Tensor y = c.ours(x);
    const auto d1 = torch::autograd::grad({y}, {x}, {at::ones_like(y)}, /*retain_graph=*/true, /*create_graph=*/true);
    const auto d2 = torch::autograd::grad({d1[0]}, {x}, {at::ones_like(y)});
    const Fn first = [&](const at::Tensor& z) {
      at::AutoGradMode enable(true);
      const at::Tensor zz = z.detach().requires_grad_(true);
      const at::Tensor out = c.ours(zz);
      return torch::autograd::grad({out}, {zz}, {at::ones_like(out)})[0];
    };
    const at::Tensor ones = at::ones_like(y);
    at::Tensor fd = (first(x.detach() + 1e-5) - first(x.detach() - 1e-5)) / 2e-5 * ones;
    expect_close(d2[0], fd, c.name + " d2/dx2 vs finite differences", 1e-5, 1e-5);
  }
}

void test_parametric_weight_gradients() {
  const at::Tensor x0 = away_from(input(5, {6, 4, 7}), {0.0});
  for (const bool per_channel : {false, true}) {
    const int64_t n = per_channel ? 4 : 1;
    for (const std::string op : {"prelu", "swish_learnable"}) {
      auto f = [&](const at::Tensor& x, const at::Tensor& w) {
        return op == "prelu" ? api::prelu(x, w) : api::swish_learnable(x, w);
      };
      const at::Tensor w = (at::rand({n}, at::kDouble) + 0.1).requires_grad_(true);
      const at::Tensor x = x0.clone().requires_grad_(true);
      const at::Tensor g = input(6, {6, 4, 7});
      f(x, w).backward(g);
      at::Tensor fd = at::empty({n}, at::kDouble);
      {
        at::NoGradGuard no_grad;
        for (int64_t i = 0; i < n; ++i) {
          at::Tensor wp = w.detach().clone(), wm = w.detach().clone();
          wp[i] += 1e-6;
          wm[i] -= 1e-6;
          fd[i] = ((f(x0, wp) - f(x0, wm)) * g).sum() / 2e-6;
        }
      }
      const std::string what = op + (per_channel ? " per-channel" : " shared");
      expect_close(w.grad(), fd, what + " d/dweight vs finite differences", 1e-6, 1e-6);
      const Fn fx = [&](const at::Tensor& z) { return f(z, w.detach()); };
      expect_close(x.grad(), finite_difference(fx, x0, g), what + " d/dx vs finite differences", 1e-6, 1e-6);
      if (op == "prelu") {
        const at::Tensor xr = x0.clone().requires_grad_(true), wr = w.detach().clone().requires_grad_(true);
        at::prelu(xr, wr).backward(g);
        expect_close(w.grad(), wr.grad(), what + " d/dweight vs ATen");
      }
    }
  }
}

void test_inplace_and_version_counter() {
  const at::Tensor leaf = input(7).requires_grad_(true);
  at::Tensor y = leaf * 1;
  const auto v0 = y._version();
  api::relu_(y);
  expect(y._version() > v0, "relu_ bumps the version counter");
  expect(y.grad_fn() != nullptr && y.grad_fn()->name() == "torch_activations::ReluBackward",
         "relu_ records its backward node, got " + (y.grad_fn() ? y.grad_fn()->name() : std::string("none")));
  y.backward(at::ones_like(y));
  expect_close(leaf.grad(), (leaf.detach() > 0).to(at::kDouble), "relu_ gradient");

  at::Tensor z = input(8);
  at::Tensor& same = api::silu_(z);
  expect(&same == &z, "in-place functions return their argument");
  expect_close(z, at::silu(input(8)), "silu_ value");
}

void test_out_variants() {
  const at::Tensor x = input(9);
  at::Tensor out = at::empty({0}, x.options());
  at::Tensor& r = api::leaky_relu_out(out, x, 0.2);
  expect(&r == &out, "foo_out returns its out argument");
  expect(out.sizes() == x.sizes(), "foo_out resizes an empty out");
  expect_close(out, at::leaky_relu(x, 0.2), "leaky_relu_out value");
  at::Tensor same = x.clone();
  api::gelu_out(same, same, "tanh");
  expect_close(same, at::gelu(x, "tanh"), "gelu_out into its own input");
  bool refused = false;
  try {
    api::sigmoid_out(out, x.requires_grad_(true) * 1);
  } catch (const c10::Error& e) {
    refused = std::string(e.what()).find("don't support automatic differentiation") != std::string::npos;
  }
  expect(refused, "foo_out refuses inputs that require grad");
}

void test_rrelu_and_generator() {
  const at::Tensor x = input(9);
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(42);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(42);
  auto g3 = at::make_generator<at::CPUGeneratorImpl>(42);
  const auto a = api::rrelu_with_noise(x, 0.1, 0.3, /*training=*/true, g1);
  const at::Tensor b = api::rrelu(x, 0.1, 0.3, /*training=*/true, g2);
  expect(at::equal(std::get<0>(a), b), "rrelu: same generator seed, same slopes");
  const at::Tensor noise = std::get<1>(a);
  expect_close(b, at::where(x > 0, x, x * noise), "rrelu output = x * noise");
  const at::Tensor neg = noise.masked_select(x <= 0);
  expect((neg >= 0.1).all().item<bool>() && (neg <= 0.3).all().item<bool>(), "rrelu slopes within [lower, upper]");
  expect_close(api::rrelu(x), at::leaky_relu(x, (0.125 + 1.0 / 3) / 2), "rrelu in eval = leaky_relu");
  // Gradient through the random slopes: d/dx = noise.
  const at::Tensor xg = x.clone().requires_grad_(true);
  api::rrelu(xg, 0.1, 0.3, /*training=*/true, g3).backward(at::ones_like(x));
  expect_close(xg.grad(), noise, "rrelu d/dx = the slopes drawn");
}

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

void test_errors_name_the_op() {
  const std::string e1 = error_of([] { api::gelu(at::arange(5)); });
  expect(e1.find("torch_activations::gelu") != std::string::npos && e1.find("floating point") != std::string::npos,
         "integer input: " + e1);
  const std::string e2 = error_of([] { api::gelu(at::randn({3}), "fast"); });
  expect(e2.find("torch_activations::gelu") != std::string::npos && e2.find("approximate") != std::string::npos,
         "bad approximate: " + e2);
  const std::string e3 = error_of([] { api::prelu(at::randn({2, 3}), at::rand({2})); });
  expect(e3.find("torch_activations::prelu") != std::string::npos, "prelu weight size: " + e3);
}

void test_instruction_sets() {
  const auto isas = api::supported_cpu_capabilities();
  const std::string before = api::cpu_capability();
  expect(!isas.empty() && isas.back() == "DEFAULT", "DEFAULT is always supported");
  const at::Tensor x = input(10, {1000});
  const at::Tensor want = api::gelu(x);
  for (const auto& isa : isas) {
    api::set_cpu_capability(isa);
    expect(api::cpu_capability() == isa, "set_cpu_capability(" + isa + ")");
    expect_close(api::gelu(x), want, "gelu with " + isa);
  }
  api::set_cpu_capability(before);
}

// Every op of the registry has a C++ function: this only compiles if so.
void test_registry_coverage() {
  std::vector<const void*> fns;
#define TA_X(name, F, params)                                  \
  fns.push_back(reinterpret_cast<const void*>(&api::name));    \
  fns.push_back(reinterpret_cast<const void*>(&api::name##_)); \
  fns.push_back(reinterpret_cast<const void*>(&api::name##_backward)); \
  fns.push_back(reinterpret_cast<const void*>(&api::name##_double_backward));
  TA_POINTWISE_OPS(TA_X)
#undef TA_X
#define TA_X(name, F, wname)                                   \
  fns.push_back(reinterpret_cast<const void*>(&api::name));    \
  fns.push_back(reinterpret_cast<const void*>(&api::name##_backward)); \
  fns.push_back(reinterpret_cast<const void*>(&api::name##_double_backward));
  TA_PARAMETRIC_OPS(TA_X)
#undef TA_X
  expect(fns.size() == 4 * ta::kNumPointwiseOps + 3 * ta::kNumParametricOps, "function count");
  for (const void* p : fns) expect(p != nullptr, "function address");
}

void run(const char* name, void (*fn)()) {
  g_case = name;
  const int before = g_failures;
  try {
    fn();
  } catch (const std::exception& e) {
    expect(false, std::string("unexpected exception: ") + e.what());
  }
  std::printf("%-44s %s\n", name, g_failures == before ? "ok" : "FAILED");
}

}  // namespace

int main() {
  const std::pair<const char*, void (*)()> cases[] = {
      {"forward_matches_aten", test_forward_matches_aten},
      {"backward_matches_finite_differences", test_backward_matches_finite_differences},
      {"second_derivative", test_second_derivative},
      {"parametric_weight_gradients", test_parametric_weight_gradients},
      {"inplace_and_version_counter", test_inplace_and_version_counter},
      {"out_variants", test_out_variants},
      {"rrelu_and_generator", test_rrelu_and_generator},
      {"errors_name_the_op", test_errors_name_the_op},
      {"instruction_sets", test_instruction_sets},
      {"registry_coverage", test_registry_coverage},
  };
  int failed_cases = 0;
  for (const auto& [name, fn] : cases) {
    const int before = g_failures;
    run(name, fn);
    failed_cases += g_failures != before;
  }
  const int n = static_cast<int>(sizeof(cases) / sizeof(cases[0]));
  std::printf("C++ API: %d checks; %d passed, %d failed\n", g_checks, n - failed_cases, failed_cases);
  return failed_cases == 0 ? 0 : 1;
}
