// How a process learns it is one rank of a data-parallel job, and the
// communicators it then uses. mpirun (Open MPI: OMPI_COMM_WORLD_*), srun
// (SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID; Open MPI needs srun
// --mpi=pmix) and other PMI launchers (PMI_RANK / PMI_SIZE, PMIX_RANK) say so
// in the environment; MPI itself then gives rank, size and the local rank.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "sagan/dist/communicator.h"

namespace sagan::dist {

// What the launcher's environment says; launched is false for a plain run.
struct LaunchEnv {
  bool launched = false;
  int rank = 0, size = 1, local_rank = 0;
  bool size_given = false;  // the launcher set the world size (not assumed 1)
  std::string source;  // the variables it came from: "OMPI_COMM_WORLD_*", "SLURM_*", ...
};
// getenv is a parameter for tests.
LaunchEnv detect_launch(const std::function<const char*(const char*)>& getenv);
LaunchEnv detect_launch();

// Whether this build has MPI (SAGAN_WITH_MPI) and NCCL (SAGAN_WITH_NCCL).
bool mpi_built();
bool nccl_built();

// The process's communicator: MPI when launched (detect_launch) and built
// with MPI, the single one otherwise. Launched as more than one rank by a
// build without MPI is an error that names the launcher's variables. Call
// once, first thing in main (MPI_Init may edit argc/argv); keep the result
// alive until the end (its destructor calls MPI_Finalize).
std::shared_ptr<Communicator> init_world(int* argc, char*** argv);

// What reduces a rank's tensors, chosen apart from building it so that tests
// check the choice without a GPU or MPI. "auto": NCCL for a GPU when the job
// has more than one rank, else the host communicator, or, in a world of one
// whose host communicator cannot take the device's tensors (mpirun -np 1 on
// a GPU), the single one: there is nothing to reduce. "nccl" insists on NCCL
// (a one-rank job then exercises the NCCL path); "mpi" on the host
// communicator (CPU tensors only). Errors name --comm.
enum class Reducer { Host, Nccl, Single };
Reducer choose_reducer(const std::string& backend, Device device, int world_size, bool host_serves_device);

// The communicator choose_reducer picks for `device` over `host`.
std::shared_ptr<Communicator> device_communicator(std::shared_ptr<Communicator> host, Device device,
                                                  const std::string& backend);

// NCCL cannot hold two ranks of one communicator on one GPU (it hangs or
// reports a duplicate GPU): a rank whose local rank has no GPU of its own,
// local_rank >= gpu_count, is refused with a message saying what to launch.
void check_gpu_per_rank(int local_rank, int gpu_count);

}  // namespace sagan::dist
