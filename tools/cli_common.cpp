#include "tools/cli_common.h"

#include <fmt/format.h>

#include <cmath>
#include <exception>
#include <sstream>

#include "core/error.h"
#include "core/rng.h"

namespace sagan::cli {

int guarded_main(const char* tool, const std::function<int()>& body) {
  try {
    return body();
  } catch (const sagan::Error& e) {
    fmt::print(stderr, "{}: error: {}\n", tool, e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: unexpected error: {}\n", tool, e.what());
    return 2;
  }
}

int parse_and_run(const char* tool, CLI::App& app, int argc, char** argv, const std::function<int()>& run) {
  return guarded_main(tool, [&]() -> int {
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    return run();
  });
}

std::vector<int64_t> parse_class_ids(const std::string& text, int64_t K, const std::string& checkpoint) {
  std::vector<int64_t> classes;
  if (text.empty()) {
    for (int64_t k = 0; k < K; ++k) classes.push_back(k);
    return classes;
  }
  SAGAN_CHECK(K > 0, "--classes: the model in {} is unconditional", checkpoint);
  std::stringstream ss(text);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    size_t pos = 0;
    int64_t k = -1;
    try {
      k = std::stoll(tok, &pos);
    } catch (const std::exception&) {
      pos = 0;  // not a number: reported below
    }
    SAGAN_CHECK(pos == tok.size() && k >= 0 && k < K, "--classes: '{}' is not a class id in [0, {})", tok, K);
    classes.push_back(k);
  }
  return classes;
}

Tensor sample_latents(int64_t n, int64_t z_dim, uint64_t seed, double truncation, Device device) {
  Rng gen(seed);
  std::vector<double> z(static_cast<size_t>(n * z_dim));
  for (double& v : z) {
    v = gen.normal();
    while (truncation > 0 && std::abs(v) > truncation) v = gen.normal();
  }
  return Tensor::from_vector(z, {n, z_dim}, DType::F32, device);
}

}  // namespace sagan::cli
