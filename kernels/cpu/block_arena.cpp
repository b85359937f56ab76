#include "kernels/cpu/block_arena.h"

#include <iterator>

#include "core/error.h"

namespace sagan {

BlockArena::BlockArena(size_t granule, size_t min_split) : granule_(granule), min_split_(min_split) {
  SAGAN_CHECK(granule_ > 0 && min_split_ >= granule_ && min_split_ % granule_ == 0,
              "BlockArena: min_split {} must be a positive multiple of the granule {}", min_split_, granule_);
}

void BlockArena::insert_free(Blocks::iterator b) {
  b->second.free = true;
  free_.emplace(b->second.size, b->first);
}

// Marks free block b in use for `size` bytes, splitting off the rest when
// a useful block remains.
void BlockArena::take_free(Blocks::iterator b, size_t size) {
  Block& blk = b->second;
  free_.erase({blk.size, b->first});
  Segment& seg = *blk.segment;
  if (seg.free_bytes == seg.bytes) idle_.erase(seg.idle);
  if (blk.size - size >= min_split_) {
    insert_free(blocks_.emplace_hint(std::next(b), b->first + size, Block{blk.size - size, true, &seg}));
    blk.size = size;
  }
  blk.free = false;
  seg.free_bytes -= blk.size;
  cached_ -= blk.size;
}

void* BlockArena::take(size_t size) {
  size = round(size);
  auto fit = free_.lower_bound({size, nullptr});
  if (fit == free_.end()) return nullptr;
  auto b = blocks_.find(fit->second);
  take_free(b, size);
  return b->first;
}

void* BlockArena::add_segment(void* base, size_t bytes, size_t size) {
  size = round(size);
  SAGAN_CHECK(bytes % granule_ == 0 && bytes >= size, "BlockArena: a segment of {} bytes cannot hold {}", bytes,
              size);
  char* p = static_cast<char*>(base);
  auto seg = std::make_unique<Segment>(Segment{p, bytes, bytes, {}});
  Segment* s = seg.get();
  segments_.emplace(p, std::move(seg));
  reserved_ += bytes;
  cached_ += bytes;
  idle_.push_back(s);
  s->idle = std::prev(idle_.end());
  auto b = blocks_.emplace(p, Block{bytes, true, s}).first;
  free_.emplace(bytes, p);
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
  }
}

std::vector<BlockArena::Span> BlockArena::trim(size_t max_cached) {
  std::vector<Span> out;
  auto drop = [&](std::list<Segment*>::iterator it) {
    Segment* s = *it;
    free_.erase({s->bytes, s->base});  // its one free block spans it
    blocks_.erase(s->base);
    cached_ -= s->bytes;
    reserved_ -= s->bytes;
    out.push_back({s->base, s->bytes});
    auto next = idle_.erase(it);
    segments_.erase(s->base);
    return next;
  };
  for (auto it = idle_.begin(); it != idle_.end();) it = (*it)->bytes > max_cached ? drop(it) : std::next(it);
  while (cached_ > max_cached && !idle_.empty()) drop(idle_.begin());
  return out;
}

size_t BlockArena::block_size(void* p) const {
  auto b = blocks_.find(static_cast<char*>(p));
  return b == blocks_.end() || b->second.free ? 0 : b->second.size;
}

}  // namespace sagan
