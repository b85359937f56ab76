// Reader for tests/data/eval_goldens.json, written by
// tests/golden/make_eval_goldens.py (PyTorch / scipy / numpy float64 values
// for the evaluation ops, metrics and the FID Inception network).
#pragma once
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace sagan::testing::golden {

// The whole file, parsed once per test run.
inline const nlohmann::json& eval_goldens() {
  static const nlohmann::json all = [] {
    const std::string path = std::string(SAGAN_TEST_DATA_DIR) + "/eval_goldens.json";
    std::ifstream f(path);
    if (!f) throw std::runtime_error("eval_goldens: cannot open " + path);
    return nlohmann::json::parse(f);
  }();
  return all;
}

// An entry {"shape": [...], "values": [...]} as a tensor.
inline Tensor eval_tensor(const nlohmann::json& e, DType dtype = DType::F64) {
  return Tensor::from_vector(e.at("values").get<std::vector<double>>(), e.at("shape").get<Shape>(), dtype);
}

}  // namespace sagan::testing::golden
