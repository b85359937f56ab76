// tests/data/eval_goldens.json, written by make_eval_goldens.py (PyTorch /
// scipy / numpy float64 values for the evaluation ops, metrics and the FID
// Inception network). Its entries are {"shape": [...], "values": [...]}.
#pragma once
#include "tests/support/golden.h"

namespace sagan::testing::golden {

inline const nlohmann::json& eval_goldens() { return golden_json("eval_goldens.json"); }

inline Tensor eval_tensor(const nlohmann::json& e, DType dtype = DType::F64) {
  return Tensor::from_vector(e.at("values").get<std::vector<double>>(), e.at("shape").get<Shape>(), dtype);
}

}  // namespace sagan::testing::golden
