// The TOML training config reader (read_toml_config, toml++) on arbitrary
// text: refused naming the file (syntax errors, unknown keys, wrong types,
// values out of range), or a config that, when valid, survives the trip
// through TOML and JSON unchanged, but for the keys the data set or the
// launch sets (num_classes, image_channels, world_size): a settings file
// writes those commented out, so they come back as the defaults.
#include "sagan/models/train_config.h"
#include "sagan/models/train_options.h"
#include "tests/fuzz/fuzz_support.h"

using namespace sagan;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name = "fuzz.toml";
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::refuse_cleanly(name, [&] {
    TrainConfig c;
    read_toml_config(text, name, c, nullptr);
    try {
      c.validate();  // its messages name the option, not the file
    } catch (const Error&) {
      return;
    }
    std::string json = c.to_json();
    FUZZ_ASSERT(TrainConfig::from_json(json, "config.json").to_json() == json);
    std::string toml;
    try {
      toml = c.to_toml();
    } catch (const Error&) {
      return;  // a seed above 2^63 - 1 has no TOML integer (read from a float?)
    }
    TrainConfig back = TrainConfig::from_toml(toml, "config.toml");
    for (const TrainOption& o : train_options()) {
      if (!o.from_data_set) continue;
      FUZZ_ASSERT(o.get(back) == o.get(TrainConfig{}));
      o.set(back, o.get(c));
    }
    FUZZ_ASSERT(back.to_toml() == toml);
    FUZZ_ASSERT(back.to_json() == json);
  });
  return 0;
}
