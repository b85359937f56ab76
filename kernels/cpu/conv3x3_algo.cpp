#include "sagan/kernels/cpu/conv3x3_algo.h"

#include <atomic>
#include <string>

#include "sagan/core/env_setting.h"
#include "sagan/core/error.h"

namespace sagan::cpu {

namespace {
constexpr Conv3x3Algo kAlgos[] = {Conv3x3Algo::kAuto, Conv3x3Algo::kIm2col, Conv3x3Algo::kWinograd,
                                  Conv3x3Algo::kWinograd4, Conv3x3Algo::kDirect};

std::atomic<Conv3x3Algo>& algo_setting() {
  static std::atomic<Conv3x3Algo> a{env_setting("SAGAN_CONV3X3", Conv3x3Algo::kAuto, parse_conv3x3_algo)};
  return a;
}
const EnvSettingCheck check_conv3x3_setting([] { algo_setting(); });
}  // namespace

const char* conv3x3_algo_name(Conv3x3Algo algo) {
  switch (algo) {
    case Conv3x3Algo::kAuto:
      return "auto";
    case Conv3x3Algo::kIm2col:
      return "im2col";
    case Conv3x3Algo::kWinograd:
      return "winograd";
    case Conv3x3Algo::kWinograd4:
      return "winograd4";
    case Conv3x3Algo::kDirect:
      return "direct";
  }
  return "?";
}

Conv3x3Algo parse_conv3x3_algo(const std::string& text, const std::string& what) {
  std::string names;
  for (Conv3x3Algo a : kAlgos) {
    if (text == conv3x3_algo_name(a)) return a;
    names += names.empty() ? "" : ", ";
    names += conv3x3_algo_name(a);
  }
  throw Error(fmt::format("{}: '{}' is not a 3x3 convolution algorithm (one of {})", what, text, names));
}

void set_conv3x3_algo(Conv3x3Algo algo) { algo_setting().store(algo); }
Conv3x3Algo conv3x3_algo() { return algo_setting().load(); }

ConvPath conv3x3_path(int64_t ci, int64_t co, int64_t k, int64_t stride, int64_t pad, int64_t h, int64_t w) {
  if (k != 3 || stride != 1 || pad != 1) return ConvPath::kIm2col;
  switch (conv3x3_algo()) {
    case Conv3x3Algo::kIm2col:
      return ConvPath::kIm2col;
    case Conv3x3Algo::kWinograd:
      return ConvPath::kWinograd;
    case Conv3x3Algo::kWinograd4:
      return ConvPath::kWinograd4;
    case Conv3x3Algo::kDirect:
      return ConvPath::kDirect;
    case Conv3x3Algo::kAuto:
      break;
  }
  if (co < kWinogradMinChannels) return ConvPath::kDirect;
  if (ci >= kWinogradMinChannels && co >= kWinogradMinChannels) {
    auto tiles = [](int64_t n, int64_t m) { return (n + m - 1) / m; };
    const int64_t f4 = 36 * tiles(h, 4) * tiles(w, 4), f2 = 16 * tiles(h, 2) * tiles(w, 2);
    return f4 <= f2 ? ConvPath::kWinograd4 : ConvPath::kWinograd;
  }
  return ConvPath::kIm2col;
}

}  // namespace sagan::cpu
