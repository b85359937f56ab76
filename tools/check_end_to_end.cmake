# cli_end_to_end (tools/CMakeLists.txt): the tools chained as a user would,
# on a tiny Fashion-MNIST model: sagan-train (with FD and --resize pad; then
# --resume with options, one refused, two applied), sagan-eval (--json; its
# real images padded as the run's), the README's command for one step (ETA
# first; the cpu preset without a GPU), sagan-class-diversity, sagan-sample and sagan-attention on its checkpoint; checks exit codes, the
# files written and the JSON report's fields.
foreach(_v TRAIN EVAL SAMPLE ATTENTION DIVERSITY TRAIN_CLASSIFIER WORK_DIR)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "check_end_to_end.cmake: -D${_v}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(run ${WORK_DIR}/run)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cli_end_to_end: ${what} failed (exit ${rc})\n${out}\n${err}")
  endif()
  set(last_output "${out}${err}" PARENT_SCOPE)
endfunction()

function(expect_file path)
  if(NOT EXISTS ${path})
    message(FATAL_ERROR "cli_end_to_end: ${path} was not written")
  endif()
endfunction()

# A command that must exit 1 with `expect` before any work (no "layer" header of sagan-attention).
function(refused expect)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT "${out}${err}" MATCHES "${expect}" OR "${out}" MATCHES "layer")
    message(FATAL_ERROR "cli_end_to_end: expected exit 1 and '${expect}' before any work, got exit ${rc}:\n${out}${err}")
  endif()
endfunction()

run("sagan-train" ${TRAIN} --ch 4 --z-dim 8 --batch-size 4 --steps 4 --log-every 2 --fd-every 2 --fd-samples 32
    --sample-every 4 --checkpoint-every 4 --resize pad --device cpu --run-dir ${run} --quiet)
expect_file(${run}/checkpoints/step_00000004.safetensors)
expect_file(${run}/samples/step_00000004.png)
expect_file(${run}/fd_reference.safetensors)
# The engine's warnings name the tool, as its other messages do.
run("sagan-train warning" ${TRAIN} --ch 4 --z-dim 8 --batch-size 4 --steps 1 --log-every 1 --fd-every 1
    --fd-samples 32 --device cpu --run-dir ${WORK_DIR}/warned)
if(NOT last_output MATCHES "\nsagan-train: warning: --fd-samples: 32 samples")
  message(FATAL_ERROR "cli_end_to_end: the engine's warning does not name sagan-train:\n${last_output}")
endif()
file(STRINGS ${run}/metrics.csv csv)
list(GET csv 0 header)
list(GET csv 2 row2)
if(NOT header MATCHES ",fd," OR NOT row2 MATCHES "^4,")
  message(FATAL_ERROR "cli_end_to_end: metrics.csv lacks the fd column or the step-4 row:\n${header}\n${row2}")
endif()

# --resume with options: a new architecture is refused, naming the option;
# more steps and a new learning rate are applied and logged.
execute_process(COMMAND ${TRAIN} --resume ${run} --ch 8 --quiet RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "--ch: 8 given with --resume, but the run has model.ch = 4")
  message(FATAL_ERROR "cli_end_to_end: --resume --ch 8 was not refused (exit ${rc}):\n${out}${err}")
endif()
run("sagan-train --resume" ${TRAIN} --resume ${run} --steps 6 --lr-d 1e-4 --quiet)
expect_file(${run}/checkpoints/step_00000006.safetensors)
file(READ ${run}/config.json resumed)
string(JSON lr_d GET "${resumed}" lr_d)
string(JSON steps GET "${resumed}" steps)
file(READ ${run}/config_changes.log changes)
if(NOT lr_d EQUAL 0.0001 OR NOT steps EQUAL 6 OR NOT changes MATCHES "^step 4: steps 4 -> 6 \\(--steps\\); lr_d 0.0004 -> 0.0001 \\(--lr-d\\)")
  message(FATAL_ERROR "cli_end_to_end: --resume --steps 6 --lr-d 1e-4 not applied: lr_d ${lr_d}, steps ${steps}\n${changes}")
endif()

run("sagan-eval" ${EVAL} ${run} -n 200 --num-real 200 --device cpu --json ${WORK_DIR}/eval.json --quiet
    --save-stats ${WORK_DIR}/gen_stats.safetensors)
if(NOT last_output MATCHES "FID +[0-9]")
  message(FATAL_ERROR "cli_end_to_end: sagan-eval printed no FID:\n${last_output}")
endif()
file(READ ${WORK_DIR}/eval.json report)
foreach(key fid kid is precision_recall)
  string(JSON kind ERROR_VARIABLE missing TYPE "${report}" ${key})
  if(missing OR NOT kind STREQUAL "OBJECT")
    message(FATAL_ERROR "cli_end_to_end: eval.json has no '${key}' object:\n${report}")
  endif()
endforeach()
# The real images took the run's geometry: 28x28 padded to 32x32 (--resize pad).
string(JSON reference GET "${report}" reference description)
if(NOT reference MATCHES "1x32x32 \\(pad up\\)")
  message(FATAL_ERROR "cli_end_to_end: sagan-eval's real images did not follow the run's --resize pad: ${reference}")
endif()
string(JSON fid GET "${report}" fid value)
if(NOT fid GREATER 0)
  message(FATAL_ERROR "cli_end_to_end: FID of an untrained generator should be positive, got ${fid}")
endif()

# Saved statistics record the image geometry: a folder of the run's 32x32
# samples brought to 16x16 is refused against them, before any embedding;
# at their own size they compare. Three images are too few for
# precision/recall (k = 3): skipped with a note, the other metrics kept.
run("sagan-sample --separate" ${SAMPLE} ${run} -n 3 --device cpu -o ${WORK_DIR}/three.png --separate ${WORK_DIR}/three)
# Into the same folder again: refused (the two sets would mix), nothing written.
execute_process(COMMAND ${SAMPLE} ${run} -n 2 --device cpu -o ${WORK_DIR}/again.png --separate ${WORK_DIR}/three
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "--separate [^\n]*three: already holds samples" OR EXISTS ${WORK_DIR}/again.png)
  message(FATAL_ERROR "cli_end_to_end: a second --separate into the same folder was not refused (exit ${rc}):\n${err}")
endif()
# Samples deeper down count too (sagan-eval --folder reads subfolders).
file(MAKE_DIRECTORY ${WORK_DIR}/above)
file(COPY ${WORK_DIR}/three DESTINATION ${WORK_DIR}/above)
refused("--separate [^\n]*above: already holds samples [(][^\n]*three/0000[0-2]_class"
        ${SAMPLE} ${run} -n 2 --device cpu -o ${WORK_DIR}/again.png --separate ${WORK_DIR}/above)
# The grid inside the folder of samples (image 0 would overwrite it, or it
# would mix with them), or the checkpoint read as -o: refused up front.
refused("-o [^\n]*inside --separate" ${SAMPLE} ${run} -n 2 --device cpu -o ${WORK_DIR}/sep/grid.png
        --separate ${WORK_DIR}/sep/)
file(COPY_FILE ${run}/checkpoints/step_00000004.safetensors ${WORK_DIR}/ckpt.png)
file(SHA256 ${WORK_DIR}/ckpt.png _ckpt_sha)
refused("-o [^\n]*ckpt.png: that is the checkpoint" ${SAMPLE} ${WORK_DIR}/ckpt.png -n 2 --device cpu
        -o ${WORK_DIR}/ckpt.png)
file(SHA256 ${WORK_DIR}/ckpt.png _ckpt_sha_after)
# A call refused after its checks (a class the model lacks) leaves no folder.
refused("--classes" ${SAMPLE} ${run} -n 2 --classes 99 --device cpu -o ${WORK_DIR}/c.png --separate ${WORK_DIR}/new/sep)
# (CMake drops an empty argument: a shell passes it.)
refused("--separate: an empty path" sh -c "\"$0\" \"$1\" -n 2 --device cpu -o \"$2\" --separate ''" ${SAMPLE} ${run}
        ${WORK_DIR}/c.png)
if(NOT _ckpt_sha STREQUAL _ckpt_sha_after OR EXISTS ${WORK_DIR}/sep OR EXISTS ${WORK_DIR}/new OR EXISTS ${WORK_DIR}/c.png)
  message(FATAL_ERROR "cli_end_to_end: a refused sagan-sample changed the checkpoint or left a folder or file")
endif()
execute_process(COMMAND ${EVAL} --folder ${WORK_DIR}/three --resolution 16 --ref-stats ${WORK_DIR}/gen_stats.safetensors
                        --features fmnist --channels 1 --device cpu --quiet RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "made from 32x32 images, but this run's are 16x16")
  message(FATAL_ERROR "cli_end_to_end: --ref-stats of 32x32 images accepted for 16x16 ones (exit ${rc}):\n${out}${err}")
endif()
run("sagan-eval --ref-stats" ${EVAL} --folder ${WORK_DIR}/three --resolution 32 --ref-stats ${WORK_DIR}/gen_stats.safetensors
    --features fmnist --channels 1 --device cpu --quiet)
if(NOT last_output MATCHES "precision/recall: skipped, k = 3 needs more than 3 samples" OR NOT last_output MATCHES "FID +[0-9]")
  message(FATAL_ERROR "cli_end_to_end: 3 images: expected FID and a skipped precision/recall:\n${last_output}")
endif()

# A folder evaluated without a checkpoint sets the geometry as a generator
# does: the test split's 28x28 images are brought to the samples' 32x32
# (not left at 28x28) in the samples' one channel; the saved statistics
# record 32, so another size is refused against them.
run("sagan-eval --folder vs a data set" ${EVAL} --folder ${WORK_DIR}/three --dataset fashion-mnist --split test
    --num-real 20 --device cpu --quiet --json ${WORK_DIR}/folder.json --save-stats ${WORK_DIR}/folder_stats.safetensors)
file(READ ${WORK_DIR}/folder.json report)
string(JSON reference GET "${report}" reference description)
if(NOT reference MATCHES "1x32x32 \\(bilinear up\\)")
  message(FATAL_ERROR "cli_end_to_end: the reference was not brought to the folder's 32x32 gray images: ${reference}")
endif()
execute_process(COMMAND ${EVAL} --folder ${WORK_DIR}/three --resolution 16 --ref-stats ${WORK_DIR}/folder_stats.safetensors
                        --device cpu --quiet RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "made from 32x32 images, but this run's are 16x16")
  message(FATAL_ERROR "cli_end_to_end: a folder's 32x32 statistics accepted for 16x16 images (exit ${rc}):\n${out}${err}")
endif()
# ... and real images grown another way than the run's (its --resize pad):
# refused, whatever --resize says (it grows a data set, not the generator's
# images). The cache keeps the bilinear reference of an evaluation as a
# statistics file.
run("sagan-eval --cache, bilinear" ${EVAL} ${run} --resize bilinear -n 20 --metrics fid --cache ${WORK_DIR}/bilinear_cache
    --device cpu --quiet)
file(GLOB bilinear_stats ${WORK_DIR}/bilinear_cache/*.safetensors)
execute_process(COMMAND ${EVAL} ${run} --ref-stats ${bilinear_stats} --device cpu --quiet
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "grown by 'bilinear', but this run's by 'pad' \\(the run's --resize\\)")
  message(FATAL_ERROR "cli_end_to_end: statistics of bilinear images accepted for a padded run (exit ${rc}):\n${out}${err}")
endif()
# A reference data set that cannot be read stops the call before the
# generator's images are embedded, and before --save-stats is written.
refused("cifar10: /nonexistent/data_batch_1.bin not found" ${EVAL} ${run} --dataset cifar10 --data /nonexistent
        --save-stats ${WORK_DIR}/early.safetensors --device cpu --quiet)
# Options the evaluation would ignore are refused; two outputs may not be one file.
refused("--inception-weights: this evaluation uses fmnist features" ${EVAL} --folder ${WORK_DIR}/three --ref-folder
        ${WORK_DIR}/three --inception-weights ${run}/checkpoints/step_00000004.safetensors --device cpu --quiet)
refused("--split picks the reference data set's images; not with --ref-folder" ${EVAL} --folder ${WORK_DIR}/three
        --ref-folder ${WORK_DIR}/three --split test --device cpu --quiet)
refused("--json same and --save-stats ./same: the same file" sh -c
        "cd \"$0\" && \"$1\" \"$2\" --json same --save-stats ./same --device cpu --quiet" ${WORK_DIR} ${EVAL} ${run})
if(EXISTS ${WORK_DIR}/early.safetensors OR EXISTS ${WORK_DIR}/same)
  message(FATAL_ERROR "cli_end_to_end: a refused sagan-eval wrote a file")
endif()
refused("--resize grows the reference's real images" ${EVAL} ${run} --resize bilinear --ref-stats ${bilinear_stats}
        --device cpu --quiet)
# A sample grid is not square: no data set can be brought to it, so say which option fixes that.
file(MAKE_DIRECTORY ${WORK_DIR}/grid)
file(COPY_FILE ${WORK_DIR}/three.png ${WORK_DIR}/grid/three.png)
execute_process(COMMAND ${EVAL} --folder ${WORK_DIR}/grid --dataset fashion-mnist --device cpu --quiet
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "holds [0-9]+x[0-9]+ images, .*pass --resolution N")
  message(FATAL_ERROR "cli_end_to_end: a folder of non-square images compared with a data set (exit ${rc}):\n${out}${err}")
endif()
# Gray folders default to one channel and so to the Fashion-MNIST features
# (no --channels, no --inception-weights needed).
run("sagan-eval two gray folders" ${EVAL} --folder ${WORK_DIR}/three --ref-folder ${WORK_DIR}/three --device cpu --quiet)
if(NOT last_output MATCHES "features +fmnist")
  message(FATAL_ERROR "cli_end_to_end: gray folders did not get the fmnist features:\n${last_output}")
endif()

# sagan-class-diversity on the conditional run: a row per class, in the JSON
# too; ema-g-buffers mixes two sections of the checkpoint.
if(DIVERSITY)
  run("sagan-class-diversity" ${DIVERSITY} ${run} -n 12 --k 3 --weights ema-g-buffers --device cpu
      --json ${WORK_DIR}/diversity.json)
  file(READ ${WORK_DIR}/diversity.json diversity)
  string(JSON n_classes LENGTH "${diversity}" classes)
  string(JSON weights GET "${diversity}" weights)
  string(JSON n_real GET "${diversity}" classes 9 real_images)
  string(JSON n_fake GET "${diversity}" classes 9 fake_images)
  if(NOT n_classes EQUAL 10 OR NOT weights STREQUAL "ema-g-buffers" OR NOT last_output MATCHES "\n +9 +[0-9.]+"
     OR NOT n_real EQUAL 12 OR NOT n_fake EQUAL 12)
    message(FATAL_ERROR "cli_end_to_end: sagan-class-diversity gave ${n_classes} classes (${weights}), class 9 of "
                        "${n_real} real and ${n_fake} fake images:\n${last_output}")
  endif()
endif()

# The README's command (no options but a run directory and one step): the ETA
# comes before the first step; without a GPU it says so and takes the cpu
# preset, which config.json records.
run("sagan-train (defaults)" ${TRAIN} --steps 1 --run-dir ${WORK_DIR}/defaults)
set(first "${last_output}")
if(NOT first MATCHES "about [0-9.]+ s a step here[^\n]*: ETA [0-9]+:[0-9][0-9]:[0-9][0-9] for 1 steps\n.*step 1/1")
  message(FATAL_ERROR "cli_end_to_end: no ETA before the first step:\n${first}")
endif()
file(READ ${WORK_DIR}/defaults/config.json defaults)
string(JSON preset GET "${defaults}" preset)
string(JSON ch GET "${defaults}" model ch)
if(first MATCHES "no GPU found, so --preset cpu")
  if(NOT preset STREQUAL "cpu" OR NOT ch EQUAL 16)
    message(FATAL_ERROR "cli_end_to_end: the cpu preset was announced but config.json has preset '${preset}', ch ${ch}")
  endif()
elseif(NOT preset STREQUAL "" OR NOT ch EQUAL 64)
  message(FATAL_ERROR "cli_end_to_end: with a GPU the defaults hold, got preset '${preset}', ch ${ch}:\n${first}")
endif()
# --device cpu with no preset named takes the cpu preset too, GPU or not.
run("sagan-train --device cpu" ${TRAIN} --device cpu --steps 1 --run-dir ${WORK_DIR}/devcpu)
file(READ ${WORK_DIR}/devcpu/config.json devcpu)
string(JSON preset GET "${devcpu}" preset)
if(NOT last_output MATCHES "--device cpu, so --preset cpu" OR NOT preset STREQUAL "cpu")
  message(FATAL_ERROR "cli_end_to_end: --device cpu did not take the cpu preset (config.json: '${preset}'):\n${last_output}")
endif()

# A setting below float's range is logged (metrics.csv and TensorBoard), not the end of the run.
run("sagan-train --lr-g 1e-39" ${TRAIN} --ch 4 --z-dim 8 --batch-size 4 --steps 2 --log-every 1 --lr-g 1e-39
    --device cpu --run-dir ${WORK_DIR}/tiny_lr --quiet)
file(STRINGS ${WORK_DIR}/tiny_lr/metrics.csv tiny_lr_rows)
list(LENGTH tiny_lr_rows tiny_lr_count)
if(NOT tiny_lr_count EQUAL 3)
  message(FATAL_ERROR "cli_end_to_end: --lr-g 1e-39 did not log both steps:\n${tiny_lr_rows}")
endif()

# An output naming the checkpoint being read is refused (it would be replaced); sagan-sample below still reads it.
# Every tool that writes beside what it reads; a run directory stands for its newest checkpoint.
set(ckpt ${run}/checkpoints/step_00000006.safetensors)
file(SHA256 ${ckpt} ckpt_hash)
refused("--save-stats [^\n]*step_00000006.safetensors: that is the checkpoint" ${EVAL} ${run} -n 8 --num-real 8 --device cpu
        --save-stats ${ckpt})
refused("--json [^\n]*step_00000006.safetensors: that is the checkpoint" ${EVAL} ${run} -n 8 --num-real 8 --device cpu
        --json ${ckpt})
refused("--json [^\n]*step_00000006.safetensors: that is the checkpoint" ${DIVERSITY} ${run} --device cpu --json ${ckpt})
if(DEFINED EXPORT)
  refused("-o [^\n]*step_00000006.safetensors: that is the checkpoint" ${EXPORT} ${ckpt} -o ${ckpt})
endif()
file(SHA256 ${ckpt} ckpt_hash_after)
if(NOT ckpt_hash STREQUAL ckpt_hash_after)
  message(FATAL_ERROR "cli_end_to_end: a refused output changed the checkpoint it named")
endif()
# sagan-train-classifier -o naming its --init weights (refused before any data is read).
file(WRITE ${WORK_DIR}/init.safetensors "x")
refused("-o [^\n]*init.safetensors: that is --init" ${TRAIN_CLASSIFIER} --init ${WORK_DIR}/init.safetensors
        -o ${WORK_DIR}/init.safetensors)
file(READ ${WORK_DIR}/init.safetensors init_text)
if(NOT init_text STREQUAL "x")
  message(FATAL_ERROR "cli_end_to_end: a refused sagan-train-classifier -o changed its --init file")
endif()

run("sagan-sample" ${SAMPLE} ${run} -n 6 --classes 1,2 --device cpu -o ${WORK_DIR}/grid.png)
expect_file(${WORK_DIR}/grid.png)
run("sagan-attention" ${ATTENTION} ${run} -n 2 --auto 3 --device cpu -o ${WORK_DIR}/maps.png)
expect_file(${WORK_DIR}/maps.png)
# Bad sagan-attention options are refused naming the option, before any forward pass.
refused("--auto 1025: at most 1024 query points on a 32x32 image" ${ATTENTION} ${run} --auto 1025 -o ${WORK_DIR}/x.png)
refused("--image: [^\n]*missing.png" ${ATTENTION} ${run} --image ${WORK_DIR}/missing.png -o ${WORK_DIR}/x.png)
refused("--device: 'gpu' is not a device" ${ATTENTION} ${run} --device gpu -o ${WORK_DIR}/x.png)
if(EXISTS ${WORK_DIR}/x.png)
  message(FATAL_ERROR "cli_end_to_end: a refused sagan-attention wrote ${WORK_DIR}/x.png")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
