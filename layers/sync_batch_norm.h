// Cross-replica (synchronised) batch normalisation for data-parallel
// training (--sync-bn, as BigGAN trains): the batch statistics are those of
// the global batch, every rank's examples together, computed with two
// all-reduces of per-channel sums (the mean, then the sum of squared
// deviations from it: no E[x^2] - E[x]^2 cancellation). The all-reduces are
// autograd ops whose backward all-reduces the incoming gradient, so backward
// gives every rank its share of the global batch's exact gradient: summed
// over ranks (GradBuckets), the parameter gradients equal those of one
// process normalising the whole batch (tests/mpi/dp_check.cpp checks it on
// 2 ranks; the single-rank case is checked against batch_norm in
// tests/test_data_parallel.cpp).
#pragma once
#include <memory>

#include "sagan/core/tensor.h"
#include "sagan/dist/communicator.h"

namespace sagan::nn {

// y = (x - mean) / sqrt(var + eps) over dims (0, 2, ...) of x (N, C, ...),
// with mean and biased var of the global batch; running statistics (when
// defined) blended like batch_norm (momentum, unbiased var of the global
// batch). Training mode only: in eval mode use batch_norm.
// The graph keeps `comm` alive until its backward has run (the module may
// be given another communicator, or none, in between).
Tensor sync_batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, double momentum, double eps,
                       const std::shared_ptr<dist::Communicator>& comm);

// out = sum over ranks of x; backward: the gradient summed over ranks.
Tensor all_reduce_sum(const Tensor& x, const std::shared_ptr<dist::Communicator>& comm);

}  // namespace sagan::nn
