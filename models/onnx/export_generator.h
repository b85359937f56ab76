// The SAGAN generator as an ONNX model (opset 17, IR 8: what Debian's
// libonnx 1.12 knows; onnxruntime, TensorRT and onnxruntime-web read it).
//
//   inputs   z       float32 (batch, z_dim)
//            labels  int64   (batch)          only for class-conditional models
//   output   images  float32 (batch, C, R, R) in [-1, 1], as sagan-sample's
//                                             before it writes PNGs
//
// The graph is the engine's eval-mode forward: spectral norm folded into the
// weights (W / sigma with sigma = u^T W v from the checkpoint's u and v, no
// power iteration, exactly what eval computes), batch norm and conditional
// batch norm with the running statistics (BatchNormalization, then the
// class's gain and bias by Gather), nearest 2x upsampling as Resize,
// self-attention as Conv / MaxPool / MatMul / Softmax, tanh at the end.
//
// Truncation is a property of how z is drawn, not of the network: sagan-sample
// draws each component of z from N(0, 1) and redraws it while |z| > t. The
// exported graph takes z as given; `truncation` is recorded in the model's
// metadata ("sagan.truncation", "sagan.z_distribution") and in the z input's
// doc string, so whoever feeds the model knows how z was meant to be drawn.
// docs/export.md has the details.
#pragma once
#include <string>

#include "onnx/onnx_pb.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/generator.h"

namespace sagan::onnx_export {

constexpr int64_t kOpsetVersion = 17;

struct ExportOptions {
  std::string checkpoint;  // a .safetensors checkpoint or a run directory (its newest)
  std::string out = "g.onnx";
  std::string weights = "ema";  // "ema" (G_ema.*) or "g" (G.*)
  double truncation = 0.0;      // recorded, see above; 0 = plain N(0, I)
};

// Where the weights came from, for the model's metadata.
struct ExportSource {
  std::string checkpoint;  // file path
  std::string step;
  std::string weights;  // "ema" or "g"
  double truncation = 0.0;
};

// g as an ONNX model (g is switched to eval mode; its weights are read, not changed).
::onnx::ModelProto export_generator(SaganGenerator& g, const ExportSource& source);

// Loads the chosen generator of an opened checkpoint and exports it. Errors
// name the option or the checkpoint.
::onnx::ModelProto export_checkpoint(const CheckpointFile& c, const ExportOptions& options);

// onnx::checker::check_model plus strict shape inference; throws sagan::Error
// naming `what` with the checker's message.
void check_onnx_model(const ::onnx::ModelProto& model, const std::string& what);

// Serialised and written atomically.
void save_onnx_model(const ::onnx::ModelProto& model, const std::string& path);

}  // namespace sagan::onnx_export
