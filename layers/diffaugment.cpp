#include "sagan/layers/diffaugment.h"

#include <algorithm>
#include <sstream>

#include "sagan/core/ops.h"

namespace sagan::nn {

namespace {
constexpr const char* kOpNames[] = {"color", "translation", "cutout"};
const char* op_name(DiffAugmentPolicy::Op op) { return kOpNames[static_cast<int>(op)]; }
}  // namespace

bool DiffAugmentPolicy::has(Op op) const { return std::find(ops.begin(), ops.end(), op) != ops.end(); }

DiffAugmentPolicy DiffAugmentPolicy::parse(const std::string& text, const std::string& option) {
  DiffAugmentPolicy p;
  if (text.empty() || text == "none") return p;
  std::stringstream ss(text);
  std::string word;
  while (std::getline(ss, word, ',')) {
    const char* const* it = std::find(std::begin(kOpNames), std::end(kOpNames), word);
    SAGAN_CHECK(it != std::end(kOpNames),
                "{}: '{}' is not one of color, translation, cutout (comma-separated), or none; got '{}'", option, word,
                text);
    const auto op = static_cast<Op>(it - std::begin(kOpNames));
    SAGAN_CHECK(!p.has(op), "{}: '{}' is listed twice in '{}'", option, word, text);
    p.ops.push_back(op);
  }
  return p;
}

std::string DiffAugmentPolicy::str() const {
  std::vector<std::string> words;
  for (Op op : ops) words.push_back(op_name(op));
  return words.empty() ? "none" : fmt::format("{}", fmt::join(words, ","));
}

// int(n * ratio + 0.5) with ratio 1/8 and 1/2, as the official code.
int64_t diffaugment_shift(int64_t n) { return (n + 4) / 8; }
int64_t diffaugment_cutout_size(int64_t n) { return (n + 1) / 2; }

DiffAugmentParams draw_diffaugment(const DiffAugmentPolicy& policy, int64_t batch, int64_t height, int64_t width,
                                   Rng& gen) {
  SAGAN_CHECK(batch > 0 && height > 0 && width > 0, "diffaugment: need a positive batch and image size, got {} x {}x{}",
              batch, height, width);
  const auto n = static_cast<size_t>(batch);
  DiffAugmentParams p;
  auto uniforms = [&](std::vector<double>& out, double scale, double offset) {
    out.resize(n);
    for (double& v : out) v = gen.uniform() * scale + offset;
  };
  // Integers in [lo, lo + count).
  auto integers = [&](std::vector<int64_t>& out, int64_t lo, int64_t count) {
    out.resize(n);
    for (int64_t& v : out) v = lo + static_cast<int64_t>(gen.below(static_cast<uint64_t>(count)));
  };
  for (DiffAugmentPolicy::Op op : policy.ops) {
    switch (op) {
      case DiffAugmentPolicy::Op::color:
        uniforms(p.brightness, 1.0, -0.5);
        uniforms(p.saturation, 2.0, 0.0);
        uniforms(p.contrast, 1.0, 0.5);
        break;
      case DiffAugmentPolicy::Op::translation: {
        const int64_t rh = diffaugment_shift(height), rw = diffaugment_shift(width);
        integers(p.shift_h, -rh, 2 * rh + 1);
        integers(p.shift_w, -rw, 2 * rw + 1);
        break;
      }
      case DiffAugmentPolicy::Op::cutout: {
        const int64_t sh = diffaugment_cutout_size(height), sw = diffaugment_cutout_size(width);
        integers(p.cutout_h, 0, height + (1 - sh % 2));
        integers(p.cutout_w, 0, width + (1 - sw % 2));
        break;
      }
    }
  }
  return p;
}

namespace {

template <class T>
void check_count(const char* what, const std::vector<T>& v, int64_t batch) {
  SAGAN_CHECK(static_cast<int64_t>(v.size()) == batch,
              "diffaugment: {} {} parameters for {} images, need one per image", v.size(), what, batch);
}

// (B) per-sample factors -> (B, 1, 1, 1).
Tensor per_sample(const std::vector<double>& v, DType dtype, Device device) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size()), 1, 1, 1}, dtype, device);
}

// out[b, c, i, j] = x[b, c, i + dh[b], j + dw[b]], 0 outside the image: as a
// gather from the flattened image with one zero appended, where every
// outside position points (gradients of those positions go to the zero and
// are dropped). The index of that gather.
Tensor translation_index(const Shape& shape, const std::vector<int64_t>& dh, const std::vector<int64_t>& dw,
                         Device device) {
  const int64_t B = shape[0], C = shape[1], H = shape[2], W = shape[3], N = B * C * H * W;
  const int64_t rh = diffaugment_shift(H), rw = diffaugment_shift(W);
  std::vector<int64_t> idx(static_cast<size_t>(N));
  size_t k = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t sh = dh[static_cast<size_t>(b)], sw = dw[static_cast<size_t>(b)];
    SAGAN_CHECK(sh >= -rh && sh <= rh && sw >= -rw && sw <= rw,
                "diffaugment: translation ({}, {}) of image {} is beyond the radius ({}, {}) for {}x{}", sh, sw, b, rh,
                rw, H, W);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
          const int64_t si = i + sh, sj = j + sw;
          const bool inside = si >= 0 && si < H && sj >= 0 && sj < W;
          idx[k++] = inside ? ((b * C + c) * H + si) * W + sj : N;
        }
  }
  return Tensor::from_vector(idx, {N}, device);
}

// The official mask: ones with mask[b, clamp(oh - sh/2 + p), clamp(ow - sw/2 + q)] = 0
// for p < sh, q < sw; (B, 1, H, W), a constant.
Tensor cutout_mask(const Shape& shape, const std::vector<int64_t>& oh, const std::vector<int64_t>& ow, DType dtype,
                   Device device) {
  const int64_t B = shape[0], H = shape[2], W = shape[3];
  const int64_t sh = diffaugment_cutout_size(H), sw = diffaugment_cutout_size(W);
  std::vector<double> mask(static_cast<size_t>(B * H * W), 1.0);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t ch = oh[static_cast<size_t>(b)], cw = ow[static_cast<size_t>(b)];
    SAGAN_CHECK(ch >= 0 && ch < H + (1 - sh % 2) && cw >= 0 && cw < W + (1 - sw % 2),
                "diffaugment: cutout offset ({}, {}) of image {} is outside the range drawn for {}x{}", ch, cw, b, H,
                W);
    for (int64_t p = 0; p < sh; ++p)
      for (int64_t q = 0; q < sw; ++q) {
        const int64_t i = std::clamp<int64_t>(p + ch - sh / 2, 0, H - 1);
        const int64_t j = std::clamp<int64_t>(q + cw - sw / 2, 0, W - 1);
        mask[static_cast<size_t>((b * H + i) * W + j)] = 0.0;
      }
  }
  return Tensor::from_vector(mask, {B, 1, H, W}, dtype, device);
}

void check_images(const Tensor& x) {
  SAGAN_CHECK(x.defined() && x.dim() == 4, "diffaugment: images must be (B, C, H, W), got {}",
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  SAGAN_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::F64, "diffaugment: images must be float, got {}",
              dtype_name(x.dtype()));
}

// A tensor of diffaugment_tensors must be there for the policy's op.
const Tensor& needed(const Tensor& t, const char* what) {
  SAGAN_CHECK(t.defined(), "diffaugment: no {} tensor for a policy that has it", what);
  return t;
}

}  // namespace

DiffAugmentTensors diffaugment_tensors(const DiffAugmentPolicy& policy, const DiffAugmentParams& params,
                                       const Shape& shape, DType dtype, Device device) {
  SAGAN_CHECK(shape.size() == 4, "diffaugment: images must be (B, C, H, W), got {}", shape_str(shape));
  const int64_t B = shape[0];
  DiffAugmentTensors t;
  for (DiffAugmentPolicy::Op op : policy.ops) {
    switch (op) {
      case DiffAugmentPolicy::Op::color:
        check_count("brightness", params.brightness, B);
        check_count("saturation", params.saturation, B);
        check_count("contrast", params.contrast, B);
        t.brightness = per_sample(params.brightness, dtype, device);
        t.saturation = per_sample(params.saturation, dtype, device);
        t.contrast = per_sample(params.contrast, dtype, device);
        break;
      case DiffAugmentPolicy::Op::translation:
        check_count("translation (height)", params.shift_h, B);
        check_count("translation (width)", params.shift_w, B);
        t.gather = translation_index(shape, params.shift_h, params.shift_w, device);
        break;
      case DiffAugmentPolicy::Op::cutout:
        check_count("cutout (height)", params.cutout_h, B);
        check_count("cutout (width)", params.cutout_w, B);
        t.cutout_mask = cutout_mask(shape, params.cutout_h, params.cutout_w, dtype, device);
        break;
    }
  }
  return t;
}

Tensor diffaugment(const Tensor& x, const DiffAugmentPolicy& policy, const DiffAugmentTensors& t) {
  check_images(x);
  Tensor h = x;
  for (DiffAugmentPolicy::Op op : policy.ops) {
    switch (op) {
      case DiffAugmentPolicy::Op::color: {
        h = add(h, needed(t.brightness, "brightness"));
        Tensor m = mean(h, {1}, true);  // (B, 1, H, W)
        h = add(mul(sub(h, m), needed(t.saturation, "saturation")), m);
        m = mean(h, {1, 2, 3}, true);  // (B, 1, 1, 1)
        h = add(mul(sub(h, m), needed(t.contrast, "contrast")), m);
        break;
      }
      case DiffAugmentPolicy::Op::translation: {
        const int64_t N = h.numel();
        Tensor padded = concat({h.reshape({N}), Tensor::zeros({1}, h.dtype(), h.device())}, 0);  // (N + 1)
        h = index_select(padded, 0, needed(t.gather, "translation")).view(h.shape());
        break;
      }
      case DiffAugmentPolicy::Op::cutout:
        h = mul(h, needed(t.cutout_mask, "cutout"));
        break;
    }
  }
  return h;
}

Tensor diffaugment(const Tensor& x, const DiffAugmentPolicy& policy, const DiffAugmentParams& params) {
  check_images(x);
  return diffaugment(x, policy, diffaugment_tensors(policy, params, x.shape(), x.dtype(), x.device()));
}

Tensor diffaugment(const Tensor& x, const DiffAugmentPolicy& policy, Rng& gen) {
  if (!policy.any()) return x;
  check_images(x);
  return diffaugment(x, policy, draw_diffaugment(policy, x.size(0), x.size(2), x.size(3), gen));
}

}  // namespace sagan::nn
