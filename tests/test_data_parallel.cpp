// Data parallelism in one process (the two-rank checks are tests/mpi/):
// cross-replica BN's float64 gradient and its agreement with batch_norm on
// one rank, gradient buckets tiling the flat buffer and starting during
// backward, the loader's shards, the launch environment, the choice of
// communicator and the one-GPU-per-rank rule.
#include <catch2/catch.hpp>

#include "sagan/core/autograd.h"
#include "sagan/core/ops.h"
#include "sagan/dist/launch.h"
#include "sagan/dist/single_communicator.h"
#include "sagan/layers/grad_buckets.h"
#include "sagan/layers/sync_batch_norm.h"
#include "sagan/models/data/loader.h"
#include "sagan/models/trainer.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;
using namespace sagan::testing;

namespace {
// A communicator that counts the reductions it is asked for (sums over one
// rank are the identity).
struct CountingCommunicator : dist::SingleCommunicator {
  int started = 0, blocking = 0;
  void all_reduce_sum(const Tensor& t) override {
    ++blocking;
    SingleCommunicator::all_reduce_sum(t);
  }
  std::unique_ptr<dist::PendingReduce> start_all_reduce_sum(const Tensor& t) override {
    ++started;
    return SingleCommunicator::start_all_reduce_sum(t);
  }
};

// A world of `n` ranks that, like MPI, reduces CPU tensors only.
struct CpuOnlyWorld : dist::SingleCommunicator {
  int n, local;
  CpuOnlyWorld(int n, int local) : n(n), local(local) {}
  const char* backend_name() const override { return "mpi"; }
  int size() const override { return n; }
  int local_rank() const override { return local; }
  bool serves(Device d) const override { return d.is_cpu(); }
};

// Two ranks as rank 0 sees them when rank 1 holds the same batch: every
// all-reduce doubles its tensor, and the gathered counts come twice.
struct TwinRanks : dist::SingleCommunicator {
  int size() const override { return 2; }
  void all_reduce_sum(const Tensor& t) override {
    NoGradGuard ng;
    Tensor h = t;
    h.copy_(mul(t, 2.0));
  }
  std::vector<uint64_t> all_gather(uint64_t value) override { return {value, value}; }
};
}  // namespace

TEST_CASE("sync_batch_norm has the float64 gradient of its formula", "[data_parallel]") {
  auto one = std::make_shared<dist::SingleCommunicator>();
  Rng gen(5);
  Tensor x = randn64({3, 2, 3, 2}, gen);
  auto r =
      gradcheck([&](const std::vector<Tensor>& in) { return nn::sync_batch_norm(in[0], {}, {}, 0.1, 1e-5, one); }, {x});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("sync_batch_norm on one rank is batch_norm, running statistics included", "[data_parallel]") {
  auto counting = std::make_shared<CountingCommunicator>();
  const std::shared_ptr<dist::Communicator> one = counting;
  Rng gen(6);
  Tensor x = randn64({4, 3, 5, 5}, gen), w = randn64({4, 3, 5, 5}, gen, false);
  Tensor rm1 = Tensor::zeros({3}, DType::F64), rv1 = Tensor::ones({3}, DType::F64);
  Tensor rm2 = rm1.clone(), rv2 = rv1.clone();
  Tensor y1 = nn::sync_batch_norm(x, rm1, rv1, 0.1, 1e-5, one);
  sum(mul(y1, w)).backward();
  Tensor g1 = x.grad().clone();
  x.set_grad(Tensor());
  Tensor y2 = batch_norm(x, rm2, rv2, true, 0.1, 1e-5);
  sum(mul(y2, w)).backward();
  CHECK(allclose(y1, y2, 1e-12, 1e-12).ok);
  CHECK(allclose(x.grad(), g1, 1e-10, 1e-12).ok);
  CHECK(allclose(rm1, rm2, 1e-12, 1e-12).ok);
  CHECK(allclose(rv1, rv2, 1e-12, 1e-12).ok);
  CHECK(counting->blocking == 4);  // mean and variance forward, their gradients backward
}

TEST_CASE("sync_batch_norm over two ranks is batch_norm over the batch of both", "[data_parallel]") {
  // On one rank every reduction is the identity and the job's count is the
  // local one, so the test above cannot tell them apart (the two-rank runs
  // are tests/mpi/, built with MPI only). With rank 1 a copy of rank 0 the
  // statistics are those of the batch (x, x): m = 2 B H W values per channel.
  auto twin = std::make_shared<TwinRanks>();
  Rng gen(8);
  const int64_t B = 3;
  Tensor x = randn64({B, 2, 3, 4}, gen), w = randn64({B, 2, 3, 4}, gen, false);
  Tensor rm1 = Tensor::zeros({2}, DType::F64), rv1 = Tensor::ones({2}, DType::F64);
  Tensor rm2 = rm1.clone(), rv2 = rv1.clone();
  Tensor y1 = nn::sync_batch_norm(x, rm1, rv1, 0.1, 1e-5, twin);
  sum(mul(y1, w)).backward();
  // Both halves as independent inputs: the first half's gradient is rank 0's
  // (its loss and rank 1's, through the shared statistics).
  Tensor both = concat({x.detach(), x.detach()}, 0).set_requires_grad(true);
  Tensor y2 = batch_norm(both, rm2, rv2, true, 0.1, 1e-5);
  sum(mul(y2, concat({w, w}, 0))).backward();
  CHECK(allclose(y1, y2.slice(0, 0, B).contiguous().to_vector(), 1e-12, 1e-12).ok);
  CHECK(allclose(x.grad(), both.grad().slice(0, 0, B).contiguous().to_vector(), 1e-10, 1e-12).ok);
  CHECK(allclose(rm1, rm2, 1e-12, 1e-12).ok);
  CHECK(allclose(rv1, rv2, 1e-12, 1e-12).ok);  // unbiased over m = 2 B H W
}

TEST_CASE("gradient buckets tile the flat gradient buffer and start during backward", "[data_parallel]") {
  auto comm = std::make_shared<CountingCommunicator>();
  Rng gen(1);
  // Three weights of 256, 256 and 8 elements (64-element aligned: 256, 256, 64).
  struct Net : nn::Module {
    explicit Net(Rng& g) {
      register_parameter("a", Tensor::randn({8, 32}, g));
      register_parameter("b", Tensor::randn({32, 8}, g));
      register_parameter("c", Tensor::randn({8, 1}, g));
    }
    Tensor last(const Tensor& h) { return matmul(h, param("c")); }
    Tensor forward(const Tensor& x) { return last(relu(matmul(relu(matmul(x, param("a"))), param("b")))); }
  } net(gen);
  net.flatten_parameters();
  nn::GradBuckets buckets(*net.flat_parameters(), comm, 3);
  auto rs = buckets.buckets();
  REQUIRE(rs.size() == 3);
  CHECK(rs.front().begin == 0);
  CHECK(rs.back().end == net.flat_parameters()->size());
  for (size_t i = 1; i < rs.size(); ++i) CHECK(rs[i].begin == rs[i - 1].end);
  Tensor x = Tensor::randn({5, 8}, gen);
  net.flat_parameters()->zero_grad();
  buckets.begin();
  sum(net.forward(x)).backward();
  CHECK(buckets.launched_in_backward() == 3);  // every parameter got its gradient
  buckets.finish();
  CHECK(comm->started == 3);
  // A pass that leaves a bucket without gradients: finish() still reduces it.
  net.flat_parameters()->zero_grad();
  buckets.begin();
  sum(net.last(Tensor::randn({5, 8}, gen))).backward();
  CHECK(buckets.launched_in_backward() < 3);
  buckets.finish();
  CHECK(comm->started == 6);
}

TEST_CASE("loader shards: rank r reads its slice of the single loader's global batches", "[data_parallel]") {
  auto ds = std::make_shared<TinyDataset>(13);
  data::LoaderOptions all;
  all.batch_size = 6;
  all.seed = 9;
  all.hflip = true;
  data::DataLoader whole(ds, all);
  std::vector<std::unique_ptr<data::DataLoader>> ranks;
  for (int r = 0; r < 3; ++r) {
    data::LoaderOptions o = all;
    o.batch_size = 2;
    o.shard_index = r;
    o.shard_count = 3;
    ranks.push_back(std::make_unique<data::DataLoader>(ds, o));
  }
  for (int b = 0; b < 5; ++b) {  // 2 global batches an epoch (drop_last): crosses epochs
    data::Batch w = whole.next();
    for (int r = 0; r < 3; ++r) {
      data::Batch s = ranks[static_cast<size_t>(r)]->next();
      CHECK(allclose(s.images, w.images.narrow(0, 2 * r, 2), 0, 0).ok);
      CHECK(s.labels.to_vector() == w.labels.narrow(0, 2 * r, 2).to_vector());
      CHECK(ranks[static_cast<size_t>(r)]->state() == whole.state());
    }
  }
  data::LoaderOptions bad = all;
  bad.batch_size = 5;
  bad.shard_count = 3;
  CHECK_THROWS_WITH(data::DataLoader(ds, bad), Catch::Contains("fewer than one batch of 15 (3 ranks x 5)"));
}

TEST_CASE("the launch environment: mpirun, srun and a plain run", "[data_parallel]") {
  auto env = [](std::map<std::string, std::string> vars) {
    return dist::detect_launch([vars](const char* n) -> const char* {
      auto it = vars.find(n);
      return it == vars.end() ? nullptr : it->second.c_str();
    });
  };
  dist::LaunchEnv e =
      env({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}});
  CHECK((e.launched && e.rank == 3 && e.size == 4 && e.local_rank == 1));
  e = env({{"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "2"}, {"SLURM_STEP_ID", "0"}});
  CHECK((e.launched && e.rank == 2 && e.size == 8 && e.local_rank == 2));
  // A batch script is not one of srun's tasks.
  CHECK_FALSE(env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}}).launched);
  CHECK_FALSE(env({}).launched);
}

TEST_CASE("the communicator a rank reduces with: --comm auto, mpi, nccl", "[data_parallel]") {
  using dist::Reducer;
  const Device gpu = Device::cuda(0), cpu = Device::cpu();
  // mpirun -np 1 / srun -n1 on a GPU: MPI cannot take the tensors, and one
  // rank has nothing to reduce.
  CHECK(dist::choose_reducer("auto", gpu, 1, false) == Reducer::Single);
  CHECK(dist::choose_reducer("auto", gpu, 1, true) == Reducer::Host);  // a plain run
  CHECK(dist::choose_reducer("auto", gpu, 2, false) == Reducer::Nccl);
  CHECK(dist::choose_reducer("auto", cpu, 2, true) == Reducer::Host);
  CHECK(dist::choose_reducer("nccl", gpu, 1, true) == Reducer::Nccl);
  CHECK(dist::choose_reducer("mpi", cpu, 1, true) == Reducer::Host);
  CHECK_THROWS_WITH(dist::choose_reducer("mpi", gpu, 1, false), Catch::Contains("--comm mpi: MPI reduces CPU tensors"));
  CHECK_THROWS_WITH(dist::choose_reducer("nccl", cpu, 2, true), Catch::Contains("--comm nccl: NCCL reduces GPU"));
  CHECK_THROWS_WITH(dist::choose_reducer("gloo", cpu, 1, true), Catch::Contains("--comm: 'gloo' is not one of"));
  // device_communicator builds that choice: no GPU is touched for these.
  auto world = std::make_shared<CpuOnlyWorld>(1, 0);
  CHECK(std::string(dist::device_communicator(world, gpu, "auto")->backend_name()) == "single");
  CHECK(dist::device_communicator(world, cpu, "auto") == world);
  CHECK_THROWS_WITH(dist::device_communicator(world, gpu, "mpi"), Catch::Contains("--comm mpi"));
}

TEST_CASE("NCCL ranks need a GPU each: more ranks than GPUs on a machine are refused", "[data_parallel]") {
  CHECK_NOTHROW(dist::check_gpu_per_rank(0, 1));
  CHECK_NOTHROW(dist::check_gpu_per_rank(3, 4));
  CHECK_THROWS_WITH(dist::check_gpu_per_rank(2, 2),
                    Catch::Contains("local rank 2 on this machine has no GPU of its own: 2 GPU(s) here") &&
                        Catch::Contains("at most 2 rank(s) per machine") && Catch::Contains("--device cpu"));
  // The trainer's device: ranks on the CPU, or a world of one, are never refused.
  TrainConfig cfg;
  cfg.device = "cpu";
  CpuOnlyWorld three(3, 2);
  CHECK(rank_device(cfg, &three) == Device::cpu());
  cfg.device = "auto";
  if (!cuda_available()) CHECK(rank_device(cfg, &three) == Device::cpu());
}
