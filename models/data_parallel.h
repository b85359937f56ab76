// What the Trainer adds when it is one rank of a data-parallel job
// (docs/distributed.md): gradient buckets on G and D (layers/grad_buckets.h),
// cross-replica BatchNorm in G with --sync-bn, BN running statistics
// averaged over ranks otherwise (so that every rank holds what rank 0 saves),
// logged values averaged over ranks, and the --check-sync-every hash check.
// The streams every rank draws from its own seed are rank_seed's.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "sagan/dist/communicator.h"
#include "sagan/layers/grad_buckets.h"
#include "sagan/layers/module.h"

namespace sagan {

class DataParallel {
 public:
  // Buckets per network: a few large all-reduces, the first launched while
  // backward still has most of the network to go.
  static constexpr int kGradBuckets = 4;

  // g and d must be flattened with gradient buffers and outlive this.
  DataParallel(std::shared_ptr<dist::Communicator> comm, nn::Module& g, nn::Module& d, bool sync_bn);

  dist::Communicator& comm() { return *comm_; }
  const dist::Communicator& comm() const { return *comm_; }
  int rank() const { return comm_->rank(); }
  int size() const { return comm_->size(); }
  nn::GradBuckets& g_buckets() { return *g_buckets_; }
  nn::GradBuckets& d_buckets() { return *d_buckets_; }
  const nn::GradBuckets& g_buckets() const { return *g_buckets_; }
  const nn::GradBuckets& d_buckets() const { return *d_buckets_; }

  // In each iteration, before the EMA update: G's BN running statistics become their mean over
  // ranks (nothing to do with --sync-bn, where they are equal already).
  void average_bn_statistics(nn::Module& g);
  // values[i] = their mean over ranks (losses and D outputs for the log).
  void average(std::vector<double>& values);
  // t = its sum over ranks, in place on its device, with no host read (the
  // NaN gate of Trainer::step).
  void sum_over_ranks(const Tensor& t) { comm_->all_reduce_sum(t); }
  // Throws on every rank alike, naming the part and the ranks, when a hash
  // of any of `parts` (name, tensors) differs between ranks: "<when> the G
  // parameters of rank 1 differ from rank 0's (...): <meaning>" (`when`
  // ends as it should lead in: "--check-sync-every: at step 4").
  void check_in_sync(const std::vector<std::pair<std::string, std::vector<Tensor>>>& parts, const std::string& when,
                     const std::string& meaning);

  // The seed of rank r's own stream drawn from `seed` (rank 0: seed itself,
  // so a one-rank job draws what a plain run does).
  static uint64_t rank_seed(uint64_t seed, int rank);

 private:
  std::shared_ptr<dist::Communicator> comm_;
  bool sync_bn_;
  std::unique_ptr<nn::GradBuckets> g_buckets_, d_buckets_;
};

}  // namespace sagan
