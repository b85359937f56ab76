#include "sagan/models/data_parallel.h"

#include <cstring>

#include "sagan/core/autograd.h"
#include "sagan/core/hash.h"
#include "sagan/core/ops.h"
#include "sagan/dist/agree.h"
#include "sagan/layers/batch_norm.h"
#include "sagan/layers/flat_parameters.h"

namespace sagan {

namespace {
// FNV-1a over the bytes of each tensor's CPU copy (a debug check: exact
// bytes, so any difference between ranks shows).
uint64_t hash_tensors(const std::vector<Tensor>& ts) {
  uint64_t h = kFnv1aOffset;
  for (const Tensor& t : ts) {
    Tensor c = t.detach().to(Device::cpu()).contiguous();
    h = fnv1a64(c.raw_data(), static_cast<size_t>(c.numel()) * dtype_size(c.dtype()), h);
  }
  return h;
}
}  // namespace

DataParallel::DataParallel(std::shared_ptr<dist::Communicator> comm, nn::Module& g, nn::Module& d, bool sync_bn)
    : comm_(std::move(comm)), sync_bn_(sync_bn) {
  SAGAN_CHECK(comm_ != nullptr, "DataParallel: no communicator");
  SAGAN_CHECK(g.flat_parameters() && d.flat_parameters(), "DataParallel: G and D must be flattened first");
  g_buckets_ = std::make_unique<nn::GradBuckets>(*g.flat_parameters(), comm_, kGradBuckets);
  d_buckets_ = std::make_unique<nn::GradBuckets>(*d.flat_parameters(), comm_, kGradBuckets);
  nn::set_sync_batch_norm(g, sync_bn_ ? comm_ : nullptr);
  nn::set_sync_batch_norm(d, sync_bn_ ? comm_ : nullptr);
}

void DataParallel::average_bn_statistics(nn::Module& g) {
  if (sync_bn_ || comm_->size() == 1) return;
  NoGradGuard ng;
  for (Tensor t : nn::batch_norm_statistics(g)) {
    Tensor sum = t.contiguous().clone();
    comm_->all_reduce_sum(sum);
    t.copy_(mul(sum, 1.0 / comm_->size()));
  }
}

void DataParallel::average(std::vector<double>& values) {
  if (comm_->size() == 1 || values.empty()) return;
  Tensor t = Tensor::from_vector(values, {static_cast<int64_t>(values.size())}, DType::F64);
  comm_->all_reduce_sum(t);
  std::vector<double> sum = t.to_vector();
  for (size_t i = 0; i < values.size(); ++i) values[i] = sum[i] / comm_->size();
}

void DataParallel::check_in_sync(const std::vector<std::pair<std::string, std::vector<Tensor>>>& parts,
                                 const std::string& when, const std::string& meaning) {
  // Every rank gathers the same hashes and so throws the same error at the
  // same point, outside any collective: an agreed error (dist/agree.h), which
  // rank 0 alone prints and which ends the job without MPI_Abort.
  for (const auto& [name, tensors] : parts) {
    std::vector<uint64_t> hashes = comm_->all_gather(hash_tensors(tensors));
    for (size_t r = 1; r < hashes.size(); ++r)
      if (hashes[r] != hashes[0])
        throw dist::AgreedError(fmt::format("{} the {} of rank {} differ from rank 0's (hash {:016x} vs {:016x}): {}",
                                            when, name, r, hashes[r], hashes[0], meaning));
  }
}

uint64_t DataParallel::rank_seed(uint64_t seed, int rank) {
  if (rank == 0) return seed;
  uint64_t x = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(rank);  // splitmix64 of a rank-shifted seed
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace sagan
