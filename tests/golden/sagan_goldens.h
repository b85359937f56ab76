// Reads the tensor files written by tests/golden/make_sagan_goldens.py (and
// make_trajectory_goldens.py): a JSON index {"meta": ..., "tensors": {name:
// {dtype, shape, offset}}} beside a .bin of little-endian float64 / int64
// values or uint8 pixels (loaded as int64).
#pragma once
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "sagan/models/config.h"
#include "tests/support/golden.h"

namespace sagan::testing {

struct GoldenFile {
  nlohmann::json meta;
  std::map<std::string, Tensor> tensors;

  const Tensor& at(const std::string& name) const {
    auto it = tensors.find(name);
    SAGAN_CHECK(it != tensors.end(), "golden: no tensor '{}'", name);
    return it->second;
  }
  // Entries under "prefix/" with the prefix stripped (a state dict).
  std::map<std::string, Tensor> group(const std::string& prefix) const {
    std::map<std::string, Tensor> out;
    for (auto& [k, t] : tensors)
      if (k.rfind(prefix, 0) == 0) out.emplace(k.substr(prefix.size()), t);
    return out;
  }
};

// The SaganConfig of a golden file's "config" entry (config_meta() in
// make_sagan_goldens.py).
inline SaganConfig golden_sagan_config(const nlohmann::json& j) {
  SaganConfig c;
  c.resolution = j.at("resolution");
  c.ch = j.at("ch");
  c.g_ch = j.value("g_ch", int64_t{0});  // 0: ch (files written before g_ch/d_ch)
  c.d_ch = j.value("d_ch", int64_t{0});
  c.z_dim = j.at("z_dim");
  c.num_classes = j.at("num_classes");
  c.g_attn_res = j.at("g_attn_res").get<std::vector<int64_t>>();
  c.d_attn_res = j.at("d_attn_res").get<std::vector<int64_t>>();
  c.pooled_attention = j.at("pooled_attention");
  c.image_channels = j.at("image_channels");
  return c;
}

inline GoldenFile load_golden(const std::string& stem) {
  std::ifstream js(golden_path(stem + ".json"));
  SAGAN_CHECK(js.good(), "golden: cannot open {} (run tests/golden/make_sagan_goldens.py)",
              golden_path(stem + ".json"));
  nlohmann::json index = nlohmann::json::parse(js);
  std::ifstream bin(golden_path(stem + ".bin"), std::ios::binary);
  SAGAN_CHECK(bin.good(), "golden: cannot open {}", golden_path(stem + ".bin"));
  std::vector<char> raw((std::istreambuf_iterator<char>(bin)), std::istreambuf_iterator<char>());
  GoldenFile g;
  g.meta = index["meta"];
  for (auto& [name, e] : index["tensors"].items()) {
    Shape shape = e["shape"].get<Shape>();
    size_t off = e["offset"].get<size_t>(), n = static_cast<size_t>(numel_of(shape));
    size_t width = e["dtype"] == "uint8" ? 1 : 8;
    SAGAN_CHECK(off + width * n <= raw.size(), "golden: {} runs past the end of {}.bin", name, stem);
    if (e["dtype"] == "uint8") {
      std::vector<int64_t> v(n);
      for (size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>(raw[off + i]);
      g.tensors.emplace(name, Tensor::from_vector(v, shape));
    } else if (e["dtype"] == "int64") {
      std::vector<int64_t> v(n);
      if (n) std::memcpy(v.data(), raw.data() + off, 8 * n);
      g.tensors.emplace(name, Tensor::from_vector(v, shape));
    } else {
      std::vector<double> v(n);
      if (n) std::memcpy(v.data(), raw.data() + off, 8 * n);
      g.tensors.emplace(name, Tensor::from_vector(v, shape, DType::F64));
    }
  }
  return g;
}

}  // namespace sagan::testing
