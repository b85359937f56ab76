#include "models/train_config.h"

#include <nlohmann/json.hpp>
#include <set>
#include <type_traits>
#include <vector>

#include "core/dtype.h"

namespace sagan {

void TrainConfig::validate() const {
  SAGAN_CHECK(dataset == "fashion-mnist" || dataset == "cifar10" || dataset == "folder",
              "--dataset: '{}' is not one of fashion-mnist, cifar10, folder", dataset);
  SAGAN_CHECK(dataset != "folder" || !data_path.empty(),
              "--dataset folder needs --data PATH (a folder of class sub-folders)");
  SAGAN_CHECK(dataset != "cifar10" || !data_path.empty(),
              "--dataset cifar10 needs --data PATH (the folder holding data_batch_1.bin ... test_batch.bin)");
  SAGAN_CHECK(batch_size > 0, "--batch-size must be positive, got {}", batch_size);
  SAGAN_CHECK(steps > 0, "--steps must be positive, got {}", steps);
  SAGAN_CHECK(n_dis > 0, "--n-dis must be positive, got {}", n_dis);
  SAGAN_CHECK(lr_g > 0 && lr_d > 0, "--lr-g and --lr-d must be positive, got {} and {}", lr_g, lr_d);
  SAGAN_CHECK(beta1 >= 0 && beta1 < 1, "--beta1 must be in [0, 1), got {}", beta1);
  SAGAN_CHECK(beta2 >= 0 && beta2 < 1, "--beta2 must be in [0, 1), got {}", beta2);
  SAGAN_CHECK(adam_eps > 0, "--adam-eps must be positive, got {}", adam_eps);
  SAGAN_CHECK(ema_decay >= 0 && ema_decay < 1, "--ema-decay must be in [0, 1), got {}", ema_decay);
  SAGAN_CHECK(ema_start >= 0, "--ema-start must be >= 0, got {}", ema_start);
  SAGAN_CHECK(grad_clip >= 0, "--grad-clip must be >= 0 (0 = off), got {}", grad_clip);
  SAGAN_CHECK(log_every > 0, "--log-every must be positive, got {}", log_every);
  SAGAN_CHECK(sample_every > 0, "--sample-every must be positive, got {}", sample_every);
  SAGAN_CHECK(checkpoint_every > 0, "--checkpoint-every must be positive, got {}", checkpoint_every);
  SAGAN_CHECK(keep_checkpoints > 0, "--keep-checkpoints must be positive, got {}", keep_checkpoints);
  SAGAN_CHECK(sample_per_class > 0, "--sample-per-class must be positive, got {}", sample_per_class);
  SAGAN_CHECK(fd_every >= 0, "--fd-every must be >= 0 (0 = off), got {}", fd_every);
  SAGAN_CHECK(fd_every % log_every == 0,
              "--fd-every ({}) must be a multiple of --log-every ({}): FD is logged on log rows", fd_every, log_every);
  SAGAN_CHECK(fd_every == 0 || fd_samples >= 2, "--fd-samples must be >= 2, got {}", fd_samples);
  SAGAN_CHECK(fd_features == "auto" || fd_features == "fmnist" || fd_features == "inception",
              "--fd-features: '{}' is not one of auto, fmnist, inception", fd_features);
  SAGAN_CHECK(fd_every == 0 || fd_features == "fmnist" || !fd_weights.empty() ||
                  (fd_features == "auto" && dataset == "fashion-mnist"),
              "--fd-every on {} uses Inception features: give --fd-weights FILE (tools/convert_fid_inception.py, "
              "docs/evaluation.md) or --fd-features fmnist",
              dataset);
  Device::parse(device == "auto" ? "cpu" : device);  // throws naming the string
  model.validate();
}

namespace {
using nlohmann::json;

json model_json(const SaganConfig& m) {
  json j = {{"resolution", m.resolution},
            {"ch", m.ch},
            {"z_dim", m.z_dim},
            {"num_classes", m.num_classes},
            {"pooled_attention", m.pooled_attention},
            {"image_channels", m.image_channels}};
  j["g_attn_res"] = m.g_attention();
  j["d_attn_res"] = m.d_attention();
  return j;
}
}  // namespace

std::string TrainConfig::to_json() const {
  json j = {{"model", model_json(model)},
            {"unconditional", unconditional},
            {"dataset", dataset},
            {"data_path", data_path},
            {"hflip", hflip},
            {"batch_size", batch_size},
            {"steps", steps},
            {"n_dis", n_dis},
            {"lr_g", lr_g},
            {"lr_d", lr_d},
            {"beta1", beta1},
            {"beta2", beta2},
            {"adam_eps", adam_eps},
            {"ema_decay", ema_decay},
            {"ema_start", ema_start},
            {"grad_clip", grad_clip},
            {"seed", seed},
            {"device", device},
            {"run_dir", run_dir},
            {"log_every", log_every},
            {"sample_every", sample_every},
            {"checkpoint_every", checkpoint_every},
            {"keep_checkpoints", keep_checkpoints},
            {"sample_per_class", sample_per_class},
            {"fd_every", fd_every},
            {"fd_samples", fd_samples},
            {"fd_features", fd_features},
            {"fd_weights", fd_weights}};
  return j.dump(2) + "\n";
}

TrainConfig TrainConfig::from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    SAGAN_FAIL("{}: not valid JSON: {}", source, e.what());
  }
  SAGAN_CHECK(j.is_object(), "{}: expected a JSON object", source);
  TrainConfig c;
  // nlohmann converts any JSON number to any arithmetic type: 1e300 into an
  // int64 is undefined behaviour, 64.9 truncates, -1 wraps into a uint64 and
  // 2^64 - 1 into an int64. Integer settings take integers in range only.
  auto check_integer = [&](const json& v, bool is_unsigned, const std::string& key) {
    bool ok = is_unsigned ? v.is_number_unsigned()
                          : v.is_number_integer() && (!v.is_number_unsigned() || v.get<uint64_t>() <= INT64_MAX);
    SAGAN_CHECK(ok, "{}: key '{}' must be {}, got {}", source, key,
                is_unsigned ? "a non-negative integer" : "an integer in the int64 range", v.dump());
  };
  auto get = [&](const json& obj, const char* key, auto& field, const std::string& where) {
    if (!obj.contains(key)) return;
    using T = std::decay_t<decltype(field)>;
    const json& v = obj.at(key);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
      check_integer(v, std::is_unsigned_v<T>, where + key);
    if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
      if (v.is_array())
        for (const json& e : v) check_integer(e, false, where + key);
    }
    try {
      v.get_to(field);
    } catch (const std::exception& e) {
      SAGAN_FAIL("{}: key '{}{}' has the wrong type: {}", source, where, key, e.what());
    }
  };
  static const std::set<std::string> top = {"model",
                                            "unconditional",
                                            "dataset",
                                            "data_path",
                                            "hflip",
                                            "batch_size",
                                            "steps",
                                            "n_dis",
                                            "lr_g",
                                            "lr_d",
                                            "beta1",
                                            "beta2",
                                            "adam_eps",
                                            "ema_decay",
                                            "ema_start",
                                            "grad_clip",
                                            "seed",
                                            "device",
                                            "run_dir",
                                            "log_every",
                                            "sample_every",
                                            "checkpoint_every",
                                            "keep_checkpoints",
                                            "sample_per_class",
                                            "fd_every",
                                            "fd_samples",
                                            "fd_features",
                                            "fd_weights"};
  for (auto& [k, v] : j.items()) SAGAN_CHECK(top.count(k), "{}: unknown key '{}'", source, k);
  if (j.contains("model")) {
    const json& m = j["model"];
    SAGAN_CHECK(m.is_object(), "{}: 'model' must be an object", source);
    static const std::set<std::string> mk = {
        "resolution", "ch", "z_dim", "num_classes", "pooled_attention", "image_channels", "g_attn_res", "d_attn_res"};
    for (auto& [k, v] : m.items()) SAGAN_CHECK(mk.count(k), "{}: unknown key 'model.{}'", source, k);
    get(m, "resolution", c.model.resolution, "model.");
    get(m, "ch", c.model.ch, "model.");
    get(m, "z_dim", c.model.z_dim, "model.");
    get(m, "num_classes", c.model.num_classes, "model.");
    get(m, "pooled_attention", c.model.pooled_attention, "model.");
    get(m, "image_channels", c.model.image_channels, "model.");
    if (m.contains("g_attn_res")) {
      std::vector<int64_t> v;
      get(m, "g_attn_res", v, "model.");
      c.model.g_attn_res = v;
    }
    if (m.contains("d_attn_res")) {
      std::vector<int64_t> v;
      get(m, "d_attn_res", v, "model.");
      c.model.d_attn_res = v;
    }
  }
  get(j, "unconditional", c.unconditional, "");
  get(j, "dataset", c.dataset, "");
  get(j, "data_path", c.data_path, "");
  get(j, "hflip", c.hflip, "");
  get(j, "batch_size", c.batch_size, "");
  get(j, "steps", c.steps, "");
  get(j, "n_dis", c.n_dis, "");
  get(j, "lr_g", c.lr_g, "");
  get(j, "lr_d", c.lr_d, "");
  get(j, "beta1", c.beta1, "");
  get(j, "beta2", c.beta2, "");
  get(j, "adam_eps", c.adam_eps, "");
  get(j, "ema_decay", c.ema_decay, "");
  get(j, "ema_start", c.ema_start, "");
  get(j, "grad_clip", c.grad_clip, "");
  get(j, "seed", c.seed, "");
  get(j, "device", c.device, "");
  get(j, "run_dir", c.run_dir, "");
  get(j, "log_every", c.log_every, "");
  get(j, "sample_every", c.sample_every, "");
  get(j, "checkpoint_every", c.checkpoint_every, "");
  get(j, "keep_checkpoints", c.keep_checkpoints, "");
  get(j, "sample_per_class", c.sample_per_class, "");
  get(j, "fd_every", c.fd_every, "");
  get(j, "fd_samples", c.fd_samples, "");
  get(j, "fd_features", c.fd_features, "");
  get(j, "fd_weights", c.fd_weights, "");
  return c;
}

}  // namespace sagan
