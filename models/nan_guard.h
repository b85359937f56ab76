// The NaN policy of a training run (--on-nan stop|skip, --max-nan-skips).
// Each update is judged by the values that tell whether it is finite: the
// loss, D's mean outputs (taken before the hinge's relu, so that an infinite
// output counts too: relu(inf) = inf but relu(-inf) = 0) and the gradient norm (one
// reduction over the model's flat gradient buffer). The Trainer decides on
// the device, without waiting for it: a gate that turns NaN at the first
// non-finite update of an iteration holds back that update and every later
// one (Adam, EMA; models/trainer.h). After the iteration it reads the values
// once and asks check() about the update that closed the gate.
//
//   stop (default): a non-finite value throws, naming the step, the value
//                   and the first non-finite tensor; no weight was updated.
//   skip:           the update is dropped (no Adam step, and the rest of the
//                   iteration's updates are dropped too; the Trainer puts
//                   G's and D's buffers, BN statistics and SN vectors, back
//                   as the iteration found them); after max_skips iterations
//                   skipped in a row it throws as stop.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sagan/layers/module.h"

namespace sagan {

class NanGuard {
 public:
  NanGuard(std::string policy, int64_t max_skips_in_a_row);

  // The networks of a run by name prefix ("D", "G"): the one being updated
  // first, the one it saw besides.
  using Networks = std::vector<std::pair<std::string, const nn::Module*>>;

  // Iteration `step` (1-based), an update of nets[0]: true when every value
  // is finite and no other rank of a data-parallel job found one that was
  // not (elsewhere). Otherwise message() says what (the non-finite values,
  // then the first non-finite tensor, see first_non_finite_tensor) and stop
  // throws it; skip returns false, or throws once the limit is reached.
  bool check(int64_t step, const std::vector<std::pair<std::string, double>>& values, const Networks& nets,
             bool elsewhere = false);
  // Once per iteration, after its updates: whether any was dropped.
  void end_iteration(bool skipped);

  int64_t skipped_total() const { return skipped_total_; }
  int64_t skipped_in_a_row() const { return in_a_row_; }
  // Restored from a checkpoint, so that a resumed run stops where an
  // uninterrupted one would.
  void set_skipped(int64_t total, int64_t in_a_row) {
    skipped_total_ = total;
    in_a_row_ = in_a_row;
  }
  const std::string& message() const { return message_; }  // the last non-finite update
  // Which ranks of a data-parallel job found non-finite values first ("rank
  // 1 of 2"), and whether this rank is one: the messages of the others name
  // them.
  void set_ranks_with_non_finite(std::string ranks, bool this_rank) {
    ranks_ = std::move(ranks);
    ranks_include_this_ = this_rank;
  }

 private:
  std::string policy_;
  int64_t max_skips_;
  int64_t skipped_total_ = 0, in_a_row_ = 0;
  std::string message_;
  std::string ranks_;
  bool ranks_include_this_ = false;
};

// "parameter G.linear.bias", "buffer D.blocks.1.conv1.u", "gradient of
// D.blocks.0.conv1.weight_orig", or "" when all are finite: the first
// non-finite tensor, looking for a cause before its effects: the parameters
// and buffers of every network, then the gradients of the first.
std::string first_non_finite_tensor(const NanGuard::Networks& nets);

}  // namespace sagan
