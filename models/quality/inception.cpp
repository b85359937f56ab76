#include "sagan/models/quality/inception.h"

#include <cmath>
#include <set>

#include "sagan/core/io/safetensors.h"
#include "sagan/core/ops.h"

namespace sagan::quality {

namespace {
// The weights map used while building the network's expected-tensor list.
const std::map<std::string, Tensor> kNoWeights;

bool dry(const std::map<std::string, Tensor>* w) { return w == &kNoWeights; }
}  // namespace

// ---------------------------------------------------------------- layers

Tensor FidInception::Conv::operator()(const Tensor& x) const {
  const bool square = w.size(2) == w.size(3) && g.stride_h == g.stride_w && g.pad_h == g.pad_w;
  Tensor y = square ? conv2d(x, w, b, g.stride_h, g.pad_h) : conv2d_rect(x, w, b, g);
  return relu(y);
}

std::vector<Tensor> FidInception::Fused::operator()(const Tensor& x) const {
  Tensor y = conv(x);
  std::vector<Tensor> out;
  int64_t c0 = 0;
  for (int64_t c : splits) {
    out.push_back(y.slice(1, c0, c0 + c));
    c0 += c;
  }
  return out;
}

Tensor FidInception::take(const std::string& name, const Shape& shape) {
  expected_.emplace_back(name, shape);
  if (dry(weights_)) return {};
  auto it = weights_->find(name);
  SAGAN_CHECK(it != weights_->end(), "FidInception: {}: tensor '{}' (shape {}) is missing", source_, name,
              shape_str(shape));
  SAGAN_CHECK(it->second.shape() == shape, "FidInception: {}: tensor '{}' has shape {}, expected {}", source_, name,
              shape_str(it->second.shape()), shape_str(shape));
  return it->second.detach().to(DType::F64).to(Device{}).contiguous();
}

FidInception::Conv FidInception::make_conv(const std::string& name, int64_t ci, int64_t co, int64_t kh, int64_t kw,
                                           int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  Conv c;
  c.g = {sh, sw, ph, pw};
  Tensor w = take(name + ".conv.weight", {co, ci, kh, kw});
  Tensor gamma = take(name + ".bn.weight", {co}), beta = take(name + ".bn.bias", {co});
  Tensor mean = take(name + ".bn.running_mean", {co}), var = take(name + ".bn.running_var", {co});
  if (dry(weights_)) return c;
  // Fold the eval-mode batch norm into the conv, in float64.
  NoGradGuard ng;
  Tensor scale = gamma / sqrt(var + kBnEps);  // (Co)
  c.w = (w * scale.reshape({co, 1, 1, 1})).to(dtype_).to(device_).contiguous();
  c.b = (beta - mean * scale).to(dtype_).to(device_).contiguous();
  return c;
}

FidInception::Fused FidInception::make_fused(const std::string& block, const std::vector<std::string>& names,
                                             int64_t ci, const std::vector<int64_t>& cos) {
  Fused f;
  std::vector<Tensor> ws, bs;
  for (size_t i = 0; i < names.size(); ++i) {
    Conv c = make_conv(block + "." + names[i], ci, cos[i], 1, 1);
    ws.push_back(c.w);
    bs.push_back(c.b);
    f.splits.push_back(cos[i]);
  }
  if (dry(weights_)) return f;
  f.conv.w = names.size() == 1 ? ws[0] : concat(ws, 0);
  f.conv.b = names.size() == 1 ? bs[0] : concat(bs, 0);
  return f;
}

// ---------------------------------------------------------------- blocks (torchvision's channel counts)

FidInception::Block FidInception::block_a(const std::string& n, int64_t ci, int64_t pool_features) {
  Block b;
  b.kind = 'A';
  b.heads = make_fused(n, {"branch1x1", "branch5x5_1", "branch3x3dbl_1"}, ci, {64, 48, 64});
  b.convs = {make_conv(n + ".branch5x5_2", 48, 64, 5, 5, 1, 1, 2, 2),
             make_conv(n + ".branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1, 1),
             make_conv(n + ".branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1, 1)};
  b.pool_conv = make_conv(n + ".branch_pool", ci, pool_features, 1, 1);
  return b;
}

FidInception::Block FidInception::block_b(const std::string& n, int64_t ci) {
  Block b;
  b.kind = 'B';
  Conv b3 = make_conv(n + ".branch3x3", ci, 384, 3, 3, 2, 2);
  b.heads = make_fused(n, {"branch3x3dbl_1"}, ci, {64});
  b.convs = {b3, make_conv(n + ".branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1, 1),
             make_conv(n + ".branch3x3dbl_3", 96, 96, 3, 3, 2, 2)};
  return b;
}

FidInception::Block FidInception::block_c(const std::string& n, int64_t ci, int64_t c7) {
  Block b;
  b.kind = 'C';
  b.heads = make_fused(n, {"branch1x1", "branch7x7_1", "branch7x7dbl_1"}, ci, {192, c7, c7});
  b.convs = {make_conv(n + ".branch7x7_2", c7, c7, 1, 7, 1, 1, 0, 3),
             make_conv(n + ".branch7x7_3", c7, 192, 7, 1, 1, 1, 3, 0),
             make_conv(n + ".branch7x7dbl_2", c7, c7, 7, 1, 1, 1, 3, 0),
             make_conv(n + ".branch7x7dbl_3", c7, c7, 1, 7, 1, 1, 0, 3),
             make_conv(n + ".branch7x7dbl_4", c7, c7, 7, 1, 1, 1, 3, 0),
             make_conv(n + ".branch7x7dbl_5", c7, 192, 1, 7, 1, 1, 0, 3)};
  b.pool_conv = make_conv(n + ".branch_pool", ci, 192, 1, 1);
  return b;
}

FidInception::Block FidInception::block_d(const std::string& n, int64_t ci) {
  Block b;
  b.kind = 'D';
  b.heads = make_fused(n, {"branch3x3_1", "branch7x7x3_1"}, ci, {192, 192});
  b.convs = {make_conv(n + ".branch3x3_2", 192, 320, 3, 3, 2, 2),
             make_conv(n + ".branch7x7x3_2", 192, 192, 1, 7, 1, 1, 0, 3),
             make_conv(n + ".branch7x7x3_3", 192, 192, 7, 1, 1, 1, 3, 0),
             make_conv(n + ".branch7x7x3_4", 192, 192, 3, 3, 2, 2)};
  return b;
}

FidInception::Block FidInception::block_e(const std::string& n, int64_t ci, bool max_pool) {
  Block b;
  b.kind = 'E';
  b.max_pool = max_pool;
  b.heads = make_fused(n, {"branch1x1", "branch3x3_1", "branch3x3dbl_1"}, ci, {320, 384, 448});
  b.convs = {make_conv(n + ".branch3x3_2a", 384, 384, 1, 3, 1, 1, 0, 1),
             make_conv(n + ".branch3x3_2b", 384, 384, 3, 1, 1, 1, 1, 0),
             make_conv(n + ".branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1, 1),
             make_conv(n + ".branch3x3dbl_3a", 384, 384, 1, 3, 1, 1, 0, 1),
             make_conv(n + ".branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 1, 0)};
  b.pool_conv = make_conv(n + ".branch_pool", ci, 192, 1, 1);
  return b;
}

Tensor FidInception::Block::forward(const Tensor& x) const {
  // TF's average pool leaves the padding out of the count (pytorch-fid's patch).
  auto avg = [](const Tensor& t) { return avg_pool2d(t, 3, 1, 1, /*count_include_pad=*/false); };
  std::vector<Tensor> h = heads(x);
  const auto& c = convs;
  switch (kind) {
    case 'A':
      return concat({h[0], c[0](h[1]), c[2](c[1](h[2])), pool_conv(avg(x))}, 1);
    case 'B':
      return concat({c[0](x), c[2](c[1](h[0])), max_pool2d(x, 3, 2)}, 1);
    case 'C':
      return concat({h[0], c[1](c[0](h[1])), c[5](c[4](c[3](c[2](h[2])))), pool_conv(avg(x))}, 1);
    case 'D':
      return concat({c[0](h[0]), c[3](c[2](c[1](h[1]))), max_pool2d(x, 3, 2)}, 1);
    default: {  // 'E'
      Tensor d = c[2](h[2]);
      Tensor pooled = max_pool ? max_pool2d(x, 3, 1, 1) : avg(x);
      return concat({h[0], c[0](h[1]), c[1](h[1]), c[3](d), c[4](d), pool_conv(pooled)}, 1);
    }
  }
}

// ---------------------------------------------------------------- the network

FidInception::FidInception(const std::map<std::string, Tensor>& weights, const std::string& source, DType dtype,
                           Device device)
    : weights_(&weights), source_(source), dtype_(dtype), device_(device) {
  SAGAN_CHECK(is_floating(dtype), "FidInception: dtype must be floating, got {}", dtype_name(dtype));
  stem_ = {make_conv("Conv2d_1a_3x3", 3, 32, 3, 3, 2, 2), make_conv("Conv2d_2a_3x3", 32, 32, 3, 3),
           make_conv("Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1, 1), make_conv("Conv2d_3b_1x1", 64, 80, 1, 1),
           make_conv("Conv2d_4a_3x3", 80, 192, 3, 3)};
  blocks_ = {block_a("Mixed_5b", 192, 32),     block_a("Mixed_5c", 256, 64),   block_a("Mixed_5d", 288, 64),
             block_b("Mixed_6a", 288),         block_c("Mixed_6b", 768, 128),  block_c("Mixed_6c", 768, 160),
             block_c("Mixed_6d", 768, 160),    block_c("Mixed_6e", 768, 192),  block_d("Mixed_7a", 768),
             block_e("Mixed_7b", 1280, false), block_e("Mixed_7c", 2048, true)};
  Tensor fw = take("fc.weight", {kClasses, kFeatures}), fb = take("fc.bias", {kClasses});
  if (!dry(weights_)) {
    fc_w_ = fw.to(dtype_).to(device_);
    fc_b_ = fb.to(dtype_).to(device_);
    std::set<std::string> known;
    for (auto& [n, s] : expected_) known.insert(n);
    const std::string nbt = "num_batches_tracked";
    for (auto& [n, t] : weights) {
      const bool counter = n.size() > nbt.size() && n.compare(n.size() - nbt.size(), nbt.size(), nbt) == 0;
      SAGAN_CHECK(known.count(n) || counter,
                  "FidInception: {}: unexpected tensor '{}' (shape {}); is this pytorch-fid's FID Inception "
                  "converted by tools/convert_fid_inception.py?",
                  source_, n, shape_str(t.shape()));
    }
  }
  weights_ = nullptr;
}

std::vector<std::pair<std::string, Shape>> FidInception::expected_tensors() {
  FidInception dry_net(kNoWeights, "expected_tensors", DType::F32, Device{});
  return dry_net.expected_;
}

std::unique_ptr<FidInception> FidInception::load(const std::string& path, DType dtype, Device device) {
  io::SafetensorsFile f = io::load_safetensors(path);
  std::map<std::string, Tensor> w(f.tensors.begin(), f.tensors.end());
  return std::make_unique<FidInception>(w, path, dtype, device);
}

FidInception::Result FidInception::forward(const Tensor& images, int64_t input_size) const {
  SAGAN_CHECK(images.defined() && images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3),
              "FidInception: images must be (B, 1 or 3, H, W) in [-1, 1], got {}",
              images.defined() ? shape_str(images.shape()) : std::string("undefined"));
  SAGAN_CHECK(input_size >= kMinInputSize, "FidInception: input size must be >= {}, got {}", kMinInputSize, input_size);
  NoGradGuard ng;
  Tensor x = images.detach().to(dtype_).to(device_);
  if (x.size(1) == 1) x = x.expand({x.size(0), 3, x.size(2), x.size(3)});
  // pytorch-fid resizes (x in [0, 1]) then maps to [-1, 1]; bilinear
  // interpolation commutes with that affine map, so resizing [-1, 1] images
  // is the same computation.
  if (x.size(2) != input_size || x.size(3) != input_size) x = resize_bilinear(x, input_size, input_size);
  x = stem_[2](stem_[1](stem_[0](x.contiguous())));
  x = max_pool2d(x, 3, 2);
  x = stem_[4](stem_[3](x));
  x = max_pool2d(x, 3, 2);
  for (const Block& b : blocks_) x = b.forward(x);
  Result r;
  r.pool3 = adaptive_avg_pool2d(x, 1, 1).reshape({x.size(0), kFeatures});
  r.logits = linear(r.pool3, fc_w_);
  r.logits_bias = add(r.logits, fc_b_);
  return r;
}

FeatureNet::Output FidInception::embed(const Tensor& images) {
  Result r = forward(images);
  return {r.pool3.to(DType::F32), r.logits.to(DType::F32)};
}

}  // namespace sagan::quality
