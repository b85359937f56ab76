// The op test registry, in the spirit of ggml's test-backend-ops: one entry
// per op, each a list of cases (input shapes and how to fill them, and the
// op called through its front end). From each case the suites make
//   - a float64 finite-difference gradient check on the CPU
//     (tests/test_ops.cpp, label cpu), and
//   - device-vs-CPU parity in float64 and float32, outputs and input
//     gradients, with poisoned outputs and a second call that reuses cached
//     plans (tests/cuda/test_ops_parity.cpp on a GPU; tests/test_ops.cpp
//     through the CPU fallback of a stand-in device everywhere).
// Adding an op's gradient check and CUDA parity is one entry in
// tests/ops/op_cases.cpp.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "sagan/core/tensor.h"

namespace sagan::optest {

// How one input of a case is made. Values are drawn in float64 from a seed
// of the case, so every side of a comparison sees the same numbers.
struct Input {
  enum class Kind {
    Normal,        // N(0, a^2)
    Uniform,       // [a, b)
    AwayFromZero,  // |x| in [a, b), signs alternating: off the kinks of relu, abs
    Ramped,        // N(0, 1) + 0.37 * index: every pooling window has one clear maximum
    Ties,          // from {-1, -0.5, 0.5, 1}: windows tie (parity only: no derivative there)
    Index          // int64 `values`, never differentiated
  };
  Kind kind = Kind::Normal;
  Shape shape;
  double a = 1.0, b = 0.0;
  std::vector<double> values;
  bool grad = true;  // requires grad: gradient checked and compared
};

Input normal(Shape shape, double scale = 1.0);
Input uniform(Shape shape, double lo, double hi);
Input away_from_zero(Shape shape, double lo, double hi);
Input ramped(Shape shape);
Input ties(Shape shape);
Input index(Shape shape, const std::vector<int64_t>& values);
// The same input, held constant (no gradient).
Input constant(Input in);

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct OpCase {
  std::string name;  // what the case covers, e.g. "k3 s2 p1 bias"
  std::vector<Input> inputs;
  OpFn fn;                      // the op through its front end (views, composites allowed)
  bool gradcheck = true;        // false where the op has no derivative (ties)
  bool parity = true;           // false for cases only the gradcheck needs
  bool exact_forward = false;   // the device's output must equal the CPU's (max, gathers, copies)
  bool exact_backward = false;  // likewise the input gradients (max pooling routes, never sums)
  double tol_scale = 1.0;       // parity tolerance multiplier (long sums)

  OpCase& no_gradcheck() { return gradcheck = false, *this; }
  OpCase& no_parity() { return parity = false, *this; }
  OpCase& exact() { return exact_forward = exact_backward = true, *this; }
  OpCase& exact_output() { return exact_forward = true, *this; }
  OpCase& tolerance(double scale) { return tol_scale = scale, *this; }
};

struct OpEntry {
  std::string op;  // the front end's name
  std::vector<OpCase> cases;
};

// Every entry (built once).
const std::vector<OpEntry>& op_registry();

// The inputs of a case: values drawn from the case's seed, rounded through
// `values_dtype` (so float64 references hold exactly the values a float32
// device sees), stored as `dtype` on `device`; floating inputs with grad
// require grad.
std::vector<Tensor> make_inputs(const OpEntry& e, const OpCase& c, DType values_dtype, DType dtype, Device device);

}  // namespace sagan::optest
