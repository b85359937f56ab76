#include "sagan/models/trainer.h"

#include <cmath>
#include <cstdlib>

#include "sagan/core/matmul_precision.h"
#include "sagan/core/ops.h"
#include "sagan/core/warning.h"
#include "sagan/dist/launch.h"
#include "sagan/dist/single_communicator.h"
#include "sagan/kernels/cuda/settings.h"
#include "sagan/layers/flat_parameters.h"
#include "sagan/models/data_parallel.h"

namespace sagan {

Device resolve_device(const std::string& name, int local_rank, const std::string& option) {
  const int rank_gpu = local_rank >= 0 && cuda_device_count() > 0 ? local_rank % cuda_device_count() : 0;
  if (name == "auto") return cuda_available() ? Device::cuda(rank_gpu) : Device::cpu();
  Device d;
  try {
    d = name == "cuda" ? Device::cuda(rank_gpu) : Device::parse(name);
  } catch (const Error&) {
    SAGAN_FAIL("{}: '{}' is not a device (auto, cpu, cuda or cuda:N)", option, name);
  }
  if (d.is_cuda())
    SAGAN_CHECK(d.index < cuda_device_count(), "{} {}: {} CUDA device(s) present{}", option, name, cuda_device_count(),
                cuda_device_count() == 0 ? " (or this build has no CUDA backend)" : "");
  return d;
}

namespace {
// A launched job's ranks, or --comm nccl alone (a one-rank NCCL job): the
// gradients go through a reducer.
bool trains_data_parallel(const TrainConfig& cfg, const dist::Communicator* comm) {
  return (comm && std::string(comm->backend_name()) != "single") || cfg.comm == "nccl";
}
}  // namespace

Device rank_device(const TrainConfig& cfg, const dist::Communicator* comm, const ConfigSources& sources) {
  const Device d = resolve_device(cfg.device, comm ? comm->local_rank() : -1, sources.where("device"));
  SAGAN_CHECK(!cfg.cuda_graph || d.is_cuda(), "{}: needs a CUDA device; this run is on {}", sources.where("cuda_graph"),
              device_name(d));
  if (!trains_data_parallel(cfg, comm)) return d;
  const int world = comm ? comm->size() : 1;  // --comm nccl alone: a one-rank NCCL job
  const dist::Reducer reducer = dist::choose_reducer(cfg.comm, d, world, comm ? comm->serves(d) : true);
  // One rank (a plain run, mpirun -np 1) has a GPU of its own whatever the
  // reducer; several on a GPU can only go through NCCL. Two of them sharing
  // one GPU is certain only when the GPU was picked by local rank and each
  // rank sees every GPU of the machine: a scheduler that gives each rank its
  // own (CUDA_VISIBLE_DEVICES per rank, srun --gpus-per-task) shows each
  // rank one GPU, and an explicit cuda:N is the user's choice.
  const bool by_local_rank = cfg.device == "auto" || cfg.device == "cuda";
  if (world > 1 && d.is_cuda() && by_local_rank && std::getenv("CUDA_VISIBLE_DEVICES") == nullptr &&
      reducer == dist::Reducer::Nccl)
    dist::check_gpu_per_rank(comm->local_rank(), cuda_device_count());
  return d;
}

void check_data_fills_a_batch(const char* what, const data::Dataset& d, int64_t batch_size, int64_t accumulate,
                              int64_t world_size) {
  SAGAN_CHECK(d.size() >= batch_size * accumulate * world_size,
              "{}{}data set {} has {} images, fewer than one global batch of --batch-size {}{}{}", what,
              *what != '\0' ? ": " : "", d.name(), d.size(), batch_size,
              accumulate > 1 ? fmt::format(" x --accumulate {}", accumulate) : std::string(),
              world_size > 1 ? fmt::format(" x {} ranks", world_size) : std::string());
}

void check_resume_passes(const std::string& what, const TrainConfig& written, int64_t world_size, int64_t accumulate) {
  const int64_t passes = written.world_size * written.accumulate;
  if (world_size * accumulate == passes) return;
  auto split = [&](int64_t ranks, int64_t acc) {
    return fmt::format("{} rank(s) x {} pass(es) of {} (global batch {})", ranks, acc, written.batch_size,
                       ranks * acc * written.batch_size);
  };
  // --sync-bn takes one pass per rank (TrainConfig's rules): a remedy that
  // accumulates passes turns it off too, or launches the run's ranks.
  const std::string no_sync_bn =
      written.sync_bn ? " --no-sync-bn (the run has --sync-bn, which takes one pass per rank)" : "";
  std::string how;
  if (passes % world_size == 0 && !(written.sync_bn && passes / world_size > 1))
    how = fmt::format("with {} rank(s), give --accumulate {}", world_size, passes / world_size);
  else if (passes % world_size == 0)
    how = fmt::format("launch {} rank(s), or with {} rank(s) give --accumulate {}{}", passes, world_size,
                      passes / world_size, no_sync_bn);
  else if (passes == 1)
    how = "launch 1 rank, without --accumulate";
  else
    how = fmt::format("launch {} rank(s), or a number of ranks that divides {} with --accumulate {} / ranks{}", passes,
                      passes, passes, written.sync_bn ? " and" + no_sync_bn : "");
  SAGAN_FAIL(
      "{}: written by a run of {}, resumed with {}: a resume keeps the global batch and its number of passes "
      "(steps, the EMA and the data position count global batches, and each pass draws its own latents); {}",
      what, split(written.world_size, written.accumulate), split(world_size, accumulate), how);
}

namespace {
constexpr uint64_t kSampleStream = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kAugmentStream = 0xD1FFA06D1FFA06D1ull;
}  // namespace

namespace {
// A Trainer built from code gets the checks a config file or command line
// gets (n_dis 0 would fail later as an out-of-range index, not a sagan::Error).
TrainConfig checked(TrainConfig cfg) {
  cfg.validate(ConfigSources::code());
  return cfg;
}
}  // namespace

Trainer::Trainer(TrainConfig cfg, std::shared_ptr<const data::Dataset> dataset, DType dtype,
                 std::shared_ptr<dist::Communicator> comm)
    : cfg_(checked(std::move(cfg))),
      switches_(cfg_.deterministic, parse_matmul_precision(cfg_.precision, "precision")),
      device_(rank_device(cfg_, comm.get(), ConfigSources::code())),
      dtype_(dtype),
      dataset_(std::move(dataset)),
      rng_(cfg_.seed ^ kSampleStream),
      diffaug_(nn::DiffAugmentPolicy::parse(cfg_.diffaug)),
      aug_rng_(cfg_.seed ^ kAugmentStream),
      nan_guard_(cfg_.on_nan, cfg_.max_nan_skips),
      inputs_stage_(device_),
      scales_stage_(device_) {
  SAGAN_CHECK(dataset_ != nullptr, "Trainer: no data set");
  cfg_.model.num_classes = cfg_.unconditional ? 0 : dataset_->num_classes();
  cfg_.model.image_channels = dataset_->channels();
  // --comm nccl in a plain run: a one-rank NCCL job (the NCCL path on one GPU).
  const bool parallel = trains_data_parallel(cfg_, comm.get());
  if (parallel && !comm) comm = std::make_shared<dist::SingleCommunicator>();
  cfg_.world_size = comm ? comm->size() : 1;
  check_data_fills_a_batch("Trainer", *dataset_, cfg_.batch_size, cfg_.accumulate, cfg_.world_size);

  // A rank's loader batch holds its passes' micro-batches, in pass order:
  // pass k of rank r reads the examples virtual rank r x accumulate + k of
  // a job of world_size x accumulate ranks would.
  data::LoaderOptions lo;
  lo.batch_size = cfg_.batch_size * cfg_.accumulate;
  lo.resolution = cfg_.model.resolution;
  lo.upscale = io::parse_upscale(cfg_.resize);
  lo.hflip = cfg_.hflip;
  lo.seed = cfg_.seed;
  lo.shard_index = comm ? comm->rank() : 0;
  lo.shard_count = cfg_.world_size;
  loader_ = std::make_unique<data::DataLoader>(dataset_, lo);

  Rng init(cfg_.seed);
  g_ = std::make_unique<SaganGenerator>(cfg_.model, init);
  d_ = std::make_unique<SaganDiscriminator>(cfg_.model, init);
  g_ema_ = std::make_unique<SaganGenerator>(cfg_.model, init);
  SAGAN_CHECK(dtype_ == DType::F32 || dtype_ == DType::F64, "Trainer: models must be float32 or float64, got {}",
              dtype_name(dtype_));
  for (nn::Module* m : {static_cast<nn::Module*>(g_.get()), static_cast<nn::Module*>(d_.get()),
                        static_cast<nn::Module*>(g_ema_.get())}) {
    m->to(dtype_);
    m->to(device_);
  }
  // Each model's parameters in one buffer, gradients in another: Adam, the
  // EMA and the gradient norm are one call each. The EMA copy is never
  // trained: no gradient buffer.
  g_->flatten_parameters();
  d_->flatten_parameters();
  g_ema_->flatten_parameters(/*with_grad=*/false);
  SAGAN_CHECK(g_->flat_parameters()->same_layout(*g_ema_->flat_parameters()),
              "Trainer: the EMA generator's parameter layout differs from G's");
  {
    NoGradGuard ng;
    g_ema_->load_state(g_->state());
  }
  g_ema_->eval();
  opt_g_ = std::make_unique<nn::Adam>(*g_, cfg_.adam_g);
  opt_d_ = std::make_unique<nn::Adam>(*d_, cfg_.adam_d);
  if (parallel) {
    dp_ = std::make_unique<DataParallel>(dist::device_communicator(comm, device_, cfg_.comm), *g_, *d_, cfg_.sync_bn);
  }
  latent_seed_ = rng_.seed();
  aug_seed_ = aug_rng_.seed();
  place_first_pass_streams();
  if (cfg_.cuda_graph) set_step_graph(true);  // rank_device refused it off a GPU
}

Trainer::~Trainer() = default;

// Process-wide: every op from here on. Trainers alive at the same time share
// the switches (the last one built set them; each one destroyed puts back
// what it found, so lifetimes are best nested).
Trainer::SwitchScope::SwitchScope(bool deterministic, MatmulPrecision precision)
    : saved_deterministic(cuda_deterministic()), saved_precision(matmul_precision()) {
  set_cuda_deterministic(deterministic);
  set_matmul_precision(precision);
}

Trainer::SwitchScope::~SwitchScope() {
  set_cuda_deterministic(saved_deterministic);
  set_matmul_precision(saved_precision);
}

void Trainer::set_step_graph(bool on) {
  // Data-parallel steps are captured too: on GPUs their reductions are
  // NCCL's, queued on streams with event edges (dist/nccl_communicator.h),
  // and every rank captures and replays at the same iterations.
  step_graph_ = on;
  graphs_.clear();
}

int Trainer::rank() const { return dp_ ? dp_->rank() : 0; }
int Trainer::world_size() const { return dp_ ? dp_->size() : 1; }
int64_t Trainer::passes() const { return world_size() * cfg_.accumulate; }
int64_t Trainer::first_pass() const { return rank() * cfg_.accumulate; }

void Trainer::place_first_pass_streams() {
  if (passes() == 1) return;  // the run's own streams, as they are
  rng_.set_state(DataParallel::rank_seed(latent_seed_, static_cast<int>(first_pass())), 0);
  aug_rng_.set_state(DataParallel::rank_seed(aug_seed_, static_cast<int>(first_pass())), 0);
}

std::vector<std::pair<std::string, double>> Trainer::gammas() const {
  std::vector<std::pair<std::string, double>> out;
  auto scan = [&](const nn::Module& m, const std::string& prefix) {
    for (auto& [name, t] : m.named_parameters())
      if (name == "gamma" || (name.size() > 6 && name.compare(name.size() - 6, 6, ".gamma") == 0))
        out.emplace_back(prefix + name, t.item());
  };
  scan(*g_, "G.");
  scan(*d_, "D.");
  return out;
}

Tensor Trainer::sample(const Tensor& z, const Tensor& y) {
  NoGradGuard ng;
  g_ema_->eval();
  return g_ema_->forward(z.to(device_), y.defined() ? y.to(device_) : Tensor());
}

TrainingParts Trainer::parts() const { return {*g_, *d_, *g_ema_, *opt_g_, *opt_d_}; }

Trainer::DrawState Trainer::draw_state() const {
  return {rng_.seed(), rng_.position(), aug_rng_.seed(), aug_rng_.position(), loader_->state()};
}

void Trainer::set_draw_state(const DrawState& s) {
  rng_.set_state(s.rng_seed, s.rng_position);
  aug_rng_.set_state(s.aug_seed, s.aug_position);
  if (!(loader_->state() == s.loader)) loader_->set_state(s.loader);
}

TrainerCounters Trainer::counters() const {
  // Inputs drawn ahead are not part of the state: a resume draws them again.
  const DrawState d = prefetched_ ? *prefetched_ : draw_state();
  TrainerCounters c;
  c.step = step_;
  c.rng_seed = d.rng_seed;
  c.rng_position = d.rng_position;
  c.aug_seed = d.aug_seed;
  c.aug_position = d.aug_position;
  c.loader = d.loader;
  c.skipped_steps = nan_guard_.skipped_total();
  c.skipped_in_a_row = nan_guard_.skipped_in_a_row();
  c.data_size = dataset_->size();
  return c;
}

NamedTensors Trainer::checkpoint_tensors() const { return training_checkpoint_tensors(parts(), counters()); }

void Trainer::save_checkpoint(const std::string& path) const {
  save_training_checkpoint(path, parts(), counters(), cfg_);
}

void Trainer::load_checkpoint(const std::string& path) {
  CheckpointFile file = open_checkpoint(path);
  // A checkpoint from before world_size or accumulate existed has the default, 1.
  check_resume_passes(file.path, file.config, cfg_.world_size, cfg_.accumulate);
  TrainerCounters c = restore_training_checkpoint(file, cfg_.model, parts());
  prefetched_.reset();  // drawn from the state this replaces
  inputs_stage_.discard();
  step_ = c.step;
  rng_.set_state(c.rng_seed, c.rng_position);
  if (c.has_aug_rng) aug_rng_.set_state(c.aug_seed, c.aug_position);
  // The loader's order is drawn over the data set's size. On another size
  // (images added or removed since), or at a position the data set no
  // longer holds (a checkpoint from before data_size), the run goes on from
  // the start of the next epoch, with a warning: not as an uninterrupted run
  // would have, but neither refused nor taken for a damaged checkpoint.
  const int64_t n = dataset_->size();
  data::LoaderState ls = c.loader;
  const bool resized = c.data_size > 0 && c.data_size != n;
  const bool outside = !loader_->holds(ls);
  if (resized || outside) ls = {ls.epoch + 1, 0, ls.seed};
  try {
    loader_->set_state(ls);
  } catch (const Error& e) {
    SAGAN_FAIL("{}: {}", file.path, e.what());
  }
  if ((resized || outside) && rank() == 0) {  // every rank resumes alike; one says so
    const std::string what =
        resized ? fmt::format("the data set had {} examples at step {}, and {} has {} now", c.data_size, c.step,
                              dataset_->name(), n)
                : fmt::format("{} has {} examples, too few for the checkpoint's position (example {} of epoch {})",
                              dataset_->name(), n, c.loader.index, c.loader.epoch);
    warn(fmt::format("{}: {}: the resumed run starts epoch {} over them, not the order an uninterrupted run would "
                     "have read (not an exact resume)",
                     file.path, what, ls.epoch));
  }
  // Rank 0's first pass's seeds are the run's; with more passes than one,
  // this rank's first pass's own streams (pass_stream places them).
  latent_seed_ = c.rng_seed;
  if (c.has_aug_rng) aug_seed_ = c.aug_seed;
  place_first_pass_streams();
  nan_guard_.set_skipped(c.skipped_steps, c.skipped_in_a_row);
}

}  // namespace sagan
