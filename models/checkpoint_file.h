// The one place that knows what a sagan-train checkpoint holds
// (docs/checkpoints.md): where checkpoints live in a run directory, the
// metadata, the sections of tensors and their name prefixes, and the
// trainer's counters. The Trainer saves and resumes through it; sagan-sample,
// sagan-eval and sagan-attention read networks through it.
//
// Where reliability checks go (issue 12): save_training_checkpoint is the
// only writer (check the tensors before io::save_safetensors);
// list_checkpoints gives a run's files newest first, so rotate_checkpoints
// decides what may be deleted and a reader that falls back to an older file
// when the newest does not open loops over that list (open_checkpoint on a
// run directory reads the newest today).
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sagan/core/io/safetensors.h"
#include "sagan/layers/adam.h"
#include "sagan/layers/module.h"
#include "sagan/models/data/loader.h"
#include "sagan/models/train_config.h"

namespace sagan {

// ---- layout ----

inline constexpr const char* kCheckpointFormat = "sagan-checkpoint-1";  // metadata "format"

// The groups of tensors in a checkpoint, each under its own name prefix.
enum class CheckpointSection { G, D, GEma, OptG, OptD };
const char* section_prefix(CheckpointSection s);  // "G.", "D.", "G_ema.", "opt_G.", "opt_D."
// The generator weights a tool asks for: "ema" (G_ema., the default of every
// tool) or "g" (G., the raw generator). Errors name the value.
CheckpointSection generator_section(const std::string& weights);

// ---- a run directory's files: <run_dir>/checkpoints/step_%08d.safetensors ----

std::string checkpoint_path(const std::string& run_dir, int64_t step);
// The step in a run file's name, "step_" + digits + `suffix`
// ("step_00000500.safetensors", "step_00000500.png"); nullopt for any other
// name ("step_best.safetensors").
std::optional<int64_t> step_in_name(const std::string& name, std::string_view suffix);
// Newest first, by step; empty when the run has none. Only names of
// checkpoint_path's form count ("step_" digits ".safetensors"): a copy
// kept beside them under another name ("step_best.safetensors") is neither
// resumed from, read by the tools, nor rotated away.
std::vector<std::string> list_checkpoints(const std::string& run_dir);
// The newest, or "" when there is none.
std::string latest_checkpoint(const std::string& run_dir);
// Deletes all but the newest `keep`. Every checkpoint written is finite
// (save_training_checkpoint refuses others, before rotation runs), so the
// newest finite one is always kept.
void rotate_checkpoints(const std::string& run_dir, int64_t keep);
// Removes the temporaries a crash during a checkpoint write leaves in
// checkpoints/ (".step_%08d.safetensors.tmp.XXXXXX", core/io/atomic_file.h;
// up to a full checkpoint each) and returns how many. Other files are left alone.
int64_t remove_orphaned_checkpoint_temporaries(const std::string& run_dir);
// Resuming: tries `restore` on the run's checkpoints, newest first, and
// returns the one that restored, "" when the run has none. A checkpoint that
// fails (corrupt, unreadable, non-finite) is reported through `warn` naming
// it, its error and the one tried next; when all fail the error lists each.
// When an older one restores, the newer ones that failed are renamed
// "<name>.unreadable" (kept for a look, reported through `warn`): otherwise
// they would stay "newest" for sagan-sample and sagan-eval, and rotation
// would count them among the kept files and delete the good ones.
// `accept`, when given, runs after a restore and before any rename: its
// error (the resume refused for another reason, such as fewer --steps than
// done) is not taken for a damaged checkpoint, ends the call and leaves
// every file as it was.
std::string restore_newest_valid(const std::string& run_dir, const std::function<void(const std::string&)>& restore,
                                 const std::function<void(const std::string&)>& warn,
                                 const std::function<void()>& accept = {});

// ---- what the Trainer saves and restores ----

// The trainer's state besides networks and optimisers: generator steps done,
// the latent/label Rng as (seed, position), the data stream's position.
struct TrainerCounters {
  int64_t step = 0;
  uint64_t rng_seed = 0, rng_position = 0;
  // DiffAugment's Rng (--diffaug), apart from the latents' so that z and
  // fake labels do not depend on --diffaug. Checkpoints written before it
  // existed have none (they never drew from it): has_aug_rng is false.
  uint64_t aug_seed = 0, aug_position = 0;
  data::LoaderState loader;
  bool has_aug_rng = true;
  // Iterations whose update --on-nan skip dropped, in all and in a row up to
  // this step (0 in older checkpoints).
  int64_t skipped_steps = 0, skipped_in_a_row = 0;
  // Examples in the data set the loader's order is drawn over (metadata
  // "data_size"); 0: not recorded (older checkpoints, or not a Trainer's).
  int64_t data_size = 0;
};

// The live objects a training checkpoint holds.
struct TrainingParts {
  nn::Module& g;
  nn::Module& d;
  nn::Module& g_ema;
  nn::Adam& opt_g;
  nn::Adam& opt_d;
};

// Every tensor of a training checkpoint, named as in the file.
NamedTensors training_checkpoint_tensors(const TrainingParts& parts, const TrainerCounters& counters);
// Writes it atomically with the metadata (format, step, config, data_size
// when counters.data_size > 0). Refuses,
// writing nothing, when a tensor holds a NaN or an infinity: the error names
// the file and the first such tensor (one finiteness reduction per flat
// parameter buffer and optimiser moment buffer, plus one per module buffer).
void save_training_checkpoint(const std::string& path, const TrainingParts& parts, const TrainerCounters& counters,
                              const TrainConfig& config);

// ---- reading ----

struct CheckpointFile {
  std::string path;  // the .safetensors file
  io::SafetensorsFile file;
  TrainConfig config;
  std::string step;  // metadata "step", or "?"
};

// A .safetensors file, or a run directory (its newest checkpoint). Errors
// name the path: missing, no checkpoints in a directory, not a sagan-train
// checkpoint (format or config metadata missing or unknown), or a tensor
// holding a NaN or an infinity (named): every reader, the tools and
// --resume, refuses the weights of a diverged run.
CheckpointFile open_checkpoint(const std::string& file_or_run);
// The same checks on a checkpoint's bytes in memory; errors name `name`.
CheckpointFile parse_checkpoint(const uint8_t* data, size_t size, const std::string& name);

// The tensors of one section, without the prefix.
std::map<std::string, Tensor> checkpoint_section(const CheckpointFile& c, CheckpointSection s);
// Loads a section into a network; errors name the file, the prefix and the
// tensor.
void load_network(nn::Module& m, const CheckpointFile& c, CheckpointSection s);
// The generator weights named by `weights` ("ema" or "g", see
// generator_section), and the discriminator.
void load_generator(nn::Module& g, const CheckpointFile& c, const std::string& weights);
void load_discriminator(nn::Module& d, const CheckpointFile& c);

// Restores everything a resumed run needs into `parts` and returns the
// counters. The checkpoint's model architecture must equal `model` (the
// message shows both); errors name the file and the tensor.
TrainerCounters restore_training_checkpoint(const CheckpointFile& c, const SaganConfig& model,
                                            const TrainingParts& parts);

}  // namespace sagan
