#include "sagan/dist/agree.h"

#include <cstdint>
#include <exception>
#include <sstream>
#include <vector>

#include "sagan/core/hash.h"

namespace sagan::dist {

namespace {
bool several(const Communicator* comm) { return comm != nullptr && comm->size() > 1; }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

int lowest_rank_with(const std::vector<uint64_t>& values, uint64_t other_than) {
  for (size_t r = 0; r < values.size(); ++r)
    if (values[r] != other_than) return static_cast<int>(r);
  return -1;
}
}  // namespace

void run_agreed(Communicator* comm, const std::function<void()>& f) {
  if (!several(comm)) {
    f();
    return;
  }
  std::string message;
  bool failed = false;
  try {
    f();
  } catch (const std::exception& e) {
    failed = true;
    message = e.what();
  } catch (...) {
    failed = true;
    message = "an exception that is not a std::exception";
  }
  const int r = lowest_rank_with(comm->all_gather(failed ? 1 : 0), 0);
  if (r < 0) return;
  message = broadcast_text(*comm, message, r);
  throw AgreedError(fmt::format("rank {} of {}: {}", r, comm->size(), message));
}

void check_same_everywhere(Communicator* comm, const std::string& text, const std::string& what) {
  if (!several(comm)) return;
  const std::vector<uint64_t> hashes = comm->all_gather(fnv1a64(text.data(), text.size()));
  const int r = lowest_rank_with(hashes, hashes[0]);
  if (r < 0) return;
  const std::vector<std::string> mine = lines_of(broadcast_text(*comm, text, 0)),
                                 theirs = lines_of(broadcast_text(*comm, text, r));
  size_t i = 0;
  while (i < mine.size() && i < theirs.size() && mine[i] == theirs[i]) ++i;
  const auto line = [&](const std::vector<std::string>& v) {
    if (i >= v.size()) return std::string("(nothing)");
    const size_t start = v[i].find_first_not_of(" \t");
    return start == std::string::npos ? std::string() : v[i].substr(start);
  };
  throw AgreedError(fmt::format(
      "{} differ between ranks: rank 0 has '{}', rank {} of {} has '{}'; every rank must be given the same options, "
      "see the same files and have the same kind of device",
      what, line(mine), r, comm->size(), line(theirs)));
}

}  // namespace sagan::dist
