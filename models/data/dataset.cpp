#include "models/data/dataset.h"

namespace sagan::data {

void Dataset::check_index(int64_t i) const {
  SAGAN_CHECK(i >= 0 && i < size(), "{}: index {} out of range for {} examples", name(), i, size());
}

}  // namespace sagan::data
