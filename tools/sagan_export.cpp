// sagan-export: a checkpoint's generator (EMA weights by default) as an ONNX
// model for onnxruntime, TensorRT or the browser. docs/export.md.
#include <CLI/CLI.hpp>

#include "sagan/core/io/atomic_file.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/onnx/export_generator.h"
#include "tools/cli_common.h"

using namespace sagan;
using onnx_export::ExportOptions;

namespace {

void add_options(CLI::App& app, ExportOptions& o) {
  app.add_option("checkpoint", o.checkpoint, "A checkpoint .safetensors file, or a run directory (its newest)")
      ->required();
  app.add_option("-o,--out", o.out, "ONNX file to write (an existing file is replaced; never the checkpoint)")
      ->capture_default_str();
  app.add_option("--weights", o.weights, "ema (default) or g (the raw generator)")
      ->check(CLI::IsMember({"ema", "g"}))
      ->capture_default_str();
  app.add_option("--truncation", o.truncation,
                 "Record that z is drawn truncated: components redrawn while |z| > this (0 = off; else at least "
                 "0.001); "
                 "the graph itself takes z as given")
      ->capture_default_str();
}

// Opens, exports, checks with onnx's checker, writes; nothing is written
// when any step fails.
int run(const ExportOptions& o) {
  io::check_writable_file(o.out, "-o " + o.out);  // now, not after the export and its check
  cli::check_output_not_input(o.out, "-o " + o.out, {{"the checkpoint", o.checkpoint}});
  const CheckpointFile c = open_checkpoint(o.checkpoint);
  ::onnx::ModelProto model = onnx_export::export_checkpoint(c, o);
  onnx_export::check_onnx_model(model, o.out);
  onnx_export::save_onnx_model(model, o.out);
  const SaganConfig& m = c.config.model;
  fmt::print("sagan-export: wrote {} (SAGAN-{}, {}, {} weights of {}, step {}; inputs z (batch, {}){}; opset {})\n",
             o.out, m.resolution, m.num_classes > 0 ? fmt::format("{} classes", m.num_classes) : "unconditional",
             o.weights, c.path, c.step, m.z_dim, m.num_classes > 0 ? ", labels (batch) int64" : "",
             onnx_export::kOpsetVersion);
  if (o.truncation > 0)
    fmt::print("sagan-export: draw z from N(0, 1) with each component redrawn while |z| > {} (recorded in the model)\n",
               o.truncation);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sagan-export: write a sagan-train checkpoint's generator as an ONNX model (docs/export.md)."};
  ExportOptions o;
  add_options(app, o);
  return cli::parse_and_run("sagan-export", app, argc, argv, [&] { return run(o); });
}
