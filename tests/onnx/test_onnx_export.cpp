// sagan-export's library (models/onnx/): the exported generator passes
// onnx's own checker and strict shape inference, has the documented inputs,
// output, opset and metadata, carries the engine's eval-mode (spectrally
// normalised) weights, and one node per layer it should. Numerical agreement
// with the engine is checked by tests/golden/onnx_export_check.py under
// onnxruntime; with SAGAN_ONNX_INTEROP_DIR set, the test
// "onnx export interop files" writes what that script reads.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "onnx/checker.h"
#include "sagan/core/io/safetensors.h"
#include "sagan/core/ops.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/onnx/export_generator.h"
#include "tests/support/temp_dir.h"

using namespace sagan;
using namespace sagan::testing;
namespace fs = std::filesystem;
namespace ox = sagan::onnx_export;

namespace {

TrainConfig small_config(int64_t classes, int64_t channels, bool pooled) {
  TrainConfig c;
  c.model.resolution = 32;
  c.model.ch = 8;  // G widths 32: attention needs channels divisible by 8
  c.model.z_dim = 12;
  c.model.num_classes = classes;
  c.model.image_channels = channels;
  c.model.pooled_attention = pooled;
  c.unconditional = classes == 0;
  return c;
}

// A generator whose every exported path matters: non-zero attention gamma,
// class gains and biases, BN running statistics away from (0, 1), SN vectors
// as after training (u, v from power iterations).
std::unique_ptr<SaganGenerator> trained_looking(const SaganConfig& cfg, uint64_t seed) {
  Rng gen(seed);
  auto g = std::make_unique<SaganGenerator>(cfg, gen);
  g->train();
  for (int i = 0; i < 3; ++i) g->power_iterate_all();
  NoGradGuard ng;
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (auto& [name, t] : g->named_parameters()) {
    const std::string leaf = name.substr(name.rfind('.') + 1);
    const std::string path = name.substr(0, name.rfind('.'));
    const std::string module = path.substr(path.rfind('.') + 1);  // "bn1", "conv_out", "gain", ...
    if (leaf == "gamma") {
      t.fill_(0.7);
    } else if (ends_with(name, ".gain.weight") || ends_with(name, ".bias.weight")) {
      t.copy_(Tensor::randn(t.shape(), gen) * 0.3);  // class gains and biases
    } else if (module.rfind("bn", 0) == 0) {
      t.copy_(Tensor::randn(t.shape(), gen) * 0.3 + (leaf == "weight" ? 1.0 : 0.0));  // affine BN
    } else if (leaf == "bias") {
      t.copy_(Tensor::randn(t.shape(), gen) * 0.1);
    }
  }
  for (auto& [name, t] : g->named_buffers()) {
    if (name.find("running_mean") != std::string::npos) t.copy_(Tensor::randn(t.shape(), gen) * 0.2);
    if (name.find("running_var") != std::string::npos) t.copy_(Tensor::rand(t.shape(), gen) + 0.5);
  }
  g->eval();
  return g;
}

// A checkpoint as sagan-train writes it, as far as open_checkpoint and
// load_network read it: config metadata, G.* and G_ema.* tensors.
void write_checkpoint(const std::string& path, const TrainConfig& cfg, SaganGenerator& g, SaganGenerator& ema) {
  NamedTensors tensors;
  for (auto& [k, v] : g.state()) tensors.emplace_back("G." + k, v);
  for (auto& [k, v] : ema.state()) tensors.emplace_back("G_ema." + k, v);
  io::save_safetensors(path, tensors, {{"format", "sagan-checkpoint-1"}, {"config", cfg.to_json()}, {"step", "123"}});
}

std::map<std::string, std::string> metadata(const ::onnx::ModelProto& m) {
  std::map<std::string, std::string> out;
  for (const auto& e : m.metadata_props()) out[e.key()] = e.value();
  return out;
}

std::vector<std::string> dims(const ::onnx::ValueInfoProto& v) {
  std::vector<std::string> out;
  for (const auto& d : v.type().tensor_type().shape().dim())
    out.push_back(d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
  return out;
}

std::multiset<std::string> op_types(const ::onnx::ModelProto& m) {
  std::multiset<std::string> out;
  for (const auto& n : m.graph().node()) out.insert(n.op_type());
  return out;
}

std::vector<float> initializer(const ::onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer())
    if (t.name() == name) {
      REQUIRE(t.data_type() == ::onnx::TensorProto::FLOAT);
      std::vector<float> v(t.raw_data().size() / sizeof(float));
      std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(float));
      return v;
    }
  FAIL("no initializer " << name);
  return {};
}

}  // namespace

TEST_CASE("onnx export: checker-valid model with the documented interface", "[onnx_export]") {
  TempDir dir;
  const TrainConfig cfg = small_config(3, 3, true);
  auto g = trained_looking(cfg.model, 1), ema = trained_looking(cfg.model, 2);
  const std::string ckpt = dir / "step_00000123.safetensors";
  write_checkpoint(ckpt, cfg, *g, *ema);

  ox::ExportOptions o;
  o.checkpoint = ckpt;
  o.truncation = 0.5;
  const CheckpointFile c = open_checkpoint(ckpt);
  ::onnx::ModelProto m = ox::export_checkpoint(c, o);
  REQUIRE_NOTHROW(ox::check_onnx_model(m, "test model"));
  REQUIRE_NOTHROW(::onnx::checker::check_model(m));  // and directly, as the brief says

  CHECK(m.ir_version() == ::onnx::IR_VERSION);
  REQUIRE(m.opset_import_size() == 1);
  CHECK((m.opset_import(0).domain().empty() && m.opset_import(0).version() == ox::kOpsetVersion));
  const auto& graph = m.graph();
  REQUIRE(graph.input_size() == 2);
  CHECK(graph.input(0).name() == "z");
  CHECK(graph.input(0).type().tensor_type().elem_type() == ::onnx::TensorProto::FLOAT);
  CHECK(dims(graph.input(0)) == std::vector<std::string>{"batch", "12"});
  CHECK(graph.input(1).name() == "labels");
  CHECK(graph.input(1).type().tensor_type().elem_type() == ::onnx::TensorProto::INT64);
  CHECK(dims(graph.input(1)) == std::vector<std::string>{"batch"});
  REQUIRE(graph.output_size() == 1);
  CHECK(graph.output(0).name() == "images");
  CHECK(dims(graph.output(0)) == std::vector<std::string>{"batch", "3", "32", "32"});
  CHECK(graph.input(0).doc_string().find("|z| > 0.5") != std::string::npos);

  auto meta = metadata(m);
  CHECK(meta["sagan.truncation"] == "0.5");
  CHECK(meta["sagan.weights"] == "ema");
  CHECK(meta["sagan.step"] == "123");
  CHECK(meta["sagan.num_classes"] == "3");
  CHECK(meta["sagan.z_dim"] == "12");
  CHECK(meta["sagan.checkpoint"] == ckpt);

  // One node per layer: 3 GBlocks (each 2 CBN + 3 conv + 2 upsample), one
  // attention (4 convs, 1 softmax, 2 pools), the final BN, conv and tanh.
  const auto ops = op_types(m);
  CHECK(ops.count("Softmax") == 1);
  CHECK(ops.count("MaxPool") == 2);
  CHECK(ops.count("MatMul") == 2);
  CHECK(ops.count("Conv") == 3 * 3 + 4 + 1);
  CHECK(ops.count("Resize") == 3 * 2);
  CHECK(ops.count("BatchNormalization") == 3 * 2 + 1);
  CHECK(ops.count("Gather") == 3 * 2 * 2);  // gain and bias per CBN
  CHECK(ops.count("Gemm") == 1);
  CHECK(ops.count("Tanh") == 1);
  const std::set<std::string> allowed{
      "Gemm", "Reshape", "BatchNormalization", "Gather", "Mul",     "Add", "Relu", "Resize",
      "Conv", "MaxPool", "Transpose",          "MatMul", "Softmax", "Tanh"};
  for (const std::string& op : ops) CHECK(allowed.count(op) == 1);
  // Node names start with their module: scope/Op, the tanh too (its output is "images").
  for (const auto& n : m.graph().node()) CHECK_THAT(n.name(), Catch::Contains("/" + n.op_type()));
  CHECK(std::any_of(m.graph().node().begin(), m.graph().node().end(),
                    [](const auto& n) { return n.name() == "conv_out/Tanh" && n.output(0) == "images"; }));

  // Weights are the EMA generator's eval-mode W / sigma, bit for bit.
  {
    NoGradGuard ng;
    auto children = ema->named_children();
    auto it = std::find_if(children.begin(), children.end(), [](auto& p) { return p.first == "conv_out"; });
    REQUIRE(it != children.end());
    auto* conv_out = dynamic_cast<nn::SNConv2d*>(it->second);
    REQUIRE(conv_out != nullptr);
    CHECK(initializer(m, "conv_out.weight") == conv_out->normalized_weight().to_float_vector());
    CHECK(initializer(m, "conv_out.weight") != conv_out->tensor("weight_orig").to_float_vector());
    CHECK(initializer(m, "blocks.2.gamma") == std::vector<float>{0.7f});
  }

  // --weights g exports the other network.
  o.weights = "g";
  ::onnx::ModelProto mg = ox::export_checkpoint(c, o);
  CHECK(metadata(mg)["sagan.weights"] == "g");
  CHECK(initializer(mg, "linear.weight") != initializer(m, "linear.weight"));

  // Written atomically and readable back by onnx's file checker.
  const std::string path = dir / "g.onnx";
  ox::save_onnx_model(m, path);
  REQUIRE_NOTHROW(::onnx::checker::check_model(path));
}

TEST_CASE("onnx export: unconditional, grayscale, paper-form attention", "[onnx_export]") {
  const TrainConfig cfg = small_config(0, 1, false);
  auto g = trained_looking(cfg.model, 3);
  ::onnx::ModelProto m = ox::export_generator(*g, {"in-memory", "7", "ema", 0.0});
  REQUIRE_NOTHROW(ox::check_onnx_model(m, "unconditional"));
  const auto& graph = m.graph();
  REQUIRE(graph.input_size() == 1);  // no labels
  CHECK(graph.input(0).name() == "z");
  CHECK(dims(graph.output(0)) == std::vector<std::string>{"batch", "1", "32", "32"});
  const auto ops = op_types(m);
  CHECK(ops.count("Gather") == 0);
  CHECK(ops.count("MaxPool") == 0);  // no pooling, no output conv in the paper's form
  CHECK(ops.count("Conv") == 3 * 3 + 3 + 1);
  CHECK(metadata(m)["sagan.z_distribution"] == "each component drawn from N(0, 1)");
}

TEST_CASE("onnx export: the checker is not vacuous, and bad options are named", "[onnx_export]") {
  const TrainConfig cfg = small_config(2, 3, true);
  auto g = trained_looking(cfg.model, 4);
  ::onnx::ModelProto m = ox::export_generator(*g, {"x", "1", "ema", 0.0});
  // A node reading a value nobody produces is refused, naming what was checked.
  m.mutable_graph()->mutable_node(3)->set_input(0, "no_such_value");
  REQUIRE_THROWS_WITH(ox::check_onnx_model(m, "broken.onnx"),
                      Catch::Contains("broken.onnx") && Catch::Contains("ONNX checker"));

  TempDir dir;
  const std::string ckpt = dir / "c.safetensors";
  write_checkpoint(ckpt, cfg, *g, *g);
  const CheckpointFile c = open_checkpoint(ckpt);
  ox::ExportOptions o;
  o.truncation = -1;
  REQUIRE_THROWS_WITH(ox::export_checkpoint(c, o), Catch::Contains("--truncation"));
  o.truncation = 0;
  o.weights = "d";
  REQUIRE_THROWS_WITH(ox::export_checkpoint(c, o), Catch::Contains("--weights"));
}

TEST_CASE("onnx export interop files", "[onnx_export]") {
  // tests/golden/onnx_export_check.py reads these when SAGAN_ONNX_INTEROP_DIR is set.
  const char* env = std::getenv("SAGAN_ONNX_INTEROP_DIR");
  TempDir scratch;
  const fs::path root = env ? fs::path(env) : scratch.path;
  struct Case {
    std::string name;
    TrainConfig cfg;
  };
  TrainConfig res64 = small_config(2, 3, true);  // BigGAN-style widths, attention at 32x32
  res64.model.resolution = 64;
  res64.model.ch = 8;  // D needs 8 channels at its 32x32 attention
  for (const Case& k : {Case{"conditional", small_config(3, 3, true)}, Case{"unconditional", small_config(0, 1, false)},
                        Case{"res64", res64}}) {
    const fs::path d = root / k.name;
    fs::create_directories(d);
    auto g = trained_looking(k.cfg.model, 10), ema = trained_looking(k.cfg.model, 11);
    write_checkpoint((d / "checkpoint.safetensors").string(), k.cfg, *g, *ema);
    ox::ExportOptions o;
    o.checkpoint = (d / "checkpoint.safetensors").string();
    ::onnx::ModelProto m = ox::export_checkpoint(open_checkpoint(o.checkpoint), o);
    ox::check_onnx_model(m, k.name);
    ox::save_onnx_model(m, (d / "g.onnx").string());
    // The engine's own images for a batch of 7 (a batch size the graph never saw).
    Rng gen(99);
    Tensor z = Tensor::randn({7, k.cfg.model.z_dim}, gen);
    std::vector<int64_t> ys(7);
    for (size_t i = 0; i < ys.size(); ++i)
      ys[i] = static_cast<int64_t>(i) % std::max<int64_t>(k.cfg.model.num_classes, 1);
    Tensor y = k.cfg.model.num_classes > 0 ? Tensor::from_vector(ys, {7}) : Tensor();
    Tensor images;
    {
      NoGradGuard ng;
      images = ema->forward(z, y);
    }
    NamedTensors ref{{"z", z}, {"images", images}};
    if (y.defined()) ref.emplace_back("labels", y);
    io::save_safetensors((d / "reference.safetensors").string(), ref);
    CHECK(fs::file_size(d / "g.onnx") > 1000);
  }
}
