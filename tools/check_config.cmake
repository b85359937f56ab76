# cli_config (tools/CMakeLists.txt): sagan-train's config files as a user
# meets them: strict JSON and TOML (typos, wrong types, extensions, missing
# files refused with the file and the key), options overriding the file,
# presets under both, a written config reading back the same, and an
# unwritable run directory (--run-dir or a file's run_dir) found
# before any data is read. Every case runs; the failures are listed at the end.
foreach(_v TRAIN WORK_DIR)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "check_config.cmake: -D${_v}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(failures "")

# expect(NAME EXIT <0|1> [OUTPUT regex] COMMAND args...): exit code and output.
function(expect name)
  cmake_parse_arguments(E "" "EXIT;OUTPUT" "COMMAND" ${ARGN})
  execute_process(COMMAND ${E_COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  WORKING_DIRECTORY ${WORK_DIR})
  set(problem "")
  if(NOT rc STREQUAL E_EXIT)
    set(problem "exit ${rc}, expected ${E_EXIT}")
  elseif(DEFINED E_OUTPUT AND NOT "${out}${err}" MATCHES "${E_OUTPUT}")
    set(problem "output does not match '${E_OUTPUT}'")
  endif()
  if(problem)
    set(failures "${failures}\n  ${name}: ${problem}\n    ${out}${err}" PARENT_SCOPE)
  endif()
endfunction()

# expect_json(NAME FILE key... VALUE v): a value in a written config.json.
function(expect_json name file)
  cmake_parse_arguments(E "" "VALUE" "" ${ARGN})
  set(got "<missing file>")
  if(EXISTS ${file})
    file(READ ${file} text)
    string(JSON got ERROR_VARIABLE error GET "${text}" ${E_UNPARSED_ARGUMENTS})
  endif()
  if(NOT got STREQUAL E_VALUE)
    set(failures "${failures}\n  ${name}: ${E_UNPARSED_ARGUMENTS} is '${got}', expected '${E_VALUE}'" PARENT_SCOPE)
  endif()
endfunction()

function(write name text)
  file(WRITE ${WORK_DIR}/${name} "${text}")
endfunction()

# ---- unknown keys, wrong types, extensions, missing files: refused before
# anything else (the folder data set named after them does not exist)
set(STOP --dataset folder --data ${WORK_DIR}/no_such_data --run-dir ${WORK_DIR}/run --quiet)
write(typo.toml "batchsize_typo = 64\n")
expect(toml_typo EXIT 1 OUTPUT "typo.toml: batchsize_typo: unknown key \\(did you mean batch_size\\?\\)"
       COMMAND ${TRAIN} --config typo.toml ${STOP})
write(typo.json "{\"model\": {\"chh\": 4}}")
expect(json_typo EXIT 1 OUTPUT "typo.json: model.chh: unknown key \\(did you mean model.ch\\?\\)"
       COMMAND ${TRAIN} --config typo.json ${STOP})
write(type.json "{\"batch_size\": \"64\"}")
expect(json_type EXIT 1 OUTPUT "type.json: batch_size: expected an integer, got string \"64\""
       COMMAND ${TRAIN} --config type.json ${STOP})
write(type.toml "[model]\nch = 4.5\n")
expect(toml_type EXIT 1 OUTPUT "type.toml: model.ch: expected an integer, got float 4.5"
       COMMAND ${TRAIN} --config type.toml ${STOP})
write(neg.JSON "{\"batch_size\": -4}")
expect(upper_case_json_negative EXIT 1 OUTPUT "neg.JSON: batch_size: must be positive, got -4"
       COMMAND ${TRAIN} --config neg.JSON ${STOP})
write(neg.toml "fd_every = 15\n")
# (Without a GPU the file's settings lie over the cpu preset, whose --log-every is 25.)
expect(toml_cross_check EXIT 1 OUTPUT "neg.toml: fd_every: 15 is not a multiple of --log-every( of the cpu preset)? \\((10|25)\\)"
       COMMAND ${TRAIN} --config neg.toml ${STOP})
write(c.yaml "batch_size: 4\n")
expect(unknown_extension EXIT 1 OUTPUT "c.yaml: a config file must end in .json or .toml, not '.yaml'"
       COMMAND ${TRAIN} --config c.yaml ${STOP})
expect(missing_file EXIT 1 OUTPUT "missing.toml: no such config file"
       COMMAND ${TRAIN} --config missing.toml ${STOP})
expect(option_type EXIT 1 OUTPUT "--batch-size: expected an integer in .-2\\^63, 2\\^63\\), got 'abc'"
       COMMAND ${TRAIN} --batch-size abc ${STOP})

# ---- empty paths are refused, not taken for the option left out (a new run)
# (through sh: a CMake list cannot carry an empty argument)
expect(empty_resume EXIT 1 OUTPUT "--resume: an empty path" COMMAND sh -c "\"$0\" --resume '' --quiet" ${TRAIN})
expect(empty_config EXIT 1 OUTPUT "--config: an empty path" COMMAND sh -c "\"$0\" --config '' --quiet" ${TRAIN})
# and settings whose default location is "" (the wrong data, a new folder)
expect(empty_data EXIT 1 OUTPUT "--data: an empty path" COMMAND sh -c "\"$0\" --data '' --quiet" ${TRAIN})
expect(empty_run_dir EXIT 1 OUTPUT "--run-dir: an empty path" COMMAND sh -c "\"$0\" --run-dir '' --quiet" ${TRAIN})
expect(empty_fd_weights EXIT 1 OUTPUT "--fd-weights: an empty path"
       COMMAND sh -c "\"$0\" --fd-weights '' --quiet" ${TRAIN})
# (--preset '' is no preset: taken, not refused)
expect(empty_preset EXIT 0 OUTPUT "wrote" COMMAND sh -c "\"$0\" --preset '' --write-config \"$1\"" ${TRAIN}
       ${WORK_DIR}/empty_preset.toml)
# ---- a failed start removes the folders it made for --run-dir, not one that was there
file(MAKE_DIRECTORY ${WORK_DIR}/was_there)
expect(made_parents EXIT 1 COMMAND ${TRAIN} --run-dir ${WORK_DIR}/was_there/made/deep --dataset folder
       --data ${WORK_DIR}/no_such_data --quiet)
if(EXISTS ${WORK_DIR}/was_there/made OR NOT IS_DIRECTORY ${WORK_DIR}/was_there)
  set(failures "${failures}\n  made_parents: was_there/made left behind, or was_there removed")
endif()
# ---- on the CPU a file that names no preset lies over the cpu preset
write(steps_only.toml "steps = 7\n")
expect(file_over_cpu_preset EXIT 0 COMMAND ${TRAIN} --config steps_only.toml --device cpu --write-config steps_only.json)
expect_json(file_over_cpu_preset_batch ${WORK_DIR}/steps_only.json batch_size VALUE 32)
expect_json(file_over_cpu_preset_steps ${WORK_DIR}/steps_only.json steps VALUE 7)
expect_json(file_over_cpu_preset_name ${WORK_DIR}/steps_only.json preset VALUE cpu)

# ---- preset = "" (a GPU machine's file) asks for the defaults, on the CPU too, and says so
write(no_preset.toml "preset = ''\nsteps = 9\n")
expect(empty_preset_file EXIT 0 OUTPUT "no_preset.toml: preset \"\" asks for the defaults"
       COMMAND ${TRAIN} --config no_preset.toml --device cpu --write-config no_preset.json)
expect_json(empty_preset_file_batch ${WORK_DIR}/no_preset.json batch_size VALUE 64)
# ---- a preset beside a file that sets everything it gives is said to change nothing
expect(preset_changes_nothing EXIT 0 OUTPUT "--preset sagan128: steps_only.json and the options set each setting the preset gives"
       COMMAND ${TRAIN} --config steps_only.json --preset sagan128 --write-config preset_nothing.toml)

# ---- --write-config over the --config file it reads is refused (its comments would go)
expect(write_over_config EXIT 1 OUTPUT "--write-config steps_only.toml: that is --config"
       COMMAND ${TRAIN} --config steps_only.toml --write-config steps_only.toml)

# ---- the command line overrides the file
write(base.toml "batch_size = 8\nsteps = 3\n[model]\nch = 16\n")
expect(override EXIT 0 COMMAND ${TRAIN} --config base.toml --batch-size 4 --write-config override.json)
expect_json(override_option ${WORK_DIR}/override.json batch_size VALUE 4)
expect_json(override_file ${WORK_DIR}/override.json steps VALUE 3)
expect_json(override_file_model ${WORK_DIR}/override.json model ch VALUE 16)

# ---- presets: defaults under the file and the options; config.json names the preset
expect(preset_option EXIT 0 COMMAND ${TRAIN} --preset cpu --batch-size 8 --write-config preset.json)
expect_json(preset_name ${WORK_DIR}/preset.json preset VALUE cpu)
expect_json(preset_value ${WORK_DIR}/preset.json model ch VALUE 16)
expect_json(preset_overridden ${WORK_DIR}/preset.json batch_size VALUE 8)
write(preset.toml "preset = \"cpu\"\nsteps = 7\n")
expect(preset_file EXIT 0 COMMAND ${TRAIN} --config preset.toml --write-config preset_file.json)
expect_json(preset_file_value ${WORK_DIR}/preset_file.json ema_start VALUE 500)
expect_json(preset_file_overridden ${WORK_DIR}/preset_file.json steps VALUE 7)
expect(preset_option_over_file EXIT 0 COMMAND ${TRAIN} --config preset.toml --preset sagan32 --write-config p32.json)
expect_json(preset_option_over_file_value ${WORK_DIR}/p32.json model ch VALUE 64)
expect_json(preset_option_over_file_steps ${WORK_DIR}/p32.json steps VALUE 7)
# ... and what a plain run would take on the CPU: --write-config writes the
# cpu preset's settings there, as the same command without it would train
expect(preset_fallback EXIT 0 OUTPUT "--device cpu, so --preset cpu"
       COMMAND ${TRAIN} --device cpu --steps 5 --write-config fallback.json)
expect_json(preset_fallback_name ${WORK_DIR}/fallback.json preset VALUE cpu)
expect_json(preset_fallback_value ${WORK_DIR}/fallback.json model ch VALUE 16)
expect_json(preset_fallback_steps ${WORK_DIR}/fallback.json steps VALUE 5)
expect(preset_unknown EXIT 1 OUTPUT "--preset: 'fast' is not one of cpu, sagan32, sagan128"
       COMMAND ${TRAIN} --preset fast ${STOP})
write(preset_bad.toml "preset = \"fast\"\n")
expect(preset_unknown_file EXIT 1 OUTPUT "preset_bad.toml: preset: 'fast' is not one of cpu, sagan32, sagan128"
       COMMAND ${TRAIN} --config preset_bad.toml ${STOP})

# ---- round trip: TOML -> JSON -> TOML gives the same file
expect(write_toml EXIT 0 COMMAND ${TRAIN} --lr-d 0.5 --g-attn 8 16 --d-attn 0 --unpooled-attention --hflip
       --seed 9 --data "dir with 'quotes' and \\\\" --write-config a.toml)
expect(toml_to_json EXIT 0 COMMAND ${TRAIN} --config a.toml --write-config b.json)
expect(json_to_toml EXIT 0 COMMAND ${TRAIN} --config b.json --write-config c.toml)
set(a "<missing>")
set(c "<missing c.toml>")
if(EXISTS ${WORK_DIR}/a.toml AND EXISTS ${WORK_DIR}/c.toml)
  file(READ ${WORK_DIR}/a.toml a)
  file(READ ${WORK_DIR}/c.toml c)
endif()
if(NOT a STREQUAL c)
  set(failures "${failures}\n  round_trip: a.toml and c.toml differ:\n${a}\n---\n${c}")
endif()
expect_json(round_trip_lr ${WORK_DIR}/b.json lr_d VALUE 0.5)
expect_json(round_trip_pooled ${WORK_DIR}/b.json model pooled_attention VALUE OFF)

# ---- an unwritable run directory, before the (missing) data is read
write(not_a_dir "")
expect(unwritable_run_dir EXIT 1 OUTPUT "--run-dir .*not_a_dir/run: cannot create the directory"
       COMMAND ${TRAIN} --run-dir ${WORK_DIR}/not_a_dir/run --dataset folder --data ${WORK_DIR}/no_such_data --quiet)
# ... named by the file and key it came from, not by --run-dir
write(run_dir.toml "run_dir = \"${WORK_DIR}/not_a_dir/run\"\n")
expect(unwritable_run_dir_file EXIT 1 OUTPUT "run_dir.toml: run_dir .*not_a_dir/run: cannot create the directory"
       COMMAND ${TRAIN} --config run_dir.toml --dataset folder --data ${WORK_DIR}/no_such_data --quiet)

if(failures)
  message(FATAL_ERROR "cli_config failed:${failures}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
