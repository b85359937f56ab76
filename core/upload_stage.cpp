#include "sagan/core/upload_stage.h"

#include <algorithm>
#include <cstring>

namespace sagan {

namespace {
// Each piece starts on a 256-byte boundary of the landing buffer, so the
// device-side copies read aligned memory.
constexpr size_t kAlign = 256;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

bool UploadStage::add(Tensor& dst, const Tensor& src, DType dtype) {
  SAGAN_CHECK(src.defined(), "UploadStage::add: an undefined source tensor");
  Tensor host = src.detach().to(dtype).to(Device::cpu()).contiguous();
  const bool remade = !dst.defined() || dst.shape() != host.shape() || dst.dtype() != dtype;
  if (remade) dst = Tensor::empty(host.shape(), dtype, device_);
  SAGAN_CHECK(dst.device() == device_ && dst.is_contiguous(),
              "UploadStage::add: the destination must be a contiguous tensor on {}", device_name(device_));
  added_.push_back({dst, std::move(host), added_bytes_});
  added_bytes_ += align_up(static_cast<size_t>(added_.back().src.numel()) * dtype_size(dtype));
  return remade;
}

void UploadStage::send() {
  if (!uploader_ || uploader_->capacity() < added_bytes_)
    uploader_ = backend_for(device_).make_uploader(std::max(added_bytes_, kAlign));
  auto* host = static_cast<std::byte*>(uploader_->host());
  for (const Entry& e : added_)
    std::memcpy(host + e.offset, e.src.raw_data(), static_cast<size_t>(e.src.numel()) * dtype_size(e.src.dtype()));
  uploader_->send(added_bytes_);
  sent_ = std::move(added_);
  added_.clear();
  added_bytes_ = 0;
}

void UploadStage::take() {
  if (sent_.empty()) return;
  std::vector<Uploader::Piece> pieces;
  for (const Entry& e : sent_)
    pieces.push_back({e.dst.raw_data(), e.offset, static_cast<size_t>(e.src.numel()) * dtype_size(e.src.dtype())});
  uploader_->take(pieces);
  for (const Entry& e : sent_) e.dst.bump_version();  // written by pointer (core/storage.h)
  sent_.clear();
}

void UploadStage::discard() {
  added_.clear();
  added_bytes_ = 0;
  sent_.clear();
}

}  // namespace sagan
