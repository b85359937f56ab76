#include "models/trainer.h"

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/ops.h"

namespace sagan {

Device resolve_device(const std::string& name) {
  if (name == "auto") return cuda_available() ? Device::cuda(0) : Device::cpu();
  Device d = Device::parse(name);
  if (d.is_cuda())
    SAGAN_CHECK(d.index < cuda_device_count(), "--device {}: {} CUDA device(s) present{}", name, cuda_device_count(),
                cuda_device_count() == 0 ? " (or this build has no CUDA backend)" : "");
  return d;
}

namespace {
constexpr uint64_t kSampleStream = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kAugmentStream = 0xD1FFA06D1FFA06D1ull;

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

Tensor ints(const std::vector<int64_t>& v, Device d) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}, d);
}
}  // namespace

Trainer::Trainer(TrainConfig cfg, std::shared_ptr<const data::Dataset> dataset)
    : cfg_(std::move(cfg)),
      device_(resolve_device(cfg_.device)),
      dataset_(std::move(dataset)),
      rng_(cfg_.seed ^ kSampleStream),
      diffaug_(nn::DiffAugmentPolicy::parse(cfg_.diffaug)),
      aug_rng_(cfg_.seed ^ kAugmentStream) {
  SAGAN_CHECK(dataset_ != nullptr, "Trainer: no data set");
  cfg_.model.num_classes = cfg_.unconditional ? 0 : dataset_->num_classes();
  cfg_.model.image_channels = dataset_->channels();
  SAGAN_CHECK(dataset_->size() >= cfg_.batch_size, "Trainer: data set {} has {} images, fewer than --batch-size {}",
              dataset_->name(), dataset_->size(), cfg_.batch_size);

  data::LoaderOptions lo;
  lo.batch_size = cfg_.batch_size;
  lo.resolution = cfg_.model.resolution;
  lo.upscale = io::parse_upscale(cfg_.resize);
  lo.hflip = cfg_.hflip;
  lo.seed = cfg_.seed;
  loader_ = std::make_unique<data::DataLoader>(dataset_, lo);

  Rng init(cfg_.seed);
  g_ = std::make_unique<SaganGenerator>(cfg_.model, init);
  d_ = std::make_unique<SaganDiscriminator>(cfg_.model, init);
  g_ema_ = std::make_unique<SaganGenerator>(cfg_.model, init);
  g_->to(device_);
  d_->to(device_);
  g_ema_->to(device_);
  {
    NoGradGuard ng;
    g_ema_->load_state(g_->state());
  }
  g_ema_->eval();
  opt_g_ = std::make_unique<nn::Adam>(g_->named_parameters(), cfg_.adam_g);
  opt_d_ = std::make_unique<nn::Adam>(d_->named_parameters(), cfg_.adam_d);
}

void Trainer::set_requires_grad(nn::Module& m, bool on) {
  for (Tensor p : m.parameters()) p.set_requires_grad(on);
}

Tensor Trainer::hinge_d(const Tensor& out, int64_t n_real, double* d_real, double* d_fake) const {
  int64_t n = out.size(0);
  Tensor real = out.slice(0, 0, n_real), fake = out.slice(0, n_real, n);
  {
    NoGradGuard ng;
    *d_real = mean(real).item();
    *d_fake = mean(fake).item();
  }
  return add(mean(relu(rsub(1.0, real))), mean(relu(add(fake, 1.0))));
}

double Trainer::clip_and_norm(const nn::Module& m) const {
  if (cfg_.grad_clip <= 0) return 0.0;
  NoGradGuard ng;
  std::vector<Tensor> params = m.parameters();
  double sq = 0.0;
  for (const Tensor& p : params)
    if (p.grad().defined()) sq += sum(square(p.grad())).item();
  double norm = std::sqrt(sq);
  if (norm > cfg_.grad_clip) {
    double scale = cfg_.grad_clip / (norm + 1e-6);
    for (const Tensor& p : params)
      if (p.grad().defined()) p.set_grad(mul(p.grad(), scale));
  }
  return norm;
}

void Trainer::update_ema() {
  NoGradGuard ng;
  auto src = g_->named_parameters();
  auto dst = g_ema_->named_parameters();
  std::vector<Tensor> ps, es;
  for (size_t i = 0; i < src.size(); ++i) {
    ps.push_back(src[i].second);
    es.push_back(dst[i].second);
  }
  if (step_ < cfg_.ema_start) {
    for (size_t i = 0; i < ps.size(); ++i) es[i].copy_(ps[i]);
  } else {
    ema_update(es, ps, cfg_.ema_decay);
  }
  // BN running statistics and SN vectors follow G exactly.
  auto sb = g_->named_buffers();
  auto db = g_ema_->named_buffers();
  for (size_t i = 0; i < sb.size(); ++i) db[i].second.copy_(sb[i].second);
}

StepStats Trainer::step() {
  StepStats st;
  const int64_t B = cfg_.batch_size, K = cfg_.model.num_classes;
  auto fake_labels = [&]() {
    std::vector<int64_t> y(static_cast<size_t>(B), 0);
    if (K > 0)
      for (auto& v : y) v = static_cast<int64_t>(rng_.below(static_cast<uint64_t>(K)));
    return y;
  };
  auto latent = [&]() { return Tensor::randn({B, cfg_.model.z_dim}, rng_, DType::F32, device_); };

  for (int64_t i = 0; i < cfg_.n_dis; ++i) {
    data::Batch b = loader_->next();
    Tensor z = latent();
    std::vector<int64_t> yf = fake_labels();
    Tensor fake;
    {
      NoGradGuard ng;
      g_->power_iterate_all();
      fake = g_->forward(z, K > 0 ? ints(yf, device_) : Tensor());
    }
    std::vector<int64_t> y_all = b.labels.to_int_vector();
    y_all.insert(y_all.end(), yf.begin(), yf.end());
    Tensor x_all = nn::diffaugment(concat({b.images.to(device_), fake}, 0), diffaug_, aug_rng_);
    d_->power_iterate_all();
    Tensor out = d_->forward(x_all, K > 0 ? ints(y_all, device_) : Tensor());
    Tensor loss = hinge_d(out, B, &st.d_real, &st.d_fake);
    opt_d_->zero_grad();
    loss.backward();
    st.grad_norm_d = clip_and_norm(*d_);
    opt_d_->step();
    st.loss_d = loss.item();
  }

  set_requires_grad(*d_, false);
  try {
    Tensor z = latent();
    Tensor yf = K > 0 ? ints(fake_labels(), device_) : Tensor();
    g_->power_iterate_all();
    Tensor fake = g_->forward(z, yf);
    d_->power_iterate_all();
    Tensor loss = neg(mean(d_->forward(nn::diffaugment(fake, diffaug_, aug_rng_), yf)));
    opt_g_->zero_grad();
    loss.backward();
    st.grad_norm_g = clip_and_norm(*g_);
    opt_g_->step();
    st.loss_g = loss.item();
  } catch (...) {
    set_requires_grad(*d_, true);
    throw;
  }
  set_requires_grad(*d_, true);
  ++step_;
  update_ema();
  st.step = step_;
  return st;
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

NamedTensors Trainer::checkpoint_tensors() const {
  NamedTensors out;
  auto add_all = [&](const std::string& prefix, const std::map<std::string, Tensor>& m) {
    for (auto& [k, v] : m) out.emplace_back(prefix + k, v);
  };
  add_all("G.", g_->state());
  add_all("D.", d_->state());
  add_all("G_ema.", g_ema_->state());
  add_all("opt_G.", opt_g_->state());
  add_all("opt_D.", opt_d_->state());
  data::LoaderState ls = loader_->state();
  out.emplace_back("trainer.step", ints({step_}, Device::cpu()));
  out.emplace_back("trainer.rng", ints({as_i64(rng_.seed()), as_i64(rng_.position())}, Device::cpu()));
  out.emplace_back("trainer.aug_rng", ints({as_i64(aug_rng_.seed()), as_i64(aug_rng_.position())}, Device::cpu()));
  out.emplace_back("trainer.loader", ints({ls.epoch, ls.index, as_i64(ls.seed)}, Device::cpu()));
  return out;
}

void Trainer::save_checkpoint(const std::string& path) const {
  io::Metadata meta = {{"format", "sagan-checkpoint-1"}, {"step", std::to_string(step_)}, {"config", cfg_.to_json()}};
  io::save_safetensors(path, checkpoint_tensors(), meta);
}

void Trainer::load_checkpoint(const std::string& path) {
  io::SafetensorsFile f = io::load_safetensors(path);
  auto fmt_it = f.metadata.find("format");
  SAGAN_CHECK(fmt_it != f.metadata.end() && fmt_it->second == "sagan-checkpoint-1",
              "{}: not a sagan training checkpoint (metadata 'format' missing or unknown)", path);
  auto cfg_it = f.metadata.find("config");
  SAGAN_CHECK(cfg_it != f.metadata.end(), "{}: checkpoint has no 'config' metadata", path);
  TrainConfig saved = TrainConfig::from_json(cfg_it->second, path + " (config metadata)");
  saved.model.num_classes = cfg_.model.num_classes;  // resolved from the data set in both
  saved.model.image_channels = cfg_.model.image_channels;
  auto arch = [](const SaganConfig& m) {
    return nlohmann::json{
        {"res", m.resolution},   {"g_ch", m.resolved_g_ch()}, {"d_ch", m.resolved_d_ch()},   {"z", m.z_dim},
        {"ga", m.g_attention()}, {"da", m.d_attention()},     {"pooled", m.pooled_attention}}
        .dump();
  };
  SAGAN_CHECK(arch(saved.model) == arch(cfg_.model), "{}: checkpoint model {} differs from the configured model {}",
              path, arch(saved.model), arch(cfg_.model));

  auto section = [&](const std::string& prefix) {
    std::map<std::string, Tensor> m;
    for (auto& [k, v] : f.tensors)
      if (k.compare(0, prefix.size(), prefix) == 0) m.emplace(k.substr(prefix.size()), v);
    return m;
  };
  try {
    NoGradGuard ng;
    g_->load_state(section("G."));
    d_->load_state(section("D."));
    g_ema_->load_state(section("G_ema."));
    opt_g_->load_state(section("opt_G."));
    opt_d_->load_state(section("opt_D."));
  } catch (const Error& e) {
    SAGAN_FAIL("{}: {}", path, e.what());
  }
  auto small = [&](const char* name, size_t n) {
    std::vector<int64_t> v = f.at(name).to_int_vector();
    SAGAN_CHECK(v.size() == n, "{}: tensor '{}' has {} elements, expected {}", path, name, v.size(), n);
    return v;
  };
  step_ = small("trainer.step", 1)[0];
  auto r = small("trainer.rng", 2);
  rng_.set_state(as_u64(r[0]), as_u64(r[1]));
  if (f.contains("trainer.aug_rng")) {  // absent from checkpoints before --diffaug, which never drew from it
    auto a = small("trainer.aug_rng", 2);
    aug_rng_.set_state(as_u64(a[0]), as_u64(a[1]));
  }
  auto l = small("trainer.loader", 3);
  loader_->set_state({l[0], l[1], as_u64(l[2])});
}

}  // namespace sagan
