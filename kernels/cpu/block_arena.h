// The bookkeeping of a caching allocator that splits and merges blocks, as
// PyTorch's CUDA caching allocator does, over memory it is handed.
//
// A cache keyed by exact size keeps, for each size, as many blocks as were
// ever alive at once, even when they are never alive together with the
// blocks of other sizes: in a SAGAN-32 CPU step (batch 64) that held 1731
// MiB for 1464 MiB of tensors alive at the peak. Here a freed block goes
// back to its segment (one allocation from the system), merging with free
// neighbours, and a request takes the smallest free block that fits,
// splitting off the rest: 1578 MiB for the same allocation trace.
//
// Not thread-safe and allocates no memory for blocks itself: the caller
// locks, gets segments from the system when take() finds no fit, and frees
// the segments trim() hands back (outside its lock). Best fit can pin a
// large free block with a small long-lived one (PyTorch's large pool does
// too): callers keep small requests in an arena of their own.
#pragma once
#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sagan {

class BlockArena {
 public:
  // Sizes are multiples of `granule` (which block addresses keep as their
  // alignment); a block is split only when at least `min_split` bytes
  // remain, and a block handed out is less than `min_split` bytes larger
  // than asked for. split = false: blocks are never split (each segment is
  // one block), so a request takes only a block it nearly fills.
  BlockArena(size_t granule, size_t min_split, bool split = true);
  BlockArena(const BlockArena&) = delete;
  BlockArena& operator=(const BlockArena&) = delete;

  size_t round(size_t nbytes) const { return (nbytes + granule_ - 1) / granule_ * granule_; }

  // The smallest free block of at least `size` (rounded, > 0) bytes, or null.
  void* take(size_t size);
  // A new segment of `bytes` (a multiple of the granule, >= size) at `base`,
  // from the system; returns its first `size` bytes as a block in use.
  void* add_segment(void* base, size_t bytes, size_t size);
  // Puts a block from take() or add_segment() back.
  void give_back(void* p);
  // Removes segments with no block in use (idle) and returns them, to be
  // freed by the caller: those larger than `max_idle`, then the ones idle
  // longest, until at most `max_idle` bytes of idle segments stay. Free
  // bytes in segments with a block in use cannot go back and do not count.
  struct Span {
    void* base;
    size_t bytes;
  };
  std::vector<Span> trim(size_t max_idle);

  size_t cached_bytes() const { return cached_; }      // in free blocks
  size_t idle_bytes() const { return idle_bytes_; }    // in idle segments
  size_t reserved_bytes() const { return reserved_; }  // in all segments
  size_t segments() const { return segments_.size(); }
  size_t block_size(void* p) const;  // of a block in use (0: not one)
  // Throws naming the first broken invariant (tests): blocks tile their
  // segments, no two free neighbours of a segment are left unmerged, the
  // free index, the idle list and the counters agree with the blocks.
  void check() const;

 private:
  struct Segment {
    char* base;
    size_t bytes;
    size_t free_bytes;
    std::list<Segment*>::iterator idle;  // valid while free_bytes == bytes
  };
  struct Block {
    size_t size;
    bool free;
    Segment* segment;
  };
  using Blocks = std::map<char*, Block>;  // by address: a block's neighbours are its map neighbours
  void insert_free(Blocks::iterator b);
  void take_free(Blocks::iterator b, size_t size);

  const size_t granule_, min_split_;
  const bool split_;
  Blocks blocks_;
  std::set<std::pair<size_t, char*>> free_;  // (size, address): best fit, lowest address among equals
  std::unordered_map<char*, std::unique_ptr<Segment>> segments_;
  std::list<Segment*> idle_;  // segments with no block in use, idle longest first
  size_t cached_ = 0, idle_bytes_ = 0, reserved_ = 0;
};

}  // namespace sagan
