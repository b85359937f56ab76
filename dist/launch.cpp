#include "sagan/dist/launch.h"

#include <cstdlib>
#include <string_view>

#include "sagan/core/error.h"
#include "sagan/dist/single_communicator.h"
#ifdef SAGAN_WITH_MPI
#include "sagan/dist/mpi_communicator.h"
#endif
#ifdef SAGAN_WITH_NCCL
#include "sagan/dist/nccl_communicator.h"
#endif

namespace sagan::dist {

namespace {
// An integer environment variable, or -1 when absent or not a number.
int env_int(const std::function<const char*(const char*)>& getenv, const char* name) {
  const char* v = getenv(name);
  if (!v || !*v) return -1;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  return (*end == '\0' && x >= 0 && x < (1L << 30)) ? static_cast<int>(x) : -1;
}
}  // namespace

LaunchEnv detect_launch(const std::function<const char*(const char*)>& getenv) {
  struct Scheme {
    const char *rank, *size, *local, *source;
  };
  // Open MPI's mpirun first (also set under srun --mpi=pmix with Open MPI),
  // then Slurm's own, then PMI / PMIx launchers (MPICH's hydra, ...).
  static const Scheme schemes[] = {
      {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_*"},
      {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_PROCID/SLURM_NTASKS"},
      {"PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "PMI_RANK/PMI_SIZE"},
      {"PMIX_RANK", "PMIX_SIZE", "PMIX_LOCAL_RANK", "PMIX_RANK"},
  };
  for (const Scheme& s : schemes) {
    int rank = env_int(getenv, s.rank), size = env_int(getenv, s.size);
    if (rank < 0) continue;
    // A Slurm batch script has SLURM_PROCID 0 and the allocation's
    // SLURM_NTASKS without being one of srun's tasks: only a step of more
    // than one task, or one started by srun (SLURM_STEP_ID), counts.
    if (std::string_view(s.rank) == "SLURM_PROCID" && env_int(getenv, "SLURM_STEP_ID") < 0) continue;
    LaunchEnv e;
    e.launched = true;
    e.rank = rank;
    e.size = size > 0 ? size : 1;
    e.size_given = size > 0;
    e.local_rank = std::max(0, env_int(getenv, s.local));
    e.source = s.source;
    return e;
  }
  return {};
}

LaunchEnv detect_launch() {
  return detect_launch([](const char* n) { return static_cast<const char*>(std::getenv(n)); });
}

bool mpi_built() {
#ifdef SAGAN_WITH_MPI
  return true;
#else
  return false;
#endif
}

bool nccl_built() {
#ifdef SAGAN_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::shared_ptr<Communicator> init_world(int* argc, char*** argv) {
  LaunchEnv env = detect_launch();
  if (!env.launched) return std::make_shared<SingleCommunicator>();
  const std::string who = env.size_given ? fmt::format("rank {} of {} ({})", env.rank, env.size, env.source)
                                         : fmt::format("rank {} ({}, no size given)", env.rank, env.source);
#ifdef SAGAN_WITH_MPI
  auto world = std::make_shared<MpiCommunicator>(argc, argv);
  // An MPI library that cannot reach the launcher's process manager starts
  // every process as the one rank of its own job: N separate runs, silently.
  // Only that is refused: the environment's rank and size can describe
  // something else legitimately (MPICH's hydra starts its proxies with srun,
  // whose SLURM_* then count nodes, not ranks). A rank above 0 alone in its
  // world is the same fault where the launcher gives no size (PMIx sets
  // PMIX_RANK only).
  SAGAN_CHECK(!(((env.size_given && env.size > 1) || env.rank > 0) && world->size() == 1),
              "launched as {}, but MPI sees a world of 1: this MPI library cannot reach the "
              "launcher's process manager, and each process would train a run of its own (under Slurm with Open MPI: "
              "srun --mpi=pmix; or launch with the mpirun of the MPI sagan-train was built with)",
              who);
  return world;
#else
  SAGAN_CHECK(env.size == 1 && env.rank == 0,
              "launched as {}, but this build has no MPI: install libopenmpi-dev (tools/setup.sh) and "
              "rebuild, or run one process",
              who);
  return std::make_shared<SingleCommunicator>();
#endif
}

Reducer choose_reducer(const std::string& backend, Device device, int world_size, bool host_serves_device) {
  SAGAN_CHECK(backend == "auto" || backend == "mpi" || backend == "nccl", "--comm: '{}' is not one of auto, mpi, nccl",
              backend);
  if (backend == "nccl" || (backend == "auto" && device.is_cuda() && world_size > 1)) {
    SAGAN_CHECK(device.is_cuda(), "--comm nccl: NCCL reduces GPU tensors and this rank trains on {}",
                device_name(device));
    return Reducer::Nccl;
  }
  if (host_serves_device) return Reducer::Host;
  // A launched job of one rank (mpirun -np 1, srun -n1) has an MPI world
  // that reduces CPU tensors only; alone, it has nothing to reduce.
  if (backend == "auto" && world_size == 1) return Reducer::Single;
  SAGAN_FAIL("--comm {}: MPI reduces CPU tensors and this rank trains on {}; use --comm nccl (or --device cpu)",
             backend, device_name(device));
}

std::shared_ptr<Communicator> device_communicator(std::shared_ptr<Communicator> host, Device device,
                                                  const std::string& backend) {
  switch (choose_reducer(backend, device, host->size(), host->serves(device))) {
    case Reducer::Host:
      return host;
    case Reducer::Single:
      return std::make_shared<SingleCommunicator>();
    case Reducer::Nccl:
      break;
  }
#ifdef SAGAN_WITH_NCCL
  return std::make_shared<NcclCommunicator>(std::move(host), device);
#else
  SAGAN_FAIL("--comm {}: this build has no NCCL (the CUDA toolkit's nccl.h and libnccl were not found by CMake)",
             backend);
#endif
}

void check_gpu_per_rank(int local_rank, int gpu_count) {
  SAGAN_CHECK(local_rank < gpu_count,
              "local rank {} on this machine has no GPU of its own: {} GPU(s) here, and NCCL cannot drive two ranks "
              "on one GPU; launch at most {} rank(s) per machine (mpirun --map-by ppr:{}:node, srun "
              "--ntasks-per-node={}), or train on the CPU with --device cpu",
              local_rank, gpu_count, gpu_count, gpu_count, gpu_count);
}

}  // namespace sagan::dist
