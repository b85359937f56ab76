#include "sagan/core/sync_free.h"

#include "sagan/core/error.h"

namespace sagan {

namespace {
thread_local const char* t_region = nullptr;  // the innermost region's name
thread_local int64_t t_reads = 0;
}  // namespace

SyncFreeScope::SyncFreeScope(const char* what) : outer_(t_region) { t_region = what; }
SyncFreeScope::~SyncFreeScope() { t_region = outer_; }

bool sync_free_active() { return t_region != nullptr; }

void note_host_read(const char* op) {
  SAGAN_CHECK(t_region == nullptr,
              "{}: a read of tensor values inside {}, which must not wait for the device (core/sync_free.h): read it "
              "after the region ends",
              op, t_region);
  ++t_reads;
}

int64_t host_read_count() { return t_reads; }

}  // namespace sagan
