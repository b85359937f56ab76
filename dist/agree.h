// Ending a multi-rank job together instead of through MPI_Abort.
//
// A failure on one rank while the others wait in a collective can only end
// the job with MPI_Abort (sagan-train does that, naming the rank). Where the
// ranks can meet first (startup: the data set loaded, the device found, the
// checkpoint read), they agree instead: every rank learns that rank r failed
// and why, and throws the same AgreedError. No rank is then inside a
// collective, so each unwinds normally (rank 0 removes the run directory it
// made), MPI is finalised and every rank exits 1.
#pragma once
#include <functional>
#include <string>

#include "sagan/core/error.h"
#include "sagan/dist/communicator.h"

namespace sagan::dist {

// Thrown on every rank alike, with the same message: the job ends without
// MPI_Abort (tools/sagan_train.cpp); rank 0 alone needs to print it.
class AgreedError : public Error {
 public:
  using Error::Error;
};

// Runs f on every rank (each must call this at the same point). When f
// throws on any rank, every rank throws AgreedError("rank r of N: <what f
// threw there>") for the lowest failing rank r. One process, or a null
// communicator: f runs, and what it throws passes through unchanged.
void run_agreed(Communicator* comm, const std::function<void()>& f);

// Every rank passes its own `text` (lines such as "device: cpu"); when a
// rank's differs from rank 0's, every rank throws AgreedError naming
// `what`, the lowest such rank and the first line where the two differ.
void check_same_everywhere(Communicator* comm, const std::string& text, const std::string& what);

}  // namespace sagan::dist
