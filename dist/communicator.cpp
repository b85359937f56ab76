#include "sagan/dist/communicator.h"

#include "sagan/core/error.h"

namespace sagan::dist {

void check_reducible(const char* who, const Tensor& t) {
  SAGAN_CHECK(t.defined() && t.is_contiguous() && (t.dtype() == DType::F32 || t.dtype() == DType::F64),
              "{}: all-reduce needs a contiguous float32 or float64 tensor, got {}", who,
              t.defined() ? fmt::format("{} {}{}", dtype_name(t.dtype()), shape_str(t.shape()),
                                        t.is_contiguous() ? "" : " (not contiguous)")
                          : std::string("an undefined one"));
}

std::string broadcast_text(Communicator& comm, const std::string& text, int root) {
  uint64_t n = text.size();
  comm.broadcast(&n, sizeof n, root);
  std::string out = comm.rank() == root ? text : std::string(n, '\0');
  if (n > 0) comm.broadcast(out.data(), n, root);
  return out;
}

}  // namespace sagan::dist
