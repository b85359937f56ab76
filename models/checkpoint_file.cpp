#include "sagan/models/checkpoint_file.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

#include "sagan/core/autograd.h"
#include "sagan/core/io/atomic_file.h"
#include "sagan/core/ops.h"
#include "sagan/core/text.h"
#include "sagan/layers/flat_parameters.h"
#include "sagan/layers/spectral_norm.h"
#include "sagan/models/finite_check.h"

namespace sagan {

namespace fs = std::filesystem;

namespace {

// The trainer's counters: three small int64 tensors. uint64 values are
// stored bit for bit.
constexpr const char* kStepTensor = "trainer.step";        // [1] generator steps
constexpr const char* kRngTensor = "trainer.rng";          // [2] seed, position
constexpr const char* kAugRngTensor = "trainer.aug_rng";   // [2] seed, position (DiffAugment)
constexpr const char* kLoaderTensor = "trainer.loader";    // [3] epoch, index, seed
constexpr const char* kSkippedTensor = "trainer.skipped";  // [1] iterations --on-nan skip dropped
// [1] of them in a row up to this step (absent before 2026-12-06: 0)
constexpr const char* kSkippedInARowTensor = "trainer.skipped_in_a_row";

int64_t as_i64(uint64_t v) {
  int64_t r;
  std::memcpy(&r, &v, sizeof r);
  return r;
}
uint64_t as_u64(int64_t v) {
  uint64_t r;
  std::memcpy(&r, &v, sizeof r);
  return r;
}

Tensor ints(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}); }

}  // namespace

std::optional<int64_t> step_in_name(const std::string& name, std::string_view suffix) {
  constexpr std::string_view kPrefix = "step_";
  if (name.size() <= kPrefix.size() + suffix.size() || name.rfind(kPrefix, 0) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  const std::string_view digits =
      std::string_view(name).substr(kPrefix.size(), name.size() - kPrefix.size() - suffix.size());
  if (!all_digits(digits) || digits.size() > 18) return std::nullopt;
  return std::stoll(std::string(digits));
}

namespace {

// The step of "step_00000500.safetensors", the name checkpoint_path gives
// (more digits past step 99,999,999); nullopt for any other name, such as a
// copy a user kept beside them ("step_best.safetensors",
// "step_00000500_good.safetensors"), which is then neither resumed from nor
// rotated away.
std::optional<int64_t> checkpoint_step(const fs::path& p) { return step_in_name(p.filename().string(), ".safetensors"); }

// ".step_00000500.safetensors.tmp.Ab12Cd": write_file_atomic's temporary of
// a checkpoint (core/io/atomic_file.cpp names it "." + name + ".tmp.XXXXXX").
bool is_checkpoint_temporary(const fs::path& p) {
  const std::string n = p.filename().string();
  const size_t tmp = n.find(".safetensors.tmp.");
  if (n.rfind(".step_", 0) != 0 || tmp == std::string::npos) return false;
  return all_digits(std::string_view(n).substr(6, tmp - 6));
}

// Every floating tensor a training checkpoint would hold is finite: one
// reduction per flat buffer (parameters, Adam's moments) and per module
// buffer (SN vectors, BN statistics); modules without flat parameters are
// checked one parameter at a time.
bool parts_finite(const TrainingParts& parts) {
  for (nn::Module* m : {&parts.g, &parts.d, &parts.g_ema}) {
    if (m->flat_parameters()) {
      if (!all_finite(m->flat_parameters()->data())) return false;
    } else if (first_non_finite(m->named_parameters())) {
      return false;
    }
    if (first_non_finite(m->named_buffers())) return false;
  }
  for (nn::Adam* opt : {&parts.opt_g, &parts.opt_d})
    for (const Tensor& t : opt->moment_buffers())
      if (!all_finite(t)) return false;
  return true;
}

// What must match for a checkpoint's networks to load into a model.
std::string architecture(const SaganConfig& m) {
  return nlohmann::json{
      {"res", m.resolution},   {"g_ch", m.resolved_g_ch()}, {"d_ch", m.resolved_d_ch()},   {"z", m.z_dim},
      {"ga", m.g_attention()}, {"da", m.d_attention()},     {"pooled", m.pooled_attention}}
      .dump();
}

}  // namespace

const char* section_prefix(CheckpointSection s) {
  switch (s) {
    case CheckpointSection::G:
      return "G.";
    case CheckpointSection::D:
      return "D.";
    case CheckpointSection::GEma:
      return "G_ema.";
    case CheckpointSection::OptG:
      return "opt_G.";
    case CheckpointSection::OptD:
      return "opt_D.";
  }
  SAGAN_FAIL("checkpoint: unknown section {}", static_cast<int>(s));
}

CheckpointSection generator_section(const std::string& weights) {
  if (weights == "ema") return CheckpointSection::GEma;
  if (weights == "g") return CheckpointSection::G;
  SAGAN_FAIL("--weights: '{}' is not ema (the EMA generator) or g (the raw generator)", weights);
}

// ---------------------------------------------------------------- run directory

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  return (fs::path(run_dir) / "checkpoints" / fmt::format("step_{:08}.safetensors", step)).string();
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  fs::path dir = fs::path(run_dir) / "checkpoints";
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  // Newest first by step, not by name: past 8 digits the text order is not the
  // step order ("step_100000000" sorts before "step_99999999").
  std::vector<std::pair<int64_t, std::string>> found;
  for (auto& e : io::list_directory(dir, "checkpoints"))
    if (const std::optional<int64_t> step = checkpoint_step(e.path())) found.emplace_back(*step, e.path().string());
  std::sort(found.rbegin(), found.rend());
  for (auto& [step, path] : found) out.push_back(std::move(path));
  return out;
}

std::string latest_checkpoint(const std::string& run_dir) {
  std::vector<std::string> all = list_checkpoints(run_dir);
  return all.empty() ? std::string() : all.front();
}

void rotate_checkpoints(const std::string& run_dir, int64_t keep) {
  std::vector<std::string> all = list_checkpoints(run_dir);
  for (size_t i = static_cast<size_t>(std::max<int64_t>(keep, 0)); i < all.size(); ++i) fs::remove(all[i]);
}

int64_t remove_orphaned_checkpoint_temporaries(const std::string& run_dir) {
  fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  std::vector<fs::path> orphans;
  for (auto& e : io::list_directory(dir, "checkpoints"))
    if (e.is_regular_file(ec) && is_checkpoint_temporary(e.path())) orphans.push_back(e.path());
  for (const fs::path& p : orphans) {
    fs::remove(p, ec);
    SAGAN_CHECK(!ec, "{}: cannot remove this leftover of an interrupted checkpoint write: {}", p.string(),
                ec.message());
  }
  return static_cast<int64_t>(orphans.size());
}

std::string restore_newest_valid(const std::string& run_dir, const std::function<void(const std::string&)>& restore,
                                 const std::function<void(const std::string&)>& warn,
                                 const std::function<void()>& accept) {
  const std::vector<std::string> all = list_checkpoints(run_dir);
  std::vector<std::string> errors;
  for (size_t i = 0; i < all.size(); ++i) {
    try {
      restore(all[i]);
    } catch (const Error& e) {
      errors.push_back(e.what());
      if (i + 1 < all.size())
        warn(fmt::format("{} cannot be resumed from ({}); trying the previous checkpoint, {}", all[i], e.what(),
                         all[i + 1]));
      continue;
    }
    if (accept) accept();  // outside the try: not a damaged checkpoint
    for (size_t j = 0; j < i; ++j) {
      std::error_code ec;
      fs::rename(all[j], all[j] + ".unreadable", ec);
      warn(ec ? fmt::format("could not rename {} to {}.unreadable ({}); remove it, or rotation may delete the "
                            "checkpoints after it",
                            all[j], all[j], ec.message())
              : fmt::format("renamed {} to {}.unreadable: it stays out of rotation and of sagan-sample/-eval", all[j],
                            all[j]));
    }
    return all[i];
  }
  if (all.empty()) return "";
  SAGAN_FAIL("{}: none of its {} checkpoint(s) can be resumed from:\n  {}", run_dir, all.size(),
             fmt::join(errors, "\n  "));
}

// ---------------------------------------------------------------- writing

NamedTensors training_checkpoint_tensors(const TrainingParts& parts, const TrainerCounters& counters) {
  NamedTensors out;
  auto add_all = [&](CheckpointSection s, const std::map<std::string, Tensor>& m) {
    for (auto& [k, v] : m) out.emplace_back(section_prefix(s) + k, v);
  };
  add_all(CheckpointSection::G, parts.g.state());
  add_all(CheckpointSection::D, parts.d.state());
  add_all(CheckpointSection::GEma, parts.g_ema.state());
  add_all(CheckpointSection::OptG, parts.opt_g.state());
  add_all(CheckpointSection::OptD, parts.opt_d.state());
  const data::LoaderState& ls = counters.loader;
  out.emplace_back(kStepTensor, ints({counters.step}));
  out.emplace_back(kRngTensor, ints({as_i64(counters.rng_seed), as_i64(counters.rng_position)}));
  out.emplace_back(kAugRngTensor, ints({as_i64(counters.aug_seed), as_i64(counters.aug_position)}));
  out.emplace_back(kLoaderTensor, ints({ls.epoch, ls.index, as_i64(ls.seed)}));
  out.emplace_back(kSkippedTensor, ints({counters.skipped_steps}));
  out.emplace_back(kSkippedInARowTensor, ints({counters.skipped_in_a_row}));
  return out;
}

void save_training_checkpoint(const std::string& path, const TrainingParts& parts, const TrainerCounters& counters,
                              const TrainConfig& config) {
  io::Metadata meta = {
      {"format", kCheckpointFormat}, {"step", std::to_string(counters.step)}, {"config", config.to_json()}};
  if (counters.data_size > 0) meta.emplace("data_size", std::to_string(counters.data_size));
  NamedTensors tensors = training_checkpoint_tensors(parts, counters);
  if (!parts_finite(parts)) {
    // Only now is each tensor looked at by itself, to name the first.
    SAGAN_FAIL(
        "{}: not written: tensor '{}' holds NaN or infinite values (the run diverged at or before step {}); "
        "the checkpoints already written are kept",
        path, first_non_finite(tensors).value_or("?"), counters.step);
  }
  io::save_safetensors(path, tensors, meta);
}

// ---------------------------------------------------------------- reading

namespace {
// The checks every reader gets, on a file already parsed as safetensors.
CheckpointFile checked(CheckpointFile c) {
  auto fmt_it = c.file.metadata.find("format");
  SAGAN_CHECK(fmt_it != c.file.metadata.end() && fmt_it->second == kCheckpointFormat,
              "{}: not a sagan-train checkpoint (metadata 'format' is {}, expected {})", c.path,
              fmt_it == c.file.metadata.end() ? std::string("missing") : "'" + fmt_it->second + "'", kCheckpointFormat);
  auto cfg_it = c.file.metadata.find("config");
  SAGAN_CHECK(cfg_it != c.file.metadata.end(), "{}: not a sagan-train checkpoint (no 'config' metadata)", c.path);
  // A config file may leave settings at their defaults; a checkpoint's
  // records every one. Without its model the networks would be built from
  // the defaults and fail on the first tensor's shape.
  {
    const nlohmann::json cfg = nlohmann::json::parse(cfg_it->second, nullptr, /*allow_exceptions=*/false);
    SAGAN_CHECK(cfg.is_discarded() || (cfg.is_object() && cfg.contains("model") && cfg["model"].is_object()),
                "{} (config metadata): no 'model' settings: the file is damaged or not sagan-train's", c.path);
    // Every key a checkpoint has recorded since the format began (g_ch and
    // d_ch came later: ch stands for both without them).
    if (!cfg.is_discarded())
      for (const char* key : {"resolution", "ch", "z_dim", "num_classes", "g_attn_res", "d_attn_res",
                              "pooled_attention", "image_channels"})
        SAGAN_CHECK(cfg["model"].contains(key),
                    "{} (config metadata): model.{} missing: the file is damaged or not sagan-train's", c.path, key);
  }  // text that is not JSON: from_json names the parse error
  c.config = TrainConfig::from_json(cfg_it->second, c.path + " (config metadata)");
  // Checked here, naming the file: a network built from it would fail
  // later with the bare rule ("SaganConfig: ...").
  if (auto p = c.config.model.problem())
    SAGAN_FAIL("{} (config metadata): model.{}: {}: the file is damaged or not sagan-train's", c.path, p->key, p->text);
  auto step = c.file.metadata.find("step");
  c.step = step != c.file.metadata.end() ? step->second : "?";
  // Printed by the tools and written into exported models: a number, or the
  // file is not one sagan-train wrote.
  SAGAN_CHECK(c.step == "?" || (c.step.size() <= 19 && all_digits(c.step)),
              "{}: metadata 'step' is '{}', not a step count: the file is damaged or not sagan-train's", c.path,
              c.step);

  // The tools print and exports record the metadata's step; --resume
  // continues from the tensor's. They agree in every file sagan-train wrote.
  if (c.step != "?" && c.file.contains(kStepTensor)) {
    const Tensor& t = c.file.at(kStepTensor);
    if (t.dtype() == DType::I64 && t.numel() == 1) {
      const int64_t tensor_step = t.to_int_vector()[0];
      SAGAN_CHECK(std::to_string(tensor_step) == c.step,
                  "{}: tensor '{}' holds {}, but the file's metadata says step {}: the file is damaged or not "
                  "sagan-train's",
                  c.path, kStepTensor, tensor_step, c.step);
    }
  }

  // The file's tensors are on the CPU: a scan of each, whatever reads it next.
  for (const auto& [name, t] : c.file.tensors)
    SAGAN_CHECK(all_finite(t),
                "{}: tensor '{}' holds NaN or infinite values, which sagan-train refuses to save: the file is "
                "damaged, or a version before that check saved a diverged run (step {}); use an earlier "
                "checkpoint",
                c.path, name, c.step);
  return c;
}
}  // namespace

CheckpointFile open_checkpoint(const std::string& file_or_run) {
  CheckpointFile c;
  c.path = file_or_run;
  if (fs::is_directory(file_or_run)) {
    c.path = latest_checkpoint(file_or_run);
    if (c.path.empty()) {  // the run's checkpoints/ folder itself, named in place of the run?
      std::error_code ec;
      const fs::path run = fs::canonical(file_or_run, ec).parent_path();
      SAGAN_CHECK(
          ec || latest_checkpoint(run.string()).empty() || !fs::equivalent(run / "checkpoints", file_or_run, ec),
          "{}: a run's checkpoints folder; give the run directory {} (its newest checkpoint) or one of the "
          "files in it",
          file_or_run, run.string());
    }
    SAGAN_CHECK(!c.path.empty(), "{}: a directory without checkpoints/step_*.safetensors", file_or_run);
  }
  SAGAN_CHECK(fs::exists(c.path), "{}: no such checkpoint file or run directory", c.path);
  try {
    c.file = io::load_safetensors(c.path);
    return checked(std::move(c));
  } catch (const Error& e) {
    if (c.path == file_or_run) throw;  // a file the caller named
    // The run's newest, unreadable (a crash during its write on a file
    // system without atomic renames, a disk error): say which older one
    // could serve.
    const std::vector<std::string> all = list_checkpoints(file_or_run);
    if (all.size() < 2) throw;
    SAGAN_FAIL("{}\n(the newest checkpoint of {}; name an older one to use it instead, e.g. {})", e.what(), file_or_run,
               all[1]);
  }
}

CheckpointFile parse_checkpoint(const uint8_t* data, size_t size, const std::string& name) {
  CheckpointFile c;
  c.path = name;
  c.file = io::parse_safetensors(data, size, name);
  return checked(std::move(c));
}

std::map<std::string, Tensor> checkpoint_section(const CheckpointFile& c, CheckpointSection s) {
  const std::string prefix = section_prefix(s);
  std::map<std::string, Tensor> out;
  for (auto& [k, v] : c.file.tensors)
    if (k.compare(0, prefix.size(), prefix) == 0) out.emplace(k.substr(prefix.size()), v);
  return out;
}

namespace {

// A spectrally normalised layer divides its weight by sigma = u^T W v of
// the stored u and v (eval mode). A zeroed u or v passes the NaN check,
// yet gives sigma = 0 and a network of infinities, which a PNG shows as
// black and an ONNX export carries: refused here, naming the layer. W /
// sigma is computed as the layer computes it (spectral_sigma, float32),
// without the power iteration a training-mode forward would run.
void check_spectral_norms(nn::Module& m, const std::string& prefix, const std::string& what) {
  if (auto* sn = dynamic_cast<nn::SpectralNormed*>(&m)) {
    NoGradGuard ng;
    const Tensor w = sn->weight_matrix(), sigma = spectral_sigma(w, sn->u(), sn->v());
    SAGAN_CHECK(all_finite(div(w, sigma)),
                "{}: {}weight_u and weight_v give the spectral norm sigma = u^T W v = {}, so W / sigma is not finite "
                "(a zeroed u or v: the checkpoint is damaged)",
                what, prefix, sigma.item());
  }
  for (const auto& [name, child] : m.named_children()) check_spectral_norms(*child, prefix + name + ".", what);
}

}  // namespace

void load_network(nn::Module& m, const CheckpointFile& c, CheckpointSection s) {
  std::map<std::string, Tensor> state = checkpoint_section(c, s);
  SAGAN_CHECK(!state.empty(), "{}: no '{}*' tensors in the checkpoint", c.path, section_prefix(s));
  try {
    NoGradGuard ng;
    m.load_state(state);
  } catch (const Error& e) {
    SAGAN_FAIL("{} ({}*): {}", c.path, section_prefix(s), e.what());
  }
  check_spectral_norms(m, "", fmt::format("{} ({}*)", c.path, section_prefix(s)));
}

void load_generator(nn::Module& g, const CheckpointFile& c, const std::string& weights) {
  load_network(g, c, generator_section(weights));
}

void load_discriminator(nn::Module& d, const CheckpointFile& c) { load_network(d, c, CheckpointSection::D); }

TrainerCounters restore_training_checkpoint(const CheckpointFile& c, const SaganConfig& model,
                                            const TrainingParts& parts) {
  const SaganConfig& saved = c.config.model;
  // The classes and channels come from the data set: another --data may
  // change them, and the message should say so rather than fail on a shape.
  SAGAN_CHECK(saved.num_classes == model.num_classes,
              "{}: the checkpoint's model has {} classes, the data set gives {} (another --data?)", c.path,
              saved.num_classes, model.num_classes);
  SAGAN_CHECK(saved.image_channels == model.image_channels,
              "{}: the checkpoint's model takes {}-channel images, the data set gives {} (another --data or "
              "--channels?)",
              c.path, saved.image_channels, model.image_channels);
  SAGAN_CHECK(architecture(saved) == architecture(model),
              "{}: checkpoint model {} differs from the configured model {}", c.path, architecture(saved),
              architecture(model));
  load_network(parts.g, c, CheckpointSection::G);
  load_network(parts.d, c, CheckpointSection::D);
  load_network(parts.g_ema, c, CheckpointSection::GEma);
  auto load_optimizer = [&](nn::Adam& opt, CheckpointSection s) {
    try {
      NoGradGuard ng;
      opt.load_state(checkpoint_section(c, s));
    } catch (const Error& e) {
      SAGAN_FAIL("{} ({}*): {}", c.path, section_prefix(s), e.what());
    }
  };
  load_optimizer(parts.opt_g, CheckpointSection::OptG);
  load_optimizer(parts.opt_d, CheckpointSection::OptD);

  auto small = [&](const char* name, size_t n) {
    SAGAN_CHECK(c.file.contains(name), "{}: no tensor '{}'", c.path, name);
    std::vector<int64_t> v = c.file.at(name).to_int_vector();
    SAGAN_CHECK(v.size() == n, "{}: tensor '{}' has {} elements, expected {}", c.path, name, v.size(), n);
    return v;
  };
  // A counter out of range would train from a negative step or index, or
  // drop every metrics row "after" it.
  auto non_negative = [&](const char* name, int64_t v) {
    SAGAN_CHECK(v >= 0, "{}: tensor '{}' holds {}, expected a count >= 0", c.path, name, v);
    return v;
  };
  TrainerCounters counters;
  counters.step = non_negative(kStepTensor, small(kStepTensor, 1)[0]);
  auto r = small(kRngTensor, 2);
  counters.rng_seed = as_u64(r[0]);
  counters.rng_position = as_u64(r[1]);
  counters.has_aug_rng = c.file.contains(kAugRngTensor);
  if (counters.has_aug_rng) {
    auto a = small(kAugRngTensor, 2);
    counters.aug_seed = as_u64(a[0]);
    counters.aug_position = as_u64(a[1]);
  }
  auto l = small(kLoaderTensor, 3);
  counters.loader = {non_negative(kLoaderTensor, l[0]), non_negative(kLoaderTensor, l[1]), as_u64(l[2])};
  if (c.file.contains(kSkippedTensor))
    counters.skipped_steps = non_negative(kSkippedTensor, small(kSkippedTensor, 1)[0]);
  if (c.file.contains(kSkippedInARowTensor))
    counters.skipped_in_a_row = non_negative(kSkippedInARowTensor, small(kSkippedInARowTensor, 1)[0]);
  if (auto it = c.file.metadata.find("data_size"); it != c.file.metadata.end()) {
    const std::string& v = it->second;
    const bool digits = !v.empty() && v.size() <= 18 && v.find_first_not_of("0123456789") == std::string::npos;
    SAGAN_CHECK(digits && std::stoll(v) > 0,
                "{}: metadata 'data_size' is '{}', not a count of examples: the file is damaged or not sagan-train's",
                c.path, v);
    counters.data_size = std::stoll(v);
  }
  return counters;
}

}  // namespace sagan
