// The table of training settings (see train_options.h): to add a setting,
// add its TrainConfig member and one entry below.
#include "sagan/models/train_options.h"

#include <algorithm>
#include <cmath>

#include "sagan/core/text.h"
#include "sagan/layers/diffaugment.h"
#include "sagan/models/train_presets.h"

namespace sagan {

const char* kind_name(ValueKind k) {
  switch (k) {
    case ValueKind::Bool:
      return "a boolean";
    case ValueKind::Int:
      return "an integer";
    case ValueKind::UInt:
      return "a non-negative integer";
    case ValueKind::Real:
      return "a number";
    case ValueKind::Text:
      return "a string";
    case ValueKind::IntList:
      return "a list of integers";
  }
  return "?";
}

std::string value_text(const ConfigValue& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::vector<int64_t>>)
          return fmt::format("[{}]", fmt::join(x, ", "));
        else if constexpr (std::is_same_v<T, std::string>)
          return x.empty() ? std::string("\"\"") : x;  // "data_path \"\" -> /data", not "data_path  -> /data"
        else
          return fmt::format("{}", x);
      },
      v);
}

namespace {

// ---- binding an entry to its member(s)

template <class T>
constexpr ValueKind kind_of() {
  if constexpr (std::is_same_v<T, bool>) return ValueKind::Bool;
  if constexpr (std::is_same_v<T, int64_t>) return ValueKind::Int;
  if constexpr (std::is_same_v<T, uint64_t>) return ValueKind::UInt;
  if constexpr (std::is_same_v<T, double>) return ValueKind::Real;
  if constexpr (std::is_same_v<T, std::string>) return ValueKind::Text;
}

// TrainConfig::*m, or (TrainConfig::*outer).*inner for model.ch and the like.
template <class T>
TrainOption member(TrainOption o, T TrainConfig::*m) {
  o.kind = kind_of<T>();
  o.get = [m](const TrainConfig& c) { return ConfigValue(c.*m); };
  o.set = [m](TrainConfig& c, const ConfigValue& v) { c.*m = std::get<T>(v); };
  return o;
}
template <class S, class T>
TrainOption member(TrainOption o, S TrainConfig::*outer, T S::*inner) {
  o.kind = kind_of<T>();
  o.get = [outer, inner](const TrainConfig& c) { return ConfigValue(c.*outer.*inner); };
  o.set = [outer, inner](TrainConfig& c, const ConfigValue& v) { c.*outer.*inner = std::get<T>(v); };
  return o;
}
// beta1, beta2, adam_eps: one key for both optimisers.
TrainOption both_adams(TrainOption o, double AdamOptions::*m) {
  o.kind = ValueKind::Real;
  o.get = [m](const TrainConfig& c) { return ConfigValue(c.adam_g.*m); };
  o.set = [m](TrainConfig& c, const ConfigValue& v) { c.adam_g.*m = c.adam_d.*m = std::get<double>(v); };
  return o;
}
// g_attn_res / d_attn_res: written resolved (the default list spelled out,
// commented out in a settings file while it follows the resolution) and
// sorted: the networks are the same whatever order the list was given in,
// so --resume compares them as sets. A list of only 0 means none, as on the
// command line.
TrainOption attention_list(TrainOption o, std::optional<std::vector<int64_t>> SaganConfig::*m,
                           std::vector<int64_t> (SaganConfig::*resolved)() const) {
  o.kind = ValueKind::IntList;
  o.follows = [m](const TrainConfig& c) { return !(c.model.*m).has_value(); };
  o.get = [resolved](const TrainConfig& c) {
    std::vector<int64_t> list = (c.model.*resolved)();
    std::sort(list.begin(), list.end());
    return ConfigValue(list);
  };
  o.set = [m](TrainConfig& c, const ConfigValue& v) {
    auto list = std::get<std::vector<int64_t>>(v);
    if (list == std::vector<int64_t>{0}) list.clear();
    c.model.*m = list;
  };
  o.show_default = false;
  return o;
}

// model.ch sets both networks' widths: g_ch and d_ch return to "follow ch",
// so a later --ch overrides the g_ch / d_ch of a config file. Within one
// file or command line the table's order applies (ch before g_ch / d_ch), so
// g_ch / d_ch given with ch win.
TrainOption shared_width(TrainOption o) {
  o.kind = ValueKind::Int;
  o.get = [](const TrainConfig& c) { return ConfigValue(c.model.ch); };
  o.set = [](TrainConfig& c, const ConfigValue& v) {
    c.model.ch = std::get<int64_t>(v);
    c.model.g_ch = c.model.d_ch = 0;
  };
  return o;
}
// model.g_ch / model.d_ch: written resolved (ch spelled out where they follow it).
TrainOption own_width(TrainOption o, int64_t SaganConfig::*m, int64_t (SaganConfig::*resolved)() const) {
  o.kind = ValueKind::Int;
  o.follows = [m](const TrainConfig& c) { return c.model.*m == 0; };
  o.get = [resolved](const TrainConfig& c) { return ConfigValue((c.model.*resolved)()); };
  o.set = [m](TrainConfig& c, const ConfigValue& v) { c.model.*m = std::get<int64_t>(v); };
  return o;
}

// ---- checks of one value

double number(const ConfigValue& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (auto* u = std::get_if<uint64_t>(&v)) return static_cast<double>(*u);
  return std::get<double>(v);
}
std::string positive(const ConfigValue& v) {
  return number(v) > 0 ? "" : fmt::format("must be positive, got {}", value_text(v));
}
std::string non_negative(const ConfigValue& v) {
  return number(v) >= 0 ? "" : fmt::format("must be >= 0, got {}", value_text(v));
}
std::string off_or_positive(const ConfigValue& v) {
  return number(v) >= 0 ? "" : fmt::format("must be >= 0 (0 = off), got {}", value_text(v));
}
// A number from lo to hi; `range` says so in the message ("1 to 256 (grid rows)").
std::function<std::string(const ConfigValue&)> between(double lo, double hi, std::string range) {
  return [lo, hi, range](const ConfigValue& v) {
    const double x = number(v);
    return x >= lo && x <= hi ? std::string() : fmt::format("must be {}, got {}", range, value_text(v));
  };
}
std::string fraction(const ConfigValue& v) {
  const double x = number(v);
  return x >= 0 && x < 1 ? "" : fmt::format("must be in [0, 1), got {}", value_text(v));
}
std::function<std::string(const ConfigValue&)> one_of(std::vector<std::string> names) {
  return [names](const ConfigValue& v) {
    const std::string& s = std::get<std::string>(v);
    return std::find(names.begin(), names.end(), s) != names.end()
               ? ""
               : fmt::format("'{}' is not one of {}", s, fmt::join(names, ", "));
  };
}
// "custom" too: a program's own data (RunOptions::dataset, models/train_run.h),
// which run_training alone can serve; sagan-train's help does not offer it.
std::string dataset_name_check(const ConfigValue& v) {
  const std::string& s = std::get<std::string>(v);
  return s == "custom" ? "" : one_of({"fashion-mnist", "cifar10", "folder"})(v);
}
std::string device_name_check(const ConfigValue& v) {
  const std::string& s = std::get<std::string>(v);
  const bool index = s.size() > 5 && s.size() <= 8 && s.compare(0, 5, "cuda:") == 0 && all_digits(s.substr(5));
  return s == "auto" || s == "cpu" || s == "cuda" || index
             ? ""
             : fmt::format("'{}' is not a device (auto, cpu, cuda or cuda:N)", s);
}

std::string preset_name(const ConfigValue& v) {
  const std::string& s = std::get<std::string>(v);
  return s.empty() || find_train_preset(s) ? "" : fmt::format("'{}' is not one of {}", s, train_preset_names());
}
std::string diffaug_policy(const ConfigValue& v) {
  try {
    nn::DiffAugmentPolicy::parse(std::get<std::string>(v), "");
  } catch (const Error& e) {
    return std::string(e.what()).substr(2);  // the text after the empty option's ": "
  }
  return "";
}

// What --resume does with a changed architecture setting.
const char* const kArchitecture = "the checkpoint holds networks of the run's architecture";

std::vector<TrainOption> make_table() {
  using C = TrainConfig;
  using M = SaganConfig;
  std::vector<TrainOption> t;
  std::string group;
  auto add = [&](TrainOption o) {
    o.group = group;
    t.push_back(std::move(o));
  };

  group = "Presets";
  add(member({.key = "preset",
              .flag = "--preset",
              .help = "Defaults for the settings not given: cpu (15-30 minutes on 2 cores; the choice when no "
                      "GPU is found), sagan32 (the defaults, for a GPU), sagan128 (the paper's ImageNet setting)",
              .check = preset_name,
              .resume_why = "a run's preset gave its settings when it started; change those one by one",
              .show_default = false},
             &C::preset));

  group = "Data";
  add(member({.key = "dataset",
              .flag = "--dataset",
              .help = "fashion-mnist | cifar10 | folder",
              .check = dataset_name_check,
              .resume_why = "the checkpoint was trained on the run's data set"},
             &C::dataset));
  add(member({.key = "data_path",
              .flag = "--data",
              .help = "Data location: Fashion-MNIST dir (default /usr/share/datasets/fashion-mnist), "
                      "CIFAR-10 binary dir, or image folder with one sub-folder per class",
              .resume_applies = true,
              .show_default = false},
             &C::data_path));  // the data may have moved
  add(member({.key = "hflip", .flag = "--hflip,!--no-hflip", .help = "Random horizontal flips", .resume_applies = true},
             &C::hflip));
  add(member({.key = "channels",
              .flag = "--channels",
              .help = "auto | 1 | 3: image channels of --dataset folder (auto: 1 when every image is grayscale; a "
                      "palette PNG counts as colour; alpha is dropped, not blended); config.json records the result",
              .check = one_of({"auto", "1", "3"}),
              .resume_why = "the networks take the run's image channels"},
             &C::channels));
  add(member({.key = "resize",
              .flag = "--resize",
              .help = "bilinear | nearest | pad: how images smaller than --resolution reach it (pad: centred on "
                      "black); larger ones are area-averaged down",
              .check = one_of({"bilinear", "nearest", "pad"}),
              .resume_why = "the generator learnt the run's image geometry"},
             &C::resize));
  add(member({.key = "unconditional",
              .flag = "--unconditional",
              .help = "Ignore labels (num_classes = 0)",
              .resume_why = kArchitecture},
             &C::unconditional));

  group = "Model";
  add(member({.key = "model.resolution",
              .flag = "--resolution",
              .help = "Image side, a power of two >= 32",
              .resume_why = kArchitecture},
             &C::model, &M::resolution));
  add(shared_width({.key = "model.ch",
                    .flag = "--ch",
                    .help = "Width multiplier of G and D (32x32: G 4ch, D 2ch wide); sets g_ch and d_ch",
                    .resume_why = kArchitecture}));
  add(own_width({.key = "model.g_ch",
                 .flag = "--g-ch",
                 .help = "Generator width multiplier (default: --ch; 32x32: G 4g_ch wide)",
                 .resume_why = kArchitecture,
                 .show_default = false},
                &M::g_ch, &M::resolved_g_ch));
  add(own_width({.key = "model.d_ch",
                 .flag = "--d-ch",
                 .help = "Discriminator width multiplier (default: --ch; 32x32: D 2d_ch wide)",
                 .resume_why = kArchitecture,
                 .show_default = false},
                &M::d_ch, &M::resolved_d_ch));
  add(member({.key = "model.z_dim", .flag = "--z-dim", .help = "Latent size", .resume_why = kArchitecture}, &C::model,
             &M::z_dim));
  add(attention_list({.key = "model.g_attn_res",
                      .flag = "--g-attn",
                      .help = "Generator attention resolution(s) (default: resolution/2, max 64; 0 = none)",
                      .resume_why = kArchitecture},
                     &M::g_attn_res, &M::g_attention));
  add(attention_list({.key = "model.d_attn_res",
                      .flag = "--d-attn",
                      .help = "Discriminator attention resolution(s) (same default)",
                      .resume_why = kArchitecture},
                     &M::d_attn_res, &M::d_attention));
  add(member({.key = "model.pooled_attention",
              .flag = "!--unpooled-attention",
              .help = "The paper's attention (no max-pool, values C->C, no output conv): pooled_attention = false",
              .resume_why = kArchitecture},
             &C::model, &M::pooled_attention));
  add(member(
      {.key = "model.num_classes", .help = "Classes (set from the data set; 0 = unconditional)", .from_data_set = true},
      &C::model, &M::num_classes));
  add(member({.key = "model.image_channels", .help = "Image channels (set from the data set)", .from_data_set = true},
             &C::model, &M::image_channels));

  group = "Optimisation";
  add(member({.key = "steps",
              .flag = "--steps",
              .help = "Generator steps to train to",
              .check = positive,
              .resume_applies = true},
             &C::steps));
  add(member({.key = "batch_size",
              .flag = "--batch-size",
              .help = "Batch size of each rank's passes (the global batch is world_size x accumulate x this; "
                      "world_size is N under mpirun -np N)",
              .check = positive,
              .resume_why = "steps, --ema-start and the --*-every intervals count batches of the run's size"},
             &C::batch_size));
  add(member({.key = "accumulate",
              .flag = "--accumulate",
              .help = "Passes per update (gradient accumulation): each D and G update averages the gradients of "
                      "this many micro-batches of --batch-size, run one after another with the activations of one; "
                      "the "
                      "global batch is world_size x accumulate x batch_size. Pass k of rank r trains as rank "
                      "r x accumulate + k of world_size x accumulate ranks would: its own data, latents and BN "
                      "statistics (so not with --sync-bn)",
              .check = positive,
              .resume_applies = true},
             &C::accumulate));
  add(member({.key = "n_dis",
              .flag = "--n-dis",
              .help = "Discriminator steps per generator step",
              .check = positive,
              .resume_applies = true},
             &C::n_dis));
  add(member({.key = "lr_g",
              .flag = "--lr-g",
              .member = "adam_g.lr",
              .help = "Generator learning rate",
              .check = positive,
              .resume_applies = true},
             &C::adam_g, &AdamOptions::lr));
  add(member({.key = "lr_d",
              .flag = "--lr-d",
              .member = "adam_d.lr",
              .help = "Discriminator learning rate",
              .check = positive,
              .resume_applies = true},
             &C::adam_d, &AdamOptions::lr));
  add(both_adams({.key = "beta1",
                  .flag = "--beta1",
                  .member = "adam_g.beta1 and adam_d.beta1",
                  .help = "Adam beta1",
                  .check = fraction,
                  .resume_applies = true},
                 &AdamOptions::beta1));
  add(both_adams({.key = "beta2",
                  .flag = "--beta2",
                  .member = "adam_g.beta2 and adam_d.beta2",
                  .help = "Adam beta2",
                  .check = fraction,
                  .resume_applies = true},
                 &AdamOptions::beta2));
  add(both_adams({.key = "adam_eps",
                  .flag = "--adam-eps",
                  .member = "adam_g.eps and adam_d.eps",
                  .help = "Adam epsilon",
                  .check = positive,
                  .resume_applies = true},
                 &AdamOptions::eps));
  add(member({.key = "ema_decay",
              .flag = "--ema-decay",
              .help = "EMA decay of the sampling generator",
              .check = fraction,
              .resume_applies = true},
             &C::ema_decay));
  add(member({.key = "ema_start",
              .flag = "--ema-start",
              .help = "Step from which the EMA averages (before: copies G)",
              .check = non_negative,
              .resume_applies = true},
             &C::ema_start));
  add(member({.key = "grad_clip",
              .flag = "--grad-clip",
              .help = "Clip each network's global gradient norm (0 = off)",
              .check = off_or_positive,
              .resume_applies = true},
             &C::grad_clip));
  add(member({.key = "on_nan",
              .flag = "--on-nan",
              .help = "stop | skip: what a non-finite loss or gradient does (stop: the run ends with an error naming "
                      "the step and the tensor; skip: that iteration's update is dropped and counted)",
              .check = one_of({"stop", "skip"}),
              .resume_applies = true},
             &C::on_nan));
  add(member({.key = "max_nan_skips",
              .flag = "--max-nan-skips",
              .help = "With --on-nan skip: stop after this many non-finite iterations in a row",
              .check = positive,
              .resume_applies = true},
             &C::max_nan_skips));
  add(member(
      {.key = "diffaug",
       .flag = "--diffaug",
       .help = "DiffAugment on D's real and fake inputs: color,translation,cutout (any, comma-separated) or none",
       .check = diffaug_policy,
       .resume_applies = true},
      &C::diffaug));
  add(member({.key = "seed",
              .flag = "--seed",
              .help = "Seed of initialisation, data order, latents",
              .resume_why = "the random streams continue from the checkpoint"},
             &C::seed));
  add(member({.key = "device",
              .flag = "--device",
              .help = "auto | cpu | cuda | cuda:N",
              .check = device_name_check,
              .resume_applies = true},
             &C::device));
  add(member({.key = "deterministic",
              .flag = "--deterministic,!--no-deterministic",
              .help = "CUDA: bitwise repeatable runs (no float atomics, deterministic cuDNN algorithms); "
                      "--no-deterministic allows the faster atomic kernels. The CPU is deterministic either way",
              .resume_applies = true},
             &C::deterministic));
  add(member({.key = "cuda_graph",
              .flag = "--cuda-graph,!--no-cuda-graph",
              .help = "CUDA: record each iteration's updates once as a CUDA graph and replay it (one launch instead "
                      "of hundreds; the same results), NCCL's reductions included. Not yet run on a GPU",
              .resume_applies = true},
             &C::cuda_graph));
  add(member({.key = "precision",
              .flag = "--precision",
              .help = "fp32 | tf32 | bf16: the arithmetic of GEMMs, convolutions and attention (tensor cores on "
                      "CUDA; weights, Adam state, SN vectors and BN statistics stay float32). On the CPU tf32 and "
                      "bf16 are emulated bit for bit, slower, to check their numerics",
              .check = one_of({"fp32", "tf32", "bf16"}),
              .resume_applies = true},
             &C::precision));

  group = "Data parallelism (mpirun -np N / srun; docs/distributed.md)";
  add(member(
      {.key = "world_size",
       .help = "Ranks of the run: the global batch is world_size x accumulate x batch_size (set from the launch)",
       .from_data_set = true},
      &C::world_size));
  add(member({.key = "sync_bn",
              .flag = "--sync-bn,!--no-sync-bn",
              .help = "G's BatchNorm statistics over the global batch (cross-replica), not each rank's",
              .resume_applies = true},
             &C::sync_bn));
  add(member({.key = "check_sync_every",
              .flag = "--check-sync-every",
              .help = "Debug: compare a hash of every rank's parameters every K steps, stop if they differ (0 = off)",
              .check = non_negative,
              .resume_applies = true},
             &C::check_sync_every));
  add(member({.key = "comm",
              .flag = "--comm",
              .help = "auto | mpi | nccl: gradient all-reduce (auto: NCCL on GPUs with several ranks, MPI on the CPU)",
              .check = one_of({"auto", "mpi", "nccl"}),
              .resume_applies = true},
             &C::comm));
  add(member({.key = "dist_timeout",
              .flag = "--dist-timeout",
              .help = "Seconds a rank may go without finishing a step, or take for the start (loading the data, "
                      "building the networks, resuming), before it ends the job, naming itself and what it waited "
                      "in (a stuck rank or a failed link would hang every rank until the time limit). It bounds "
                      "rank 0's checkpoints, sample grids and FD measurements too, which the others wait for: set "
                      "it above the longest; 0 = off",
              .check = between(0, 366 * 86400.0, "0 (off) to 31622400 s (a year)"),
              .resume_applies = true},
             &C::dist_timeout));

  group = "Output";
  add(member({.key = "run_dir",
              .flag = "--run-dir",
              .help = "Run directory (default runs/<date-time>): new, empty, or a run that failed before its first checkpoint",
              .resume_why = "the run directory is the one --resume names",
              .show_default = false},
             &C::run_dir));
  add(member({.key = "log_every",
              .flag = "--log-every",
              .help = "Metrics row (CSV, TensorBoard) every N steps",
              .check = positive,
              .resume_applies = true},
             &C::log_every));
  add(member({.key = "sample_every",
              .flag = "--sample-every",
              .help = "Sample grid (PNG, EMA G) every N steps",
              .check = positive,
              .resume_applies = true},
             &C::sample_every));
  add(member({.key = "checkpoint_every",
              .flag = "--checkpoint-every",
              .help = "Checkpoint every N steps",
              .check = positive,
              .resume_applies = true},
             &C::checkpoint_every));
  add(member({.key = "keep_checkpoints",
              .flag = "--keep-checkpoints",
              .help = "Checkpoints kept",
              .check = positive,
              .resume_applies = true},
             &C::keep_checkpoints));
  add(member({.key = "sample_per_class",
              .flag = "--sample-per-class",
              .help = "Grid rows (one column per class), at most 256",
              .check = between(1, 256, "1 to 256 (grid rows)"),
              .resume_applies = true},
             &C::sample_per_class));

  group = "Frechet distance (docs/evaluation.md)";
  // FD settings may change on --resume: the reference statistics are made
  // again when they no longer match (models/quality/fd_monitor.cpp).
  add(member({.key = "fd_every",
              .flag = "--fd-every",
              .help = "FD of the EMA G every N steps, in metrics.csv / TensorBoard (0 = off)",
              .check = off_or_positive,
              .resume_applies = true},
             &C::fd_every));
  add(member(
      {.key = "fd_samples", .flag = "--fd-samples", .help = "Generated and real images per FD", .resume_applies = true},
      &C::fd_samples));
  add(member({.key = "fd_features",
              .flag = "--fd-features",
              .help = "auto | fmnist | inception (auto: fmnist on Fashion-MNIST and 1-channel data, else inception)",
              .check = one_of({"auto", "fmnist", "inception"}),
              .resume_applies = true},
             &C::fd_features));
  add(member({.key = "fd_weights",
              .flag = "--fd-weights",
              .help = "Feature-net weights (inception: required; fmnist: default committed)",
              .resume_applies = true,
              .show_default = false},
             &C::fd_weights));
  return t;
}

}  // namespace

const std::vector<TrainOption>& train_options() {
  static const std::vector<TrainOption> table = make_table();
  return table;
}

const TrainOption* find_train_option(std::string_view key) {
  for (const TrainOption& o : train_options())
    if (o.key == key) return &o;
  return nullptr;
}

std::optional<ConfigProblem> train_config_problem(const TrainConfig& c,
                                                  const std::function<std::string(const std::string&)>& name) {
  auto bad = [](const char* key, std::string text) { return std::optional<ConfigProblem>{{key, std::move(text)}}; };
  if (c.dataset == "folder" && c.data_path.empty())
    return bad("dataset", fmt::format("folder needs {} PATH (a folder of class sub-folders)", name("data_path")));
  if (c.dataset == "cifar10" && c.data_path.empty())
    return bad("dataset", fmt::format("cifar10 needs {} PATH (the folder holding data_batch_1.bin ... test_batch.bin)",
                                      name("data_path")));
  const char* fixed = c.dataset == "fashion-mnist" ? "1" : c.dataset == "cifar10" ? "3" : nullptr;
  if (fixed && c.channels != "auto" && c.channels != fixed)
    return bad("channels", fmt::format("{} images have {} channel(s); {} {} is for --dataset folder", c.dataset, fixed,
                                       name("channels"), c.channels));
  if (c.fd_every % c.log_every != 0)
    return bad("fd_every", fmt::format("{} is not a multiple of {} ({}): FD is logged on log rows", c.fd_every,
                                       name("log_every"), c.log_every));
  // Checked with FD off too: a saved value would stop a later resume that turns it on.
  if (c.fd_samples < 2) return bad("fd_samples", fmt::format("must be >= 2, got {}", c.fd_samples));
  // auto resolves as the FD monitor does (resolve_features): fmnist on
  // Fashion-MNIST and on 1-channel data. A folder's channels, and a
  // program's data set's, may only be known once it is read: run_training
  // checks the settings again then.
  const bool auto_may_be_fmnist = c.dataset == "fashion-mnist" || c.channels == "1" ||
                                  ((c.dataset == "folder" || c.dataset == "custom") && c.channels == "auto");
  if (c.fd_every > 0 && c.fd_features != "fmnist" && c.fd_weights.empty() &&
      !(c.fd_features == "auto" && auto_may_be_fmnist))
    return bad("fd_every",
               fmt::format("FD on {} uses Inception features: give {} FILE (tools/convert_fid_inception.py, "
                           "docs/evaluation.md) or {} fmnist",
                           c.dataset, name("fd_weights"), name("fd_features")));
  if (c.accumulate > 1 && c.sync_bn)
    return bad("accumulate", fmt::format("{} passes with {}: cross-replica BatchNorm takes G's statistics over the "
                                         "whole global batch, which accumulation never holds at once; turn it off "
                                         "(--no-sync-bn) or train in one pass",
                                         c.accumulate, name("sync_bn")));
  if (c.adam_g.beta1 != c.adam_d.beta1 || c.adam_g.beta2 != c.adam_d.beta2 || c.adam_g.eps != c.adam_d.eps)
    return bad("beta1", "adam_g and adam_d differ in beta1, beta2 or eps: a config holds one value of each");
  if (auto p = c.model.problem()) return ConfigProblem{"model." + p->key, p->text};
  return std::nullopt;
}

}  // namespace sagan
