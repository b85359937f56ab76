// Reader for tests/data/conv_matmul_goldens.json, written by
// tests/golden/make_conv_matmul_goldens.py: float64 inputs, PyTorch's
// outputs, and the gradients of sum(y * gy) for matmul, bmm, linear, conv2d.
#pragma once
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace sagan::testing::golden {

// One case by name; the file is parsed once per test run.
inline const nlohmann::json& conv_matmul_case(const std::string& name) {
  static const nlohmann::json all = [] {
    const std::string path = std::string(SAGAN_TEST_DATA_DIR) + "/conv_matmul_goldens.json";
    std::ifstream f(path);
    if (!f) throw std::runtime_error("conv_matmul_goldens: cannot open " + path);
    return nlohmann::json::parse(f);
  }();
  return all.at("cases").at(name);
}

// The tensor stored under `key`, with its shape under `key + "_shape"`.
inline Tensor golden_tensor(const nlohmann::json& c, const std::string& key, DType dtype = DType::F64) {
  return Tensor::from_vector(c.at(key).get<std::vector<double>>(), c.at(key + "_shape").get<Shape>(), dtype);
}

}  // namespace sagan::testing::golden
