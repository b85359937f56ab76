// Trainer: SAGAN's hinge-loss training with TTUR Adam, n_dis D steps per G
// step, an EMA copy of G, optional gradient clipping, and checkpoints that
// restore everything (models, SN vectors, BN statistics, optimisers, EMA,
// step, RNG and data position) so a resumed run continues bit for bit on the
// CPU (with any thread count: kernels/cpu/image_chunks.h).
//
// One iteration (step()):
//   repeat n_dis times:
//     real x, y from the loader; z ~ N(0, I), y_fake ~ U{classes}
//     fake = G(z, y_fake) without grad
//     D sees [x; fake] as ONE batch (one SN power iteration per D step),
//     with --diffaug augmented by ONE DiffAugment call on that batch
//     loss_D = mean(relu(1 - D(x))) + mean(relu(1 + D(fake)))
//     Adam step on D
//   z, y_fake fresh; loss_G = -mean(D(T(G(z, y_fake)))), T = DiffAugment or
//   the identity, with D's parameters frozen (no weight gradients computed
//   for D); Adam step on G; EMA update.
// Before each Adam step the loss, D's outputs and the gradient norm are
// checked on the device (--on-nan, models/nan_guard.h): a non-finite one
// holds back that update and the rest of the iteration's, then stops the run,
// or with --on-nan skip only drops them.
// The host never waits for the device inside an iteration (core/sync_free.h):
// the values above are read once, at its end, so the GPU's queue stays full.
// step() draws the next iteration's inputs and sends them to the device
// (core/upload_stage.h) before that read, so on a GPU their copy overlaps
// this iteration's work; checkpoints record the loader and the RNGs as they
// were before that draw.
// DiffAugment draws from its own Rng (saved in checkpoints), so z and fake
// labels are the same with and without it; sampling, the EMA generator and
// the FD never see it.
// --accumulate A: each D and G update above runs as A passes over
// micro-batches of B, one after another, whose gradients are averaged (the
// loss of each scaled by 1/A) before the update. The passes share the
// update's power iteration; pass k of rank r has its own data shard,
// latents, DiffAugment draws and G BatchNorm statistics, as rank r x A + k
// of world_size x A ranks would (the statistics are averaged at the end of
// the iteration, as the ranks'): A passes on one process train as A ranks
// do, up to the order of the gradient sums.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sagan/core/io/safetensors.h"
#include "sagan/core/matmul_precision.h"
#include "sagan/core/rng.h"
#include "sagan/core/upload_stage.h"
#include "sagan/dist/communicator.h"
#include "sagan/layers/adam.h"
#include "sagan/layers/diffaugment.h"
#include "sagan/models/checkpoint_file.h"
#include "sagan/models/data/loader.h"
#include "sagan/models/discriminator.h"
#include "sagan/models/generator.h"
#include "sagan/models/nan_guard.h"
#include "sagan/models/train_config.h"

namespace sagan {

class DataParallel;

// Thrown by Trainer::step() when its inputs could not be drawn (an image
// that cannot be read): no update was made, and the trainer holds the state
// after its step_count() steps, loader and RNGs included, which a
// checkpoint may keep (sagan-train saves one before it stops).
class InputsNotDrawn : public Error {
 public:
  using Error::Error;
};

// What one iteration consumes: n_dis real batches, each with the latents and
// fake labels of its D step, then the G step's latents and fake labels.
// Each holds B = accumulate x batch_size examples: pass k's are rows
// [k B / accumulate, (k + 1) B / accumulate).
// step() draws them from the loader and the RNG (draw_inputs); step(inputs)
// takes them from the caller, so a test can feed exactly what a reference
// implementation saw (tests/test_trajectory.cpp).
struct StepInputs {
  struct DStep {
    Tensor images;       // (B, C, H, W) in [-1, 1], any device and float dtype
    Tensor labels;       // (B) int64, ignored when unconditional
    Tensor z;            // (B, z_dim)
    Tensor fake_labels;  // (B) int64; undefined when unconditional
  };
  std::vector<DStep> d;   // n_dis entries
  Tensor z, fake_labels;  // the G step
};

struct StepStats {
  int64_t step = 0;  // generator steps done after this iteration
  double loss_d = 0, loss_g = 0;
  double d_real = 0, d_fake = 0;  // mean D output on real and fake in the last D step
  // Before clipping; 0 without --grad-clip (the NaN guard checks the norm either way).
  double grad_norm_d = 0, grad_norm_g = 0;
  // --on-nan skip: this iteration's update was dropped (its message is
  // nan_guard().message()); skipped_steps counts such iterations in the run.
  bool skipped = false;
  int64_t skipped_steps = 0;
};

class Trainer {
 public:
  // cfg.model.num_classes / image_channels are taken from the data set
  // (num_classes = 0 when cfg.unconditional). Models start from cfg.seed.
  // cfg is checked once, by its reader (run_training calls
  // TrainConfig::validate before loading data); the networks check their
  // SaganConfig. dtype: of the models, optimiser states and latents (F64 for
  // tests that compare whole training runs with a float64 reference).
  // comm: this process's communicator (dist/launch.h). Other than the
  // single one it makes this trainer one rank of a data-parallel job
  // (models/data_parallel.h, docs/distributed.md): its GPU is the local
  // rank's, it reads its shard of every global batch, draws latents from its
  // own streams, and averages gradients over ranks before clipping.
  // The config is validated first (TrainConfig::validate). cfg.deterministic
  // and cfg.precision set process-wide switches (kernels/cuda/settings.h,
  // core/matmul_precision.h) for the Trainer's lifetime; the destructor (or
  // a constructor that throws) puts back the values it found. Trainers alive
  // at once share the switches: the last one built sets them, so their
  // lifetimes are best nested.
  Trainer(TrainConfig cfg, std::shared_ptr<const data::Dataset> dataset, DType dtype = DType::F32,
          std::shared_ptr<dist::Communicator> comm = nullptr);
  ~Trainer();
  Trainer(const Trainer&) = delete;  // it owns the run's state and the switches it set
  Trainer& operator=(const Trainer&) = delete;

  // One iteration on inputs drawn from the loader and the RNG; before
  // reading the iteration's values it draws and sends the next iteration's
  // (an error in drawing those is raised by the next step(), which draws
  // them again, as InputsNotDrawn).
  StepStats step();
  // One iteration on the given inputs (see StepInputs); the loader and the
  // RNG are not touched.
  StepStats step(const StepInputs& inputs);
  // The next iteration's inputs; advances the loader and the RNG. (Inputs
  // step() had drawn ahead are put back first.)
  StepInputs draw_inputs();
  int64_t step_count() const { return step_; }
  const TrainConfig& config() const { return cfg_; }
  const DataParallel* data_parallel() const { return dp_.get(); }  // null without data parallelism
  // Data parallel: throws on every rank alike when any rank's parameters or
  // buffers (hashed) differ from rank 0's, the message "<when> the D
  // parameters of rank 1 differ ...: <meaning>". Nothing without.
  void check_ranks_in_sync(const std::string& when, const std::string& meaning);
  int rank() const;                                                // 0 without data parallelism
  int world_size() const;                                          // 1 without
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }

  SaganGenerator& generator() { return *g_; }
  SaganGenerator& ema_generator() { return *g_ema_; }
  SaganDiscriminator& discriminator() { return *d_; }
  nn::Adam& optimizer_g() { return *opt_g_; }
  nn::Adam& optimizer_d() { return *opt_d_; }
  const NanGuard& nan_guard() const { return nan_guard_; }

  // Attention gammas by parameter name ("G.blocks.3.gamma", ...).
  std::vector<std::pair<std::string, double>> gammas() const;

  // Images from the EMA generator in eval mode: z (B, z_dim), y (B).
  Tensor sample(const Tensor& z, const Tensor& y);

  // Everything needed to continue, as named tensors (checkpoint contents;
  // the layout is models/checkpoint_file.h's).
  NamedTensors checkpoint_tensors() const;
  void save_checkpoint(const std::string& path) const;  // atomic
  // Restores a checkpoint written by save_checkpoint with the same model
  // config and world size; errors name the file and the tensor.
  void load_checkpoint(const std::string& path);

  // Records the sync-free part of each iteration as a device graph
  // (core/backend.h Backend::capture) and replays it: on CUDA one launch of
  // a CUDA graph per iteration instead of hundreds of kernel launches. The
  // results are those of plain steps, bit for bit. On the CPU the graph runs
  // the same code again (for tests). Data-parallel ranks record their NCCL
  // reductions in the graph.
  void set_step_graph(bool on);
  bool step_graph() const { return step_graph_; }

 private:
  // One update of an iteration, as the device left it: the values that judge
  // it and the gate after it (NaN from the first non-finite update on).
  struct Update {
    bool is_d;
    std::vector<std::pair<std::string, Tensor>> values;
    Tensor gate;
  };

  // One iteration's inputs on the device, and each update's Adam factors: the
  // sync-free part of step() reads only these, so a graph of it replays with
  // new inputs copied into the same buffers.
  struct StepBuffers {
    struct DPass {
      Tensor images, z, y_all, fake_labels;  // y_all = [labels; fake_labels]
      nn::DiffAugmentTensors aug;            // --diffaug's draws for [images; fake]
    };
    struct GPass {
      Tensor z, fake_labels;
      nn::DiffAugmentTensors aug;
    };
    std::vector<DPass> d;  // D step i, pass k at i x accumulate + k
    std::vector<GPass> g;  // the G step's passes
    // --accumulate: G's BN statistics of each pass (pass_bn[k]), which go
    // their own way through the iteration's forwards as each rank's do.
    std::vector<std::vector<Tensor>> pass_bn;
    Tensor adam_scales;           // (n_dis + 1) x 2: {step_size, sqrt_bc2} of each update, G's last
    std::vector<Update> updates;  // written by run_updates
    // --on-nan skip: G's and D's buffers (BN statistics, SN vectors) as the
    // iteration found them. Forwards change buffers before the guard can
    // judge, so a dropped iteration puts them back (a NaN batch would leave
    // G's BN statistics NaN, and the next EMA copy would carry them into
    // G_ema).
    std::vector<Tensor> buffers_before;
  };

  // The RNGs' and the loader's positions: what draw_inputs changes.
  struct DrawState {
    uint64_t rng_seed, rng_position, aug_seed, aug_position;
    data::LoaderState loader;
  };
  DrawState draw_state() const;
  void set_draw_state(const DrawState& s);
  // The inputs of the iteration that runs when step_ == at_step.
  StepInputs draw_inputs_at(int64_t at_step);
  // Checks the inputs of the iteration at at_step, draws its DiffAugment
  // parameters, and sends them all towards buffers_ (taken by run_iteration).
  void send_inputs(const StepInputs& in, int64_t at_step);
  // Draws and sends the next iteration's inputs (step()).
  void prefetch_inputs();
  // Puts inputs drawn ahead back: the draw state as before them.
  void cancel_prefetch();
  // The sent inputs and this iteration's Adam factors into buffers_, the
  // updates (or their graph), the next inputs when `prefetch`, the read.
  StepStats run_iteration(bool prefetch);
  // G's then D's buffers, in named_buffers order (buffers_before's order).
  std::vector<Tensor> network_buffers() const;
  // The iteration's updates, reading buffers_ only (a graph replays them).
  void run_updates();
  // The hinge loss of D; d_real and d_fake get D's mean outputs (0-d, on the device).
  Tensor hinge_d(const Tensor& d_out, int64_t n_real, Tensor& d_real, Tensor& d_fake) const;
  // Global gradient norm (before clipping) of one model, 0-d on the device;
  // clips in place with --grad-clip.
  Tensor clip_and_norm(nn::FlatParameters& params) const;
  // The gate after one more update judged by `values` (see models/nan_guard.h):
  // NaN once any value, on any rank, is not finite; else as before (0).
  Tensor close_gate_if_not_finite(const Tensor& gate, const std::vector<Tensor>& values) const;
  void set_requires_grad(nn::Module& m, bool on);
  void update_ema(const Tensor& gate);
  // After the sync-free part of step(): reads the values, settles the NaN
  // guard and the Adam counts of dropped updates, counts the step.
  StepStats finish_iteration(const std::vector<Update>& updates);
  StepStats end_skipped_iteration(StepStats st);  // --on-nan skip
  TrainingParts parts() const;                    // what a checkpoint holds...
  TrainerCounters counters() const;               // ...and the small state besides

  TrainConfig cfg_;
  // Sets the process-wide switches from cfg_ and puts back what it found when
  // destroyed: a member, so a constructor that throws later restores too.
  struct SwitchScope {
    SwitchScope(bool deterministic, MatmulPrecision precision);
    ~SwitchScope();
    SwitchScope(const SwitchScope&) = delete;
    SwitchScope& operator=(const SwitchScope&) = delete;
    bool saved_deterministic;
    MatmulPrecision saved_precision;
  } switches_;
  Device device_;
  DType dtype_;
  std::shared_ptr<const data::Dataset> dataset_;
  std::unique_ptr<data::DataLoader> loader_;
  Rng rng_;  // z and fake labels
  nn::DiffAugmentPolicy diffaug_;
  Rng aug_rng_;  // DiffAugment's draws, apart from rng_
  std::unique_ptr<SaganGenerator> g_, g_ema_;
  std::unique_ptr<SaganDiscriminator> d_;
  std::unique_ptr<nn::Adam> opt_g_, opt_d_;
  NanGuard nan_guard_;  // --on-nan: checked before each optimiser step
  int64_t step_ = 0;
  std::unique_ptr<DataParallel> dp_;  // set when one rank of a data-parallel job
  std::unique_ptr<StepBuffers> buffers_;
  UploadStage inputs_stage_, scales_stage_;  // into buffers_
  // Set while the next iteration's inputs are drawn and sent ahead: the draw
  // state before them (what checkpoints record).
  std::optional<DrawState> prefetched_;
  bool step_graph_ = false;
  struct StepGraph {
    std::unique_ptr<DeviceGraph> graph;
    int plain_runs = 0;
  };
  std::map<int, StepGraph> graphs_;  // by EMA phase: 0 copy, 1 average

  // Passes of the run (world_size x accumulate; virtual ranks) and this
  // rank's first one.
  int64_t passes() const;
  int64_t first_pass() const;
  // With more passes than one, rng_ / aug_rng_ at this rank's first pass's
  // own streams (rank_seed of latent_seed_ / aug_seed_; pass_stream places
  // the others'): after construction and after a checkpoint's seeds.
  void place_first_pass_streams();
  // The latent (latents) or DiffAugment stream of this rank's pass k at the
  // iteration that runs when step_ == at_step: with one pass in the run,
  // rng_ / aug_rng_ going on; with more, pass v of the run draws from its
  // own seed (rank_seed of the run's) from position at_step << 32, so a
  // resumed rank finds its streams from the step alone. rng_ / aug_rng_ hold
  // the first pass's (a checkpoint records rank 0's, whose seeds are the
  // run's); `scratch` the others'.
  Rng& pass_stream(int64_t k, int64_t at_step, bool latents, Rng& scratch);
  // --accumulate: pass k's G forward, with its BN statistics in G.
  Tensor g_forward(int64_t k, const Tensor& z, const Tensor& y);
  uint64_t latent_seed_ = 0, aug_seed_ = 0;  // the run's (pass 0's) stream seeds
};

// The device named by a --device string: "auto" is cuda when a GPU is
// present. local_rank >= 0 (a data-parallel rank): "auto" and "cuda" are
// the GPU local_rank modulo the GPUs present. Errors name `option`.
Device resolve_device(const std::string& name, int local_rank = -1, const std::string& option = "--device");
// The device of this rank of `comm` (null: one process) for cfg.device,
// and the settings that depend on it, checked before any collective: a rank
// of several whose gradients NCCL would reduce is refused when its local
// rank has no GPU of its own (dist::check_gpu_per_rank), as are a --comm
// that cannot reduce the device's tensors and --cuda-graph off a GPU.
// Errors name the settings as `sources` does (a Trainer: as set in code).
Device rank_device(const TrainConfig& cfg, const dist::Communicator* comm, const ConfigSources& sources = {});

// The checks a Trainer makes that sagan-train also makes before building one
// (on every rank at once: models/train_run.cpp). `what` leads the message ("" for none).
// The data set holds at least one global batch (--batch-size x --accumulate
// x ranks).
void check_data_fills_a_batch(const char* what, const data::Dataset& d, int64_t batch_size, int64_t accumulate,
                              int64_t world_size);
// A resume keeps the global batch and its number of passes (ranks x
// --accumulate), as it keeps --batch-size: steps, the EMA and the data
// position count global batches, and each pass draws from its own streams.
// How the passes are split may change: a run of 2 ranks goes on, exactly
// up to the order of gradient sums, on 1 rank with --accumulate 2.
// `written` is the checkpoint's (or config.json's) config.
void check_resume_passes(const std::string& what, const TrainConfig& written, int64_t world_size, int64_t accumulate);

}  // namespace sagan
