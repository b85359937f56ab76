// DataLoader: batch contents, [-1, 1] scaling, epochs as permutations,
// determinism, exact resume, flips, resizing, worker errors and shutdown.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <numeric>
#include <set>
#include <stdexcept>
#include <thread>

#include "sagan/models/data/loader.h"

using namespace sagan;
using namespace sagan::data;

namespace {
// Example i has label i and pixel (y, x, c) = (i * 11 + y * 37 + x * 5 + c * 101) % 256, so
// images are asymmetric and identify their example; example 0 holds 0 and
// (with the right size) 255.
class Synthetic : public Dataset {
 public:
  Synthetic(int64_t n, int64_t h, int64_t w, int64_t c, int64_t fail_at = -1)
      : n_(n), h_(h), w_(w), c_(c), fail_at_(fail_at) {}
  std::string name() const override { return "synthetic"; }
  int64_t size() const override { return n_; }
  int64_t num_classes() const override { return n_; }
  int64_t channels() const override { return c_; }
  int64_t height() const override { return h_; }
  int64_t width() const override { return w_; }
  Example get(int64_t i) const override {
    check_index(i);
    gets += 1;
    SAGAN_CHECK(i != fail_at_, "synthetic: example {} is unreadable", i);
    Example e;
    e.label = i;
    e.image = io::Image(h_, w_, c_);
    for (int64_t y = 0; y < h_; ++y)
      for (int64_t x = 0; x < w_; ++x)
        for (int64_t k = 0; k < c_; ++k) e.image.at(y, x, k) = pixel(i, y, x, k);
    return e;
  }
  static uint8_t pixel(int64_t i, int64_t y, int64_t x, int64_t c) {
    return static_cast<uint8_t>((i * 11 + y * 37 + x * 5 + c * 101) % 256);
  }
  mutable std::atomic<int64_t> gets{0};

 private:
  int64_t n_, h_, w_, c_, fail_at_;
};

struct Seen {
  std::vector<std::vector<float>> images;
  std::vector<std::vector<int64_t>> labels;
  bool operator==(const Seen&) const = default;
};
Seen take(DataLoader& dl, int n) {
  Seen s;
  for (int i = 0; i < n; ++i) {
    Batch b = dl.next();
    s.images.push_back(b.images.to_float_vector());
    s.labels.push_back(b.labels.to_int_vector());
  }
  return s;
}

// 0 when image k of the batch is example `label` unflipped, 1 when mirrored, -1 otherwise.
int orientation(const Batch& b, int64_t k) {
  const int64_t C = b.images.size(1), H = b.images.size(2), W = b.images.size(3);
  int64_t label = b.labels.to_int_vector()[static_cast<size_t>(k)];
  std::vector<float> v = b.images.select(0, k).to_float_vector();
  bool plain = true, mirrored = true;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        float got = v[static_cast<size_t>((c * H + y) * W + x)];
        plain = plain && got == Synthetic::pixel(label, y, x, c) / 127.5f - 1.0f;
        mirrored = mirrored && got == Synthetic::pixel(label, y, W - 1 - x, c) / 127.5f - 1.0f;
      }
  return plain ? 0 : mirrored ? 1 : -1;
}
}  // namespace

TEST_CASE("loader batches hold scaled images and every epoch is a permutation", "[data][data_loader]") {
  auto ds = std::make_shared<Synthetic>(37, 3, 5, 2);
  LoaderOptions o;
  o.batch_size = 8;
  o.drop_last = false;
  o.seed = 11;
  DataLoader dl(ds, o);
  CHECK(dl.batches_per_epoch() == 5);
  CHECK((dl.channels() == 2 && dl.height() == 3 && dl.width() == 5));
  std::vector<std::vector<int64_t>> epochs(2);
  for (int e = 0; e < 2; ++e)
    for (int i = 0; i < 5; ++i) {
      Batch b = dl.next();
      const int64_t B = i < 4 ? 8 : 5;
      REQUIRE(b.images.shape() == Shape{B, 2, 3, 5});
      CHECK(b.images.dtype() == DType::F32);
      CHECK(b.labels.shape() == Shape{B});
      CHECK(b.labels.dtype() == DType::I64);
      for (int64_t k = 0; k < B; ++k) CHECK(orientation(b, k) == 0);  // exact x / 127.5 - 1, no flips
      for (int64_t l : b.labels.to_int_vector()) epochs[static_cast<size_t>(e)].push_back(l);
    }
  for (auto& ep : epochs) {
    std::vector<int64_t> sorted = ep;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> all(37);
    std::iota(all.begin(), all.end(), 0);
    CHECK(sorted == all);
  }
  CHECK(epochs[0] != epochs[1]);  // reshuffled
  CHECK(dl.state() == LoaderState{2, 0, 11});

  // The [-1, 1] end points: 0 and 255 map exactly to -1 and 1.
  auto wide = std::make_shared<Synthetic>(1, 1, 52, 1);  // pixel 5x, x < 52, covers 0 and 255
  LoaderOptions one;
  one.batch_size = 1;
  DataLoader d1(wide, one);
  std::vector<float> v = d1.next().images.to_float_vector();
  CHECK(*std::min_element(v.begin(), v.end()) == -1.0f);
  CHECK(*std::max_element(v.begin(), v.end()) == 1.0f);
  CHECK(v[1] == 5 / 127.5f - 1.0f);
}

TEST_CASE("loader order: unshuffled, drop_last, seeds", "[data][data_loader]") {
  auto ds = std::make_shared<Synthetic>(37, 2, 2, 1);
  LoaderOptions o;
  o.batch_size = 8;
  o.shuffle = false;
  DataLoader plain(ds, o);  // drop_last: 4 batches per epoch, examples 32-36 unused
  CHECK(plain.batches_per_epoch() == 4);
  Seen s = take(plain, 5);
  CHECK(s.labels[0] == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(s.labels[3] == std::vector<int64_t>{24, 25, 26, 27, 28, 29, 30, 31});
  CHECK(s.labels[4] == s.labels[0]);

  o.shuffle = true;
  o.seed = 5;
  DataLoader a(ds, o), b(ds, o);
  Seen sa = take(a, 10), sb = take(b, 10);
  CHECK(sa == sb);  // same seed, same stream (2.5 epochs)
  std::set<int64_t> first_epoch;
  for (int i = 0; i < 4; ++i) first_epoch.insert(sa.labels[i].begin(), sa.labels[i].end());
  CHECK(first_epoch.size() == 32);  // no repeats inside an epoch
  o.seed = 6;
  DataLoader c(ds, o);
  CHECK(take(c, 10).labels != sa.labels);
}

TEST_CASE("loader resume reproduces the uninterrupted stream", "[data][data_loader]") {
  auto ds = std::make_shared<Synthetic>(29, 3, 4, 3);
  LoaderOptions o;
  o.batch_size = 6;
  o.hflip = true;
  o.seed = 1234;
  for (bool drop_last : {true, false}) {
    o.drop_last = drop_last;
    INFO("drop_last " << drop_last);
    DataLoader a(ds, o);
    Seen before = take(a, 3);
    LoaderState s = a.state();
    CHECK(s == LoaderState{0, 18, 1234});
    Seen after = take(a, 9);  // crosses two epoch boundaries

    LoaderOptions other = o;
    other.seed = 999;  // the state's seed wins
    DataLoader b(ds, other);
    take(b, 2);  // whatever it was doing is discarded
    b.set_state(s);
    CHECK(b.state() == s);
    CHECK(take(b, 9) == after);
    CHECK(b.state() == a.state());

    a.set_state({0, 0, 1234});  // rewinding replays from the start
    CHECK(take(a, 3) == before);

    LoaderOptions threaded = o;
    threaded.decode_threads = 4;  // parallel decoding changes nothing
    DataLoader t(ds, threaded);
    t.set_state(s);
    CHECK(take(t, 9) == after);

    // A state taken at an epoch boundary.
    DataLoader c(ds, o);
    take(c, static_cast<int>(c.batches_per_epoch()));
    CHECK(c.state() == LoaderState{1, 0, 1234});
    Seen next_epoch = take(c, 2);
    DataLoader d(ds, o);
    d.set_state({1, 0, 1234});
    CHECK(take(d, 2) == next_epoch);
  }
  // An index that is not a multiple of the batch size starts mid-permutation.
  LoaderOptions u;
  u.batch_size = 4;
  u.shuffle = false;
  DataLoader e(ds, u);
  e.set_state({3, 5, 0});
  CHECK(take(e, 1).labels[0] == std::vector<int64_t>{5, 6, 7, 8});
  REQUIRE_THROWS_WITH(e.set_state({0, 29, 0}), Catch::Contains("DataLoader(synthetic)") &&
                                                   Catch::Contains("index 29") && Catch::Contains("29 examples"));
  REQUIRE_THROWS_WITH(e.set_state({0, 27, 0}), Catch::Contains("less than one batch"));
  CHECK(take(e, 1).labels[0] == std::vector<int64_t>{9, 10, 11, 12});  // still usable after a refused state
}

TEST_CASE("loader horizontal flips mirror about half the examples", "[data][data_loader]") {
  auto ds = std::make_shared<Synthetic>(40, 3, 7, 2);
  LoaderOptions o;
  o.batch_size = 10;
  o.hflip = true;
  o.seed = 3;
  DataLoader dl(ds, o);
  int flipped = 0, total = 0;
  for (int i = 0; i < 16; ++i) {
    Batch b = dl.next();
    for (int64_t k = 0; k < 10; ++k) {
      int r = orientation(b, k);
      REQUIRE(r >= 0);  // exactly the image or its mirror
      flipped += r;
      total += 1;
    }
  }
  CHECK(flipped > total * 0.35);
  CHECK(flipped < total * 0.65);
}

TEST_CASE("loader resizes to the model resolution", "[data][data_loader]") {
  // Fashion-MNIST geometry: 28x28 gray goes to 32x32, one channel kept.
  auto fm = std::make_shared<Synthetic>(5, 28, 28, 1);
  LoaderOptions o;
  o.batch_size = 5;
  o.shuffle = false;
  o.resolution = 32;
  DataLoader dl(fm, o);
  Batch b = dl.next();
  REQUIRE(b.images.shape() == Shape{5, 1, 32, 32});
  io::ImageF want = io::resize(io::to_float(fm->get(2).image), 32, 32);
  std::vector<float> got = b.images.select(0, 2).to_float_vector();
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, double(std::abs(got[i] - (want.pixels[i] / 127.5f - 1.0f))));
  CHECK(worst < 1e-6);
  std::vector<float> all = b.images.to_float_vector();
  CHECK(*std::min_element(all.begin(), all.end()) >= -1.0f);
  CHECK(*std::max_element(all.begin(), all.end()) <= 1.0f);

  // Non-square: center-cropped to 6x6, then area-downscaled to 3x3.
  auto wide = std::make_shared<Synthetic>(2, 6, 10, 3);
  o.batch_size = 2;
  o.resolution = 3;
  DataLoader dw(wide, o);
  Batch bw = dw.next();
  REQUIRE(bw.images.shape() == Shape{2, 3, 3, 3});
  io::Image src = wide->get(1).image;
  // Output (y, x, c) averages the 2x2 block at rows 2y.., columns 2 + 2x.. of the source.
  std::vector<float> g = bw.images.select(0, 1).to_float_vector();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 3; ++y)
      for (int64_t x = 0; x < 3; ++x) {
        double m = 0;
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx) m += src.at(2 * y + dy, 2 + 2 * x + dx, c) / 4.0;
        CHECK(g[static_cast<size_t>((c * 3 + y) * 3 + x)] == Approx(m / 127.5 - 1.0).margin(1e-6));
      }
}

TEST_CASE("loader grows smaller images by its upscale mode: pad centres them on black", "[data][data_loader]") {
  auto fm = std::make_shared<Synthetic>(3, 28, 28, 1);
  LoaderOptions o;
  o.batch_size = 3;
  o.shuffle = false;
  o.resolution = 32;
  o.upscale = io::Upscale::pad;
  DataLoader pad(fm, o);
  std::vector<float> img = pad.next().images.select(0, 1).to_float_vector();
  for (int64_t y = 0; y < 32; ++y)
    for (int64_t x = 0; x < 32; ++x) {
      INFO(y << "," << x);
      const bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;  // 2 black pixels around
      CHECK(img[static_cast<size_t>(y * 32 + x)] ==
            (inside ? Synthetic::pixel(1, y - 2, x - 2, 0) / 127.5f - 1.0f : -1.0f));
    }
  o.upscale = io::Upscale::nearest;
  DataLoader nearest(fm, o);
  io::ImageF want = io::resize_nearest(io::to_float(fm->get(1).image), 32, 32);
  std::vector<float> got = nearest.next().images.select(0, 1).to_float_vector();
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == want.pixels[i] / 127.5f - 1.0f);
}

TEST_CASE("loader rethrows worker errors and shuts down cleanly", "[data][data_loader]") {
  auto ds = std::make_shared<Synthetic>(20, 2, 2, 1, /*fail_at=*/13);
  LoaderOptions o;
  o.batch_size = 4;
  o.shuffle = false;
  DataLoader dl(ds, o);
  take(dl, 3);  // examples 0-11
  REQUIRE_THROWS_WITH(dl.next(), Catch::Contains("synthetic: example 13 is unreadable"));
  REQUIRE_THROWS_WITH(dl.next(), Catch::Contains("example 13"));  // sticky until set_state
  LoaderOptions threaded = o;
  threaded.decode_threads = 3;
  DataLoader dt(ds, threaded);
  take(dt, 3);
  REQUIRE_THROWS_WITH(dt.next(), Catch::Contains("synthetic: example 13 is unreadable"));
  CHECK(dl.state() == LoaderState{0, 12, 0});
  dl.set_state({0, 16, 0});
  CHECK(take(dl, 1).labels[0] == std::vector<int64_t>{16, 17, 18, 19});

  // The worker stops once `prefetch` batches are ready, and destruction
  // with a full queue (or mid-batch) returns promptly.
  auto big = std::make_shared<Synthetic>(1000, 4, 4, 1);
  LoaderOptions p;
  p.batch_size = 10;
  p.prefetch = 3;
  {
    DataLoader idle(big, p);
    for (int i = 0; i < 200 && big->gets < 30; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(big->gets == 30);
  }
  { DataLoader immediate(big, p); }
}

TEST_CASE("a data set's own exceptions become errors naming it and the example", "[data][data_loader]") {
  // A data set a program writes may throw anything derived from
  // std::exception; the trainer tells data errors (InputsNotDrawn) by
  // sagan::Error, and the message should say where it came from.
  struct Throwing : Synthetic {
    Throwing() : Synthetic(8, 2, 2, 1) {}
    Example get(int64_t i) const override {
      if (i == 5) throw std::runtime_error("disk on fire");
      return Synthetic::get(i);
    }
  };
  LoaderOptions o;
  o.batch_size = 4;
  o.shuffle = false;
  for (int64_t threads : {1, 2}) {
    o.decode_threads = threads;
    DataLoader dl(std::make_shared<Throwing>(), o);
    take(dl, 1);
    REQUIRE_THROWS_AS(dl.next(), Error);
    REQUIRE_THROWS_WITH(dl.next(), Catch::Contains("DataLoader(synthetic): example 5 could not be read: disk on fire"));
  }
}

TEST_CASE("loader option errors name the data set", "[data][data_loader]") {
  auto ds = std::make_shared<Synthetic>(5, 2, 2, 1);
  LoaderOptions o;
  o.batch_size = 0;
  REQUIRE_THROWS_WITH(DataLoader(ds, o), Catch::Contains("DataLoader(synthetic): batch size must be positive"));
  o.batch_size = 6;
  REQUIRE_THROWS_WITH(DataLoader(ds, o), Catch::Contains("5 examples are fewer than one batch of 6"));
  o.drop_last = false;
  DataLoader ok(ds, o);
  CHECK(ok.next().images.shape() == Shape{5, 1, 2, 2});
  auto varying = std::make_shared<Synthetic>(5, 0, 0, 1);
  o.batch_size = 2;
  REQUIRE_THROWS_WITH(DataLoader(varying, o), Catch::Contains("a resolution must be given"));
  o.resolution = -1;
  REQUIRE_THROWS_WITH(DataLoader(ds, o), Catch::Contains("resolution must be >= 0"));
  REQUIRE_THROWS_WITH(DataLoader(nullptr, LoaderOptions{}), Catch::Contains("no data set"));
  // A data set of no classes has no valid label: refused up front, not at
  // the first batch's "label 0 outside [0, 0)".
  struct NoClasses : Synthetic {
    NoClasses() : Synthetic(5, 2, 2, 1) {}
    int64_t num_classes() const override { return 0; }
  };
  REQUIRE_THROWS_WITH(DataLoader(std::make_shared<NoClasses>(), LoaderOptions{}),
                      Catch::Contains("DataLoader(synthetic): the data set reports 0 classes"));
  o.resolution = 0;
  o.decode_threads = 0;
  REQUIRE_THROWS_WITH(DataLoader(ds, o), Catch::Contains("decode_threads must be >= 1"));
}
