// Whole training runs against PyTorch: the engine's Trainer and the reference
// trainer (tests/golden/reference_trainer.py, goldens written by
// tests/golden/make_trajectory_goldens.py) start from the same weights, SN
// vectors and BN statistics, consume the same real batches, latents and
// labels, and run 10 iterations of a tiny conditional SAGAN-32 with attention
// in float64: D steps, G step, Adam, SN power iterations, BN running
// statistics, EMA. Every loss and every tensor of G, D, G_ema and both Adam
// states must then agree.
//
// Bound: a tensor t agrees with PyTorch's t_ref when
//   max|t - t_ref| <= kRel * max|t_ref| + floor(quantity).
// Ten float64 iterations accumulate rounding from different summation orders
// (convolutions, batch statistics, reductions), ~1e-16 relative per op; the
// measured worst case is ~1e-14 (docs/training.md), so kRel = 1e-10 leaves
// four orders of margin, while a convention difference (SN order, bias
// correction, BN running-variance estimator, EMA rule, hinge batch) moves
// values by 1e-6 or more.
// The floor is for values that are undetermined at rounding level: a conv
// bias that feeds a batch norm has gradient exactly 0 (the normalisation
// cancels it), so both sides compute rounding noise dg (|dg| <= ~1e-15 here)
// and Adam turns it into steps of lr * dg / (sqrt(v) + eps) ~ lr * dg / eps.
// Over the run such a bias (and what it feeds outside training-mode BN: the
// running means, G_ema's eval-mode samples) may differ by
//   steps * lr * 1e-14 / eps  (4e-9 with lr 4e-4, eps 1e-8; measured <= 4e-10);
// their Adam moments by 1e-14 (m) and 2e-14 sqrt(max v) (v, which sums g^2).
// D has no batch norm: no floor.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>

#include "sagan/core/ops.h"
#include "sagan/models/trainer.h"
#include "tests/golden/sagan_goldens.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_dataset.h"

using namespace sagan;
using namespace sagan::testing;

namespace {

constexpr double kRel = 1e-10;

// The worst agreement seen for one quantity (a group of tensors).
struct Worst {
  double rel = 0;  // max|t - ref| / max|ref| over tensors with max|ref| >= 1e-3
  std::string rel_name;
  double abs = 0;  // max|t - ref| over all tensors
  std::string abs_name;
};

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// Compares t with ref under the bound above.
void check_tensor(const std::string& name, const Tensor& t, const Tensor& ref, double floor, Worst& worst) {
  INFO(name);
  REQUIRE(t.shape() == ref.shape());
  std::vector<double> a = t.to_vector(), b = ref.to_vector();
  double err = 0;
  for (size_t i = 0; i < a.size(); ++i) err = max_keep_nan(err, std::abs(a[i] - b[i]));
  double scale = max_abs(b);
  INFO("max abs error " << err << ", max |ref| " << scale << ", floor " << floor);
  CHECK(err <= kRel * scale + floor);
  if (scale >= 1e-3 && err / scale > worst.rel) {
    worst.rel = err / scale;
    worst.rel_name = name;
  }
  if (err > worst.abs) {
    worst.abs = err;
    worst.abs_name = name;
  }
}

TrainConfig config_of(const nlohmann::json& c, int64_t batch) {
  TrainConfig cfg;
  cfg.model = golden_sagan_config(c.at("config"));
  cfg.unconditional = cfg.model.num_classes == 0;  // the data set has 3 classes either way
  const auto& o = c.at("options");
  // lr per network; betas and eps shared, as in config files.
  for (AdamOptions* a : {&cfg.adam_g, &cfg.adam_d}) {
    a->beta1 = o.at("beta1");
    a->beta2 = o.at("beta2");
    a->eps = o.at("adam_eps");
  }
  cfg.adam_g.lr = o.at("lr_g");
  cfg.adam_d.lr = o.at("lr_d");
  cfg.n_dis = o.at("n_dis");
  cfg.ema_decay = o.at("ema_decay");
  cfg.ema_start = o.at("ema_start");
  cfg.grad_clip = o.at("grad_clip");
  cfg.batch_size = batch;
  cfg.device = "cpu";
  return cfg;
}

StepInputs inputs_of(const GoldenFile& g, int64_t step, int64_t n_dis) {
  auto slice = [&](const std::string& key, int64_t i) { return g.at("inputs/" + key).select(0, i).contiguous(); };
  StepInputs in;
  for (int64_t k = step * n_dis; k < (step + 1) * n_dis; ++k) {
    // The loader's mapping of 8-bit pixels, as the golden script applies it.
    Tensor pixels = slice("pixels", k);
    std::vector<double> x;
    for (int64_t p : pixels.to_int_vector()) x.push_back(static_cast<double>(p) / 127.5 - 1.0);
    Tensor images = Tensor::from_vector(x, pixels.shape(), DType::F64);
    in.d.push_back({images, slice("y", k), slice("z_d", k), slice("y_fake_d", k)});
  }
  in.z = slice("z_g", step);
  in.fake_labels = slice("y_fake_g", step);
  return in;
}

}  // namespace

TEST_CASE("10 training iterations follow the PyTorch reference trainer in float64",
          "[trainer][trajectory][golden][long]") {
  GoldenFile g = load_golden("sagan_trajectory");
  const int64_t steps = g.meta.at("steps"), batch = g.meta.at("batch");
  const bool report = std::getenv("SAGAN_TRAJECTORY_REPORT") != nullptr;
  for (auto& item : g.meta.at("cases").items()) {
    const std::string name = item.key();  // a plain variable: clang 14 cannot capture bindings
    const nlohmann::json& c = item.value();
    INFO("case " << name);
    TrainConfig cfg = config_of(c, batch);
    // The data set only gives the class count and channels (3, 1); the
    // batches come from the golden file.
    auto ds = std::make_shared<TinyDataset>(batch);
    Trainer t(cfg, ds, DType::F64);
    const std::string init = "init/" + c.at("variant").get<std::string>();
    {
      NoGradGuard ng;
      t.generator().load_state(g.group(init + "/G/"));
      t.ema_generator().load_state(g.group(init + "/G/"));
      t.discriminator().load_state(g.group(init + "/D/"));
    }

    std::map<std::string, Worst> worst;
    Tensor stats = g.at(name + "/stats");
    const char* keys[] = {"loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g"};
    for (int64_t s = 0; s < steps; ++s) {
      INFO("iteration " << s + 1);
      StepStats st = t.step(inputs_of(g, s, cfg.n_dis));
      REQUIRE(st.step == s + 1);
      std::vector<double> got = {st.loss_d, st.loss_g, st.d_real, st.d_fake, st.grad_norm_d, st.grad_norm_g};
      std::vector<double> want = stats.select(0, s).to_vector();
      for (size_t k = 0; k < got.size(); ++k)
        check_tensor(keys[k], Tensor::scalar(got[k], DType::F64), Tensor::scalar(want[k], DType::F64), 0.0,
                     worst["losses"]);
    }

    // Floors (see the top of the file).
    const double param_floor = static_cast<double>(steps) * std::max(cfg.adam_g.lr, cfg.adam_d.lr) * 1e-14 / cfg.adam_g.eps;
    auto floor_of = [&](const std::string& group, const std::string& key, const Tensor& ref) {
      if (group == "D" || group == "opt_D" || key == "step") return 0.0;
      if (group == "opt_G") {
        // v accumulates g^2: a gradient error dg moves it by 2 |g| dg + dg^2.
        if (key.rfind("exp_avg_sq.", 0) == 0) return 2e-14 * std::sqrt(max_abs(ref.to_vector())) + 1e-28;
        return 1e-14;
      }
      return param_floor;  // G, G_ema
    };
    auto check_state = [&](const std::string& group, const std::map<std::string, Tensor>& state) {
      std::map<std::string, Tensor> want = g.group(name + "/" + group + "/");
      REQUIRE(state.size() == want.size());
      for (auto& [k, ref] : want) {
        auto it = state.find(k);
        INFO(group << "." << k);
        REQUIRE(it != state.end());
        check_tensor(group + "." + k, it->second, ref, floor_of(group, k, ref), worst[group]);
      }
    };
    check_state("G", t.generator().state());
    check_state("D", t.discriminator().state());
    check_state("G_ema", t.ema_generator().state());
    check_state("opt_G", t.optimizer_g().state());
    check_state("opt_D", t.optimizer_d().state());
    Tensor z = g.at("inputs/z_g").select(0, 0).contiguous(), y = g.at("inputs/y_fake_g").select(0, 0).contiguous();
    check_tensor("sample", t.sample(z, y), g.at(name + "/sample"), param_floor, worst["sample"]);

    if (report)
      for (auto& [group, w] : worst)
        std::cout << "trajectory " << name << " " << group << ": worst relative " << w.rel << " (" << w.rel_name
                  << "), worst absolute " << w.abs << " (" << w.abs_name << ")\n";
  }
}
