// Reader for tests/data/attention_goldens.json, written by
// tests/golden/make_attention_goldens.py: PyTorch's values for attention,
// spectral-norm power iteration and Adam steps.
#pragma once
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace sagan::testing::attention_golden {

using Json = nlohmann::json;

// One case by name; the file is parsed once per test run.
inline const Json& golden_case(const std::string& name) {
  static const Json all = [] {
    const std::string path = std::string(SAGAN_TEST_DATA_DIR) + "/attention_goldens.json";
    std::ifstream f(path);
    if (!f) throw std::runtime_error("attention_goldens: cannot open " + path);
    return Json::parse(f);
  }();
  return all.at("cases").at(name);
}

inline std::vector<double> values(const Json& c, const std::string& key) {
  return c.at(key).get<std::vector<double>>();
}

// The tensor stored under `key` with its shape under `key + "_shape"`.
inline Tensor tensor(const Json& c, const std::string& key, DType dtype = DType::F64, bool requires_grad = false) {
  Tensor t = Tensor::from_vector(values(c, key), c.at(key + "_shape").get<Shape>(), dtype);
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

}  // namespace sagan::testing::attention_golden
