// A small builder over ONNX's own protobuf classes (libonnx's onnx.proto, no
// hand-written encoding): engine tensors become float32 initializers, nodes
// get attributes and value names unique within the graph, named after the
// module they come from ("blocks.0.conv1/Conv") so a graph viewer shows
// where each node belongs.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "onnx/onnx_pb.h"
#include "sagan/core/tensor.h"

namespace sagan::onnx_export {

struct Attr {
  std::string name;
  std::variant<int64_t, float, std::string, std::vector<int64_t>> value;
};

class OnnxGraph {
 public:
  explicit OnnxGraph(::onnx::GraphProto* graph) : g_(graph) {}

  // A float32 initializer holding t (any float dtype, any device); returns
  // its value name (`name`, made unique).
  std::string weight(const std::string& name, const Tensor& t);
  // A 1-d int64 initializer (shapes for Reshape, etc.).
  std::string ints(const std::string& name, const std::vector<int64_t>& values);
  // A 1-d float32 initializer.
  std::string floats(const std::string& name, const std::vector<float>& values);

  // Appends node `op` reading `inputs` ("" = an omitted optional input) with
  // one output named "<scope>/<op>" (made unique), or `output` when given
  // (a graph output's name); returns the output's name.
  std::string node(const std::string& op, const std::string& scope, const std::vector<std::string>& inputs,
                   const std::vector<Attr>& attrs = {}, const std::string& output = "");

  // Graph inputs and outputs: float32 / int64 with the given dims, a dim < 0
  // being the symbolic "batch".
  void input(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims, const std::string& doc);
  void output(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims, const std::string& doc);

 private:
  std::string unique(const std::string& name);
  ::onnx::GraphProto* g_;
  std::map<std::string, int> used_;
};

}  // namespace sagan::onnx_export
