// Gradient averaging for data-parallel training (issue 13): a model's flat
// gradient buffer (flat_parameters.h) split into a few large buckets of
// consecutive parameter ranges, each all-reduced as soon as backward has
// finished every gradient in it (FlatParameters' ready hook), so the
// transfer of the last layers' gradients overlaps backward through the
// first ones, as in PyTorch DDP.
//
//   grad():  [ bucket 0 | bucket 1 | bucket 2 | bucket 3 ]
//   backward reaches the output layers (the end of grad()) first, so
//   bucket 3 is usually launched first, bucket 0 last.
//
// begin() before backward, finish() after it: finish() starts the buckets no
// hook completed (parameters that got no gradient this pass; their zeros are
// summed like the rest), waits for all, and divides by the number of ranks.
// Buckets are launched in the order backward completes them, which is the
// same on every rank (same graph, same autograd order), as MPI and NCCL
// require.
#pragma once
#include <memory>
#include <vector>

#include "sagan/dist/communicator.h"
#include "sagan/layers/flat_parameters.h"

namespace sagan::nn {

class GradBuckets {
 public:
  // Installs the ready hook on `flat` (which must have a gradient buffer
  // and outlive this); `buckets` >= 1 is an upper bound (a model with fewer
  // parameters gets fewer).
  GradBuckets(FlatParameters& flat, std::shared_ptr<dist::Communicator> comm, int buckets);
  ~GradBuckets();  // removes the hook
  GradBuckets(const GradBuckets&) = delete;
  GradBuckets& operator=(const GradBuckets&) = delete;

  void begin();
  // grad() = the mean of grad() over ranks.
  void finish();

  struct Range {
    int64_t begin, end;  // elements of grad()
  };
  std::vector<Range> buckets() const;
  // Buckets the last pass started from the hook, i.e. during backward.
  int launched_in_backward() const { return launched_in_backward_; }

 private:
  struct Bucket {
    int64_t begin = 0, end = 0;
    int ranges = 0, ready = 0;
    std::unique_ptr<dist::PendingReduce> pending;
  };
  void on_ready(const ParamRange& r);
  void launch(Bucket& b);

  FlatParameters& flat_;
  std::shared_ptr<dist::Communicator> comm_;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_;  // per parameter range
  std::vector<char> seen_;      // per parameter range, this pass
  bool armed_ = false;
  int launched_in_backward_ = 0;
};

}  // namespace sagan::nn
