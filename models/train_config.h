// TrainConfig: every setting of a training run. The resolved config is
// stored as JSON in the run directory and in every checkpoint, so a run can
// be resumed and a checkpoint sampled without the original command line.
//
// Each setting is one entry of the table in models/train_options.cpp (its
// key in files, sagan-train's option, check, help, what --resume does with
// it); reading and writing JSON and TOML, the set of known keys, validation
// and sagan-train's command line are all made from that table. The default
// of a setting is its member's initialiser below.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sagan/core/adam_options.h"
#include "sagan/models/config.h"

namespace sagan {

// Where the settings of a TrainConfig were given: per key, a config file,
// a command-line option or a program's code. Keys not listed have their
// default value. Messages name a setting by where it came from; --resume
// applies or refuses only the settings given.
struct ConfigSources {
  struct Origin {
    std::string file;  // a config file's path, or
    std::string flag;  // the option given ("--batch-size"), or the member set in code
  };
  std::map<std::string, Origin> by_key;
  // Settings a preset gave (key -> preset name): defaults, so not given(),
  // but a message about another setting names them as the preset's
  // ("--log-every of the cpu preset (25)"), since --help shows sagan32's.
  std::map<std::string, std::string> preset_of;
  // The settings come from a program's code (a TrainConfig it filled in)
  // rather than sagan-train's options: a key not listed is named by its
  // member, with the option for readers of the docs:
  // "TrainConfig.adam_g.lr (--lr-g)". RunOptions::given starts so.
  bool in_code = false;

  static ConfigSources code() {
    ConfigSources s;
    s.in_code = true;
    return s;
  }
  bool given(const std::string& key) const { return by_key.count(key) > 0; }
  void from_file(const std::string& key, const std::string& file) { by_key[key] = {file, ""}; }
  void from_flag(const std::string& key, const std::string& flag) { by_key[key] = {"", flag}; }
  // Set by a program: for a resume, a setting to apply over the run's
  // config.json ("steps", "lr_g"; the keys of config.json).
  void from_code(const std::string& key);
  // "my.toml: batch_size" for a file, "--batch-size" for an option or a
  // default (the key when the setting has no option), "TrainConfig.steps
  // (--steps)" for a setting in code (in_code: its default too).
  std::string where(const std::string& key) const;
  // Another setting mentioned in a message: its key when it came from a
  // file, else its option (in code: as where() names it), with "of the NAME
  // preset" when a preset gave its value (named by --preset, a config file's
  // preset key, or the CPU fallback).
  std::string name(const std::string& key) const;
};

struct TrainConfig {
  // The preset (models/train_presets.h) the settings were layered on; ""
  // for none. Its values are already in the members below.
  std::string preset;
  SaganConfig model;  // num_classes / image_channels come from the data set
  bool unconditional = false;

  // data
  std::string dataset = "fashion-mnist";  // fashion-mnist | cifar10 | folder | custom (RunOptions::dataset)
  std::string data_path;                  // empty: the data set's default
  bool hflip = false;
  // auto | 1 | 3: image channels of a folder (auto: 1 when every image is
  // grayscale); other data sets have theirs. Written resolved ("1", "3").
  std::string channels = "auto";
  std::string resize = "bilinear";  // bilinear | nearest | pad: how images smaller than the resolution grow

  // optimisation (SAGAN's TTUR defaults). adam_g and adam_d share beta1,
  // beta2 and eps (one key each in files); their lr are lr_g and lr_d.
  int64_t batch_size = 64;
  // Micro-batches of batch_size per update (gradient accumulation): each D
  // and G update averages the gradients of `accumulate` forward/backward
  // passes run one after another, as many ranks would (micro-batch k of rank
  // r is virtual rank r x accumulate + k: its data shard, its latent and
  // DiffAugment streams, its own BN statistics; docs/distributed.md).
  int64_t accumulate = 1;
  int64_t steps = 100000;  // generator steps; each has n_dis D steps
  int64_t n_dis = 1;
  AdamOptions adam_g{1e-4, 0.0, 0.9, 1e-8};
  AdamOptions adam_d{4e-4, 0.0, 0.9, 1e-8};
  double ema_decay = 0.9999;
  int64_t ema_start = 1000;  // EMA copies G exactly before this step
  double grad_clip = 0.0;    // max global gradient norm per network; 0 = off
  // A non-finite loss, D output or gradient norm (models/nan_guard.h):
  // "stop" ends the run with an error naming the step and the tensor; "skip"
  // drops that iteration's update and stops after max_nan_skips in a row.
  std::string on_nan = "stop";
  int64_t max_nan_skips = 10;
  // DiffAugment before D (layers/diffaugment.h): any of color, translation,
  // cutout, comma-separated, applied in that order; "none" = off.
  std::string diffaug = "none";
  uint64_t seed = 0;
  std::string device = "auto";  // auto (cuda when present) | cpu | cuda | cuda:N
  // CUDA: no float atomics, deterministic cuDNN algorithms, so GPU runs repeat
  // bit for bit (kernels/cuda/settings.h); off allows the faster atomic paths.
  bool deterministic = true;
  // CUDA: each iteration's updates recorded once as a CUDA graph and
  // replayed (Trainer::set_step_graph).
  bool cuda_graph = false;
  // Matrix products (GEMMs, convolutions, attention) in fp32 | tf32 | bf16,
  // master weights and optimiser state float32 (core/matmul_precision.h).
  std::string precision = "fp32";

  // data parallelism (docs/distributed.md): under mpirun -np N / srun each
  // of N ranks trains on accumulate x batch_size examples, a global batch of
  // world_size x accumulate x batch_size.
  int64_t world_size = 1;        // ranks of the run (set from the launch)
  bool sync_bn = false;          // G's BatchNorm statistics over the global batch
  int64_t check_sync_every = 0;  // hash the parameters of every rank every K steps; 0 = off
  std::string comm = "auto";     // auto | mpi | nccl: what all-reduces the gradients
  // Seconds a rank may go without finishing a step (rank 0's checkpoints,
  // samples and FD included), or take for the start up to the first step,
  // before it ends the job (dist/watchdog.h).
  int64_t dist_timeout = 1800;  // 0 = off

  // output
  std::string run_dir;  // empty: runs/<date-time>
  int64_t log_every = 10;
  int64_t sample_every = 500;
  int64_t checkpoint_every = 500;
  int64_t keep_checkpoints = 3;
  int64_t sample_per_class = 10;  // grid rows (one column per class)

  // Frechet distance during training (models/quality/fd_monitor.h)
  int64_t fd_every = 0;              // 0 = off; a multiple of log_every
  int64_t fd_samples = 2000;         // generated and real images per measurement
  std::string fd_features = "auto";  // auto (fmnist: Fashion-MNIST, 1 channel) | fmnist | inception
  std::string fd_weights;            // feature-net weights; empty: the committed fmnist file

  // Throws sagan::Error at the first invalid setting, naming where it was
  // given: "my.toml: batch_size: must be positive, got -4", "--batch-size:
  // must be positive, got 0" (see ConfigSources).
  void validate(const ConfigSources& sources = {}) const;

  std::string to_json() const;  // config.json and checkpoint metadata
  // For people to edit (--write-config): settings that only follow another
  // (TrainOption::follows) and those the data set or the launch sets
  // (TrainOption::from_data_set) are left out of the JSON, commented out in
  // TOML.
  std::string to_json_for_editing() const;
  std::string to_toml() const;  // the same keys; a seed above 2^63 - 1 cannot be written
  // A config from defaults and the settings in `text`; unknown keys, wrong
  // types and syntax errors throw naming `source` and the key.
  static TrainConfig from_json(const std::string& text, const std::string& source);
  static TrainConfig from_toml(const std::string& text, const std::string& source);
};

// Settings read from a config file's text over `cfg` (keys not in the text
// keep their values), each recorded in `sources` (when given) as from
// `source`.
void read_json_config(const std::string& text, const std::string& source, TrainConfig& cfg, ConfigSources* sources);
void read_toml_config(const std::string& text, const std::string& source, TrainConfig& cfg, ConfigSources* sources);
// A .json or .toml file (the extension, in any case, names the format; any
// other is refused); a missing or unreadable file is an error naming it.
void read_config_file(const std::string& path, TrainConfig& cfg, ConfigSources* sources);
// Writes cfg atomically as JSON or TOML, by the extension as above.
void write_config_file(const std::string& path, const TrainConfig& cfg);

// A setting --resume changed: the run's value, the new one, where it was given.
struct ConfigChange {
  std::string key, from, to, where;
};
// The settings given with --resume (those in `given_sources`, values in
// `given`) over the run's saved config: a setting whose table entry allows
// it is applied and returned as a change, one given with the value it
// already has is accepted, any other is refused with an error naming the
// option, both values and why (e.g. "--ch: a resumed run keeps model.ch = 64
// (runs/x/config.json); 32 would ..."). Settings from a program's code
// (given_sources.in_code) that differ from the defaults and the run's but
// are not listed are not applied, with a warning naming each.
std::vector<ConfigChange> apply_on_resume(TrainConfig& saved, const std::string& saved_source, const TrainConfig& given,
                                          const ConfigSources& given_sources);

}  // namespace sagan
