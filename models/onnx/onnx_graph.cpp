#include "sagan/models/onnx/onnx_graph.h"

#include <algorithm>
#include <cmath>

#include "sagan/core/error.h"

namespace sagan::onnx_export {

std::string OnnxGraph::unique(const std::string& name) {
  int n = used_[name]++;
  return n == 0 ? name : fmt::format("{}_{}", name, n);
}

std::string OnnxGraph::weight(const std::string& name, const Tensor& t) {
  SAGAN_CHECK(t.defined() && (t.dtype() == DType::F32 || t.dtype() == DType::F64),
              "onnx export: initializer {} must be a float tensor", name);
  std::vector<float> v = t.detach().to(Device::cpu()).to(DType::F32).contiguous().to_float_vector();
  // A model that computes NaN for every input is no export (the folded
  // weights are finite whenever the checkpoint loaded: this is the last guard).
  const auto bad = std::count_if(v.begin(), v.end(), [](float x) { return !std::isfinite(x); });
  SAGAN_CHECK(bad == 0, "onnx export: initializer {}: {} of {} values are not finite", name, bad, v.size());
  ::onnx::TensorProto* p = g_->add_initializer();
  p->set_name(unique(name));
  p->set_data_type(::onnx::TensorProto::FLOAT);
  for (int64_t d : t.shape()) p->add_dims(d);
  // raw_data is little-endian, as this host.
  p->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  return p->name();
}

std::string OnnxGraph::ints(const std::string& name, const std::vector<int64_t>& values) {
  ::onnx::TensorProto* p = g_->add_initializer();
  p->set_name(unique(name));
  p->set_data_type(::onnx::TensorProto::INT64);
  p->add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) p->add_int64_data(v);
  return p->name();
}

std::string OnnxGraph::floats(const std::string& name, const std::vector<float>& values) {
  ::onnx::TensorProto* p = g_->add_initializer();
  p->set_name(unique(name));
  p->set_data_type(::onnx::TensorProto::FLOAT);
  p->add_dims(static_cast<int64_t>(values.size()));
  for (float v : values) p->add_float_data(v);
  return p->name();
}

std::string OnnxGraph::node(const std::string& op, const std::string& scope, const std::vector<std::string>& inputs,
                            const std::vector<Attr>& attrs, const std::string& output) {
  ::onnx::NodeProto* n = g_->add_node();
  n->set_op_type(op);
  // The node is named after its module even when its output has a name of
  // its own (the graph's "images"), so every node reads scope/Op.
  std::string out = output.empty() ? unique(scope + "/" + op) : output;
  n->set_name(output.empty() ? out : unique(scope + "/" + op));
  for (const std::string& in : inputs) n->add_input(in);
  n->add_output(out);
  for (const Attr& a : attrs) {
    ::onnx::AttributeProto* p = n->add_attribute();
    p->set_name(a.name);
    if (auto* i = std::get_if<int64_t>(&a.value)) {
      p->set_type(::onnx::AttributeProto::INT);
      p->set_i(*i);
    } else if (auto* f = std::get_if<float>(&a.value)) {
      p->set_type(::onnx::AttributeProto::FLOAT);
      p->set_f(*f);
    } else if (auto* s = std::get_if<std::string>(&a.value)) {
      p->set_type(::onnx::AttributeProto::STRING);
      p->set_s(*s);
    } else {
      p->set_type(::onnx::AttributeProto::INTS);
      for (int64_t v : std::get<std::vector<int64_t>>(a.value)) p->add_ints(v);
    }
  }
  return out;
}

namespace {
void set_type(::onnx::ValueInfoProto* v, const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims,
              const std::string& doc) {
  v->set_name(name);
  v->set_doc_string(doc);
  ::onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem_type);
  for (int64_t d : dims) {
    ::onnx::TensorShapeProto_Dimension* dim = t->mutable_shape()->add_dim();
    if (d < 0)
      dim->set_dim_param("batch");
    else
      dim->set_dim_value(d);
  }
}
}  // namespace

void OnnxGraph::input(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims,
                      const std::string& doc) {
  set_type(g_->add_input(), name, elem_type, dims, doc);
}

void OnnxGraph::output(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims,
                       const std::string& doc) {
  set_type(g_->add_output(), name, elem_type, dims, doc);
}

}  // namespace sagan::onnx_export
