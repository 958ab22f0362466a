// Operator schemas, CPU kernels and Meta kernels of the pointwise
// activations, all generated from the registry (registry.h).
#include <ATen/ATen.h>
#include <ATen/TensorIterator.h>
#include <ATen/Version.h>
#include <c10/util/irange.h>
#include <torch/csrc/jit/frontend/function_schema_parser.h>
#include <torch/library.h>

#include <pthread.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <sstream>

#include "common.h"
#include "cpu/kernels.h"
#include "layout.h"
#include "pointwise.h"

namespace ta {

// ------------------------------------------------------------ registry ---
namespace {

template <template <class> class F>
PointwiseInfo make_info(OpId id, const char* name, const char* params) {
  using Op = F<float>;
  PointwiseInfo info;
  info.id = id;
  info.name = name;
  info.saved = Op::kSaved;
  info.result_form = Op::kSaved == Saved::Input && Op::kResultForm;
  info.zero_second = Op::kZeroSecond;
  info.contiguous_output = Op::kContiguousOutput;
  info.grain = at::internal::GRAIN_SIZE / Op::kCost;
  info.lut = Op::kLut;
  info.check = &Op::check;
  info.inplace_error = &Op::inplace_error;
  info.choices = Op::kChoices;
  info.range_param = Op::kRangeParam;
  info.range_name = Op::kRangeName;

  // Parse the declarations with PyTorch's own schema parser, then print them
  // back without defaults for the backward schemas.
  const std::string fwd_args = std::string("Tensor self") + (params[0] ? ", " : "") + params;
  const auto parsed = torch::jit::parseSchema(std::string(name) + "(" + fwd_args + ") -> Tensor");
  std::string decl;  // ", float negative_slope"
  for (size_t i = 1; i < parsed.arguments().size(); ++i) {
    const auto& a = parsed.arguments()[i];
    const auto kind = a.type()->kind();
    TORCH_INTERNAL_ASSERT(kind == c10::TypeKind::FloatType || kind == c10::TypeKind::StringType,
                          name, ": parameters must be float or str");
    TORCH_INTERNAL_ASSERT(kind != c10::TypeKind::StringType || info.choices[0] != nullptr,
                          name, ": a str parameter needs the functor's kChoices");
    info.kinds.push_back(kind == c10::TypeKind::FloatType ? ParamKind::Float : ParamKind::Choice);
    info.param_names.push_back(a.name());
    decl += ", " + a.type()->str() + " " + a.name();
  }
  info.nparams = static_cast<int>(info.kinds.size());
  TORCH_INTERNAL_ASSERT(info.nparams <= kMaxParams);

  const std::string saved = info.saved == Saved::Output ? "result" : "self";
  const std::string is_result = info.result_form ? ", bool is_result" : "";
  info.schema_fwd = std::string(name) + "(" + fwd_args + ") -> Tensor";
  info.schema_inplace = std::string(name) + "_(Tensor(a!) self" + (params[0] ? ", " : "") + params + ") -> ()";
  info.schema_bwd = std::string(name) + "_backward(Tensor grad_output, Tensor " + saved + decl + is_result +
                    ") -> Tensor";
  info.schema_dbwd = std::string(name) + "_double_backward(Tensor grad_grad, Tensor grad_output, Tensor " +
                     saved + decl + is_result + ") -> Tensor";
  return info;
}

}  // namespace

const std::vector<PointwiseInfo>& pointwise_infos() {
  static const std::vector<PointwiseInfo> infos = [] {
    std::vector<PointwiseInfo> v;
#define TA_X(name, F, params) v.push_back(make_info<act::F>(OpId::name, #name, params));
    TA_POINTWISE_OPS(TA_X)
#undef TA_X
    return v;
  }();
  return infos;
}

std::string qualified_name(OpId id, Variant v) {
  static const char* suffix[] = {"", "_", "_backward", "_double_backward"};
  return "torch_activations::" + pointwise_info(id).name + suffix[static_cast<int>(v)];
}

const c10::OperatorHandle& op_handle(OpId id, Variant v) {
  static std::once_flag once;
  static std::vector<std::array<c10::OperatorHandle, static_cast<int>(Variant::kCount)>> handles;
  std::call_once(once, [] {
    for (const auto& info : pointwise_infos()) {
      auto find = [&](Variant var) {
        const std::string full = qualified_name(info.id, var);
        return c10::Dispatcher::singleton().findSchemaOrThrow(full.c_str(), "");
      };
      handles.push_back({find(Variant::Fwd), find(Variant::Inplace), find(Variant::Bwd), find(Variant::DBwd)});
    }
  });
  return handles[static_cast<int>(id)][static_cast<int>(v)];
}

void read_params(const PointwiseInfo& info, const c10::IValue* args, double* out, const char* op,
                 at::ScalarType dtype) {
  for (int i = 0; i < info.nparams; ++i) {
    if (info.kinds[i] == ParamKind::Float) {
      out[i] = args[i].toDouble();
    } else {
      const std::string& s = args[i].toStringRef();
      int k = 0;
      std::string all;
      for (; info.choices[k] != nullptr; ++k) {
        if (s == info.choices[k]) break;
        all += (k ? " or " : "") + std::string(info.choices[k]);
      }
      if (info.choices[k] == nullptr) {
        TORCH_CHECK(false, op, ": ", info.param_names[i], " argument must be either ", all, ", got '", s, "'");
      }
      out[i] = k;
    }
  }
  if (const char* msg = info.check(out)) TORCH_CHECK(false, op, ": ", msg);
  if (info.range_param >= 0 && dtype != at::ScalarType::Undefined) {
    double max = 0;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "read_params", [&] {
      max = static_cast<double>(std::numeric_limits<scalar_t>::max());
    });
    const double v = out[info.range_param];
    // Written so that NaN fails too.
    TORCH_CHECK(v >= 0 && v <= max, op, ": ", info.range_name, " must be in range [0, ", max, "] for input dtype ",
                dtype, ", but found ", v);
  }
}

// ------------------------------------------------------ instruction sets ---
namespace cpu {
namespace {

struct IsaEntry {
  const char* name;
  const KernelTable* (*table)();
  bool (*supported)();
};

bool has_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool has_avx512() {
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

// Widest first.
const IsaEntry kIsas[] = {
#ifdef TA_HAVE_AVX512
    {"AVX512", &kernel_table_AVX512, &has_avx512},
#endif
#ifdef TA_HAVE_AVX2
    {"AVX2", &kernel_table_AVX2, &has_avx2},
#endif
    {"DEFAULT", &kernel_table_DEFAULT, [] { return true; }},
};

const IsaEntry* find_isa(const std::string& name) {
  for (const auto& e : kIsas)
    if (name == e.name) return &e;
  return nullptr;
}

// The widest ISA that is compiled in, supported by this CPU, and no wider
// than `cap` ("AVX512", "AVX2" or "DEFAULT").
const IsaEntry* best_isa(const std::string& cap) {
  bool allowed = false;
  for (const auto& e : kIsas) {
    allowed |= cap == e.name || (cap == "AVX512" && std::strcmp(e.name, "AVX2") == 0);
    if (allowed && e.supported()) return &e;
  }
  return &kIsas[sizeof(kIsas) / sizeof(kIsas[0]) - 1];
}

// PyTorch's own choice follows ATEN_CPU_CAPABILITY and the CPU; our override
// variable, when set, wins.
const IsaEntry* initial_isa() {
  if (const char* env = std::getenv("TORCH_ACTIVATIONS_CPU_CAPABILITY")) {
    std::string want(env);
    for (auto& ch : want) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (find_isa(want) == nullptr && want != "AVX512" && want != "AVX2" && want != "DEFAULT") {
      TORCH_WARN("TORCH_ACTIVATIONS_CPU_CAPABILITY=", env, " is not one of DEFAULT, AVX2, AVX512; ignored");
    } else {
      return best_isa(want);
    }
  }
  const std::string aten = at::get_cpu_capability();
  if (aten.find("AVX512") != std::string::npos) return best_isa("AVX512");
  if (aten.find("AVX2") != std::string::npos) return best_isa("AVX2");
  return best_isa("DEFAULT");
}

std::atomic<const IsaEntry*>& current_isa() {
  static std::atomic<const IsaEntry*> cur{initial_isa()};
  return cur;
}

}  // namespace

const KernelTable& kernels() { return *current_isa().load(std::memory_order_relaxed)->table(); }

}  // namespace cpu

// ------------------------------------------------------- lookup tables ---
// A float16 or bfloat16 input has one of 65536 values, so an op whose
// arithmetic costs more than a table read (a gather, ~0.4 ns per element on
// one core, against ~1 ns for the exact GELU) can read f(x), or f'(x) for
// the backward, from a table of floats indexed by the input's bit pattern.
// The table is filled by the op's own float32 loop of the instruction set
// in use, over the 65536 values widened exactly, so the result is the
// computed one bit for bit: both are the float value rounded once (times g
// for the backward, whose form Traits::kLut requires), NaN signs and
// payloads aside (IEEE leaves them open, and the float16 and float32 loops
// may order a NaN's operands differently).
//
// Building costs as much as computing kTableSize elements, so a table is
// built once the op has computed that many elements without one (with the
// same parameters, dtype, instruction set and denormal mode): a single
// large call builds it at once, a stream of small calls after a while, and
// however calls come, building costs at most what computing had cost before
// it. At most kMaxTables (256 KiB each) are kept, the least recently used
// dropped first.
namespace lut {

constexpr int64_t kTableSize = 65536;
constexpr size_t kMaxTables = 32;

struct Key {
  const cpu::KernelTable* isa;
  OpId id;
  int kind;  // 0 forward, 1 backward, 2 both as pairs (f, f') for the gated units
  at::ScalarType dtype;
  std::array<double, kMaxParams> params;  // compared bit for bit
  unsigned fpmode;                        // see denormal_mode
  bool operator==(const Key& o) const {
    return isa == o.isa && id == o.id && kind == o.kind && dtype == o.dtype && fpmode == o.fpmode &&
           std::memcmp(params.data(), o.params.data(), sizeof(params)) == 0;
  }
};

// The calling thread's flush-to-zero and denormals-are-zero bits
// (torch.set_flush_denormal): the float loops compute other values with
// them set, so a table filled under one mode must not serve the other.
unsigned denormal_mode() {
#if defined(__x86_64__) || defined(_M_X64)
  return _mm_getcsr() & 0x8040u;
#else
  return 0;
#endif
}

struct Entry {
  Key key;
  Table table;  // null while elements are still being counted
  int64_t computed;  // elements computed without the table
  uint64_t last_use;
};

struct Cache {
  std::mutex mu;
  std::vector<Entry> entries;
  uint64_t clock = 0;
  std::atomic<bool> enabled{true};
};

Cache* new_cache();

Cache& cache() {
  static Cache* c = new_cache();  // never destroyed: kernels may run during exit
  return *c;
}

Cache* new_cache() {
  // A child forked while another thread held the lock would wait on it
  // forever: the child starts with a fresh one (the tables stay valid).
  pthread_atfork(nullptr, nullptr, [] { new (&cache().mu) std::mutex(); });
  return new Cache();
}

// Plain buffers, no tensor ops: a build inside a profiled call adds no
// operators of its own to the trace.
Table build(const cpu::KernelTable& isa, OpId id, int kind, at::ScalarType dtype, const double* params) {
  const PointwiseInfo& info = pointwise_info(id);
  // Every bit pattern of the 16-bit dtype, widened to float exactly.
  std::vector<float> x(kTableSize);
  for (int i = 0; i < kTableSize; ++i) {
    const auto bits = static_cast<uint16_t>(i);
    x[i] = dtype == at::kBFloat16 ? static_cast<float>(c10::BFloat16(bits, c10::BFloat16::from_bits()))
                                  : static_cast<float>(c10::Half(bits, c10::Half::from_bits()));
  }
  const std::vector<float> ones(kind != 0 ? kTableSize : 0, 1.0f);
  std::array<double, kMaxParams> p{};
  std::copy(params, params + info.nparams, p.begin());
  // On the calling thread alone (~70 us for the exact GELU), whose
  // floating-point mode the key records. Entry i of the forward (k = 0) or
  // the backward (k = 1) goes to out[i * step].
  const auto fill = [&](int k, float* out, int64_t step) {
    const cpu::Loop fn = isa.pointwise[static_cast<int>(id)][static_cast<int>(k == 0 ? Kind::Fwd : Kind::Bwd)]
                                      [static_cast<int>(DType::F32)];
    const int64_t strides[3] = {static_cast<int64_t>(step * sizeof(float)), sizeof(float), sizeof(float)};
    char* data[3] = {reinterpret_cast<char*>(out), nullptr, nullptr};
    if (k == 0) {
      data[1] = reinterpret_cast<char*>(x.data());
    } else {
      data[1] = reinterpret_cast<char*>(const_cast<float*>(ones.data()));
      data[2] = reinterpret_cast<char*>(x.data());
    }
    fn(data, strides, kTableSize, 1, p.data());
  };
  auto table = std::make_shared<std::vector<float>>(kind == 2 ? 2 * kTableSize : kTableSize);
  if (kind == 2) {
    fill(0, table->data(), 2);
    fill(1, table->data() + 1, 2);
  } else {
    fill(kind, table->data(), 1);
  }
  return table;
}

// Drops the least recently used entry of the given state (with a table or
// counting) when there are kMaxTables of them.
void make_room(Cache& c, bool with_table) {
  size_t n = 0;
  auto oldest = c.entries.end();
  for (auto it = c.entries.begin(); it != c.entries.end(); ++it) {
    if ((it->table != nullptr) != with_table) continue;
    ++n;
    if (oldest == c.entries.end() || it->last_use < oldest->last_use) oldest = it;
  }
  if (n >= kMaxTables) c.entries.erase(oldest);
}

// The table for this call, or null when the elements computed without one,
// this call's included, do not yet pay for building it.
Table find(const cpu::KernelTable& isa, OpId id, int kind, at::ScalarType dtype, const double* params,
           int64_t numel) {
  Cache& c = cache();
  if (!c.enabled.load(std::memory_order_relaxed)) return {};
  Key key{&isa, id, kind, dtype, {}, denormal_mode()};
  std::copy(params, params + pointwise_info(id).nparams, key.params.begin());
  {
    std::lock_guard<std::mutex> lock(c.mu);
    Entry* e = nullptr;
    for (auto& x : c.entries) {
      if (x.key == key) e = &x;
    }
    if (e == nullptr) {
      make_room(c, false);
      c.entries.push_back(Entry{key, {}, 0, 0});
      e = &c.entries.back();
    }
    e->last_use = ++c.clock;
    if (e->table) return e->table;
    e->computed += numel;
    if (e->computed < kTableSize) return {};
  }
  // Built outside the lock; two threads may both build the same table, and
  // the second keeps the first one's.
  Table table = build(isa, id, kind, dtype, key.params.data());
  std::lock_guard<std::mutex> lock(c.mu);
  // Turned off meanwhile: this call uses it, the cache stays empty.
  if (!c.enabled.load(std::memory_order_relaxed)) return table;
  for (auto& x : c.entries) {
    if (x.key == key && x.table) return x.table;
  }
  make_room(c, true);
  // The counting entry may have been dropped meanwhile.
  c.entries.erase(std::remove_if(c.entries.begin(), c.entries.end(), [&](const Entry& x) { return x.key == key; }),
                  c.entries.end());
  c.entries.push_back(Entry{key, table, 0, ++c.clock});
  return table;
}

void set_enabled(bool on) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.enabled.store(on);
  if (!on) c.entries.clear();
}

int64_t count() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return std::count_if(c.entries.begin(), c.entries.end(), [](const Entry& e) { return e.table != nullptr; });
}

}  // namespace lut

Table lookup_table(const cpu::KernelTable& isa, OpId id, int kind, at::ScalarType dtype, const double* params,
                   int64_t numel) {
  const PointwiseInfo& info = pointwise_info(id);
  // f'(x) is filled by the backward loop from x, which an op that saves its
  // output does not have.
  if (!info.lut || (dtype != at::kHalf && dtype != at::kBFloat16) || numel == 0 ||
      (kind != 0 && info.saved != Saved::Input)) {
    return {};
  }
  return lut::find(isa, id, kind, dtype, params, numel);
}

namespace lut {

// How the loops read the tables: 0 as suits the CPU, 1 scalar loads, 2
// gathers (_set_lookup_reads).
std::atomic<int>& reads() {
  static std::atomic<int> r{0};
  return r;
}

// Gathers are the faster read on the Intel cores from Sapphire Rapids on
// (measured there; kernels_impl.h), told apart by AVX512-FP16, which they
// are the first to have and AMD's cores lack. Older Intel cores may run a
// microcode fix for Gather Data Sampling that slows gathers down several
// times, and AMD's Zen 4 runs scalar loads faster (kernels_impl.h): those
// keep them.
bool gathers_by_default() {
#if defined(__x86_64__) || defined(_M_X64)
  static const bool fast = __builtin_cpu_supports("avx512fp16");
  return fast;
#else
  return false;
#endif
}

bool use_gather(const cpu::KernelTable& isa) {
  const int r = reads().load(std::memory_order_relaxed);
  return isa.has_gather && (r == 2 || (r == 0 && gathers_by_default()));
}

}  // namespace lut

cpu::LutLoop lut_loop(const cpu::KernelTable& isa, bool gated, int kind, at::ScalarType dtype) {
  const int read = lut::use_gather(isa) ? 1 : 0;
  const int d = dtype == at::kBFloat16 ? 1 : 0;
  return gated ? isa.gated_lut[read][kind][d] : isa.lut[read][kind][d];
}

// ------------------------------------------------------------- kernels ---
void run_pointwise(OpId id, Kind kind, const at::Tensor& out, std::initializer_list<at::Tensor> inputs,
                   const double* params) {
  const PointwiseInfo& info = pointwise_info(id);
  const cpu::KernelTable& isa = cpu::kernels();
  const at::ScalarType st = out.scalar_type();
  if (kind == Kind::Fwd || kind == Kind::Bwd) {
    const int k = kind == Kind::Fwd ? 0 : 1;
    if (const Table table = lookup_table(isa, id, k, st, params, out.numel())) {
      const cpu::LutLoop fn = lut_loop(isa, /*gated=*/false, k, st);
      const float* t[1] = {table->data()};
      run_loop(fn, {out}, inputs, t, info.grain);
      return;
    }
  }
  run_loop(isa.pointwise[static_cast<int>(id)][static_cast<int>(kind)][dtype_index(st)], {out}, inputs, params,
           info.nparams, info.grain);
}

namespace {

// One kernel object per (op, variant, device); `meta` ones only allocate.
struct PointwiseKernel final : c10::OperatorKernel {
  OpId id;
  Variant variant;
  bool meta;
  std::string opname;
  PointwiseKernel(OpId i, Variant v, bool m) : id(i), variant(v), meta(m), opname(qualified_name(i, v)) {}

  void operator()(const c10::OperatorHandle&, c10::DispatchKeySet, torch::jit::Stack* stack) {
    const PointwiseInfo& info = pointwise_info(id);
    double p[kMaxParams];
    switch (variant) {
      case Variant::Fwd: {
        const int n = info.nargs_fwd();
        auto args = torch::jit::last(*stack, n);
        const at::Tensor self = args[0].toTensor();
        check_float(self, "self", opname);
        read_params(info, &args[1], p, opname.c_str(), self.scalar_type());
        at::Tensor out = info.contiguous_output ? at::empty_symint(self.sym_sizes(), self.options())
                                                : empty_like_pointwise(self);
        if (!meta) run_pointwise(id, Kind::Fwd, out, {self}, p);
        torch::jit::drop(*stack, n);
        stack->emplace_back(std::move(out));
        break;
      }
      case Variant::Inplace: {
        const int n = info.nargs_fwd();
        auto args = torch::jit::last(*stack, n);
        const at::Tensor self = args[0].toTensor();
        check_float(self, "self", opname);
        read_params(info, &args[1], p, opname.c_str(), self.scalar_type());
        if (!meta) run_pointwise(id, Kind::Fwd, self, {self}, p);
        torch::jit::drop(*stack, n);
        break;
      }
      case Variant::Bwd:
      case Variant::DBwd: {
        const bool dbl = variant == Variant::DBwd;
        const int n = dbl ? info.nargs_dbwd() : info.nargs_bwd();
        auto args = torch::jit::last(*stack, n);
        const int k = dbl ? 3 : 2;  // tensors before the parameters
        const at::Tensor saved = args[k - 1].toTensor();
        const char* saved_name = info.saved == Saved::Output ? "result" : "self";
        check_float(saved, saved_name, opname);
        const at::Tensor grad = args[k - 2].toTensor();
        check_same(grad, "grad_output", saved, saved_name, opname);
        at::Tensor gg;
        if (dbl) {
          gg = args[0].toTensor();
          check_same(gg, "grad_grad", saved, saved_name, opname);
        }
        read_params(info, &args[k], p, opname.c_str(), saved.scalar_type());
        const bool is_result = info.result_form && args[k + info.nparams].toBool();
        at::Tensor out = empty_like_pointwise(saved);
        if (!meta) {
          if (dbl) {
            run_pointwise(id, is_result ? Kind::DBwdResult : Kind::DBwd, out, {gg, grad, saved}, p);
          } else {
            run_pointwise(id, is_result ? Kind::BwdResult : Kind::Bwd, out, {grad, saved}, p);
          }
        }
        torch::jit::drop(*stack, n);
        stack->emplace_back(std::move(out));
        break;
      }
      default:
        TORCH_INTERNAL_ASSERT(false);
    }
  }
};

void register_kernels(torch::Library& m, bool meta) {
  for (const auto& info : pointwise_infos()) {
    for (int v = 0; v < static_cast<int>(Variant::kCount); ++v) {
      const auto var = static_cast<Variant>(v);
      const std::string full = qualified_name(info.id, var);
      m.impl(full.substr(std::strlen("torch_activations::")).c_str(),
             torch::CppFunction::makeFromBoxedFunctor(std::make_unique<PointwiseKernel>(info.id, var, meta)));
    }
  }
}

std::string cpu_capability() { return cpu::current_isa().load()->name; }

void set_cpu_capability(const std::string& name) {
  std::string want = name;
  for (auto& ch : want) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const cpu::IsaEntry* e = cpu::find_isa(want);
  TORCH_CHECK(e != nullptr, "torch_activations::_set_cpu_capability: '", name,
              "' is not compiled into this build; available: ", at::ArrayRef<std::string>(
                  [] {
                    std::vector<std::string> v;
                    for (const auto& i : cpu::kIsas) v.emplace_back(i.name);
                    return v;
                  }()));
  TORCH_CHECK(e->supported(), "torch_activations::_set_cpu_capability: this CPU does not support ", e->name);
  cpu::current_isa().store(e);
}

std::vector<std::string> pointwise_op_names() {
  std::vector<std::string> v;
  for (const auto& info : pointwise_infos()) v.push_back(info.name);
  return v;
}

void set_lookup_tables(bool enabled) { lut::set_enabled(enabled); }
int64_t lookup_table_count() { return lut::count(); }

std::vector<std::string> lookup_table_ops() {
  std::vector<std::string> v;
  for (const auto& info : pointwise_infos())
    if (info.lut) v.push_back(info.name);
  return v;
}

void set_lookup_reads(const std::string& mode) {
  static const char* const kModes[] = {"auto", "scalar", "gather"};
  for (int i = 0; i < 3; ++i) {
    if (mode == kModes[i]) {
      lut::reads().store(i);
      return;
    }
  }
  TORCH_CHECK(false, "torch_activations::_set_lookup_reads: mode must be 'auto', 'scalar' or 'gather', got '", mode,
              "'");
}
// The read the loops of the instruction set in use take now.
std::string lookup_reads() { return lut::use_gather(cpu::kernels()) ? "gather" : "scalar"; }

std::vector<std::string> supported_cpu_capabilities() {
  std::vector<std::string> v;
  for (const auto& e : cpu::kIsas)
    if (e.supported()) v.emplace_back(e.name);
  return v;
}

}  // namespace
}  // namespace ta

TORCH_LIBRARY(torch_activations, m) {
  for (const auto& info : ta::pointwise_infos()) {
    m.def(info.schema_fwd.c_str());
    m.def(info.schema_inplace.c_str());
    m.def(info.schema_bwd.c_str());
    m.def(info.schema_dbwd.c_str());
  }
  m.def("_cpu_capability() -> str", &ta::cpu_capability);
  m.def("_set_cpu_capability(str name) -> ()", &ta::set_cpu_capability);
  m.def("_supported_cpu_capabilities() -> str[]", &ta::supported_cpu_capabilities);
  m.def("_pointwise_ops() -> str[]", &ta::pointwise_op_names);
  m.def("_set_lookup_tables(bool enabled) -> ()", &ta::set_lookup_tables);
  m.def("_lookup_table_count() -> int", &ta::lookup_table_count);
  m.def("_set_lookup_reads(str mode) -> ()", &ta::set_lookup_reads);
  m.def("_lookup_reads() -> str", &ta::lookup_reads);
  m.def("_lookup_table_ops() -> str[]", &ta::lookup_table_ops);
}

TORCH_LIBRARY_IMPL(torch_activations, CPU, m) { ta::register_kernels(m, /*meta=*/false); }

TORCH_LIBRARY_IMPL(torch_activations, Meta, m) { ta::register_kernels(m, /*meta=*/true); }
