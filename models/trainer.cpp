#include "models/trainer.h"

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/ops.h"
#include "layers/spectral_norm.h"

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

Trainer::Trainer(TrainConfig cfg, std::shared_ptr<const data::Dataset> dataset, DType dtype)
    : cfg_(std::move(cfg)),
      device_(resolve_device(cfg_.device)),
      dtype_(dtype),
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
  SAGAN_CHECK(dtype_ == DType::F32 || dtype_ == DType::F64, "Trainer: models must be float32 or float64, got {}",
              dtype_name(dtype_));
  for (nn::Module* m : {static_cast<nn::Module*>(g_.get()), static_cast<nn::Module*>(d_.get()),
                        static_cast<nn::Module*>(g_ema_.get())}) {
    m->to(dtype_);
    m->to(device_);
  }
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
  // Parameters and BN running statistics are averaged alike (BigGAN-PyTorch
  // and StudioGAN): statistics averaged over the same window as the weights
  // belong to the averaged weights to first order, G's latest ones to G's
  // latest weights.
  std::vector<Tensor> src, dst;
  auto collect = [](const NamedTensors& from, std::vector<Tensor>& to) {
    for (const auto& [name, t] : from) to.push_back(t);
  };
  collect(g_->named_parameters(), src);
  collect(g_->named_buffers(), src);
  collect(g_ema_->named_parameters(), dst);
  collect(g_ema_->named_buffers(), dst);
  if (step_ < cfg_.ema_start) {
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  } else {
    ema_update(dst, src, cfg_.ema_decay);
  }
  // SN vectors are power-iteration state, not statistics: eval-mode SN takes
  // sigma = u^T W v with u, v as unit vectors, and an average of rotating unit
  // vectors is shorter (norms down to 0.43 by step 2000 of a Fashion-MNIST
  // run, sigma 5x too small). G's own vectors are unit and fit W_ema ~ W_G.
  std::vector<nn::SpectralNormed*> sn_src = g_->spectral_norm_layers(), sn_dst = g_ema_->spectral_norm_layers();
  for (size_t i = 0; i < sn_src.size(); ++i) {
    sn_dst[i]->u().copy_(sn_src[i]->u());
    sn_dst[i]->v().copy_(sn_src[i]->v());
  }
}

StepInputs Trainer::draw_inputs() {
  const int64_t B = cfg_.batch_size, K = cfg_.model.num_classes;
  auto fake_labels = [&]() {
    if (K == 0) return Tensor();
    std::vector<int64_t> y(static_cast<size_t>(B));
    for (auto& v : y) v = static_cast<int64_t>(rng_.below(static_cast<uint64_t>(K)));
    return ints(y, Device::cpu());
  };
  auto latent = [&]() { return Tensor::randn({B, cfg_.model.z_dim}, rng_, dtype_); };
  StepInputs in;
  for (int64_t i = 0; i < cfg_.n_dis; ++i) {
    data::Batch b = loader_->next();
    Tensor z = latent();
    in.d.push_back({b.images, b.labels, z, fake_labels()});
  }
  in.z = latent();
  in.fake_labels = fake_labels();
  return in;
}

StepStats Trainer::step(const StepInputs& in) {
  SAGAN_CHECK(static_cast<int64_t>(in.d.size()) == cfg_.n_dis, "Trainer::step: {} D-step inputs for n_dis {}",
              in.d.size(), cfg_.n_dis);
  StepStats st;
  const bool conditional = cfg_.model.num_classes > 0;
  auto on_device = [&](const Tensor& t) { return t.to(dtype_).to(device_); };
  auto labels = [&](const Tensor& y) { return conditional ? y.to(device_) : Tensor(); };

  for (const StepInputs::DStep& ds : in.d) {
    const int64_t B = ds.images.size(0);
    Tensor fake;
    {
      NoGradGuard ng;
      g_->power_iterate_all();
      fake = g_->forward(on_device(ds.z), labels(ds.fake_labels));
    }
    Tensor y_all;
    if (conditional) {
      std::vector<int64_t> y = ds.labels.to_int_vector(), yf = ds.fake_labels.to_int_vector();
      y.insert(y.end(), yf.begin(), yf.end());
      y_all = ints(y, device_);
    }
    Tensor x_all = nn::diffaugment(concat({on_device(ds.images), fake}, 0), diffaug_, aug_rng_);
    d_->power_iterate_all();
    Tensor out = d_->forward(x_all, y_all);
    Tensor loss = hinge_d(out, B, &st.d_real, &st.d_fake);
    opt_d_->zero_grad();
    loss.backward();
    st.grad_norm_d = clip_and_norm(*d_);
    opt_d_->step();
    st.loss_d = loss.item();
  }

  set_requires_grad(*d_, false);
  try {
    Tensor yf = labels(in.fake_labels);
    g_->power_iterate_all();
    Tensor fake = g_->forward(on_device(in.z), yf);
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
