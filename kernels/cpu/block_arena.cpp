#include "sagan/kernels/cpu/block_arena.h"

#include <cstdint>
#include <iterator>

#include "sagan/core/error.h"

namespace sagan {

BlockArena::BlockArena(size_t granule, size_t min_split, bool split)
    : granule_(granule), min_split_(min_split), split_(split) {
  SAGAN_CHECK(granule_ > 0 && min_split_ >= granule_ && min_split_ % granule_ == 0,
              "BlockArena: min_split {} must be a positive multiple of the granule {}", min_split_, granule_);
}

namespace {
void check_size(size_t size, size_t granule) {
  SAGAN_CHECK(size > 0 && size <= SIZE_MAX - granule, "BlockArena: cannot hand out a block of {} bytes", size);
}
}  // namespace

void BlockArena::insert_free(Blocks::iterator b) {
  free_.emplace(b->second.size, b->first);  // first: it may throw (bad_alloc), and nothing has changed yet
  b->second.free = true;
}

// Marks free block b in use for `size` bytes, splitting off the rest when
// a useful block remains.
void BlockArena::take_free(Blocks::iterator b, size_t size) {
  Block& blk = b->second;
  Segment& seg = *blk.segment;
  if (split_ && blk.size - size >= min_split_) {
    auto rest = blocks_.emplace_hint(std::next(b), b->first + size, Block{blk.size - size, false, &seg});
    free_.erase({blk.size, b->first});
    insert_free(rest);
    blk.size = size;
  } else {
    free_.erase({blk.size, b->first});
  }
  if (seg.free_bytes == seg.bytes) {
    idle_.erase(seg.idle);
    idle_bytes_ -= seg.bytes;
  }
  blk.free = false;
  seg.free_bytes -= blk.size;
  cached_ -= blk.size;
}

void* BlockArena::take(size_t size) {
  check_size(size, granule_);
  size = round(size);
  auto fit = free_.lower_bound({size, nullptr});
  if (fit == free_.end()) return nullptr;
  if (!split_ && fit->first - size >= min_split_) return nullptr;  // every other fit is larger still
  auto b = blocks_.find(fit->second);
  take_free(b, size);
  return b->first;
}

void* BlockArena::add_segment(void* base, size_t bytes, size_t size) {
  check_size(size, granule_);
  size = round(size);
  SAGAN_CHECK(bytes % granule_ == 0 && bytes >= size, "BlockArena: a segment of {} bytes cannot hold {}", bytes, size);
  char* p = static_cast<char*>(base);
  // The entries first (they may throw), the counters after.
  auto seg = std::make_unique<Segment>(Segment{p, bytes, bytes, {}});
  Segment* s = seg.get();
  auto b = blocks_.emplace(p, Block{bytes, false, s}).first;
  try {
    segments_.emplace(p, std::move(seg));
    idle_.push_back(s);
    s->idle = std::prev(idle_.end());
    insert_free(b);
  } catch (...) {
    if (!idle_.empty() && idle_.back() == s) idle_.pop_back();
    segments_.erase(p);
    free_.erase({bytes, p});
    blocks_.erase(b);
    throw;
  }
  reserved_ += bytes;
  cached_ += bytes;
  idle_bytes_ += bytes;
  take_free(b, size);
  return p;
}

void BlockArena::give_back(void* ptr) {
  auto b = blocks_.find(static_cast<char*>(ptr));
  SAGAN_CHECK(b != blocks_.end() && !b->second.free, "BlockArena: {} is not a block in use", ptr);
  Segment& seg = *b->second.segment;
  seg.free_bytes += b->second.size;
  cached_ += b->second.size;
  // Merge with the free neighbours of the same segment (segments may sit
  // next to each other in memory; blocks never span two).
  auto next = std::next(b);
  if (next != blocks_.end() && next->second.free && next->second.segment == &seg) {
    free_.erase({next->second.size, next->first});
    b->second.size += next->second.size;
    blocks_.erase(next);
  }
  if (b != blocks_.begin()) {
    auto prev = std::prev(b);
    if (prev->second.free && prev->second.segment == &seg) {
      free_.erase({prev->second.size, prev->first});
      prev->second.size += b->second.size;
      blocks_.erase(b);
      b = prev;
    }
  }
  insert_free(b);
  if (seg.free_bytes == seg.bytes) {
    idle_.push_back(&seg);
    seg.idle = std::prev(idle_.end());
    idle_bytes_ += seg.bytes;
  }
}

std::vector<BlockArena::Span> BlockArena::trim(size_t max_idle) {
  std::vector<Span> out;
  if (idle_bytes_ <= max_idle) return out;  // the common case, at no cost
  auto drop = [&](std::list<Segment*>::iterator it) {
    Segment* s = *it;
    free_.erase({s->bytes, s->base});  // its one free block spans it
    blocks_.erase(s->base);
    cached_ -= s->bytes;
    idle_bytes_ -= s->bytes;
    reserved_ -= s->bytes;
    out.push_back({s->base, s->bytes});
    auto next = idle_.erase(it);
    segments_.erase(s->base);
    return next;
  };
  for (auto it = idle_.begin(); it != idle_.end();) it = (*it)->bytes > max_idle ? drop(it) : std::next(it);
  while (idle_bytes_ > max_idle && !idle_.empty()) drop(idle_.begin());
  return out;
}

size_t BlockArena::block_size(void* p) const {
  auto b = blocks_.find(static_cast<char*>(p));
  return b == blocks_.end() || b->second.free ? 0 : b->second.size;
}

void BlockArena::check() const {
  size_t cached = 0, idle = 0, reserved = 0, free_blocks = 0, blocks = 0;
  for (const auto& [base, seg] : segments_) {
    size_t free_bytes = 0;
    char* at = base;
    bool last_free = false;
    for (auto b = blocks_.find(base); at < base + seg->bytes; ++b) {
      SAGAN_CHECK(b != blocks_.end() && b->first == at && b->second.segment == seg.get(),
                  "BlockArena::check: the blocks of segment {} do not tile it", static_cast<void*>(base));
      SAGAN_CHECK(!(last_free && b->second.free), "BlockArena::check: two free neighbours at {}",
                  static_cast<void*>(b->first));
      SAGAN_CHECK(b->second.free == (free_.count({b->second.size, b->first}) == 1),
                  "BlockArena::check: the free index disagrees at {}", static_cast<void*>(b->first));
      if (b->second.free) {
        free_bytes += b->second.size;
        ++free_blocks;
      }
      last_free = b->second.free;
      at += b->second.size;
      ++blocks;
    }
    SAGAN_CHECK(at == base + seg->bytes && free_bytes == seg->free_bytes,
                "BlockArena::check: segment {} counts {} free bytes, its blocks {}", static_cast<void*>(base),
                seg->free_bytes, free_bytes);
    cached += free_bytes;
    reserved += seg->bytes;
    if (free_bytes == seg->bytes) idle += seg->bytes;
  }
  size_t listed = 0;
  for (const Segment* s : idle_) listed += s->bytes;
  SAGAN_CHECK(cached == cached_ && idle == idle_bytes_ && listed == idle && reserved == reserved_ &&
                  free_blocks == free_.size() && blocks == blocks_.size(),
              "BlockArena::check: counters disagree (cached {} vs {}, idle {} vs {} listed {}, reserved {} vs {})",
              cached, cached_, idle, idle_bytes_, listed, reserved, reserved_);
}

}  // namespace sagan
