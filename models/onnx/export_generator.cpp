#include "sagan/models/onnx/export_generator.h"

#include <cmath>
#include <filesystem>
#include <optional>

#include "onnx/checker.h"
#include "onnx/shape_inference/implementation.h"
#include "sagan/core/autograd.h"
#include "sagan/core/io/atomic_file.h"
#include "sagan/core/ops.h"
#include "sagan/layers/batch_norm.h"
#include "sagan/layers/conv2d.h"
#include "sagan/layers/gblock.h"
#include "sagan/layers/linear.h"
#include "sagan/layers/self_attention.h"
#include "sagan/models/onnx/onnx_graph.h"

namespace sagan::onnx_export {

namespace {

using Elem = ::onnx::TensorProto;

// The child of `m` called `name` as a T; the generator's structure is the
// engine's, so a mismatch is a bug here, reported naming the module.
template <class T>
T& child(nn::Module& m, const std::string& scope, const std::string& name) {
  for (auto& [n, c] : m.named_children())
    if (n == name)
      if (auto* t = dynamic_cast<T*>(c)) return *t;
  SAGAN_FAIL("onnx export: {} has no exportable child '{}'", scope, name);
}

bool has_tensor(const nn::Module& m, const std::string& name) {
  for (auto& [n, t] : m.named_parameters())
    if (n == name) return true;
  return false;
}

// Walks the generator's modules in forward order, appending their eval-mode
// computation to the graph.
class GeneratorWriter {
 public:
  GeneratorWriter(OnnxGraph& graph, std::string labels) : g_(graph), labels_(std::move(labels)) {}

  // x (B, in) -> (B, out): Gemm with the folded W (out, in) transposed.
  std::string linear(nn::SNLinear& l, const std::string& scope, const std::string& x) {
    std::vector<std::string> in{x, g_.weight(scope + ".weight", l.normalized_weight())};
    if (has_tensor(l, "bias")) in.push_back(g_.weight(scope + ".bias", l.tensor("bias")));
    return g_.node("Gemm", scope, in, {{"transB", int64_t{1}}});
  }

  // Stride 1, "same" padding, as SNConv2d.
  std::string conv(nn::SNConv2d& c, const std::string& scope, const std::string& x) {
    Tensor w = c.normalized_weight();  // (out, in, k, k)
    const int64_t k = w.size(2), p = k / 2;
    std::vector<std::string> in{x, g_.weight(scope + ".weight", w)};
    if (has_tensor(c, "bias")) in.push_back(g_.weight(scope + ".bias", c.tensor("bias")));
    return g_.node("Conv", scope, in,
                   {{"kernel_shape", std::vector<int64_t>{k, k}},
                    {"pads", std::vector<int64_t>{p, p, p, p}},
                    {"strides", std::vector<int64_t>{1, 1}}});
  }

  // BatchNormalization with the running statistics (training_mode 0).
  std::string batch_norm(nn::Module& m, const std::string& scope, const std::string& x, const Tensor& scale,
                         const Tensor& shift) {
    return g_.node("BatchNormalization", scope,
                   {x, g_.weight(scope + ".scale", scale), g_.weight(scope + ".shift", shift),
                    g_.weight(scope + ".running_mean", m.tensor("running_mean")),
                    g_.weight(scope + ".running_var", m.tensor("running_var"))},
                   {{"epsilon", static_cast<float>(nn::kBatchNormEps)}});
  }

  std::string bn(nn::BatchNorm2d& b, const std::string& scope, const std::string& x) {
    return batch_norm(b, scope, x, b.tensor("weight"), b.tensor("bias"));
  }

  // Conditional BN: normalise, then h * (1 + gain[y]) + bias[y] per class.
  std::string cbn(nn::ConditionalBatchNorm2d& b, const std::string& scope, const std::string& x) {
    const int64_t C = b.channels();
    if (b.num_classes() == 0) return batch_norm(b, scope, x, b.tensor("weight"), b.tensor("bias"));
    std::string h = batch_norm(b, scope, x, Tensor::ones({C}), Tensor::zeros({C}));
    // The engine adds 1 to the gathered gain in float32: the same rounding as
    // adding it to the table first.
    std::string gamma = g_.node("Gather", scope + ".gain",
                                {g_.weight(scope + ".gain_plus_one", add(b.tensor("gain.weight"), 1.0)), labels_});
    std::string beta =
        g_.node("Gather", scope + ".bias", {g_.weight(scope + ".bias.weight", b.tensor("bias.weight")), labels_});
    // Reshape's 0 copies the batch from the input: no -1, which is ambiguous
    // for a batch of 0 (onnxruntime refuses it).
    std::string per_sample = g_.ints(scope + ".per_sample_shape", {0, C, 1, 1});
    h = g_.node("Mul", scope, {h, g_.node("Reshape", scope + ".gain", {gamma, per_sample})});
    return g_.node("Add", scope, {h, g_.node("Reshape", scope + ".bias", {beta, per_sample})});
  }

  // Nearest 2x: output pixel (i, j) reads input (floor(i / 2), floor(j / 2)).
  std::string upsample(const std::string& scope, const std::string& x) {
    return g_.node("Resize", scope, {x, "", g_.floats(scope + ".scales", {1.f, 1.f, 2.f, 2.f})},
                   {{"mode", std::string("nearest")},
                    {"coordinate_transformation_mode", std::string("asymmetric")},
                    {"nearest_mode", std::string("floor")}});
  }

  // layers/gblock.h: conv2(relu(cbn2(conv1(up(relu(cbn1(x))))))) + up(conv_sc(x)).
  std::string gblock(nn::GBlock& b, const std::string& scope, const std::string& x) {
    std::string h =
        g_.node("Relu", scope + ".bn1", {cbn(child<nn::ConditionalBatchNorm2d>(b, scope, "bn1"), scope + ".bn1", x)});
    h = conv(child<nn::SNConv2d>(b, scope, "conv1"), scope + ".conv1", upsample(scope + ".up", h));
    h = g_.node("Relu", scope + ".bn2", {cbn(child<nn::ConditionalBatchNorm2d>(b, scope, "bn2"), scope + ".bn2", h)});
    h = conv(child<nn::SNConv2d>(b, scope, "conv2"), scope + ".conv2", h);
    std::string s = upsample(scope + ".up_sc", conv(child<nn::SNConv2d>(b, scope, "conv_sc"), scope + ".conv_sc", x));
    return g_.node("Add", scope, {h, s});
  }

  // layers/self_attention.h, at resolution hw x hw:
  //   q = theta(x) as (B, N, C/8); k = pool(phi(x)) as (B, C/8, S) (already transposed);
  //   v = pool(g(x)) as (B, S, Cv); o = softmax(q k) v, back to (B, Cv, H, W);
  //   y = x + gamma * o_conv(o)
  std::string attention(nn::SelfAttention& a, const std::string& scope, const std::string& x, int64_t hw) {
    const int64_t C = a.channels(), Cv = a.pooled() ? C / 2 : C;
    auto pool = [&](const std::string& name, const std::string& t) {
      if (!a.pooled()) return t;
      return g_.node("MaxPool", scope + "." + name, {t},
                     {{"kernel_shape", std::vector<int64_t>{2, 2}}, {"strides", std::vector<int64_t>{2, 2}}});
    };
    // (B, c, H', W') -> (B, c, H'W'), with H'W' given (no -1: a batch of 0).
    auto rows = [&](const std::string& name, const std::string& t, int64_t c, int64_t positions) {
      return g_.node("Reshape", scope + "." + name, {t, g_.ints(scope + "." + name + ".shape", {0, c, positions})});
    };
    const int64_t N = hw * hw, S = a.pooled() ? (hw / 2) * (hw / 2) : N;
    auto transpose = [&](const std::string& name, const std::string& t) {
      return g_.node("Transpose", scope + "." + name, {t}, {{"perm", std::vector<int64_t>{0, 2, 1}}});
    };
    std::string q =
        transpose("theta", rows("theta", conv(child<nn::SNConv2d>(a, scope, "theta"), scope + ".theta", x), C / 8, N));
    std::string kt =
        rows("phi", pool("phi", conv(child<nn::SNConv2d>(a, scope, "phi"), scope + ".phi", x)), C / 8, S);
    std::string v =
        transpose("g", rows("g", pool("g", conv(child<nn::SNConv2d>(a, scope, "g"), scope + ".g", x)), Cv, S));
    std::string map =
        g_.node("Softmax", scope, {g_.node("MatMul", scope + ".logits", {q, kt})}, {{"axis", int64_t{-1}}});
    std::string o = transpose("out", g_.node("MatMul", scope + ".out", {map, v}));  // (B, Cv, N)
    o = g_.node("Reshape", scope + ".out", {o, g_.ints(scope + ".out.shape", {0, Cv, hw, hw})});
    if (a.pooled()) o = conv(child<nn::SNConv2d>(a, scope, "o"), scope + ".o", o);
    o = g_.node("Mul", scope + ".gamma", {o, g_.weight(scope + ".gamma", a.gamma())});
    return g_.node("Add", scope, {x, o});
  }

 private:
  OnnxGraph& g_;
  std::string labels_;
};

std::string fmt_double(double v) { return fmt::format("{}", v); }

}  // namespace

::onnx::ModelProto export_generator(SaganGenerator& g, const ExportSource& source) {
  NoGradGuard no_grad;
  g.eval();  // folded weights use the stored u, v; BN uses running statistics
  const SaganConfig& cfg = g.config();
  const int64_t K = cfg.num_classes, R = cfg.resolution, C = cfg.image_channels;
  const bool truncated = source.truncation > 0;
  const std::string z_law = truncated ? fmt::format(
                                            "each component drawn from N(0, 1) and redrawn while |z| > {} "
                                            "(sagan-sample --truncation {})",
                                            source.truncation, source.truncation)
                                      : "each component drawn from N(0, 1)";

  ::onnx::ModelProto model;
  model.set_ir_version(::onnx::IR_VERSION);
  model.set_producer_name("sagan-export");
  model.set_model_version(1);
  model.set_doc_string(fmt::format("SAGAN-{} generator ({}), {} weights of {} at step {}; images in [-1, 1]", R,
                                   K > 0 ? fmt::format("{} classes", K) : "unconditional", source.weights,
                                   source.checkpoint, source.step));
  ::onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpsetVersion);
  auto meta = [&](const std::string& k, const std::string& v) {
    ::onnx::StringStringEntryProto* e = model.add_metadata_props();
    e->set_key(k);
    e->set_value(v);
  };
  meta("sagan.checkpoint", source.checkpoint);
  meta("sagan.step", source.step);
  meta("sagan.weights", source.weights);
  meta("sagan.resolution", std::to_string(R));
  meta("sagan.image_channels", std::to_string(C));
  meta("sagan.num_classes", std::to_string(K));
  meta("sagan.z_dim", std::to_string(cfg.z_dim));
  meta("sagan.truncation", fmt_double(source.truncation));
  meta("sagan.z_distribution", z_law);
  meta("sagan.output_range", "[-1, 1]; pixel = round(clamp((x + 1) / 2, 0, 1) * 255)");

  ::onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name(fmt::format("sagan{}_generator", R));
  OnnxGraph G(graph);
  G.input("z", Elem::FLOAT, {-1, cfg.z_dim}, "latent (batch, z_dim), " + z_law);
  if (K > 0) G.input("labels", Elem::INT64, {-1}, fmt::format("class ids (batch) in [0, {})", K));
  G.output("images", Elem::FLOAT, {-1, C, R, R}, "images (batch, C, R, R) in [-1, 1]");

  GeneratorWriter w(G, K > 0 ? "labels" : "");
  std::string h;
  int64_t hw = 4;
  std::optional<std::string> bn_name;
  for (auto& [name, m] : g.named_children()) {
    if (name == "linear") {
      auto* l = dynamic_cast<nn::SNLinear*>(m);
      SAGAN_CHECK(l, "onnx export: 'linear' is not an SNLinear");
      h = w.linear(*l, name, "z");
      h = G.node("Reshape", name, {h, G.ints(name + ".shape", {0, cfg.g_widths()[0], 4, 4})});
    } else if (auto* b = dynamic_cast<nn::GBlock*>(m)) {
      h = w.gblock(*b, name, h);
      hw *= 2;
    } else if (auto* a = dynamic_cast<nn::SelfAttention*>(m)) {
      h = w.attention(*a, name, h, hw);
    } else if (auto* n = dynamic_cast<nn::BatchNorm2d*>(m); n && name == "bn") {
      h = G.node("Relu", name, {w.bn(*n, name, h)});
    } else if (auto* c = dynamic_cast<nn::SNConv2d*>(m); c && name == "conv_out") {
      h = G.node("Tanh", name, {w.conv(*c, name, h)}, {}, "images");
    } else {
      SAGAN_FAIL("onnx export: the generator's module '{}' is not one the exporter knows", name);
    }
    SAGAN_CHECK(!h.empty(), "onnx export: the generator does not start with 'linear'");
  }
  SAGAN_CHECK(h == "images" && hw == R, "onnx export: the generator's modules did not end in conv_out at {}x{}", R, R);
  return model;
}

::onnx::ModelProto export_checkpoint(const CheckpointFile& c, const ExportOptions& options) {
  SAGAN_CHECK(options.weights == "ema" || options.weights == "g", "--weights must be ema or g, got '{}'",
              options.weights);
  check_truncation(options.truncation);  // models/generator.h
  Rng init(0);
  SaganGenerator g(c.config.model, init);
  load_generator(g, c, options.weights);
  // Absolute: the .onnx file is moved and shared, a path relative to
  // where sagan-export ran would mean nothing there.
  const std::string source = std::filesystem::absolute(c.path).lexically_normal().string();
  return export_generator(g, {source, c.step, options.weights, options.truncation});
}

void check_onnx_model(const ::onnx::ModelProto& model, const std::string& what) {
  try {
    ::onnx::checker::check_model(model);
    ::onnx::ModelProto inferred = model;
    ::onnx::ShapeInferenceOptions strict{/*check_type=*/true, /*error_mode=*/1, /*enable_data_propagation=*/true};
    ::onnx::shape_inference::InferShapes(inferred, ::onnx::OpSchemaRegistry::Instance(), strict);
  } catch (const std::exception& e) {
    SAGAN_FAIL("{}: the ONNX checker rejects the model: {}", what, e.what());
  }
}

void save_onnx_model(const ::onnx::ModelProto& model, const std::string& path) {
  std::string bytes;
  SAGAN_CHECK(model.SerializeToString(&bytes), "{}: cannot serialise the ONNX model (over 2 GiB?)", path);
  io::write_file_atomic(path, bytes);
}

}  // namespace sagan::onnx_export
