// The safetensors reader (core/io/safetensors.cpp) on arbitrary bytes: every
// file is either refused with an error naming it, or loads tensors that tile
// the data section exactly.
#include "sagan/core/io/safetensors.h"
#include "tests/fuzz/fuzz_support.h"

using namespace sagan;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name = "fuzz.safetensors";
  fuzz::refuse_cleanly(name, [&] {
    io::SafetensorsFile f = io::parse_safetensors(data, size, name);
    uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = (header << 8) | data[i];
    uint64_t bytes = 0;
    for (const auto& [tensor_name, t] : f.tensors) {
      FUZZ_ASSERT(f.contains(tensor_name) && f.at(tensor_name).raw_data() == t.raw_data());
      FUZZ_ASSERT(t.device().is_cpu() && t.is_contiguous());
      bytes += static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    }
    FUZZ_ASSERT(8 + header + bytes == size);
  });
  return 0;
}
