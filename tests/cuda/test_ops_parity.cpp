// The op test registry (tests/ops/op_cases.h) on the GPU: one test case per
// op ("cuda parity: <op>", tags [cuda][ops][<op>]) runs every parity case of
// its entry on cuda:0 in float64 and float32 against the float64 CPU,
// outputs and input gradients, with the device allocator poisoned (NaN) for
// the shapes each call allocates. Ops the CUDA backend declines run through
// the CPU fallback and must agree all the same.
#include "tests/cuda/parity.h"
#include "tests/ops/op_parity.h"

#include <deque>

using namespace sagan;
using namespace sagan::optest;

namespace {

class EntryInvoker : public Catch::ITestInvoker {
 public:
  explicit EntryInvoker(size_t entry) : entry_(entry) {}
  void invoke() const override {
    const OpEntry& e = op_registry()[entry_];
    for (const OpCase& c : e.cases) {
      if (!c.parity) continue;
      for (DType dt : cudatest::float_dtypes())
        require_parity(e, c, cudatest::dev(), dt, [](const std::vector<Shape>& shapes, DType dtype) {
          cudatest::poison_allocator(shapes, dtype);
        });
    }
  }

 private:
  size_t entry_;
};

[[maybe_unused]] const bool registered = [] {
  static std::deque<std::string> names;  // Catch keeps references
  for (size_t i = 0; i < op_registry().size(); ++i) {
    const std::string& op = op_registry()[i].op;
    names.push_back("cuda parity: " + op);
    names.push_back("[cuda][ops][" + op + "]");
    Catch::AutoReg(new EntryInvoker(i), CATCH_INTERNAL_LINEINFO, "",
                   Catch::NameAndTags{names[names.size() - 2], names.back()});
  }
  return true;
}();

}  // namespace
