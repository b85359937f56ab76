// The names of the CUDA switches (kernels/cuda/settings.h: the
// attention and power-iteration implementations), which exist in every
// build: each name parses back to its value, and a bad name is rejected
// naming the source and listing the choices. Deterministic mode: on by
// default, and sagan-train's --no-deterministic reaches the switch.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "sagan/core/backend.h"
#include "sagan/core/error.h"
#include "sagan/kernels/cuda/settings.h"
#include "sagan/models/trainer.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;

TEST_CASE("attention implementation names round-trip", "[cuda_switches]") {
  for (AttentionImpl impl : {AttentionImpl::Fused, AttentionImpl::Unfused, AttentionImpl::TcF32, AttentionImpl::TcTf32,
                             AttentionImpl::TcBf16})
    CHECK(parse_attention_impl(attention_impl_name(impl), "x") == impl);
  CHECK(std::string(attention_impl_name(AttentionImpl::TcF32)) == "tc-fp32");
  CHECK(std::string(attention_impl_name(AttentionImpl::TcTf32)) == "tc-tf32");
  CHECK(std::string(attention_impl_name(AttentionImpl::TcBf16)) == "tc-bf16");
}

TEST_CASE("a bad attention implementation name is rejected with the choices", "[cuda_switches]") {
  try {
    parse_attention_impl("tc-fp16", "environment variable SAGAN_CUDA_ATTENTION");
    FAIL("no error");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("SAGAN_CUDA_ATTENTION") != std::string::npos);
    CHECK(m.find("'tc-fp16'") != std::string::npos);
    CHECK(m.find("tc-bf16") != std::string::npos);
  }
}

TEST_CASE("power-iteration implementation names round-trip and bad ones are rejected", "[cuda_switches]") {
  for (SnPowerImpl impl : {SnPowerImpl::Columns, SnPowerImpl::RowChunks})
    CHECK(parse_sn_power_impl(sn_power_impl_name(impl), "x") == impl);
  CHECK(std::string(sn_power_impl_name(SnPowerImpl::RowChunks)) == "row-chunks");
  try {
    parse_sn_power_impl("rows", "environment variable SAGAN_CUDA_SN_POWER");
    FAIL("no error");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("SAGAN_CUDA_SN_POWER") != std::string::npos);
    CHECK(m.find("'rows'") != std::string::npos);
    CHECK(m.find("row-chunks") != std::string::npos);
  }
}

TEST_CASE("deterministic mode is the default and the trainer's setting reaches it", "[cuda_switches]") {
  if (std::getenv("SAGAN_CUDA_DETERMINISTIC") == nullptr) CHECK(cuda_deterministic());
  const bool before = cuda_deterministic();
  auto ds = std::make_shared<testing::TinyDataset>(8);
  TrainConfig cfg = testing::tiny_config();
  CHECK(cfg.deterministic);
  // The Trainer's setting holds while it lives; its destructor puts back
  // what it found (a program's own setting outlives it).
  cfg.deterministic = false;
  {
    Trainer t(cfg, ds);
    CHECK_FALSE(cuda_deterministic());
  }
  CHECK(cuda_deterministic() == before);
  set_cuda_deterministic(false);
  cfg.deterministic = true;
  {
    Trainer t(cfg, ds);
    CHECK(cuda_deterministic());
  }
  CHECK_FALSE(cuda_deterministic());
  set_cuda_deterministic(before);
}

TEST_CASE("the allocation fill switch is off by default and can be set", "[cuda_switches]") {
  if (std::getenv("SAGAN_CUDA_FILL_ALLOCATIONS") == nullptr) CHECK_FALSE(cuda_fill_allocations());
  const bool before = cuda_fill_allocations();
  set_cuda_fill_allocations(true);
  CHECK(cuda_fill_allocations());
  set_cuda_fill_allocations(false);
  CHECK_FALSE(cuda_fill_allocations());
  set_cuda_fill_allocations(before);
}

TEST_CASE("SAGAN_CUDA_DECLINE's list is parsed, and a bad name is rejected naming the variable", "[cuda_switches]") {
  const std::string what = "environment variable SAGAN_CUDA_DECLINE";
  CHECK(parse_declined_kernels(" pool2d, resize_bilinear ,,", what) ==
        std::vector<KernelId>{KernelId::pool2d, KernelId::resize_bilinear});
  CHECK(parse_declined_kernels(",", what).empty());
  REQUIRE_THROWS_WITH(parse_declined_kernels("pool2d,pool3d", what),
                      Catch::Contains(what) && Catch::Contains("'pool3d'") && Catch::Contains("log_softmax"));
  REQUIRE_THROWS_WITH(parse_declined_kernels("copy", what), Catch::Contains(what) && Catch::Contains("copy"));
}
