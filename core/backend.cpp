// The kernel methods of Backend (one per line of core/kernels.def): device
// checks, the call into the backend's table, and the CPU fallback for
// declined kernels; and the registry of backend providers.
#include "sagan/core/backend.h"

#include <atomic>
#include <cstring>
#include <string_view>
#include <tuple>

#include "sagan/core/autograd.h"
#include "sagan/core/kernel_profile.h"
#include "sagan/core/kernel_work.h"
#include "sagan/core/sync_free.h"

namespace sagan {

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
      return "neg";
    case UnaryOp::Relu:
      return "relu";
    case UnaryOp::LeakyRelu:
      return "leaky_relu";
    case UnaryOp::Tanh:
      return "tanh";
    case UnaryOp::Sigmoid:
      return "sigmoid";
    case UnaryOp::Softplus:
      return "softplus";
    case UnaryOp::Exp:
      return "exp";
    case UnaryOp::Log:
      return "log";
    case UnaryOp::Sqrt:
      return "sqrt";
    case UnaryOp::Abs:
      return "abs";
    case UnaryOp::Square:
      return "square";
    case UnaryOp::PowScalar:
      return "pow";
    case UnaryOp::AddScalar:
      return "add_scalar";
    case UnaryOp::MulScalar:
      return "mul_scalar";
    case UnaryOp::RDivScalar:
      return "rdiv_scalar";
  }
  return "unary";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add:
      return "add";
    case BinaryOp::Sub:
      return "sub";
    case BinaryOp::Mul:
      return "mul";
    case BinaryOp::Div:
      return "div";
    case BinaryOp::Pow:
      return "pow";
    case BinaryOp::Max:
      return "maximum";
    case BinaryOp::Min:
      return "minimum";
  }
  return "binary";
}

const char* kernel_name(KernelId id) {
  static constexpr const char* names[] = {
#define SAGAN_KERNEL(name, params, args) #name,
#include "sagan/core/kernels.def"
#undef SAGAN_KERNEL
  };
  const auto i = static_cast<size_t>(id);
  return i < std::size(names) ? names[i] : "kernel";
}

KernelId kernel_id(const std::string& name, const std::string& what) {
  std::string all;
  for (int i = 0; i < kKernelCount; ++i) {
    const char* n = kernel_name(static_cast<KernelId>(i));
    if (name == n) return static_cast<KernelId>(i);
    all += (i ? ", " : "") + std::string(n);
  }
  SAGAN_FAIL("{}: no kernel named '{}' (the names of core/kernels.def: {})", what, name, all);
}

void Backend::set_declined(KernelId id, bool declined) {
  SAGAN_CHECK(id != KernelId::fill && id != KernelId::copy,
              "{}: backend {} cannot decline it: the CPU fallback needs fill and copy", kernel_name(id), name());
  SAGAN_CHECK(device_.type != DeviceType::CPU, "{}: the CPU backend cannot decline a kernel: it is the fallback",
              kernel_name(id));
  const auto i = static_cast<size_t>(id);
  table_[i] = declined ? nullptr : own_[i];
}

// ---------------------------------------------------------------- registry

namespace {
// Written at static initialisation (and by tests), read on every kernel
// call: atomics keep the reads cheap and race-free.
struct Slot {
  std::atomic<int (*)()> device_count{nullptr};
  std::atomic<Backend& (*)(int)> backend{nullptr};
};
constexpr size_t kDeviceTypes = 2;  // DeviceType::CPU, DeviceType::CUDA

Slot& slot(DeviceType type) {
  static Slot slots[kDeviceTypes];  // function-local: safe from any static initialiser
  return slots[static_cast<size_t>(type)];
}
}  // namespace

// The backends' own registration (kernels/<backend>/<backend>_backend.cpp),
// referenced weakly: core names no kernel file, a weak reference pulls no
// object out of libsagan.a, and a program linked without a backend sees
// null. Static initialisers run in no set order across files, so a
// program's own (a file-scope Tensor) may come before the backend's: the
// first lookup of an empty slot registers the backend then.
extern "C" void sagan_register_cpu_backend() __attribute__((weak));
extern "C" void sagan_register_cuda_backend() __attribute__((weak));

namespace {
// The slot of `type`, its backend registered first if it is linked in and
// has not registered yet.
Slot& filled_slot(DeviceType type) {
  Slot& s = slot(type);
  if (!s.backend.load(std::memory_order_acquire)) {
    void (*registrar)() = type == DeviceType::CPU ? sagan_register_cpu_backend : sagan_register_cuda_backend;
    if (registrar) registrar();
  }
  return s;
}
}  // namespace

BackendProvider register_backend(const BackendProvider& p) {
  SAGAN_CHECK(static_cast<size_t>(p.type) < kDeviceTypes, "register_backend: unknown device type {}",
              static_cast<int>(p.type));
  Slot& s = slot(p.type);
  BackendProvider old{p.type, s.device_count.exchange(p.device_count), s.backend.exchange(p.backend)};
  return old;
}

namespace {
// Backends without graphs: a replay runs the body again.
class RerunGraph final : public DeviceGraph {
 public:
  explicit RerunGraph(std::function<void()> body) : body_(std::move(body)) {}
  void replay() override {
    SyncFreeScope region("a recorded graph (Backend::capture)");  // as on CUDA, where the body may not wait
    body_();
  }

 private:
  std::function<void()> body_;
};
class HostUploader final : public Uploader {
 public:
  HostUploader(Backend& be, size_t capacity) : be_(be), host_(capacity), landing_(capacity) {}
  size_t capacity() const override { return host_.size(); }
  void* host() override { return host_.data(); }
  void send(size_t nbytes) override {
    SAGAN_CHECK(nbytes <= host_.size(), "{}: upload of {} bytes into a stage of {}", be_.name(), nbytes, host_.size());
    std::memcpy(landing_.data(), host_.data(), nbytes);
  }
  void take(const std::vector<Piece>& pieces) override {
    for (const Piece& p : pieces) {
      SAGAN_CHECK(p.offset + p.nbytes <= landing_.size(), "{}: upload piece [{}, {}) past a stage of {} bytes",
                  be_.name(), p.offset, p.offset + p.nbytes, landing_.size());
      be_.copy_from_host(p.dst, landing_.data() + p.offset, p.nbytes);
    }
  }

 private:
  Backend& be_;
  std::vector<std::byte> host_, landing_;
};
}  // namespace

std::unique_ptr<Uploader> Backend::make_uploader(size_t capacity) {
  return std::make_unique<HostUploader>(*this, capacity);
}

std::unique_ptr<DeviceGraph> Backend::capture(std::function<void()> body) {
  SAGAN_CHECK(body != nullptr, "{}: capture of an empty body", name());
  return std::make_unique<RerunGraph>(std::move(body));
}

Backend& backend_for(Device device) {
  Backend& (*get)(int) = filled_slot(device.type).backend.load(std::memory_order_acquire);
  if (get) return get(device.index);
#ifdef SAGAN_WITH_CUDA
  if (device.is_cuda())
    SAGAN_FAIL(
        "device {}: no CUDA backend registered. This build has one, but kernels/cuda/cuda_backend.cpp is kept by "
        "the linker only when told to (-Wl,--undefined=sagan_cuda_backend, which CMake's sagan::engine target "
        "adds): link the engine through sagan::engine",
        device_name(device));
#else
  if (device.is_cuda())
    SAGAN_FAIL("device {}: this build of sagan has no CUDA backend (configure with -DSAGAN_CUDA=ON)",
               device_name(device));
#endif
  SAGAN_FAIL(
      "device {}: no backend registered. kernels/cpu/cpu_backend.cpp registers it from a static initialiser that "
      "the linker keeps only when told to (-Wl,--undefined=sagan_cpu_backend, which CMake's sagan::engine target "
      "adds): link the engine through sagan::engine",
      device_name(device));
}

int device_count(DeviceType type) {
  int (*count)() = filled_slot(type).device_count.load(std::memory_order_acquire);
  return count ? count() : 0;
}

int cuda_device_count() { return device_count(DeviceType::CUDA); }
bool cuda_available() { return cuda_device_count() > 0; }

// ---------------------------------------------------------------- kernel calls

namespace {

// Unary and binary kernels are named by their op ("exp", "add") in errors.
template <class First, class... Rest>
const char* label_of(KernelId id, const First& first, const Rest&...) {
  if constexpr (std::is_same_v<First, UnaryOp>) {
    return unary_op_name(first);
  } else if constexpr (std::is_same_v<First, BinaryOp>) {
    return binary_op_name(first);
  } else {
    return kernel_name(id);
  }
}

// The i-th name of "(a, b, c)".
std::string arg_name(const char* names, int i) {
  std::string_view s(names);
  if (!s.empty() && s.front() == '(') s.remove_prefix(1);
  if (!s.empty() && s.back() == ')') s.remove_suffix(1);
  for (int k = 0; k < i && !s.empty(); ++k) {
    const size_t comma = s.find(',');
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
  }
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return std::string(s.substr(0, s.find(',')));
}

// Checks one argument of a kernel call: every tensor (optional ones when
// present, each element of a list) is defined and on the backend's device.
struct DeviceCheck {
  Device device;
  const char* names;
  const char* (*label)(const void*);  // names the kernel from the call's arguments
  const void* args;
  int index = 0;

  [[noreturn]] void fail(const std::string& what, const Tensor& t) const {
    if (!t.defined()) SAGAN_FAIL("{}: {} is an undefined tensor", label(args), what);
    SAGAN_FAIL("{}: {} of shape {} is on {}, the kernel runs on {}", label(args), what, shape_str(t.shape()),
               device_name(t.device()), device_name(device));
  }
  void tensor(const Tensor& t, const std::string* what = nullptr) const {
    if (!t.defined() || !(t.device() == device)) fail(what ? *what : arg_name(names, index), t);
  }
  void operator()(const Tensor& t) { tensor(t), ++index; }
  void operator()(Tensor* t) {
    if (t) tensor(*t);
    ++index;
  }
  void operator()(const std::optional<Tensor>& t) {
    if (t) tensor(*t);
    ++index;
  }
  void operator()(const std::vector<Tensor>& ts) {
    for (size_t i = 0; i < ts.size(); ++i)
      if (!ts[i].defined() || !(ts[i].device() == device)) {
        const std::string what = fmt::format("{}[{}]", arg_name(names, index), i);
        tensor(ts[i], &what);
      }
    ++index;
  }
  template <class T>
  void operator()(const T&) {  // scalars, ops, geometries
    ++index;
  }
};

// ---- the CPU fallback: host copies of a declined kernel's arguments ----

Tensor to_host(const Tensor& t) { return t.defined() ? t.detach().to(Device::cpu()) : Tensor(); }

// Inputs are copied to the host; outputs (non-const references and
// pointers) too, since some kernels accumulate into them, and are copied
// back after the kernel ran. Everything else passes through.
template <class P>
struct HostArg {
  std::decay_t<P> value;
  explicit HostArg(P v) : value(v) {}
  const std::decay_t<P>& get() { return value; }
  void write_back() {}
};
template <>
struct HostArg<const Tensor&> {
  Tensor host;
  explicit HostArg(const Tensor& t) : host(to_host(t)) {}
  const Tensor& get() { return host; }
  void write_back() {}
};
template <>
struct HostArg<Tensor&> {
  Tensor& dev;
  Tensor host;
  explicit HostArg(Tensor& t) : dev(t), host(to_host(t)) {}
  Tensor& get() { return host; }
  void write_back() { dev.copy_(host); }
};
template <>
struct HostArg<Tensor*> {
  Tensor* dev;
  Tensor host;
  explicit HostArg(Tensor* t) : dev(t), host(t ? to_host(*t) : Tensor()) {}
  Tensor* get() { return dev ? &host : nullptr; }
  void write_back() {
    if (dev) dev->copy_(host);
  }
};
template <>
struct HostArg<const std::optional<Tensor>&> {
  std::optional<Tensor> host;
  explicit HostArg(const std::optional<Tensor>& t) {
    if (t) host = to_host(*t);
  }
  const std::optional<Tensor>& get() { return host; }
  void write_back() {}
};
template <>
struct HostArg<const std::vector<Tensor>&> {
  std::vector<Tensor> host;
  explicit HostArg(const std::vector<Tensor>& ts) {
    for (const Tensor& t : ts) host.push_back(to_host(t));
  }
  const std::vector<Tensor>& get() { return host; }
  void write_back() {}
};
template <>
struct HostArg<std::vector<Tensor>&> {
  std::vector<Tensor>& dev;
  std::vector<Tensor> host;
  explicit HostArg(std::vector<Tensor>& ts) : dev(ts) {
    for (const Tensor& t : ts) host.push_back(to_host(t));
  }
  std::vector<Tensor>& get() { return host; }
  void write_back() {
    for (size_t i = 0; i < dev.size(); ++i) dev[i].copy_(host[i]);
  }
};

// Calls through an erased table slot with the kernel's exact parameters.
template <class Sig>
struct Call;
template <class... P>
struct Call<void(P...)> {
  template <class Fn>
  static void invoke(Fn fn, Backend& be, P... args) {
    reinterpret_cast<void (*)(Backend&, P...)>(fn)(be, args...);
  }
  template <class Fn>
  static void on_host(Fn fn, Backend& cpu, P... args) {
    NoGradGuard no_grad;
    std::tuple<HostArg<P>...> host(args...);
    std::apply([&](auto&... h) { invoke(fn, cpu, h.get()...); }, host);
    std::apply([](auto&... h) { (h.write_back(), ...); }, host);
  }
};

}  // namespace

template <KernelId id, class... A>
void Backend::run(const char* arg_names, A&&... args) {
  using Sig = typename KernelSignature<id>::type;
  const auto label = [](const void* a) {
    return std::apply([](const auto&... x) { return label_of(id, x...); },
                      *static_cast<const std::tuple<const std::decay_t<A>&...>*>(a));
  };
  const std::tuple<const std::decay_t<A>&...> packed(args...);
  DeviceCheck check{device_, arg_names, label, &packed};
  (check(args), ...);
  // The backend's own kernel or, declined, the CPU's on host copies.
  auto call = [&] {
    if (ErasedFn fn = table_[static_cast<size_t>(id)]) return Call<Sig>::invoke(fn, *this, args...);
    SAGAN_CHECK(id != KernelId::fill && id != KernelId::copy,
                "{}: backend {} must implement fill and copy (the CPU fallback needs them)", kernel_name(id), name());
    Backend& cpu = backend_for(Device::cpu());
    ErasedFn host_fn = cpu.table_[static_cast<size_t>(id)];
    SAGAN_CHECK(host_fn != nullptr && &cpu != this, "{}: neither backend {} nor the CPU backend implements this kernel",
                kernel_name(id), name());
    // The host copies wait for the device, which a sync-free region (the
    // training step, a CUDA graph capture) forbids: name the kernel here
    // rather than fail inside a copy.
    if (sync_free_active()) {
      const std::string what = fmt::format("{} (backend {} has no kernel for it; its CPU fallback copies to the host)",
                                           label(&packed), name());
      note_host_read(what.c_str());
    }
    Call<Sig>::on_host(host_fn, cpu, args...);
  };
  if (!profile::enabled() || profile::paused()) return call();
  // SAGAN_PROFILE (core/kernel_profile.h): timed with the device idle
  // before and after, so that the time is the kernel's, not its launch's.
  profile::KernelCall timed(detail::profile_key<id>(args...), device_name(device_), detail::kernel_work<id>(args...));
  const bool queued = device_.type != DeviceType::CPU;
  if (queued) synchronize();
  timed.start();
  call();
  if (queued) synchronize();
  timed.stop();
}

#define SAGAN_UNPAREN(...) __VA_ARGS__
#define SAGAN_KERNEL(name, params, args) \
  void Backend::name params { run<KernelId::name>(#args, SAGAN_UNPAREN args); }
#include "sagan/core/kernels.def"
#undef SAGAN_KERNEL
#undef SAGAN_UNPAREN

}  // namespace sagan
