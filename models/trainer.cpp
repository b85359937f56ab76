#include "models/trainer.h"

#include <cmath>

#include "core/ops.h"
#include "layers/flat_parameters.h"

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

Tensor ints(const std::vector<int64_t>& v, Device d) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}, d);
}
}  // namespace

Trainer::Trainer(TrainConfig cfg, std::shared_ptr<const data::Dataset> dataset)
    : cfg_(std::move(cfg)),
      device_(resolve_device(cfg_.device)),
      dataset_(std::move(dataset)),
      rng_(cfg_.seed ^ kSampleStream) {
  SAGAN_CHECK(dataset_ != nullptr, "Trainer: no data set");
  cfg_.model.num_classes = cfg_.unconditional ? 0 : dataset_->num_classes();
  cfg_.model.image_channels = dataset_->channels();
  cfg_.validate();
  SAGAN_CHECK(dataset_->size() >= cfg_.batch_size, "Trainer: data set {} has {} images, fewer than --batch-size {}",
              dataset_->name(), dataset_->size(), cfg_.batch_size);

  data::LoaderOptions lo;
  lo.batch_size = cfg_.batch_size;
  lo.resolution = cfg_.model.resolution;
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
  opt_g_ = std::make_unique<nn::Adam>(*g_, nn::AdamOptions{cfg_.lr_g, cfg_.beta1, cfg_.beta2, cfg_.adam_eps});
  opt_d_ = std::make_unique<nn::Adam>(*d_, nn::AdamOptions{cfg_.lr_d, cfg_.beta1, cfg_.beta2, cfg_.adam_eps});
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

double Trainer::clip_and_norm(nn::FlatParameters& params) const {
  if (cfg_.grad_clip <= 0) return 0.0;
  // Parameters without a gradient have zeros in the flat gradient buffer.
  double norm = params.grad_norm();
  if (norm > cfg_.grad_clip) params.scale_grad(cfg_.grad_clip / (norm + 1e-6));
  return norm;
}

void Trainer::update_ema() {
  NoGradGuard ng;
  // Same layout (checked in the constructor): one call over the whole buffers.
  Tensor ema = g_ema_->flat_parameters()->data();
  const Tensor& params = g_->flat_parameters()->data();
  if (step_ < cfg_.ema_start) {
    ema.copy_(params);
  } else {
    std::vector<Tensor> es{ema}, ps{params};
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
    Tensor x_all = concat({b.images.to(device_), fake}, 0);
    d_->power_iterate_all();
    Tensor out = d_->forward(x_all, K > 0 ? ints(y_all, device_) : Tensor());
    Tensor loss = hinge_d(out, B, &st.d_real, &st.d_fake);
    opt_d_->zero_grad();
    loss.backward();
    st.grad_norm_d = clip_and_norm(*d_->flat_parameters());
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
    Tensor loss = neg(mean(d_->forward(fake, yf)));
    opt_g_->zero_grad();
    loss.backward();
    st.grad_norm_g = clip_and_norm(*g_->flat_parameters());
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

TrainingParts Trainer::parts() const { return {*g_, *d_, *g_ema_, *opt_g_, *opt_d_}; }

TrainerCounters Trainer::counters() const { return {step_, rng_.seed(), rng_.position(), loader_->state()}; }

io::NamedTensors Trainer::checkpoint_tensors() const { return training_checkpoint_tensors(parts(), counters()); }

void Trainer::save_checkpoint(const std::string& path) const {
  save_training_checkpoint(path, parts(), counters(), cfg_);
}

void Trainer::load_checkpoint(const std::string& path) {
  TrainerCounters c = restore_training_checkpoint(open_checkpoint(path), cfg_.model, parts());
  step_ = c.step;
  rng_.set_state(c.rng_seed, c.rng_position);
  loader_->set_state(c.loader);
}

}  // namespace sagan
