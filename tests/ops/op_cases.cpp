// The entries of the op test registry (see op_cases.h): one per op, its
// cases at odd sizes. Cases marked no_parity exist for the gradient check
// only; no_gradcheck ones for parity only (large shapes, ties).
#include "tests/ops/op_cases.h"

#include <cmath>

#include "sagan/core/ops.h"
#include "sagan/core/ops_vision.h"
#include "sagan/core/rng.h"

namespace sagan::optest {

Input normal(Shape shape, double scale) { return {Input::Kind::Normal, std::move(shape), scale, 0.0, {}, true}; }
Input uniform(Shape shape, double lo, double hi) { return {Input::Kind::Uniform, std::move(shape), lo, hi, {}, true}; }
Input away_from_zero(Shape shape, double lo, double hi) {
  return {Input::Kind::AwayFromZero, std::move(shape), lo, hi, {}, true};
}
Input ramped(Shape shape) { return {Input::Kind::Ramped, std::move(shape), 1.0, 0.0, {}, true}; }
Input ties(Shape shape) { return {Input::Kind::Ties, std::move(shape), 1.0, 0.0, {}, true}; }
Input index(Shape shape, const std::vector<int64_t>& values) {
  return {Input::Kind::Index, std::move(shape), 0.0, 0.0, std::vector<double>(values.begin(), values.end()), false};
}
Input constant(Input in) {
  in.grad = false;
  return in;
}

namespace {

std::vector<double> draw(const Input& in, Rng& gen) {
  std::vector<double> v(static_cast<size_t>(numel_of(in.shape)));
  switch (in.kind) {
    case Input::Kind::Normal:
      for (double& x : v) x = in.a * gen.normal();
      break;
    case Input::Kind::Uniform:
      for (double& x : v) x = in.a + (in.b - in.a) * gen.uniform();
      break;
    case Input::Kind::AwayFromZero:
      for (size_t i = 0; i < v.size(); ++i) v[i] = (i % 2 == 0 ? -1.0 : 1.0) * (in.a + (in.b - in.a) * gen.uniform());
      break;
    case Input::Kind::Ramped:
      for (size_t i = 0; i < v.size(); ++i) v[i] = gen.normal() + 0.37 * static_cast<double>(i);
      break;
    case Input::Kind::Ties:
      for (double& x : v) {
        const double pick[4] = {-1.0, -0.5, 0.5, 1.0};
        x = pick[gen.below(4)];
      }
      break;
    case Input::Kind::Index:
      v = in.values;
      break;
  }
  return v;
}

// FNV-1a of the entry and case names: a seed per case, stable across runs.
uint64_t seed_of(const std::string& op, const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (const std::string* s : {&op, &name})
    for (unsigned char c : *s) h = (h ^ c) * 1099511628211ull;
  return h;
}

OpCase make(std::string name, std::vector<Input> inputs, OpFn fn) {
  OpCase c;
  c.name = std::move(name);
  c.inputs = std::move(inputs);
  c.fn = std::move(fn);
  return c;
}

// ---- elementwise ----

void add_elementwise(std::vector<OpEntry>& r) {
  // Binary ops broadcast (3,1,5) against (4,1); division and powers on
  // positive values.
  const Shape sa{3, 1, 5}, sb{4, 1};
  auto binary = [&](const char* op, Tensor (*f)(const Tensor&, const Tensor&), Input a, Input b) {
    r.push_back({op,
                 {make("broadcast (3,1,5) with (4,1)", {std::move(a), std::move(b)},
                       [f](const std::vector<Tensor>& in) { return f(in[0], in[1]); })}});
  };
  using BinFn = Tensor (*)(const Tensor&, const Tensor&);
  binary("add", static_cast<BinFn>(add), normal(sa), normal(sb));
  binary("sub", static_cast<BinFn>(sub), normal(sa), normal(sb));
  binary("mul", static_cast<BinFn>(mul), normal(sa), normal(sb));
  binary("div", static_cast<BinFn>(div), normal(sa), uniform(sb, 0.5, 2.0));
  binary("pow", static_cast<BinFn>(pow), uniform(sa, 0.5, 2.0), normal(sb));
  binary("maximum", static_cast<BinFn>(maximum), normal(sa), normal(sb));
  binary("minimum", static_cast<BinFn>(minimum), normal(sa), normal(sb));
  // Ties send the whole gradient to a (parity only: no derivative there).
  r[r.size() - 2].cases.push_back(
      make("ties", {ties({3, 4}), ties({3, 4})}, [](const auto& in) { return maximum(in[0], in[1]); })
          .no_gradcheck()
          .exact());
  r.back().cases.push_back(
      make("ties", {ties({3, 4}), ties({3, 4})}, [](const auto& in) { return minimum(in[0], in[1]); })
          .no_gradcheck()
          .exact());

  // Unary ops on (3,7): off the kinks of relu and abs, or positive where the
  // op needs it.
  const Shape s{3, 7};
  auto unary = [&](const char* op, Input x, OpFn f) {
    r.push_back({op, {make("(3,7)", {std::move(x)}, std::move(f))}});
  };
  unary("relu", away_from_zero(s, 0.1, 1.5), [](const auto& in) { return relu(in[0]); });
  unary("leaky_relu", away_from_zero(s, 0.1, 1.5), [](const auto& in) { return leaky_relu(in[0], 0.2); });
  unary("tanh", away_from_zero(s, 0.1, 1.5), [](const auto& in) { return tanh(in[0]); });
  unary("sigmoid", away_from_zero(s, 0.1, 1.5), [](const auto& in) { return sigmoid(in[0]); });
  unary("softplus", away_from_zero(s, 0.1, 1.5), [](const auto& in) { return softplus(in[0]); });
  r.back().cases.push_back(make("x > 20: the linear branch", {uniform(s, 20.5, 30.0)},
                                [](const auto& in) { return softplus(in[0]); }));
  unary("exp", away_from_zero(s, 0.1, 1.5), [](const auto& in) { return exp(in[0]); });
  unary("abs", away_from_zero(s, 0.1, 1.5), [](const auto& in) { return abs(in[0]); });
  unary("square", away_from_zero(s, 0.1, 1.5), [](const auto& in) { return square(in[0]); });
  unary("neg", away_from_zero(s, 0.1, 1.5), [](const auto& in) { return neg(in[0]); });
  unary("log", uniform(s, 0.2, 3.0), [](const auto& in) { return log(in[0]); });
  unary("sqrt", uniform(s, 0.2, 3.0), [](const auto& in) { return sqrt(in[0]); });
  unary("pow_scalar", uniform(s, 0.2, 3.0), [](const auto& in) { return pow(in[0], 2.5); });
  unary("rdiv", uniform(s, 0.2, 3.0), [](const auto& in) { return rdiv(3.0, in[0]); });
  unary("rsub", away_from_zero(s, 0.1, 1.5), [](const auto& in) { return rsub(3.0, in[0]) * 1.5 + 2.0; });
}

// ---- convolution ----

void add_conv(std::vector<OpEntry>& r) {
  OpEntry conv{"conv2d", {}};
  // Every combination of kernel 1/3, stride 1/2, pad 0/1, with and without bias.
  for (int64_t k : {1, 3})
    for (int64_t s : {1, 2})
      for (int64_t p : {0, 1}) {
        const std::string geo = fmt::format("k{} s{} p{}", k, s, p);
        conv.cases.push_back(make(geo + " bias", {normal({2, 3, 7, 6}), normal({5, 3, k, k}), normal({5})},
                                  [s, p](const auto& in) { return conv2d(in[0], in[1], in[2], s, p); }));
        conv.cases.push_back(make(geo, {normal({2, 3, 7, 6}), normal({5, 3, k, k})},
                                  [s, p](const auto& in) { return conv2d(in[0], in[1], std::nullopt, s, p); }));
      }
  // 3x3 maps of 5 images: several images per GEMM chunk and, on two
  // threads, a weight gradient summed from per-thread partials.
  for (auto [k, p] : {std::pair<int64_t, int64_t>{1, 0}, {3, 1}})
    conv.cases.push_back(make(fmt::format("5 images of 3x3, k{}", k),
                              {normal({5, 2, 3, 3}), normal({3, 2, k, k}), normal({3})},
                              [p = p](const auto& in) { return conv2d(in[0], in[1], in[2], 1, p); }));
  // An empty input padded to a non-empty output: the output is the bias,
  // the weight gradient zero (cuDNN is not called with a zero-sized
  // descriptor).
  conv.cases.push_back(make("empty input (H 0) padded to 2 rows",
                            {normal({2, 3, 0, 4}), normal({5, 3, 1, 1}), normal({5})},
                            [](const auto& in) { return conv2d(in[0], in[1], in[2], 1, 1); }));
  // A transposed view as input: copied once, then the same kernels.
  conv.cases.push_back(make("transposed input", {normal({2, 3, 6, 5}), normal({4, 3, 3, 3})},
                            [](const auto& in) { return conv2d(in[0].transpose(2, 3), in[1], std::nullopt, 1, 1); }));
  // Odd geometries of the cuDNN path (parity only): B, Ci, H, W, Co, k, stride,
  // pad. The weight gradient sums B*Ho*Wo products (up to 297): float32
  // rounding grows with that length, so these get 4x the float32 bound.
  const int64_t geos[][8] = {{2, 3, 7, 9, 5, 3, 1, 1}, {3, 4, 8, 7, 6, 3, 2, 1}, {2, 5, 9, 9, 3, 1, 1, 0},
                             {1, 2, 6, 5, 4, 3, 2, 0}, {2, 3, 5, 7, 2, 1, 2, 0}, {3, 7, 11, 13, 5, 3, 1, 0}};
  for (const auto& g : geos) {
    const int64_t s = g[6], p = g[7];
    const std::string geo =
        fmt::format("x [{},{},{},{}] w [{},{},{},{}] s{} p{}", g[0], g[1], g[2], g[3], g[4], g[1], g[5], g[5], s, p);
    conv.cases.push_back(make(geo + " bias",
                              {normal({g[0], g[1], g[2], g[3]}), normal({g[4], g[1], g[5], g[5]}, 0.5), normal({g[4]})},
                              [s, p](const auto& in) { return conv2d(in[0], in[1], in[2], s, p); })
                             .no_gradcheck()
                             .tolerance(4.0));
    conv.cases.push_back(make(geo, {normal({g[0], g[1], g[2], g[3]}), normal({g[4], g[1], g[5], g[5]}, 0.5)},
                              [s, p](const auto& in) { return conv2d(in[0], in[1], std::nullopt, s, p); })
                             .no_gradcheck()
                             .tolerance(4.0));
  }
  r.push_back(std::move(conv));

  OpEntry rect{"conv2d_rect", {}};
  const std::tuple<int64_t, int64_t, Conv2dRectGeom> small[] = {
      {1, 3, {1, 1, 0, 1}}, {3, 1, {2, 1, 1, 0}}, {2, 3, {1, 2, 1, 1}}};
  for (const auto& [kh, kw, g] : small)
    rect.cases.push_back(
        make(fmt::format("{}x{} stride ({},{}) pad ({},{}) bias", kh, kw, g.stride_h, g.stride_w, g.pad_h, g.pad_w),
             {normal({2, 3, 5, 7}), normal({4, 3, kh, kw}), normal({4})},
             [g = g](const auto& in) { return conv2d_rect(in[0], in[1], in[2], g); }));
  rect.cases.push_back(make("1x2 no bias", {normal({1, 2, 4, 3}), normal({3, 2, 1, 2})},
                            [](const auto& in) { return conv2d_rect(in[0], in[1]); }));
  // Inception's factorised 1x7 / 7x1 (and a strided 3x3) at odd sizes (parity only).
  const std::tuple<int64_t, int64_t, Conv2dRectGeom> inception[] = {
      {1, 7, {1, 1, 0, 3}}, {7, 1, {1, 1, 3, 0}}, {3, 3, {2, 2, 0, 0}}, {1, 3, {1, 1, 0, 1}}};
  for (const auto& [kh, kw, g] : inception)
    rect.cases.push_back(make(fmt::format("{}x{} stride ({},{}) pad ({},{}) on (2,5,9,11)", kh, kw, g.stride_h,
                                          g.stride_w, g.pad_h, g.pad_w),
                              {normal({2, 5, 9, 11}), normal({6, 5, kh, kw}, 0.5), normal({6})},
                              [g = g](const auto& in) { return conv2d_rect(in[0], in[1], in[2], g); })
                             .no_gradcheck());
  r.push_back(std::move(rect));
}

// ---- pooling and resampling ----

void add_pools(std::vector<OpEntry>& r) {
  // Odd sizes floor (the last row or column is dropped and gets no gradient).
  const Shape cuda_shapes[] = {{2, 3, 7, 9}, {1, 2, 8, 6}, {3, 1, 5, 3}, {2, 2, 33, 65}};
  OpEntry avg{"avg_pool2x2",
              {make("(2,3,7,5)", {normal({2, 3, 7, 5})}, [](const auto& in) { return avg_pool2x2(in[0]); }),
               make("permuted input", {normal({2, 3, 5, 7})},
                    [](const auto& in) {
                      return avg_pool2x2(in[0].permute({0, 1, 3, 2}));
                    }),
               // Chained, so each op's backward sees a non-uniform, computed gradient.
               make("between tanh and upsampling", {normal({2, 3, 3, 5})},
                    [](const auto& in) { return tanh(avg_pool2x2(upsample_nearest2x(tanh(in[0])))); })}};
  OpEntry max{"max_pool2x2",
              {make("(2,3,7,5)", {ramped({2, 3, 7, 5})}, [](const auto& in) { return max_pool2x2(in[0]); }).exact(),
               make("permuted input", {ramped({2, 3, 5, 7})}, [](const auto& in) {
                 return max_pool2x2(in[0].permute({0, 1, 3, 2}));
               }).exact()}};
  for (const Shape& s : cuda_shapes) {
    avg.cases.push_back(
        make(shape_str(s), {normal(s)}, [](const auto& in) { return avg_pool2x2(in[0]); }).no_gradcheck());
    avg.cases.push_back(
        make(shape_str(s) + " with ties", {ties(s)}, [](const auto& in) { return avg_pool2x2(in[0]); }).no_gradcheck());
    // The first maximum in window order takes the gradient, on both sides.
    max.cases.push_back(
        make(shape_str(s), {normal(s)}, [](const auto& in) { return max_pool2x2(in[0]); }).no_gradcheck().exact());
    max.cases.push_back(make(shape_str(s) + " with ties", {ties(s)}, [](const auto& in) { return max_pool2x2(in[0]); })
                            .no_gradcheck()
                            .exact());
  }
  r.push_back(std::move(avg));
  r.push_back(std::move(max));

  OpEntry up{"upsample_nearest2x",
             {make("(2,3,3,5)", {normal({2, 3, 3, 5})}, [](const auto& in) { return upsample_nearest2x(in[0]); })
                  .exact_output(),
              make("transposed input", {normal({1, 3, 5, 3})}, [](const auto& in) {
                return upsample_nearest2x(in[0].transpose(2, 3));
              }).exact_output()}};
  for (const Shape& s : {Shape{2, 3, 5, 7}, Shape{1, 1, 1, 1}, Shape{3, 2, 16, 9}})
    up.cases.push_back(make(shape_str(s), {normal(s)}, [](const auto& in) { return upsample_nearest2x(in[0]); })
                           .no_gradcheck()
                           .exact_output());
  r.push_back(std::move(up));

  // The general pools and resizing of the evaluation networks.
  r.push_back({"avg_pool2d",
               {make("3x3 stride 1 pad 1, padding not counted", {normal({2, 3, 5, 7})},
                     [](const auto& in) { return avg_pool2d(in[0], 3, 1, 1, false); }),
                make("3x3 stride 2 pad 1, padding counted", {normal({2, 3, 5, 7})},
                     [](const auto& in) { return avg_pool2d(in[0], 3, 2, 1, true); }),
                make("2x2 stride 2 pad 0, odd sizes", {normal({1, 2, 5, 7})},
                     [](const auto& in) { return avg_pool2d(in[0], 2, 2); })}});
  // Overlapping windows sum gradients: exact outputs only.
  r.push_back(
      {"max_pool2d",
       {make("3x3 stride 2", {ramped({2, 3, 7, 9})}, [](const auto& in) { return max_pool2d(in[0], 3, 2); })
            .exact_output(),
        make("3x3 stride 1 pad 1", {ramped({1, 2, 5, 6})}, [](const auto& in) { return max_pool2d(in[0], 3, 1, 1); })
            .exact_output(),
        make("3x3 stride 2 with ties", {ties({2, 3, 9, 11})}, [](const auto& in) { return max_pool2d(in[0], 3, 2); })
            .no_gradcheck()
            .exact_output(),
        // Non-overlapping windows route each gradient to one input.
        make("2x2 stride 2, odd sizes", {ramped({2, 3, 7, 9})}, [](const auto& in) {
          return max_pool2d(in[0], 2, 2);
        }).exact()}});
  r.push_back({"adaptive_avg_pool2d",
               {make("(5,7) to (3,4), overlapping cells", {normal({2, 3, 5, 7})},
                     [](const auto& in) { return adaptive_avg_pool2d(in[0], 3, 4); }),
                make("to 1x1: the global pool of Inception", {normal({2, 3, 5, 7})},
                     [](const auto& in) { return adaptive_avg_pool2d(in[0], 1, 1); }),
                make("(3,2) up to (5,4): repeated cells", {normal({1, 2, 3, 2})},
                     [](const auto& in) { return adaptive_avg_pool2d(in[0], 5, 4); })}});
  r.push_back(
      {"resize_bilinear",
       {make("(5,7) up to (9,4)", {normal({2, 3, 5, 7})}, [](const auto& in) { return resize_bilinear(in[0], 9, 4); }),
        make("(5,7) to (3,13)", {normal({1, 2, 5, 7})},
             [](const auto& in) { return resize_bilinear(in[0], 3, 13); })}});
}

// ---- indexing ----

void add_index(std::vector<OpEntry>& r) {
  const Shape xs{3, 5, 7};
  r.push_back({"index_select",
               {make("dim 0, repeats", {normal(xs), index({5}, {2, 0, 2, 1, 2})},
                     [](const auto& in) { return index_select(in[0], 0, in[1]); })
                    .exact_output(),
                make("dim 1, repeats", {normal(xs), index({6}, {4, 4, 0, 3, 4, 1})},
                     [](const auto& in) { return index_select(in[0], 1, in[1]); }),
                make("dim -1, repeats", {normal(xs), index({5}, {6, 0, 6, 6, 3})},
                     [](const auto& in) { return index_select(in[0], -1, in[1]); }),
                make("transposed input", {normal(xs), index({6}, {4, 4, 0, 3, 4, 1})},
                     [](const auto& in) { return index_select(in[0].transpose(0, 2), 1, in[1]); }),
                // Repeated, unsorted rows; the backward (index_add) accumulates them.
                make("(3,7,5) rows repeated and unsorted", {normal({3, 7, 5}), index({9}, {4, 0, 6, 4, 4, 2, 6, 1, 3})},
                     [](const auto& in) { return index_select(in[0], 1, in[1]); })
                    .no_gradcheck(),
                // int64 rows (labels) gather too; an index input without values is drawn in [0, 1000).
                make("int64 rows", {index({3, 7, 2}, {}), index({9}, {4, 0, 6, 4, 4, 2, 6, 1, 3})},
                     [](const auto& in) { return index_select(in[0], 1, in[1]); })
                    .no_gradcheck()
                    .exact_output()}});

  std::vector<int64_t> many(1000);
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<int64_t>((i * 7 + i / 13) % 10);
  r.push_back({"embedding",
               {make("(7,5) table, (2,3) ids", {normal({7, 5}), index({2, 3}, {3, 0, 3, 6, 3, 0})},
                     [](const auto& in) { return tanh(embedding(in[0], in[1])); }),
                // Many lookups into few rows: the gradient sums hundreds of rows.
                make("1000 lookups into 10 rows", {normal({10, 33}), index({1000}, many)}, [](const auto& in) {
                  return embedding(in[0], in[1]);
                }).no_gradcheck()}});
  r.push_back({"concat",
               {make("dim 1", {normal({2, 3, 5}), normal({2, 1, 5}), normal({2, 4, 5})},
                     [](const auto& in) {
                       return tanh(concat({in[0], in[1], in[2]}, 1));
                     }),
                make("dim 0", {normal({1, 3, 5}), normal({2, 3, 5}), normal({3, 3, 5})},
                     [](const auto& in) {
                       return tanh(concat({in[0], in[1], in[2]}, 0));
                     }),
                make("dim -1 with a transposed view", {normal({2, 3, 2}), normal({2, 1, 3}), normal({2, 3, 3})},
                     [](const auto& in) {
                       return tanh(concat({in[0], in[1].transpose(1, 2), in[2]}, -1));
                     })}});
}

// ---- normalisation and attention ----

void add_norm_attention(std::vector<OpEntry>& r) {
  r.push_back(
      {"batch_norm",
       {make("training, no running stats", {normal({3, 5, 3, 7})},
             [](const auto& in) { return batch_norm(in[0], Tensor(), Tensor(), true); }),
        make("training, running stats updated",
             {normal({3, 5, 3, 7}), constant(normal({5})), constant(uniform({5}, 0.5, 2.0))},
             [](const auto& in) { return batch_norm(in[0], in[1], in[2], true, 0.1, 1e-5); }),
        make("eval, running stats", {normal({3, 5, 3, 7}), constant(normal({5})), constant(uniform({5}, 0.5, 2.0))},
             [](const auto& in) { return batch_norm(in[0], in[1], in[2], false, 0.1, 1e-5); }),
        // A transposed view, and tanh after it so the upstream gradient is not uniform.
        make("transposed input, tanh after", {normal({3, 5, 7, 3})},
             [](const auto& in) { return tanh(batch_norm(in[0].transpose(2, 3), Tensor(), Tensor(), true)); }),
        make("(N,C,L) input", {normal({4, 3, 5})},
             [](const auto& in) { return batch_norm(in[0], Tensor(), Tensor(), true); }),
        make("(N,C) input", {normal({6, 5})},
             [](const auto& in) { return tanh(batch_norm(in[0], Tensor(), Tensor(), true)); })}});

  auto attention_out = [](const std::vector<Tensor>& in) { return attention(in[0], in[1], in[2]).out; };
  r.push_back({"attention",
               {make("N != S", {normal({2, 7, 3}), normal({2, 5, 3}), normal({2, 5, 4})}, attention_out),
                make("N == S", {normal({2, 6, 3}), normal({2, 6, 3}), normal({2, 6, 5})}, attention_out),
                make("one query, one key", {normal({3, 1, 2}), normal({3, 1, 2}), normal({3, 1, 3})}, attention_out),
                make("across the 64-row query and key block edges",
                     {normal({1, 67, 2}), normal({1, 65, 2}), normal({1, 65, 3})}, attention_out)}});
}

// ---- reductions ----

void add_reductions(std::vector<OpEntry>& r) {
  r.push_back(
      {"log_softmax",
       {make("last dim of (3,7)", {normal({3, 7})}, [](const auto& in) { return log_softmax(in[0], 1); }),
        make("middle dim of (2,5,3)", {normal({2, 5, 3})}, [](const auto& in) { return log_softmax(in[0], 1); }),
        // Logits of +-60: exp would overflow float32 without the row maximum.
        make("large logits", {normal({4, 9}, 60.0)}, [](const auto& in) {
          return log_softmax(in[0], -1);
        }).tolerance(10.0)}});
  // softmax, sum, mean and sum_to_shape have dedicated gradchecks too
  // (tests/test_reduce.cpp); here they get device parity through the op.
  r.push_back(
      {"softmax",
       {make("last dim of (3,7)", {normal({3, 7})}, [](const auto& in) { return softmax(in[0], 1); }),
        make("middle dim of (2,5,3)", {normal({2, 5, 3})}, [](const auto& in) { return softmax(in[0], 1); }),
        make("dim 0 of (6,4)", {normal({6, 4})}, [](const auto& in) { return softmax(in[0], 0); }),
        make("large logits", {normal({4, 9}, 60.0)}, [](const auto& in) {
          return softmax(in[0], -1);
        }).tolerance(10.0)}});
  r.push_back({"sum",
               {make("all of (3,5,7)", {normal({3, 5, 7})}, [](const auto& in) { return sum(in[0]); }),
                make("dims {0,2} of (3,5,7), keepdim", {normal({3, 5, 7})},
                     [](const auto& in) { return sum(in[0], {0, 2}, true); }),
                make("dim 1 of a transposed (4,6)", {normal({6, 4})},
                     [](const auto& in) { return sum(in[0].t(), {1}); })}});
  r.push_back({"mean", {make("dims {1,2} of (2,3,5)", {normal({2, 3, 5})}, [](const auto& in) {
                 return mean(in[0], {1, 2});
               })}});
  r.push_back({"sum_to_shape",
               {make("(2,3,4) to (1,3,1)", {normal({2, 3, 4})},
                     [](const auto& in) { return sum_to_shape(in[0], {1, 3, 1}); }),
                make("(2,3,4) to (3,4)", {normal({2, 3, 4})},
                     [](const auto& in) { return sum_to_shape(in[0], {3, 4}); })}});
}

// ---- products ----

void add_products(std::vector<OpEntry>& r) {
  // Gradchecks of every shape mix are in tests/test_matmul.cpp; here the
  // paths the backends take: broadcast batches, 3-d @ 2-d, transposed views,
  // bias, and each backward's transposed operands.
  auto mm = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  r.push_back({"matmul",
               {make("(5,7) @ (7,3)", {normal({5, 7}), normal({7, 3})}, mm),
                make("3-d @ 2-d", {normal({2, 5, 7}), normal({7, 3})}, mm),
                make("batch 1 broadcasts", {normal({1, 3, 5}), normal({3, 5, 2})}, mm),
                make("transposed views", {normal({7, 5}), normal({3, 7})},
                     [](const auto& in) { return matmul(in[0].t(), in[1].t()); })}});
  r.push_back({"bmm",
               {make("(3,2,5) @ (3,5,7)", {normal({3, 2, 5}), normal({3, 5, 7})},
                     [](const auto& in) { return bmm(in[0], in[1]); }),
                make("b transposed", {normal({3, 2, 5}), normal({3, 7, 5})},
                     [](const auto& in) { return bmm(in[0], in[1].transpose(1, 2)); })}});
  r.push_back({"linear",
               {make("bias", {normal({4, 7}), normal({3, 7}), normal({3})},
                     [](const auto& in) { return linear(in[0], in[1], in[2]); }),
                make("no bias", {normal({4, 7}), normal({3, 7})}, [](const auto& in) { return linear(in[0], in[1]); }),
                make("3-d input, bias", {normal({2, 4, 7}), normal({3, 7}), normal({3})},
                     [](const auto& in) { return linear(in[0], in[1], in[2]); })}});
  // sigma = u^T W v, with u and v held (the power iteration updates them
  // outside autograd).
  r.push_back({"spectral_sigma", {make("(5,7)", {normal({5, 7}), constant(normal({5})), constant(normal({7}))},
                                       [](const auto& in) { return spectral_sigma(in[0], in[1], in[2]); })}});
}

std::vector<OpEntry> build() {
  std::vector<OpEntry> r;
  add_elementwise(r);
  add_conv(r);
  add_pools(r);
  add_index(r);
  add_norm_attention(r);
  add_reductions(r);
  add_products(r);
  return r;
}

}  // namespace

const std::vector<OpEntry>& op_registry() {
  static const std::vector<OpEntry> registry = build();
  return registry;
}

std::vector<Tensor> make_inputs(const OpEntry& e, const OpCase& c, DType values_dtype, DType dtype, Device device) {
  Rng gen(seed_of(e.op, c.name));
  std::vector<Tensor> out;
  for (const Input& in : c.inputs) {
    std::vector<double> v = draw(in, gen);
    if (in.kind == Input::Kind::Index) {
      if (v.empty()) {  // int64 data rows: drawn, not given
        v.resize(static_cast<size_t>(numel_of(in.shape)));
        for (double& x : v) x = static_cast<double>(gen.below(1000));
      }
      std::vector<int64_t> iv(v.begin(), v.end());
      out.push_back(Tensor::from_vector(iv, in.shape, device));
      continue;
    }
    // Round through the dtype the device computes in, then store as `dtype`.
    Tensor t = Tensor::from_vector(v, in.shape, DType::F64).to(values_dtype).to(dtype).to(device).detach();
    if (in.grad) t.set_requires_grad(true);
    out.push_back(t);
  }
  return out;
}

}  // namespace sagan::optest
