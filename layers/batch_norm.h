// Batch normalisation layers over NCHW, eps 1e-5, momentum 0.1, running
// statistics as buffers running_mean / running_var (no num_batches_tracked).
//
// ConditionalBatchNorm2d follows the official SAGAN code: BN without affine,
// then per-class gamma = 1 + gain[y] and beta = bias[y] from plain (not
// spectrally normalised) embeddings initialised to zero, i.e. gamma starts
// at 1 and beta at 0 for every class. With num_classes == 0 it is an
// ordinary affine BatchNorm2d (parameters weight, bias), as an unconditional
// generator needs.
#pragma once
#include <memory>
#include <vector>

#include "sagan/dist/communicator.h"
#include "sagan/layers/embedding.h"
#include "sagan/layers/module.h"

namespace sagan::nn {

// Training-mode statistics of one rank's batch, or of the global batch over
// a communicator (sync_batch_norm.h) once set_sync_communicator is called.
class BatchNormBase : public Module {
 public:
  // nullptr returns to per-rank statistics.
  void set_sync_communicator(std::shared_ptr<dist::Communicator> comm) { sync_ = std::move(comm); }
  bool synchronised() const { return sync_ != nullptr; }

 protected:
  // batch_norm or, when synchronised and training, sync_batch_norm, over the
  // running_mean / running_var buffers.
  Tensor normalise(const Tensor& x);

 private:
  std::shared_ptr<dist::Communicator> sync_;
};

// Makes every BatchNorm2d and ConditionalBatchNorm2d under m use `comm`
// (nullptr: none); returns how many there are.
int set_sync_batch_norm(Module& m, const std::shared_ptr<dist::Communicator>& comm);

// Every BatchNorm2d and ConditionalBatchNorm2d under m: its running_mean
// and running_var, in modules() order (the tensors themselves, not copies).
std::vector<Tensor> batch_norm_statistics(Module& m);

constexpr double kBatchNormEps = 1e-5;
constexpr double kBatchNormMomentum = 0.1;

class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(int64_t channels);
  Tensor forward(const Tensor& x);  // (B, C, H, W)
  int64_t channels() const { return c_; }

 protected:
  const char* type_name() const override { return "BatchNorm2d"; }

 private:
  int64_t c_;
};

class ConditionalBatchNorm2d : public BatchNormBase {
 public:
  ConditionalBatchNorm2d(int64_t channels, int64_t num_classes);
  // x (B, C, H, W), y int64 (B) (ignored when num_classes == 0)
  Tensor forward(const Tensor& x, const Tensor& y);
  int64_t channels() const { return c_; }
  int64_t num_classes() const { return k_; }

 protected:
  const char* type_name() const override { return "ConditionalBatchNorm2d"; }

 private:
  int64_t c_, k_;
  std::shared_ptr<Embedding> gain_, bias_;
};

}  // namespace sagan::nn
