#include "sagan/core/tensor.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <optional>
#include <ostream>
#include <type_traits>

#include "sagan/core/autograd.h"
#include "sagan/core/backend.h"
#include "sagan/core/ops.h"
#include "sagan/core/rng.h"
#include "sagan/core/sync_free.h"
#include "sagan/core/text.h"

namespace sagan {

// ---------------------------------------------------------------- storage

StorageImpl::StorageImpl(size_t n, Device d) : nbytes(n), device(d) {
  if (n > 0) data = backend_for(d).allocate(n);
}

StorageImpl::~StorageImpl() {
  if (data) backend_for(device).deallocate(data, nbytes);
}

Device Device::parse(std::string_view s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.substr(0, 5) == "cuda:") {
    const std::string_view rest = s.substr(5);
    int idx = 0;
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), idx);
    SAGAN_CHECK(all_digits(rest) && ec == std::errc() && end == rest.data() + rest.size(),
                "device: '{}' is not a device (expected cpu, cuda or cuda:N with N a GPU index)", s);
    return cuda(idx);
  }
  SAGAN_FAIL("device: '{}' is not a device (expected cpu, cuda or cuda:N)", s);
}

// A CPU device of another index than 0 does not exist, but is named apart
// from cpu in the message that says so.
std::string device_name(Device d) {
  if (d.is_cpu()) return d.index == 0 ? std::string("cpu") : fmt::format("cpu:{}", d.index);
  return fmt::format("cuda:{}", d.index);
}

// ---------------------------------------------------------------- factories

// The element count of a shape of `item_bytes` items, `op` named in the
// errors. Strides and byte counts are products of the sizes: a negative size,
// or a product (zero sizes aside) whose bytes overflow int64, is refused.
static size_t checked_count(const Shape& shape, size_t item_bytes, const char* op) {
  int64_t bytes = static_cast<int64_t>(item_bytes);
  for (int64_t d : shape) {
    SAGAN_CHECK(d >= 0, "{}: negative size in shape {}", op, shape_str(shape));
    SAGAN_CHECK(d == 0 || bytes <= INT64_MAX / d, "{}: shape {} is too large (more than 2^63 bytes)", op,
                shape_str(shape));
    if (d > 0) bytes *= d;
  }
  return static_cast<size_t>(numel_of(shape));
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  const size_t count = checked_count(shape, dtype_size(dtype), "empty");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = make_storage(count * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend_for(device).fill(t, value);
  return t;
}
Tensor Tensor::zeros(const Shape& s, DType t, Device d) { return full(s, 0.0, t, d); }
Tensor Tensor::ones(const Shape& s, DType t, Device d) { return full(s, 1.0, t, d); }
Tensor Tensor::scalar(double v, DType t, Device d) { return full({}, v, t, d); }

namespace {
template <class Src>
Tensor from_host(const Src* src, size_t n, const Shape& shape, DType src_dtype, DType dtype, Device device) {
  SAGAN_CHECK(static_cast<int64_t>(n) == numel_of(shape), "from_vector: {} values do not fill shape {} ({} elements)",
              n, shape_str(shape), numel_of(shape));
  Tensor host = Tensor::empty(shape, src_dtype, Device::cpu());
  std::copy(src, src + n, static_cast<Src*>(host.raw_data()));
  if (src_dtype == dtype && device.is_cpu()) return host;
  Tensor out = Tensor::empty(shape, dtype, device);
  out.copy_(host);
  return out;
}
}  // namespace

Tensor Tensor::from_vector(const std::vector<double>& v, const Shape& s, DType t, Device d) {
  return from_host(v.data(), v.size(), s, DType::F64, t, d);
}
Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& s, Device d) {
  return from_host(v.data(), v.size(), s, DType::F32, DType::F32, d);
}
Tensor Tensor::from_vector(const std::vector<int64_t>& v, const Shape& s, Device d) {
  return from_host(v.data(), v.size(), s, DType::I64, DType::I64, d);
}

Tensor Tensor::arange(int64_t n, DType t, Device d) {
  SAGAN_CHECK(n >= 0, "arange: length must be non-negative, got {}", n);
  std::vector<double> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0.0);
  return from_vector(v, {n}, t, d);
}

Tensor Tensor::randn(const Shape& s, Rng& gen, DType t, Device d) {
  // Rounded to integers the draws would be mostly 0, -1 and 1: not what was meant.
  SAGAN_CHECK(is_floating(t), "randn: dtype must be float32 or float64, got {}", dtype_name(t));
  std::vector<double> v(checked_count(s, sizeof(double), "randn"));  // checked before the host vector
  for (double& x : v) x = gen.normal();
  return from_vector(v, s, t, d);
}
Tensor Tensor::rand(const Shape& s, Rng& gen, DType t, Device d) {
  SAGAN_CHECK(is_floating(t), "rand: dtype must be float32 or float64 (integers: randint), got {}", dtype_name(t));
  std::vector<double> v(checked_count(s, sizeof(double), "rand"));
  for (double& x : v) x = gen.uniform();
  return from_vector(v, s, t, d);
}
Tensor Tensor::randint(const Shape& s, int64_t high, Rng& gen, Device d) {
  SAGAN_CHECK(high > 0, "randint: high must be positive, got {}", high);
  std::vector<int64_t> v(checked_count(s, sizeof(int64_t), "randint"));
  for (auto& x : v) x = static_cast<int64_t>(gen.below(static_cast<uint64_t>(high)));
  return from_vector(v, s, d);
}

// ---------------------------------------------------------------- metadata

static TensorImpl& checked(const std::shared_ptr<TensorImpl>& p) {
  SAGAN_CHECK(p != nullptr, "tensor: use of an undefined tensor");
  return *p;
}

const Shape& Tensor::shape() const { return checked(impl_).shape; }
const Shape& Tensor::strides() const { return checked(impl_).strides; }
int64_t Tensor::offset() const { return checked(impl_).offset; }
int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, shape(), "size")]; }
int64_t Tensor::numel() const { return numel_of(shape()); }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).storage->device; }
const Storage& Tensor::storage() const { return checked(impl_).storage; }

bool Tensor::is_contiguous() const {
  const auto& s = shape();
  const auto& st = strides();
  int64_t expected = 1;
  for (size_t i = s.size(); i-- > 0;) {
    if (s[i] == 1) continue;
    if (st[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

uint64_t Tensor::version() const { return checked(impl_).storage->version.load(std::memory_order_relaxed); }
void Tensor::bump_version() const { checked(impl_).storage->version.fetch_add(1, std::memory_order_relaxed); }

void* Tensor::raw_data() const {
  auto& t = checked(impl_);
  // An empty storage has no block (null): a view into it keeps its offset
  // but points nowhere (null plus an offset is undefined behaviour).
  if (t.storage->data == nullptr) return nullptr;
  return static_cast<char*>(t.storage->data) + t.offset * static_cast<int64_t>(dtype_size(t.dtype));
}

void Tensor::check_dtype(DType expected, const char* op) const {
  SAGAN_CHECK(dtype() == expected, "{}: expected a {} tensor, got {} of shape {}", op, dtype_name(expected),
              dtype_name(dtype()), shape_str(shape()));
}

// ---------------------------------------------------------------- autograd glue

bool Tensor::requires_grad() const { return checked(impl_).requires_grad; }

Tensor& Tensor::set_requires_grad(bool r) {
  auto& t = checked(impl_);
  SAGAN_CHECK(!r || is_floating(t.dtype), "set_requires_grad: only floating tensors can require grad, got {}",
              dtype_name(t.dtype));
  SAGAN_CHECK(!t.grad_fn || r, "set_requires_grad: cannot clear requires_grad of a non-leaf; use detach()");
  t.requires_grad = r;
  return *this;
}

Tensor Tensor::grad() const { return Tensor(checked(impl_).grad); }
void Tensor::set_grad(const Tensor& g) const {
  if (g.defined()) {
    SAGAN_CHECK(g.shape() == shape(), "set_grad: gradient shape {} differs from tensor shape {}", shape_str(g.shape()),
                shape_str(shape()));
    SAGAN_CHECK(g.dtype() == dtype() && g.device() == device(),
                "set_grad: gradient is {} on {}, tensor of shape {} is {} on {}", dtype_name(g.dtype()),
                device_name(g.device()), shape_str(shape()), dtype_name(dtype()), device_name(device()));
  }
  auto& t = checked(impl_);
  if (t.grad_slot) {
    Tensor home = t.grad_slot->grad;
    NoGradGuard ng;
    if (g.defined()) {
      if (!g.same(home)) home.copy_(g);
    } else {
      home.zero_();
    }
    t.grad = g.defined() ? home.impl_ptr() : nullptr;
    return;
  }
  t.grad = g.impl_ptr();
}
const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked(impl_).grad_fn; }
bool Tensor::is_leaf() const { return !grad_fn(); }

void Tensor::backward(const Tensor& grad, bool retain_graph) const { run_backward(*this, grad, retain_graph); }

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), offset()); }

Tensor make_view(const Tensor& t, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = t.dtype();
  return Tensor(std::move(impl));
}

// ---------------------------------------------------------------- views

namespace {
// Strides for viewing t with new_shape without copying, if possible (the
// algorithm of numpy's _attempt_nocopy_reshape).
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& new_shape) {
  if (numel_of(old_shape) == 0) return contiguous_strides(new_shape);
  Shape os, ost;
  for (size_t i = 0; i < old_shape.size(); ++i)
    if (old_shape[i] != 1) os.push_back(old_shape[i]), ost.push_back(old_strides[i]);
  Shape nst(new_shape.size(), 1);
  size_t oi = 0, oj = 1, ni = 0, nj = 1;
  size_t on = os.size(), nn = new_shape.size();
  while (ni < nn && oi < on) {
    int64_t np = new_shape[ni], op = os[oi];
    while (np != op) {
      if (np < op)
        np *= new_shape[nj++];
      else
        op *= os[oj++];
    }
    for (size_t k = oi; k + 1 < oj; ++k)
      if (ost[k] != os[k + 1] * ost[k + 1]) return std::nullopt;
    nst[nj - 1] = ost[oj - 1];
    for (size_t k = nj - 1; k > ni; --k) nst[k - 1] = nst[k] * new_shape[k];
    ni = nj++;
    oi = oj++;
  }
  int64_t last = nn > 0 && ni > 0 ? nst[ni - 1] : 1;
  for (size_t k = ni; k < nn; ++k) nst[k] = last;  // trailing ones
  return nst;
}

Shape infer_shape(Shape shape, const Shape& from, const char* op) {
  const int64_t numel = numel_of(from);
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      SAGAN_CHECK(infer < 0, "{}: only one dimension can be -1 in {}", op, shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      SAGAN_CHECK(shape[i] >= 0, "{}: invalid size in shape {}", op, shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    SAGAN_CHECK(known > 0 && numel % known == 0, "{}: shape {} is invalid for a tensor of shape {} ({} elements)", op,
                shape_str(shape), shape_str(from), numel);
    shape[static_cast<size_t>(infer)] = numel / known;
  }
  SAGAN_CHECK(numel_of(shape) == numel, "{}: shape {} is invalid for a tensor of shape {} ({} elements)", op,
              shape_str(shape), shape_str(from), numel);
  return shape;
}
}  // namespace

Tensor Tensor::view(const Shape& new_shape_in) const {
  Shape new_shape = infer_shape(new_shape_in, shape(), "view");
  auto st = view_strides(shape(), strides(), new_shape);
  SAGAN_CHECK(st.has_value(),
              "view: shape {} cannot view a tensor of shape {} and strides {} without a copy; use reshape",
              shape_str(new_shape), shape_str(shape()), shape_str(strides()));
  Tensor out = make_view(*this, new_shape, *st, offset());
  Shape in_shape = shape();
  record("view", out, {*this},
         [in_shape](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g.reshape(in_shape)}; });
  return out;
}

Tensor Tensor::reshape(const Shape& new_shape_in) const {
  Shape new_shape = infer_shape(new_shape_in, shape(), "reshape");
  if (view_strides(shape(), strides(), new_shape)) return view(new_shape);
  return contiguous().view(new_shape);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  SAGAN_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: {} dims given for a tensor of shape {}",
              dims.size(), shape_str(shape()));
  Shape ns(dims.size()), nst(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], shape(), "permute");
    SAGAN_CHECK(inverse[static_cast<size_t>(d)] < 0, "permute: dim {} repeated in [{}]", d, fmt::join(dims, ", "));
    inverse[static_cast<size_t>(d)] = static_cast<int64_t>(i);
    ns[i] = shape()[static_cast<size_t>(d)];
    nst[i] = strides()[static_cast<size_t>(d)];
  }
  Tensor out = make_view(*this, ns, nst, offset());
  record("permute", out, {*this},
         [inverse](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g.permute(inverse)}; });
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> p(static_cast<size_t>(dim()));
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[static_cast<size_t>(wrap_dim(d0, shape(), "transpose"))],
            p[static_cast<size_t>(wrap_dim(d1, shape(), "transpose"))]);
  return permute(p);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, shape(), "slice");
  int64_t n = shape()[static_cast<size_t>(d)];
  SAGAN_CHECK(step > 0, "slice: step must be positive, got {}", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape ns = shape(), nst = strides();
  // (end - start + step - 1) / step would overflow for a step near INT64_MAX.
  const int64_t count = end > start ? (end - start - 1) / step + 1 : 0;
  ns[static_cast<size_t>(d)] = count;
  // One element or none: the stride is never used (and stride * step could
  // overflow); otherwise step < n keeps it in range.
  if (count > 1) nst[static_cast<size_t>(d)] *= step;
  Tensor out = make_view(*this, ns, nst, offset() + start * strides()[static_cast<size_t>(d)]);
  Shape in_shape = shape();
  record("slice", out, {*this}, [=](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = Tensor::zeros(in_shape, g.dtype(), g.device());
    gx.slice(d, start, end, step).copy_(g);
    return std::vector<Tensor>{gx};
  });
  return out;
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, shape(), "select");
  int64_t n = size(d);
  SAGAN_CHECK(index >= -n && index < n, "select: index {} out of range for dim {} of size {} (shape {})", index, d, n,
              shape_str(shape()));
  if (index < 0) index += n;
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& target_in) const {
  SAGAN_CHECK(target_in.size() >= shape().size(), "expand: cannot expand shape {} to {}", shape_str(shape()),
              shape_str(target_in));
  size_t lead = target_in.size() - shape().size();
  // -1 keeps an existing dim's size (as in PyTorch); new leading dims need a size.
  Shape target = target_in;
  Shape nst(target.size(), 0);
  for (size_t i = 0; i < target.size(); ++i) {
    if (i < lead) {
      SAGAN_CHECK(target[i] >= 0, "expand: cannot expand shape {} to {} (new leading dims need a size)",
                  shape_str(shape()), shape_str(target_in));
      continue;
    }
    int64_t s = shape()[i - lead];
    if (target[i] == -1) target[i] = s;
    SAGAN_CHECK(s == target[i] || (s == 1 && target[i] >= 0), "expand: cannot expand shape {} to {}",
                shape_str(shape()), shape_str(target_in));
    nst[i] = s == target[i] ? strides()[i - lead] : 0;
  }
  if (target == shape()) return *this;
  Tensor out = make_view(*this, target, nst, offset());
  Shape in_shape = shape();
  record("expand", out, {*this}, [in_shape](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{sum_to_shape(g, in_shape)};
  });
  return out;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  SAGAN_CHECK(d >= -(dim() + 1) && d <= dim(), "unsqueeze: dim {} out of range for a tensor of shape {} (-{} to {})",
              d, shape_str(shape()), dim() + 1, dim());
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape ns = shape();
  ns.insert(ns.begin() + d, 1);
  return view(ns);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, shape(), "squeeze");
  SAGAN_CHECK(size(d) == 1, "squeeze: dim {} of shape {} has size {}, not 1", d, shape_str(shape()), size(d));
  Shape ns = shape();
  ns.erase(ns.begin() + d);
  return view(ns);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, shape(), "flatten");
  end = wrap_dim(end, shape(), "flatten");
  SAGAN_CHECK(start <= end, "flatten: start dim {} comes after end dim {} for shape {}", start, end,
              shape_str(shape()));
  Shape ns(shape().begin(), shape().begin() + start);
  int64_t m = 1;
  for (int64_t i = start; i <= end; ++i) m *= size(i);
  ns.push_back(m);
  ns.insert(ns.end(), shape().begin() + end + 1, shape().end());
  return reshape(ns);
}

// ---------------------------------------------------------------- copies

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype(), device());
  backend_for(device()).copy(*this, out);
  record("clone", out, {*this}, [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out = Tensor::empty(shape(), t, device());
  backend_for(device()).copy(*this, out);
  if (is_floating(t) && is_floating(dtype())) {
    DType from = dtype();
    record("to_dtype", out, {*this},
           [from](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g.to(from)}; });
  }
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor out = Tensor::empty(shape(), dtype(), d);
  {
    NoGradGuard ng;
    out.copy_(*this);
  }
  Device from = device();
  record("to_device", out, {*this},
         [from](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g.to(from)}; });
  return out;
}

static void check_inplace(const Tensor& t, const char* op) {
  SAGAN_CHECK(!(grad_enabled() && t.requires_grad()),
              "{}: in-place change of a tensor that requires grad; wrap it in NoGradGuard", op);
  // An expanded view (stride 0 on a dim of size > 1) has several elements in
  // one place: which write lands there would depend on the kernel's order.
  // (A tensor without elements has zero strides and nothing to write.)
  if (t.numel() == 0) return;
  for (int64_t d = 0; d < t.dim(); ++d)
    SAGAN_CHECK(t.strides()[static_cast<size_t>(d)] != 0 || t.shape()[static_cast<size_t>(d)] <= 1,
                "{}: the destination of shape {} is an expanded view (stride 0 on dim {}), whose elements share "
                "memory; write to a tensor of its own (contiguous() or clone())",
                op, shape_str(t.shape()), d);
}

Tensor& Tensor::fill_(double value) {
  check_inplace(*this, "fill_");
  backend_for(device()).fill(*this, value);
  bump_version();
  return *this;
}

namespace {
// The exact element geometry of a view, to tell aliasing from identity.
bool same_view(const Tensor& a, const Tensor& b) {
  return a.storage() == b.storage() && a.offset() == b.offset() && a.shape() == b.shape() &&
         a.strides() == b.strides() && a.dtype() == b.dtype();
}
}  // namespace

Tensor& Tensor::copy_(const Tensor& src_in) {
  check_inplace(*this, "copy_");
  SAGAN_CHECK(src_in.defined(), "copy_: source is an undefined tensor");
  NoGradGuard ng;
  const Shape& ss = src_in.shape();
  bool ok = ss.size() <= shape().size();
  for (size_t i = 0; ok && i < ss.size(); ++i) {
    int64_t d = shape()[shape().size() - ss.size() + i];
    ok = ss[i] == d || ss[i] == 1;
  }
  SAGAN_CHECK(ok, "copy_: cannot broadcast source of shape {} to destination shape {}", shape_str(ss),
              shape_str(shape()));
  Tensor src = src_in.detach().expand(shape());
  // A source that overlaps the destination differently (x.copy_(x.t()), a
  // shifted slice) would be read after being overwritten: read it first.
  if (src.storage() == storage() && !same_view(src, *this)) src = src.clone();
  if (src.device() == device()) {
    backend_for(device()).copy(src, *this);
    bump_version();
    return *this;
  }
  // Across devices: stage a contiguous copy of src's dtype, then let the
  // destination backend convert strides and dtype. Either direction waits for
  // the device (a pageable copy synchronises), which a sync-free region, and
  // a CUDA graph capture inside one, must never do.
  if (sync_free_active()) note_host_read("Tensor::copy_ between devices");
  Tensor csrc = src.contiguous();
  size_t nbytes = static_cast<size_t>(csrc.numel()) * dtype_size(csrc.dtype());
  Tensor staged = Tensor::empty(shape(), csrc.dtype(), device());
  if (nbytes > 0) {
    if (device().is_cpu())
      backend_for(csrc.device()).copy_to_host(staged.raw_data(), csrc.raw_data(), nbytes);
    else
      backend_for(device()).copy_from_host(staged.raw_data(), csrc.raw_data(), nbytes);
  }
  backend_for(device()).copy(staged, *this);
  bump_version();
  return *this;
}

// ---------------------------------------------------------------- host access

std::vector<double> Tensor::to_vector() const {
  note_host_read("Tensor::to_vector");
  Tensor h = detach().to(Device::cpu()).to(DType::F64).contiguous();
  const double* p = static_cast<const double*>(h.raw_data());
  return std::vector<double>(p, p + h.numel());
}

std::vector<float> Tensor::to_float_vector() const {
  note_host_read("Tensor::to_float_vector");
  Tensor h = detach().to(Device::cpu()).to(DType::F32).contiguous();
  const float* p = static_cast<const float*>(h.raw_data());
  return std::vector<float>(p, p + h.numel());
}

std::vector<int64_t> Tensor::to_int_vector() const {
  note_host_read("Tensor::to_int_vector");
  Tensor h = detach().to(Device::cpu()).to(DType::I64).contiguous();
  const int64_t* p = static_cast<const int64_t*>(h.raw_data());
  return std::vector<int64_t>(p, p + h.numel());
}

double Tensor::item() const {
  SAGAN_CHECK(numel() == 1, "item: tensor of shape {} has {} elements, not 1", shape_str(shape()), numel());
  if (sync_free_active()) note_host_read("Tensor::item");  // names item, not to_vector
  return to_vector()[0];
}

std::string Tensor::str(int64_t max_per_dim) const {
  if (!defined()) return "Tensor(undefined)";
  // A dim longer than `limit` shows `keep` elements at each end (at least one).
  const int64_t limit = std::max<int64_t>(max_per_dim, 2), keep = limit / 2;
  // Read only the elements shown, straight from the (host) strided view, so
  // printing a huge tensor costs no full copy.
  const Tensor h = detach().to(Device::cpu());
  const Shape& sh = h.shape();
  const Shape& st = h.strides();
  auto element = [&](int64_t off) -> std::string {
    return dispatch_all(h.dtype(), [&](auto* tag) -> std::string {
      using T = std::remove_pointer_t<decltype(tag)>;
      T v = static_cast<const T*>(h.raw_data())[off];
      if constexpr (std::is_same_v<T, int64_t>)
        return fmt::format("{}", v);
      else
        return fmt::format("{:.6g}", static_cast<double>(v));
    });
  };
  std::string out;
  auto rec = [&](auto&& self, size_t d, int64_t off) -> void {
    if (d == sh.size()) {
      out += element(off);
      return;
    }
    const bool inner = d + 1 == sh.size();
    const std::string sep = inner ? ", " : ",\n" + std::string(d + 1, ' ');
    out += '[';
    const int64_t n = sh[d];
    for (int64_t i = 0; i < n; ++i) {
      if (n > limit && i == keep) {
        out += "..." + sep;
        i = n - keep;
      }
      self(self, d + 1, off + i * st[d]);
      if (i + 1 < n) out += sep;
    }
    out += ']';
  };
  rec(rec, 0, 0);
  out += fmt::format(" ({}, {}, shape {}{})", dtype_name(dtype()), device_name(device()), shape_str(shape()),
                     requires_grad() ? ", requires_grad" : "");
  return out;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace sagan
