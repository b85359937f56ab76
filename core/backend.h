// Backends: where kernels run. A Backend owns one device's memory and a
// table of kernels, one slot per line of core/kernels.def (the single list of
// raw kernels and their contracts). Op front ends (core/ops/*.cpp) check
// shapes, allocate outputs and call backend_for(device).<kernel>(...).
//
// A backend fills the slots it implements; a slot left empty is declined:
// the call runs the CPU backend's kernel on host copies of the arguments and
// copies the results back (one generic fallback, core/backend.cpp). This is
// ggml's supports_op in table form.
//
// Backends live in kernels/ and register themselves (register_backend) from a
// static initialiser there; core/ includes nothing from kernels/. See
// CMakeLists.txt for how those initialisers survive static linking.
#pragma once
#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sagan/core/adam_options.h"
#include "sagan/core/tensor.h"

namespace sagan {

// ---- parameter types of the kernels ----

enum class UnaryOp {
  Neg,
  Relu,
  LeakyRelu /*alpha = slope*/,
  Tanh,
  Sigmoid,
  Softplus,
  Exp,
  Log,
  Sqrt,
  Abs,
  Square,
  PowScalar /*alpha = exponent*/,
  AddScalar /*alpha*/,
  MulScalar /*alpha*/,
  RDivScalar /*alpha / x*/
};
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Max, Min };

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);

struct Conv2dGeom {
  int64_t stride = 1, pad = 0;
};

struct Conv2dRectGeom {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

enum class PoolMode { Max, AvgIncludePad, AvgExcludePad };
struct Pool2dGeom {
  PoolMode mode = PoolMode::Max;
  int64_t kernel = 2, stride = 2, pad = 0;
};

// What an adam_update kernel needs: the optimiser's settings and its step.
struct AdamHyper : AdamOptions {
  int64_t step = 1;  // 1-based, for bias correction
};
// The bias-corrected factors of Adam's step `step` (1-based), in PyTorch's
// arrangement p -= step_size * m / (sqrt(v) / sqrt_bc2 + eps): step_size =
// lr / (1 - beta1^step), sqrt_bc2 = sqrt(1 - beta2^step). Every backend
// rounds these doubles to the tensors' dtype.
struct AdamScales {
  double step_size, sqrt_bc2;
};
AdamScales adam_scales(const AdamOptions& o, int64_t step);

// ---- the kernel list ----

enum class KernelId : int {
#define SAGAN_KERNEL(name, params, args) name,
#include "sagan/core/kernels.def"
#undef SAGAN_KERNEL
};
inline constexpr int kKernelCount = 0
#define SAGAN_KERNEL(name, params, args) +1
#include "sagan/core/kernels.def"
#undef SAGAN_KERNEL
    ;
const char* kernel_name(KernelId id);
// The kernel of that name in core/kernels.def ("pool2d"); throws naming
// `what` (where the name came from) and listing the names otherwise.
KernelId kernel_id(const std::string& name, const std::string& what);

// KernelSignature<KernelId::conv2d>::type is void(const Tensor& x, ...).
template <KernelId id>
struct KernelSignature;
#define SAGAN_KERNEL(name, params, args)   \
  template <>                              \
  struct KernelSignature<KernelId::name> { \
    using type = void params;              \
  };
#include "sagan/core/kernels.def"
#undef SAGAN_KERNEL

// ---- the backend ----

// Device work recorded once and replayed as a whole with the same buffers
// (Backend::capture; on CUDA a CUDA graph: one launch instead of hundreds).
class DeviceGraph {
 public:
  virtual ~DeviceGraph() = default;
  virtual void replay() = 0;
};

// Host-to-device copies that run while the device works on earlier launches
// (core/upload_stage.h packs tensors into them). One send at a time, and
// each send taken before the next:
//   host()        memory of capacity() bytes to fill (page-locked on CUDA);
//                 waits until the previous send has read it;
//   send(n)       copies host()[0, n) to a landing buffer on the device (on
//                 CUDA by a copy stream, once the previous take has read the
//                 landing buffer), and returns without waiting for it;
//   take(pieces)  queues behind the device's earlier work, and after the
//                 send, copies of landing-buffer pieces into device memory.
class Uploader {
 public:
  struct Piece {
    void* dst;      // device memory of the backend
    size_t offset;  // in the landing buffer
    size_t nbytes;
  };
  virtual ~Uploader() = default;
  virtual size_t capacity() const = 0;
  virtual void* host() = 0;
  virtual void send(size_t nbytes) = 0;
  virtual void take(const std::vector<Piece>& pieces) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  virtual const char* name() const = 0;
  Device device() const { return device_; }

  // ---- memory (every backend) ----
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes) = 0;
  virtual void synchronize() = 0;

  // ---- recorded work ----
  // A graph of the work `body` queues on this device, run by replay(). The
  // CUDA backend runs body's host code once, here, under stream capture:
  // nothing it queues runs now, tensors it allocates come from a pool kept
  // for the graph, and it must not wait for the device nor copy from the
  // host. The default, for backends without graphs (the CPU), runs body at
  // each replay(): the same results. Both run body in a sync-free region
  // (core/sync_free.h), so a host read in it throws, naming the read.
  // So body must leave what a replay's reader needs in tensors (whose
  // buffers a CUDA replay rewrites), not in host variables.
  virtual std::unique_ptr<DeviceGraph> capture(std::function<void()> body);
  // An Uploader of `capacity` bytes. The default, for backends whose copies
  // are synchronous (the CPU), sends by a copy into a host landing buffer
  // and takes with copy_from_host.
  virtual std::unique_ptr<Uploader> make_uploader(size_t capacity);

  // ---- kernels: one method per line of core/kernels.def ----
  // Each checks that its tensors are on this device, then runs this
  // backend's kernel or, when declined, the CPU's on host copies.
#define SAGAN_KERNEL(name, params, args) void name params;
#include "sagan/core/kernels.def"
#undef SAGAN_KERNEL

  // False when this backend declines the kernel (it runs on the CPU).
  bool implements(KernelId id) const { return table_[static_cast<size_t>(id)] != nullptr; }
  // Declines kernel `id` (the CPU's runs on host copies, as for a kernel
  // this backend lacks), or takes its own back: to test the fallback on a
  // real device, or to tell a wrong kernel from a wrong op. Not fill or copy,
  // which the fallback itself needs, nor any on the CPU backend, which is
  // the fallback; not while another thread runs kernels on this backend.
  // SAGAN_CUDA_DECLINE=name,... does it for every CUDA backend when created.
  void set_declined(KernelId id, bool declined);

 protected:
  explicit Backend(Device device) : device_(device) {}

  // Makes `method` (a member of the derived backend with the kernel's exact
  // parameters) this backend's kernel `id`. A `Scope`, when given, is
  // constructed from the backend around each call (e.g. a device guard).
  struct NoScope {
    template <class B>
    explicit NoScope(B&) {}
  };
  template <KernelId id, auto method, class Scope = NoScope>
  void implement();

 private:
  using ErasedFn = void (*)();
  // The body of every kernel method (core/backend.cpp).
  template <KernelId id, class... A>
  void run(const char* arg_names, A&&... args);
  Device device_;
  std::array<ErasedFn, kKernelCount> table_{};  // what runs; null: declined
  std::array<ErasedFn, kKernelCount> own_{};    // what implement() gave
};

// ---- registration ----

// How core finds the backends of one device type. Backends register from
// kernels/ (kernels/cpu/cpu_backend.cpp, kernels/cuda/cuda_backend.cpp).
struct BackendProvider {
  DeviceType type = DeviceType::CPU;
  int (*device_count)() = nullptr;           // devices present; 0, never a throw, when none
  Backend& (*backend)(int index) = nullptr;  // created on first use; throws naming a missing device
};
// Makes `p` the provider of its device type, replacing an earlier one (tests
// use that for a stand-in device); returns the one replaced (type's default
// when none). Safe during static initialisation.
BackendProvider register_backend(const BackendProvider& p);

// The backend of a device; throws naming the device when its backend is not
// built in or the device is not present.
Backend& backend_for(Device device);
// Devices of a type present (0 when its backend is not built in).
int device_count(DeviceType type);
bool cuda_available();  // built with CUDA and a device is present
int cuda_device_count();

// ---- implementation of Backend::implement ----

namespace detail {
template <auto method, class Scope, class Method>
struct KernelThunk;
template <auto method, class Scope, class Impl, class... P>
struct KernelThunk<method, Scope, void (Impl::*)(P...)> {
  using signature = void(P...);
  static void call(Backend& b, P... args) {
    Impl& impl = static_cast<Impl&>(b);
    Scope scope(impl);
    (impl.*method)(args...);
  }
};
}  // namespace detail

template <KernelId id, auto method, class Scope>
void Backend::implement() {
  using Thunk = detail::KernelThunk<method, Scope, decltype(method)>;
  static_assert(std::is_same_v<typename Thunk::signature, typename KernelSignature<id>::type>,
                "a backend's kernel must have the parameters its line in core/kernels.def declares");
  table_[static_cast<size_t>(id)] = own_[static_cast<size_t>(id)] = reinterpret_cast<ErasedFn>(&Thunk::call);
}

}  // namespace sagan
