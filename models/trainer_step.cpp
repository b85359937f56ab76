// One training iteration (Trainer::step, models/trainer.h): the inputs
// sent to the device (by step(), during the iteration before), the D and G
// updates in a sync-free region (or a replay of their device graph), and the
// one read of their values that settles the NaN guard and the optimisers'
// counts.
#include <cmath>

#include "sagan/core/ops.h"
#include "sagan/core/sync_free.h"
#include "sagan/dist/agree.h"
#include "sagan/layers/batch_norm.h"
#include "sagan/layers/flat_parameters.h"
#include "sagan/layers/spectral_norm.h"
#include "sagan/models/data_parallel.h"
#include "sagan/models/trainer.h"

namespace sagan {

namespace {
Tensor ints(const std::vector<int64_t>& v, Device d) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}, d);
}

// A step's labels: int64, 1-d, and on the host (the loader's and
// draw_inputs' are) within [0, classes); device labels are left to the
// embedding kernels.
void check_labels(const Tensor& y, int64_t classes, const char* what) {
  SAGAN_CHECK(y.defined() && y.dtype() == DType::I64 && y.dim() == 1,
              "Trainer::step: {} must be a 1-d int64 tensor for a class-conditional model", what);
  check_class_labels("Trainer::step", what, y, classes);
}

// dst[i] = src[i], into buffers kept from iteration to iteration (a step
// graph records copies into the same memory): made, of src's shapes, on
// the first call (a phase's first run is plain, never captured).
void copy_into_kept(std::vector<Tensor>& dst, const std::vector<Tensor>& src) {
  if (dst.size() != src.size()) {
    dst.clear();
    for (const Tensor& t : src) dst.push_back(Tensor::empty(t.shape(), t.dtype(), t.device()));
  }
  for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
}

// A module's buffers (BN statistics, SN vectors) in named_buffers order.
std::vector<Tensor> buffer_tensors(const nn::Module& m) {
  std::vector<Tensor> out;
  for (const auto& [name, t] : m.named_buffers()) out.push_back(t);
  return out;
}
}  // namespace

Rng& Trainer::pass_stream(int64_t k, int64_t at_step, bool latents, Rng& scratch) {
  Rng& r = latents ? rng_ : aug_rng_;
  if (passes() == 1) return r;
  // An iteration draws far fewer than 2^32 words from a pass's stream.
  const uint64_t at = static_cast<uint64_t>(at_step) << 32;
  if (k == 0) {
    r.set_state(r.seed(), at);
    return r;
  }
  scratch.set_state(DataParallel::rank_seed(latents ? latent_seed_ : aug_seed_, static_cast<int>(first_pass() + k)),
                    at);
  return scratch;
}

void Trainer::set_requires_grad(nn::Module& m, bool on) {
  for (Tensor p : m.parameters()) p.set_requires_grad(on);
}

Tensor Trainer::hinge_d(const Tensor& out, int64_t n_real, Tensor& d_real, Tensor& d_fake) const {
  int64_t n = out.size(0);
  Tensor real = out.slice(0, 0, n_real), fake = out.slice(0, n_real, n);
  {
    NoGradGuard ng;
    d_real = mean(real);
    d_fake = mean(fake);
  }
  return add(mean(relu(rsub(1.0, real))), mean(relu(add(fake, 1.0))));
}

Tensor Trainer::clip_and_norm(nn::FlatParameters& params) const {
  // Parameters without a gradient have zeros in the flat gradient buffer.
  // Computed without clipping too: the NaN guard checks it. Clipping is
  // PyTorch's clip_grad_norm_: g *= min(1, clip / (norm + 1e-6)), on the
  // device (a factor of exactly 1 leaves g as it is).
  Tensor norm = params.grad_norm();
  if (cfg_.grad_clip > 0) {
    NoGradGuard ng;
    Tensor factor = rdiv(cfg_.grad_clip, add(norm, 1e-6));
    params.scale_grad(minimum(factor, Tensor::ones(factor.shape(), factor.dtype(), factor.device())));
  }
  return norm;
}

Tensor Trainer::close_gate_if_not_finite(const Tensor& gate, const std::vector<Tensor>& values) const {
  NoGradGuard ng;
  std::vector<Tensor> flat;
  for (const Tensor& v : values) flat.push_back(v.detach().reshape({1}));
  // x * 0 is 0 for finite x and NaN for NaN or infinity: the sum is 0 or NaN.
  Tensor verdict = sum(mul(concat(flat, 0), 0.0));
  // Every rank takes the same decision: a sum over ranks is NaN when any is.
  if (dp_ && dp_->size() > 1) dp_->sum_over_ranks(verdict);
  return gate.defined() ? add(gate, verdict) : verdict;
}

void Trainer::update_ema(const Tensor& gate) {
  NoGradGuard ng;
  // Parameters (one flat buffer, same layout: checked in the constructor)
  // and BN running statistics are averaged alike (BigGAN-PyTorch and
  // StudioGAN): statistics averaged over the same window as the weights
  // belong to the averaged weights to first order, G's latest ones to G's
  // latest weights. One ema_update call for all of them; before ema_start a
  // decay of 0, a copy, also gated.
  std::vector<Tensor> src{g_->flat_parameters()->data()}, dst{g_ema_->flat_parameters()->data()};
  for (const Tensor& t : buffer_tensors(*g_)) src.push_back(t);
  for (const Tensor& t : buffer_tensors(*g_ema_)) dst.push_back(t);
  SAGAN_CHECK(src.size() == dst.size(), "Trainer: G has {} buffers, G_ema {}", src.size() - 1, dst.size() - 1);
  const bool averaging = step_ + 1 >= cfg_.ema_start;  // step_ + 1: this iteration's number
  ema_update(dst, src, averaging ? cfg_.ema_decay : 0.0, gate);
  // SN vectors are power-iteration state, not statistics: eval-mode SN takes
  // sigma = u^T W v with u, v as unit vectors, and an average of rotating unit
  // vectors is shorter (norms down to 0.43 by step 2000 of a Fashion-MNIST
  // run, sigma 5x too small). G's own vectors are unit and fit W_ema ~ W_G:
  // copied (a decay of 0).
  std::vector<Tensor> sn_src, sn_dst;
  for (nn::SpectralNormed* sn : g_->spectral_norm_layers()) sn_src.insert(sn_src.end(), {sn->u(), sn->v()});
  for (nn::SpectralNormed* sn : g_ema_->spectral_norm_layers()) sn_dst.insert(sn_dst.end(), {sn->u(), sn->v()});
  ema_update(sn_dst, sn_src, 0.0, gate);
}

StepInputs Trainer::draw_inputs() {
  cancel_prefetch();
  return draw_inputs_at(step_);
}

StepInputs Trainer::draw_inputs_at(int64_t at_step) {
  const int64_t B = cfg_.batch_size, A = cfg_.accumulate, K = cfg_.model.num_classes;
  StepInputs in;
  in.d.resize(static_cast<size_t>(cfg_.n_dis));
  for (StepInputs::DStep& ds : in.d) {  // every pass's examples, in pass order
    data::Batch b = loader_->next();
    ds.images = b.images;
    ds.labels = b.labels;
  }
  // Each pass draws from its own stream what one rank draws from its own:
  // each D step's latents and fake labels, then the G step's.
  const size_t updates = in.d.size() + 1;
  std::vector<std::vector<Tensor>> z(updates), y(updates);
  Rng scratch(0);
  for (int64_t k = 0; k < A; ++k) {
    Rng& r = pass_stream(k, at_step, /*latents=*/true, scratch);
    for (size_t u = 0; u < updates; ++u) {
      z[u].push_back(Tensor::randn({B, cfg_.model.z_dim}, r, dtype_));
      if (K == 0) continue;
      std::vector<int64_t> labels(static_cast<size_t>(B));
      for (auto& v : labels) v = static_cast<int64_t>(r.below(static_cast<uint64_t>(K)));
      y[u].push_back(ints(labels, Device::cpu()));
    }
  }
  auto join = [](const std::vector<Tensor>& parts) {
    return parts.empty() ? Tensor() : parts.size() == 1 ? parts[0] : concat(parts, 0);
  };
  for (size_t i = 0; i < in.d.size(); ++i) {
    in.d[i].z = join(z[i]);
    in.d[i].fake_labels = join(y[i]);
  }
  in.z = join(z.back());
  in.fake_labels = join(y.back());
  return in;
}

void Trainer::send_inputs(const StepInputs& in, int64_t at_step) {
  SAGAN_CHECK(static_cast<int64_t>(in.d.size()) == cfg_.n_dis, "Trainer::step: {} D-step inputs for n_dis {}",
              in.d.size(), cfg_.n_dis);
  const bool conditional = cfg_.model.num_classes > 0;
  const int64_t A = cfg_.accumulate;
  // Labels are checked on the host first: inside the sync-free region the
  // embeddings cannot read device indices back to check them. Nothing is
  // drawn or sent before every check has passed.
  auto check_split = [&](const Tensor& t, const char* what) {
    SAGAN_CHECK(t.defined() && t.dim() >= 1 && t.size(0) > 0 && t.size(0) % A == 0,
                "Trainer::step: {} holds {} rows, not a positive multiple of --accumulate {} (one micro-batch a pass)",
                what, t.defined() && t.dim() >= 1 ? t.size(0) : 0, A);
  };
  for (const StepInputs::DStep& ds : in.d) {
    check_split(ds.images, "images");
    check_split(ds.z, "z");
  }
  check_split(in.z, "z");
  // Labels a row each of the images or latents they go with: each pass
  // takes its rows of both.
  auto check_rows = [](const Tensor& labels, const Tensor& of, const char* what, const char* of_what) {
    SAGAN_CHECK(labels.size(0) == of.size(0), "Trainer::step: {} holds {} rows for {} rows of {}", what, labels.size(0),
                of.size(0), of_what);
  };
  if (conditional) {
    for (const StepInputs::DStep& ds : in.d) {
      check_labels(ds.labels, cfg_.model.num_classes, "labels");
      check_labels(ds.fake_labels, cfg_.model.num_classes, "fake_labels");
      check_rows(ds.labels, ds.images, "labels", "images");
      check_rows(ds.fake_labels, ds.z, "fake_labels", "z");
    }
    check_labels(in.fake_labels, cfg_.model.num_classes, "fake_labels");
    check_rows(in.fake_labels, in.z, "fake_labels", "z");
  }
  if (!buffers_) buffers_ = std::make_unique<StepBuffers>();
  StepBuffers& b = *buffers_;
  inputs_stage_.discard();
  // A buffer made anew (the first time, or another shape) invalidates the
  // graphs recorded over the old one.
  auto put = [&](Tensor& buf, const Tensor& src, DType dt) {
    if (inputs_stage_.add(buf, src, dt)) graphs_.clear();
  };
  // Pass k's rows of t.
  auto pass_rows = [&](const Tensor& t, int64_t k) {
    const int64_t m = t.size(0) / A;
    return A == 1 ? t : t.slice(0, k * m, (k + 1) * m);
  };
  b.d.resize(in.d.size() * static_cast<size_t>(A));
  b.g.resize(static_cast<size_t>(A));
  for (size_t i = 0; i < in.d.size(); ++i) {
    const StepInputs::DStep& ds = in.d[i];
    for (int64_t k = 0; k < A; ++k) {
      StepBuffers::DPass& dp = b.d[i * static_cast<size_t>(A) + static_cast<size_t>(k)];
      put(dp.images, pass_rows(ds.images, k), dtype_);
      put(dp.z, pass_rows(ds.z, k), dtype_);
      if (conditional) {
        put(dp.y_all,
            concat({pass_rows(ds.labels.to(Device::cpu()), k), pass_rows(ds.fake_labels.to(Device::cpu()), k)}, 0),
            DType::I64);
        dp.fake_labels = dp.y_all.slice(0, dp.images.size(0), dp.y_all.size(0));
      }
    }
  }
  for (int64_t k = 0; k < A; ++k) {
    StepBuffers::GPass& gp = b.g[static_cast<size_t>(k)];
    put(gp.z, pass_rows(in.z, k), dtype_);
    if (conditional) put(gp.fake_labels, pass_rows(in.fake_labels.to(Device::cpu()), k), DType::I64);
  }
  // DiffAugment's draws, made into tensors here: each pass's from its own
  // stream, in the order its updates use them (each D step's [real; fake],
  // then the G step's fakes).
  auto put_aug = [&](nn::DiffAugmentTensors& buf, const Shape& shape, Rng& r) {
    const nn::DiffAugmentParams p = nn::draw_diffaugment(diffaug_, shape[0], shape[2], shape[3], r);
    const nn::DiffAugmentTensors t = nn::diffaugment_tensors(diffaug_, p, shape, dtype_, Device::cpu());
    for (auto [dst, src] : {std::pair{&buf.brightness, &t.brightness},
                            {&buf.saturation, &t.saturation},
                            {&buf.contrast, &t.contrast},
                            {&buf.gather, &t.gather},
                            {&buf.cutout_mask, &t.cutout_mask}})
      if (src->defined()) put(*dst, *src, src->dtype());
  };
  if (diffaug_.any()) {
    Rng scratch(0);
    for (int64_t k = 0; k < A; ++k) {
      Rng& r = pass_stream(k, at_step, /*latents=*/false, scratch);
      for (size_t i = 0; i < in.d.size(); ++i) {
        StepBuffers::DPass& dp = b.d[i * static_cast<size_t>(A) + static_cast<size_t>(k)];
        Shape both = dp.images.shape();
        both[0] *= 2;
        put_aug(dp.aug, both, r);
      }
      put_aug(b.g[static_cast<size_t>(k)].aug, b.d.at(static_cast<size_t>(k)).images.shape(), r);
    }
  }
  inputs_stage_.send();
}

void Trainer::prefetch_inputs() {
  const DrawState before = draw_state();
  try {
    send_inputs(draw_inputs_at(step_ + 1), step_ + 1);
    prefetched_ = before;
  } catch (...) {
    // Raised by the next step(), which draws these inputs again: this
    // iteration's results stand.
    inputs_stage_.discard();
    set_draw_state(before);
  }
}

void Trainer::cancel_prefetch() {
  if (!prefetched_) return;
  inputs_stage_.discard();
  set_draw_state(*prefetched_);
  prefetched_.reset();
}

std::vector<Tensor> Trainer::network_buffers() const {
  std::vector<Tensor> out = buffer_tensors(*g_);
  for (const Tensor& t : buffer_tensors(*d_)) out.push_back(t);
  return out;
}

Tensor Trainer::g_forward(int64_t k, const Tensor& z, const Tensor& y) {
  if (cfg_.accumulate == 1) return g_->forward(z, y);
  StepBuffers& b = *buffers_;
  std::vector<Tensor> live = nn::batch_norm_statistics(*g_);
  std::vector<Tensor>& mine = b.pass_bn[static_cast<size_t>(k)];
  // Buffers: the copies record nothing, in grad mode or not.
  for (size_t j = 0; j < live.size(); ++j) live[j].copy_(mine[j]);
  Tensor out = g_->forward(z, y);
  for (size_t j = 0; j < live.size(); ++j) mine[j].copy_(live[j]);
  return out;
}

void Trainer::run_updates() {
  StepBuffers& b = *buffers_;
  b.updates.clear();
  Tensor gate;
  SyncFreeScope region("Trainer::step");
  const int64_t A = cfg_.accumulate;
  if (cfg_.on_nan == "skip") {
    // Device copies, recorded into a step graph like the rest; the first
    // (plain) run of each phase allocates them.
    NoGradGuard ng;
    copy_into_kept(b.buffers_before, network_buffers());
  }
  if (A > 1) {
    // Every pass starts the iteration from G's statistics (the passes'
    // mean at the end of the last one), as every rank does.
    NoGradGuard ng;
    const std::vector<Tensor> live = nn::batch_norm_statistics(*g_);
    b.pass_bn.resize(static_cast<size_t>(A));
    for (std::vector<Tensor>& mine : b.pass_bn) copy_into_kept(mine, live);
  }
  // The mean over the passes of a value (a loss, a mean D output).
  auto mean_of_passes = [&](Tensor& total, const Tensor& v, int64_t k) {
    NoGradGuard ng;
    total = k == 0 ? v.detach() : add(total, v.detach());
    if (k == A - 1 && A > 1) total = mul(total, 1.0 / static_cast<double>(A));
  };
  // A pass's loss, scaled so that the passes' gradients add up to their
  // mean; the last pass's backward reduces each gradient bucket over ranks
  // as soon as it is complete.
  auto backward = [&](const Tensor& loss, int64_t k, nn::GradBuckets* buckets) {
    const bool last = k == A - 1;
    if (buckets && last) buckets->begin();
    (A > 1 ? mul(loss, 1.0 / static_cast<double>(A)) : loss).backward();
    if (buckets && last) buckets->finish();  // the mean over ranks, before clipping
  };
  // The passes of an update share its power iteration (taken before the
  // first), as the ranks of a job do.
  auto iterate_power = [&](int64_t k, nn::Module& m) {
    NoGradGuard ng;
    if (k == 0)
      nn::power_iterate_all(m);
    else
      nn::skip_power_iteration(m);
  };
  try {
    for (int64_t i = 0; i < cfg_.n_dis; ++i) {
      opt_d_->zero_grad();
      Tensor loss, d_real, d_fake;
      for (int64_t k = 0; k < A; ++k) {
        const StepBuffers::DPass& dp = b.d[static_cast<size_t>(i * A + k)];
        const int64_t B = dp.images.size(0);
        Tensor fake;
        {
          NoGradGuard ng;
          iterate_power(k, *g_);
          fake = g_forward(k, dp.z, dp.fake_labels);
        }
        Tensor x_all = nn::diffaugment(concat({dp.images, fake}, 0), diffaug_, dp.aug);
        iterate_power(k, *d_);
        Tensor out = d_->forward(x_all, dp.y_all);
        Tensor real_k, fake_k;
        Tensor loss_k = hinge_d(out, B, real_k, fake_k);
        backward(loss_k, k, dp_ ? &dp_->d_buckets() : nullptr);
        mean_of_passes(loss, loss_k, k);
        mean_of_passes(d_real, real_k, k);
        mean_of_passes(d_fake, fake_k, k);
      }
      Tensor norm = clip_and_norm(*d_->flat_parameters());
      Update u{true, {{"loss_d", loss}, {"D(x)", d_real}, {"D(G(z))", d_fake}, {"grad_norm_d", norm}}, {}};
      gate = u.gate = close_gate_if_not_finite(gate, {loss, d_real, d_fake, norm});
      b.updates.push_back(std::move(u));
      opt_d_->step_on_device(gate, b.adam_scales.select(0, i));
    }

    set_requires_grad(*d_, false);
    opt_g_->zero_grad();
    Tensor loss;
    for (int64_t k = 0; k < A; ++k) {
      const StepBuffers::GPass& gp = b.g[static_cast<size_t>(k)];
      iterate_power(k, *g_);
      Tensor fake = g_forward(k, gp.z, gp.fake_labels);
      iterate_power(k, *d_);
      Tensor loss_k = neg(mean(d_->forward(nn::diffaugment(fake, diffaug_, gp.aug), gp.fake_labels)));
      backward(loss_k, k, dp_ ? &dp_->g_buckets() : nullptr);
      mean_of_passes(loss, loss_k, k);
    }
    Tensor norm = clip_and_norm(*g_->flat_parameters());
    Update u{false, {{"loss_g", loss}, {"grad_norm_g", norm}}, {}};
    gate = u.gate = close_gate_if_not_finite(gate, {loss, norm});
    b.updates.push_back(std::move(u));
    opt_g_->step_on_device(gate, b.adam_scales.select(0, cfg_.n_dis));
    if (A > 1) {  // G's statistics: the passes' mean
      NoGradGuard ng;
      const std::vector<Tensor> live = nn::batch_norm_statistics(*g_);
      for (size_t j = 0; j < live.size(); ++j) {
        Tensor total = b.pass_bn[0][j];
        for (int64_t k = 1; k < A; ++k) total = add(total, b.pass_bn[static_cast<size_t>(k)][j]);
        Tensor(live[j]).copy_(mul(total, 1.0 / static_cast<double>(A)));
      }
    }
    // Ranks that keep BN statistics apart average G's before the EMA takes
    // them (a no-op with --sync-bn or one rank).
    if (dp_) dp_->average_bn_statistics(*g_);
    update_ema(gate);
  } catch (...) {
    set_requires_grad(*d_, true);
    throw;
  }
  set_requires_grad(*d_, true);
}

StepStats Trainer::step() {
  if (!prefetched_) {
    // A failure here comes before any update: the draw state goes back, so
    // the trainer holds the last step's state. Only the draw's own errors
    // (the data) are InputsNotDrawn; sending the inputs (device memory,
    // label checks) fails for other reasons.
    const DrawState before = draw_state();
    try {
      StepInputs in;
      try {
        in = draw_inputs_at(step_);
      } catch (const Error& e) {
        throw InputsNotDrawn(e.what());
      }
      send_inputs(in, step_);
    } catch (...) {
      inputs_stage_.discard();
      set_draw_state(before);
      throw;
    }
  }
  prefetched_.reset();
  return run_iteration(/*prefetch=*/true);
}

StepStats Trainer::step(const StepInputs& in) {
  cancel_prefetch();
  send_inputs(in, step_);
  return run_iteration(/*prefetch=*/false);
}

StepStats Trainer::run_iteration(bool prefetch) {
  StepBuffers& b = *buffers_;
  inputs_stage_.take();
  // Update n of each optimiser: its count so far plus its place in the
  // iteration (an update held back leaves the later ones of the iteration
  // held back too, so these numbers are right for every update made). They
  // depend on the iteration before, so they are sent now.
  std::vector<double> scales;
  for (int64_t i = 0; i < cfg_.n_dis; ++i) {
    const AdamScales sc = adam_scales(opt_d_->options(), opt_d_->step_count() + i + 1);
    scales.insert(scales.end(), {sc.step_size, sc.sqrt_bc2});
  }
  const AdamScales sg = adam_scales(opt_g_->options(), opt_g_->step_count() + 1);
  scales.insert(scales.end(), {sg.step_size, sg.sqrt_bc2});
  if (scales_stage_.add(b.adam_scales, Tensor::from_vector(scales, {cfg_.n_dis + 1, 2}, DType::F64), dtype_))
    graphs_.clear();
  scales_stage_.send();
  scales_stage_.take();
  // The updates queue on the device without the host waiting for any of
  // them (core/sync_free.h): each is gated on the device, and the host
  // reads every value once, after the last. With a step graph they are
  // recorded once per EMA phase (the copy before ema_start, the average
  // after) and replayed. A phase's first iteration runs plain: cuDNN picks
  // its algorithms (timing them would stall a capture), cuBLAS and the
  // allocator's cache warm up.
  const int phase = step_ + 1 >= cfg_.ema_start ? 1 : 0;
  if (phase == 1) graphs_.erase(0);  // never replayed again: its memory goes back to the cache
  StepGraph* graph = step_graph_ ? &graphs_[phase] : nullptr;
  if (graph == nullptr || (!graph->graph && graph->plain_runs++ == 0)) {
    run_updates();
  } else {
    if (!graph->graph) {
      try {
        graph->graph = backend_for(device_).capture([this] { run_updates(); });
      } catch (const std::exception& e) {
        SAGAN_FAIL(
            "recording the training step as a CUDA graph (--cuda-graph) failed; training without "
            "--cuda-graph runs the same step launch by launch. {}",
            e.what());
      }
    }
    graph->graph->replay();
  }
  // The next iteration's inputs go to the device while this one runs (an
  // upload's copy waits for this iteration's take, not for its end).
  if (prefetch) prefetch_inputs();
  try {
    return finish_iteration(b.updates);
  } catch (...) {
    // The step did not count (--on-nan stop, a device error): the inputs
    // drawn for the one after it go back, so a caller that goes on draws
    // them for the right step.
    cancel_prefetch();
    throw;
  }
}

StepStats Trainer::finish_iteration(const std::vector<Update>& updates) {
  // The one read of the iteration: every value and gate at once.
  std::vector<Tensor> all;
  {
    NoGradGuard ng;
    for (const Update& u : updates) {
      for (const auto& [name, v] : u.values) all.push_back(v.detach().to(DType::F64).reshape({1}));
      all.push_back(u.gate.detach().to(DType::F64).reshape({1}));
    }
  }
  const std::vector<double> read = concat(all, 0).to_vector();
  // The first update the gate held back (a NaN gate): it and every later
  // one were not made.
  std::vector<std::vector<std::pair<std::string, double>>> values(updates.size());
  size_t first_dropped = updates.size(), k = 0;
  for (size_t i = 0; i < updates.size(); ++i) {
    for (const auto& [name, v] : updates[i].values) values[i].emplace_back(name, read[k++]);
    if (std::isnan(read[k++]) && first_dropped == updates.size()) first_dropped = i;
  }
  StepStats st;
  for (size_t i = 0; i < updates.size(); ++i) {  // the last D update's values, as logged
    auto value = [&](const std::string& name) {
      for (const auto& [n, v] : values[i])
        if (n == name) return v;
      return 0.0;
    };
    if (updates[i].is_d) {
      st.loss_d = value("loss_d"), st.d_real = value("D(x)"), st.d_fake = value("D(G(z))");
      st.grad_norm_d = cfg_.grad_clip > 0 ? value("grad_norm_d") : 0.0;
    } else {
      st.loss_g = value("loss_g");
      st.grad_norm_g = cfg_.grad_clip > 0 ? value("grad_norm_g") : 0.0;
    }
  }
  // The optimisers count the updates made before the guard may throw.
  int64_t made_d = 0, made_g = 0;
  for (size_t i = 0; i < first_dropped; ++i) ++(updates[i].is_d ? made_d : made_g);
  opt_d_->count_steps(made_d);
  opt_g_->count_steps(made_g);
  if (first_dropped < updates.size()) {
    const Update& u = updates[first_dropped];
    bool local_bad = false;
    for (const auto& [name, v] : values[first_dropped]) local_bad = local_bad || !std::isfinite(v);
    NanGuard::Networks nets = u.is_d ? NanGuard::Networks{{"D", d_.get()}, {"G", g_.get()}}
                                     : NanGuard::Networks{{"G", g_.get()}, {"D", d_.get()}};
    if (dp_ && dp_->size() > 1) {
      // Every rank is here (the gate is a sum over ranks). Gradients are
      // averaged before their norms are taken, so one rank's NaN reaches
      // every rank: the ranks whose own values (losses, D outputs) or
      // parameters and buffers went bad are where it started, and are
      // named. When the guard stops the run, the first of them says why and
      // every rank ends with its message (dist/agree.h), not with whichever
      // rank MPI_Abort let print first. (A rare path: the scan is affordable.)
      bool origin = false;
      for (const auto& [name, v] : values[first_dropped])
        origin = origin || (!std::isfinite(v) && name.rfind("grad_norm", 0) != 0);
      if (local_bad && !origin) {
        const std::string tensor = first_non_finite_tensor(nets);
        origin = tensor.rfind("parameter ", 0) == 0 || tensor.rfind("buffer ", 0) == 0;
      }
      const std::vector<uint64_t> flags = dp_->comm().all_gather((local_bad ? 1u : 0u) | (origin ? 2u : 0u));
      uint64_t mask = 1;
      for (uint64_t f : flags)
        if (f & 2) mask = 2;
      std::string ranks;
      for (size_t r = 0; r < flags.size(); ++r)
        if (flags[r] & mask) ranks += fmt::format("{}{}", ranks.empty() ? "rank " : ", ", r);
      const bool named_here = (flags[static_cast<size_t>(dp_->rank())] & mask) != 0;
      if (!ranks.empty())
        nan_guard_.set_ranks_with_non_finite(fmt::format("{} of {}", ranks, flags.size()), named_here);
      dist::run_agreed(&dp_->comm(), [&] {
        if (named_here) nan_guard_.check(step_ + 1, values[first_dropped], nets, false);  // throws under stop
      });
      if (!named_here) nan_guard_.check(step_ + 1, values[first_dropped], nets, !local_bad);
    } else {
      nan_guard_.check(step_ + 1, values[first_dropped], nets, !local_bad);  // throws under --on-nan stop
    }
    st.skipped = true;
    return end_skipped_iteration(st);
  }
  ++step_;
  if (dp_) {
    std::vector<double> logged{st.loss_d, st.loss_g, st.d_real, st.d_fake};
    dp_->average(logged);
    st.loss_d = logged[0], st.loss_g = logged[1], st.d_real = logged[2], st.d_fake = logged[3];
  }
  nan_guard_.end_iteration(false);
  if (dp_ && cfg_.check_sync_every > 0 && step_ % cfg_.check_sync_every == 0)
    check_ranks_in_sync(fmt::format("--check-sync-every: at step {}", step_), "the ranks no longer train one model");
  st.step = step_;
  st.skipped_steps = nan_guard_.skipped_total();
  return st;
}

void Trainer::check_ranks_in_sync(const std::string& when, const std::string& meaning) {
  if (!dp_) return;
  dp_->check_in_sync({{"G parameters", {g_->flat_parameters()->data()}},
                      {"D parameters", {d_->flat_parameters()->data()}},
                      {"G_ema parameters", {g_ema_->flat_parameters()->data()}},
                      {"G buffers (BN statistics, SN vectors)", buffer_tensors(*g_)},
                      {"D buffers (SN vectors)", buffer_tensors(*d_)}},
                     when, meaning);
}

StepStats Trainer::end_skipped_iteration(StepStats st) {
  // Its inputs are consumed and it counts as a step; no weights change, and
  // the buffers its forwards changed go back (every rank skips together).
  {
    NoGradGuard ng;
    std::vector<Tensor> now = network_buffers();
    SAGAN_CHECK(buffers_->buffers_before.size() == now.size(), "Trainer: {} buffers saved before the step, {} now",
                buffers_->buffers_before.size(), now.size());
    for (size_t i = 0; i < now.size(); ++i) now[i].copy_(buffers_->buffers_before[i]);
  }
  ++step_;
  nan_guard_.end_iteration(true);
  st.step = step_;
  st.skipped_steps = nan_guard_.skipped_total();
  return st;
}

}  // namespace sagan
