// Golden values written by the scripts in tests/golden/: tests/data/<file>.json
// with {"cases": {name: {key: [values], key + "_shape": [dims], ...}}}.
#pragma once
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sagan/core/error.h"
#include "sagan/core/tensor.h"

namespace sagan::testing {

using Json = nlohmann::json;

inline std::string golden_path(const std::string& file) { return std::string(SAGAN_TEST_DATA_DIR) + "/" + file; }

// The whole file; each file is parsed once per test run (some are megabytes).
inline const Json& golden_json(const std::string& file) {
  static std::mutex m;
  static std::map<std::string, Json> parsed;  // a map: references stay valid as files are added
  std::lock_guard<std::mutex> lock(m);
  auto it = parsed.find(file);
  if (it == parsed.end()) {
    std::ifstream f(golden_path(file));
    SAGAN_CHECK(f.good(), "golden: cannot open {} (run its script in tests/golden/)", golden_path(file));
    it = parsed.emplace(file, Json::parse(f)).first;
  }
  return it->second;
}

inline const Json& golden_case(const std::string& file, const std::string& name) {
  return golden_json(file).at("cases").at(name);
}

inline std::vector<double> golden_values(const Json& c, const std::string& key) {
  return c.at(key).get<std::vector<double>>();
}

// The tensor stored under `key` with its shape under `key + "_shape"`.
inline Tensor golden_tensor(const Json& c, const std::string& key, DType dtype = DType::F64,
                            bool requires_grad = false) {
  Tensor t = Tensor::from_vector(golden_values(c, key), c.at(key + "_shape").get<Shape>(), dtype);
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

inline Tensor golden_indices(const Json& c, const std::string& key, const Shape& shape) {
  return Tensor::from_vector(c.at(key).get<std::vector<int64_t>>(), shape);
}

}  // namespace sagan::testing
