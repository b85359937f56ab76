# CTest test install_consumer (label install), run with cmake -P:
#   -DBUILD_DIR=<sagan build dir> -DSOURCE_DIR=<tests/consumer> -DWORK_DIR=<scratch>
#   [-DCONFIG=<build type>] [-DCXX_COMPILER=<path>] [-DCXX_FLAGS=...] [-DLINKER_FLAGS=...]
# Installs the current build into a fresh prefix, configures tests/consumer
# against it with CMAKE_PREFIX_PATH only, builds it and runs the MLP; then
# runs it from <prefix>/bin, where it must find the installed weights; and
# installs the engine's component alone.
foreach(_v BUILD_DIR SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "check_install.cmake: -D${_v}=... is required")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: ${what} failed (${rc})\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} --config ${CONFIG})

# The package is complete and holds no test code.
foreach(_f lib/cmake/sagan/saganConfig.cmake lib/cmake/sagan/saganConfigVersion.cmake
           lib/cmake/sagan/saganTargets.cmake include/sagan/core/tensor.h include/sagan/core/ops.h
           include/sagan/kernels/cuda/settings.h include/sagan/core/kernels.def include/sagan/models/quality/evaluate.h
           share/sagan/fmnist_cnn.safetensors)
  if(NOT EXISTS ${prefix}/${_f})
    message(FATAL_ERROR "install_consumer: ${_f} was not installed")
  endif()
endforeach()
if(EXISTS ${prefix}/include/sagan/tests)
  message(FATAL_ERROR "install_consumer: the tests/ folder must not be installed")
endif()

# Eigen and nlohmann_json are compiled into libsagan.a and appear in no
# installed header: a consumer must configure without them.
set(_configure ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${build} -DCMAKE_BUILD_TYPE=${CONFIG}
  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_PACKAGE_PREFER_CONFIG=ON
  -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=ON -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON)
if(CXX_COMPILER)
  list(APPEND _configure -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
# A sanitizer build's library needs its runtime in the consumer too.
if(CXX_FLAGS)
  list(APPEND _configure "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()
if(LINKER_FLAGS)
  list(APPEND _configure "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}")
endif()
run("configuring the consumer" ${_configure})
run("building the consumer" ${CMAKE_COMMAND} --build ${build} --config ${CONFIG} --parallel 2)

set(exe ${build}/sagan_consumer_mlp)
if(EXISTS ${build}/${CONFIG}/sagan_consumer_mlp)
  set(exe ${build}/${CONFIG}/sagan_consumer_mlp)
endif()
run("running the consumer" ${exe})
message(STATUS "${last_output}")
if(NOT last_output MATCHES "ok: loss")
  message(FATAL_ERROR "install_consumer: unexpected output\n${last_output}")
endif()

# A program in <prefix>/bin finds the weights installed beside it by itself,
# not the build machine's source tree (which is there, on this machine).
file(COPY ${exe} DESTINATION ${prefix}/bin)
run("running the consumer from ${prefix}/bin" ${prefix}/bin/sagan_consumer_mlp --weights-path)
string(STRIP "${last_output}" _found)
file(REAL_PATH ${prefix} _real_prefix)  # the program sees its resolved path
if(NOT _found STREQUAL "${_real_prefix}/share/sagan/fmnist_cnn.safetensors")
  message(FATAL_ERROR "install_consumer: a program in ${prefix}/bin looks for the Fashion-MNIST weights at "
                      "${_found}, not at ${_real_prefix}/share/sagan/fmnist_cnn.safetensors")
endif()

# The engine's component alone: library, headers, package and data, no tools.
set(engine_only ${WORK_DIR}/engine_only)
run("cmake --install --component engine" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${engine_only}
    --config ${CONFIG} --component engine)
foreach(_f lib/cmake/sagan/saganConfig.cmake include/sagan/core/tensor.h share/sagan/fmnist_cnn.safetensors)
  if(NOT EXISTS ${engine_only}/${_f})
    message(FATAL_ERROR "install_consumer: --component engine did not install ${_f}")
  endif()
endforeach()
if(EXISTS ${engine_only}/bin)
  message(FATAL_ERROR "install_consumer: --component engine installed programs (${engine_only}/bin)")
endif()
