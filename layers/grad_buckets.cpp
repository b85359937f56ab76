#include "sagan/layers/grad_buckets.h"

#include "sagan/core/autograd.h"
#include "sagan/core/ops.h"

namespace sagan::nn {

GradBuckets::GradBuckets(FlatParameters& flat, std::shared_ptr<dist::Communicator> comm, int buckets)
    : flat_(flat), comm_(std::move(comm)) {
  SAGAN_CHECK(flat_.has_grad_buffer(), "GradBuckets: the flat parameters have no gradient buffer");
  SAGAN_CHECK(comm_ != nullptr && buckets >= 1, "GradBuckets: need a communicator and at least one bucket, got {}",
              buckets);
  const std::vector<ParamRange>& ranges = flat_.ranges();
  const int64_t total = flat_.size();
  // Consecutive ranges until a bucket holds total / buckets elements; the
  // padding after a range belongs to its bucket, so the buckets tile grad().
  const int64_t target = (total + buckets - 1) / buckets;
  bucket_of_.resize(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    const int64_t end = i + 1 < ranges.size() ? ranges[i + 1].offset : total;
    if (buckets_.empty() || buckets_.back().end - buckets_.back().begin >= target) {
      Bucket b;
      b.begin = ranges[i].offset;
      buckets_.push_back(std::move(b));
    }
    buckets_.back().end = end;
    buckets_.back().ranges++;
    bucket_of_[i] = static_cast<int>(buckets_.size() - 1);
  }
  seen_.assign(ranges.size(), 0);
  flat_.set_grad_ready_hook([this](const ParamRange& r) { on_ready(r); });
}

GradBuckets::~GradBuckets() {
  for (Bucket& b : buckets_) b.pending.reset();  // waits for MPI / orders the GPU stream
  flat_.set_grad_ready_hook(nullptr);
}

std::vector<GradBuckets::Range> GradBuckets::buckets() const {
  std::vector<Range> out;
  for (const Bucket& b : buckets_) out.push_back({b.begin, b.end});
  return out;
}

void GradBuckets::begin() {
  for (Bucket& b : buckets_) {
    b.pending.reset();
    b.ready = 0;
  }
  std::fill(seen_.begin(), seen_.end(), 0);
  launched_in_backward_ = 0;
  armed_ = true;
}

void GradBuckets::launch(Bucket& b) {
  b.pending = comm_->start_all_reduce_sum(flat_.grad().narrow(0, b.begin, b.end - b.begin));
}

void GradBuckets::on_ready(const ParamRange& r) {
  if (!armed_ || seen_[r.index]) return;
  seen_[r.index] = 1;
  Bucket& b = buckets_[static_cast<size_t>(bucket_of_[r.index])];
  if (++b.ready == b.ranges) {
    launch(b);
    ++launched_in_backward_;
  }
  // MPI moves a non-blocking collective only inside MPI calls: poke the
  // ones in flight while backward goes on.
  for (Bucket& o : buckets_)
    if (o.pending) o.pending->test();
}

void GradBuckets::finish() {
  SAGAN_CHECK(armed_, "GradBuckets::finish without begin");
  armed_ = false;
  // Buckets with a parameter that got no gradient this pass, in bucket
  // order (the same on every rank).
  for (Bucket& b : buckets_)
    if (!b.pending) launch(b);
  for (Bucket& b : buckets_) b.pending->wait();
  for (Bucket& b : buckets_) b.pending.reset();
  if (comm_->size() > 1) flat_.scale_grad(1.0 / comm_->size());
}

}  // namespace sagan::nn
