// Element types and devices. float64 exists on the CPU for exact gradient
// checks; int64 carries labels and indices.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sagan/core/error.h"

namespace sagan {

enum class DType : uint8_t { F32, F64, I64 };

constexpr size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 8; }
constexpr bool is_floating(DType t) { return t != DType::I64; }
constexpr std::string_view dtype_name(DType t) {
  return t == DType::F32 ? "float32" : t == DType::F64 ? "float64" : "int64";
}

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::I64;
}

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  friend bool operator==(const Device&, const Device&) = default;
  static Device cpu() { return {}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  // "cpu", "cuda", "cuda:1"; throws naming the string otherwise.
  static Device parse(std::string_view s);
};

std::string device_name(Device d);

// Calls f with a typed null pointer for the floating dtype t (float or double).
template <class F>
decltype(auto) dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::F32:
      return f(static_cast<float*>(nullptr));
    case DType::F64:
      return f(static_cast<double*>(nullptr));
    default:
      SAGAN_FAIL("{}: expected a floating dtype, got {}", op, dtype_name(t));
  }
}
template <class F>
decltype(auto) dispatch_all(DType t, F&& f) {
  switch (t) {
    case DType::F32:
      return f(static_cast<float*>(nullptr));
    case DType::F64:
      return f(static_cast<double*>(nullptr));
    default:
      return f(static_cast<int64_t*>(nullptr));
  }
}

}  // namespace sagan

template <>
struct fmt::formatter<sagan::DType> : fmt::formatter<std::string_view> {
  auto format(sagan::DType t, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(sagan::dtype_name(t), ctx);
  }
};
template <>
struct fmt::formatter<sagan::Device> : fmt::formatter<std::string_view> {
  auto format(sagan::Device d, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(sagan::device_name(d), ctx);
  }
};
