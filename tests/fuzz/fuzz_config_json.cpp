// The JSON training config reader (TrainConfig::from_json) on arbitrary text:
// refused naming the file, or a config that, when valid, survives the trip
// through config.json that every run directory and checkpoint makes.
#include "sagan/models/train_config.h"
#include "tests/fuzz/fuzz_support.h"

using namespace sagan;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name = "fuzz.json";
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::refuse_cleanly(name, [&] {
    TrainConfig c = TrainConfig::from_json(text, name);
    try {
      c.validate();  // its messages name the option, not the file
    } catch (const Error&) {
      return;
    }
    std::string saved = c.to_json();
    TrainConfig back = TrainConfig::from_json(saved, "config.json");
    back.validate();
    FUZZ_ASSERT(back.to_json() == saved);
  });
  return 0;
}
