#!/usr/bin/env bash
# The end of a device run's stdout (run_device.sh calls it; also by hand on a
# run's scratch folder): what someone acts on without a second run. The
# least needed first, since a reply may keep only the end:
#   - the first WARN messages (what the libraries did that tests only report)
#   - condensed benchmark rows (attention ms per implementation, spectral-norm
#     us, train step s/iter, Inception images/s) and sagan-train's first steps,
#     cuda beside cpu
#   - the sanitizers' first errors: kernel, file:line, block, thread
#   - the first two Catch2 failures of each step, with their expansions
#   - header: GPU, driver, versions compiled against and loaded, which binaries ran
#   - one line per step: status, exit code, seconds, test totals or a note
#   - the result
#   benchmarks/device/summarize.sh WORK OUT [FAILED]
# WORK: the run's scratch folder (logs/header.txt, logs/steps.txt,
# logs/<step>.log, runs/<device>/metrics.csv); OUT: its bench.txt.
set -u -o pipefail
WORK=${1:?usage: summarize.sh WORK OUT [FAILED]}
OUT=${2:?usage: summarize.sh WORK OUT [FAILED]}
FAILED=${3:-0}
LOGS=$WORK/logs

# Step logs in the order the steps ran.
logs=()
while read -r name _; do
  [[ -f $LOGS/$name.log ]] && logs+=("$LOGS/$name.log")
done < <(cat "$LOGS/steps.txt" 2>/dev/null)

failures() {
  # Catch2's console reporter: a test case header between two lines of 79
  # dashes (name, then sections), then "file:line: FAILED:" and, up to the next
  # blank line, the expression, "with expansion:", values, messages.
  if ((${#logs[@]})) && grep -qE 'FAILED:$' "${logs[@]}"; then
    echo "---------------- first failures (Catch2, two per step)"
    for f in "${logs[@]}"; do
      awk -v step="$(basename "$f" .log)" '
        /^----------------------------------------/ && length($0) >= 70 {
          if (inhead == 0) { inhead = 1; name = "" } else inhead = 0
          next }
        inhead == 1 { sub(/^ +/, ""); name = name (name ? " / " : "") $0; next }
        /FAILED:$/ && shown < 2 { print "[" step "] " name; print "  " $0; grab = 1; shown++; n = 0; next }
        grab == 1 { if ($0 == "" || ++n > 14) { grab = 0; next } print "  " $0 }
      ' "$f"
    done
  fi
}

warnings() {
  # Catch2's WARN lines ("file:line: warning:", then the message), printed
  # for passing tests too: what the libraries did that the tests only report
  # (operand rounding under TF32/bf16, a TF32 kernel not picked).
  if ((${#logs[@]})) && grep -qE ': warning:$' "${logs[@]}"; then
    echo "---------------- warnings (Catch2 WARN, six per step)"
    for f in "${logs[@]}"; do
      awk -v step="$(basename "$f" .log)" '
        /: warning:$/ && shown < 6 { grab = 1; shown++; next }
        grab == 1 { grab = 0; if ($0 == "") next; sub(/^ +/, ""); print "[" step "] " substr($0, 1, 150) }
      ' "$f"
    done
  fi
}

sanitizers() {
  # compute-sanitizer: an error line ("Invalid __global__ write ...", "Error:
  # Race reported ...", "Potential RAW hazard ... in block (x,y,z)") and the
  # indented lines under it ("at kernel+0x in file.cu:line", "by thread (..) in
  # block (..)", the hazard's two threads), up to the host backtrace.
  sani=()
  for name in memcheck racecheck; do [[ -f $LOGS/$name.log ]] && sani+=("$LOGS/$name.log"); done
  if ((${#sani[@]})) && grep -qE '^========= (Invalid|Error|ERROR:|Program hit|Warning:|Uninitialized|Barrier|Race)' "${sani[@]}"; then
    echo "---------------- sanitizers: first errors"
    for f in "${sani[@]}"; do
      awk -v step="$(basename "$f" .log)" '
        /^========= (Invalid|Error|ERROR:|Program hit|Warning:|Uninitialized|Barrier|Race)/ && !/SUMMARY/ && shown < 2 {
          line = substr($0, 11); gsub(/\([^()]*\)\+0x/, "(...)+0x", line)
          print "[" step "] " line; grab = 1; shown++; n = 0; next }
        grab == 1 { if ($0 !~ /^=========     / || $0 ~ /Saved host backtrace/ || ++n > 5) { grab = 0; next }
                    line = substr($0, 15); gsub(/\([^()]*\)\+0x/, "(...)+0x", line); print "    " line }
      ' "$f"
    done
  fi
}

benchmarks() {
  bench=$OUT/bench.txt
  if [[ -s $bench ]] && grep -qE '^SAGAN-|^(G|D|G\+D) ' "$bench"; then
    echo "---------------- attention, median ms per call (bench_attention, torch_attention)"
    # One table per precision: the engine's kernels of that precision beside
    # PyTorch's rows of it (torch_attention.py marks them @fp32, @tf32, @bf16).
    # torch_attention.py float32 on the memory-efficient SDPA backend is 3xTF32
    # whatever allow_tf32 (sm80+): its "sdpa backend ... tf32: default X/..."
    # lines say whether torch:sdpa@tf32 ran that backend too.
    awk '
      NF >= 17 && ($9 == "fwd" || $9 == "fwdbwd") && $10 ~ /^[0-9.]+$/ {
        key = $1 " " $2 " B" $3 " " $9; if (!(key in seen)) { seen[key] = 1; keys[++nk] = key }
        t[key, $8] = $10 }
      $1 == "sdpa" && $2 == "backend" && $6 == "tf32:" { ntf++; if ($8 ~ /^efficient\//) neff++ }
      function table(title, impls, labels,   im, lab, n, i, k, hdr, line, any) {
        n = split(impls, im, " "); split(labels, lab, " ")
        any = 0
        for (k = 1; k <= nk; k++) for (i = 1; i <= n; i++) if ((keys[k], im[i]) in t) any = 1
        if (!any) return 0
        hdr = sprintf("%-24s", title)
        for (i = 1; i <= n; i++) hdr = hdr sprintf(" %9s", lab[i])
        print hdr
        for (k = 1; k <= nk; k++) {
          line = sprintf("%-24s", keys[k])
          for (i = 1; i <= n; i++) line = line sprintf(" %9s", ((keys[k], im[i]) in t) ? t[keys[k], im[i]] : "-")
          print line }
        return 1
      }
      END {
        table("fp32: shape pass",
              "fused-tiled fused-atomic fused-rowwarp fused-async engine:unfused engine:fused tc-fp32 engine:tc-fp32 torch:sdpa@fp32 torch:sdpa-eff@fp32 torch:eager@fp32",
              "tiled atomic rowwarp async eng:unf eng:fused tc eng:tc sdpa sdpa-eff eager")
        if (table("tf32: shape pass", "tc-tf32 engine:tc-tf32 torch:sdpa@tf32 torch:sdpa-eff@tf32 torch:eager@tf32",
                  "tc eng:tc sdpa sdpa-eff eager") && ntf > 0)
          printf "  note: torch sdpa-eff@tf32%s = the fp32 kernel (memory-efficient SDPA: 3xTF32, ignores allow_tf32)\n",
            neff == ntf ? " and sdpa@tf32" : (neff > 0 ? " (and sdpa@tf32 where its default is efficient)" : "")
        table("bf16: shape pass", "tc-bf16 engine:tc-bf16 torch:sdpa@bf16 torch:sdpa-eff@bf16 torch:eager@bf16",
              "tc eng:tc sdpa sdpa-eff eager")
      }' "$bench"
    grep -E '^sdpa backend' "$bench" | cut -c1-160 | head -18  # 6 shapes x 3 precisions at one batch
    grep -E ' failed' "$bench" | cut -c1-160 | head -8
    echo "---------------- spectral norm, one power iteration over all layers, median us"
    # Rows: set mats Mparams impl... [launches] time_us GB/s floor_us x_floor
    # (bench_spectral_norm has launches, torch_spectral_norm.py not); a failed
    # engine row ends "launches failed" and is left out. The time must be a
    # number; the columns after it may be nan/inf (a GPU without a datasheet
    # bandwidth).
    awk -v num='^[0-9]+([.][0-9]+)?$' -v numx='^(-?nan|-?inf|[0-9]+([.][0-9]+)?)$' '
      $1 ~ /^(G|D|G\+D)$/ && $2 ~ /^[0-9]+$/ && $3 ~ num && $NF != "failed" && NF >= 8 &&
      $(NF-3) ~ num && $(NF-2) ~ numx && $(NF-1) ~ numx && $NF ~ numx {
        last = ($(NF-4) ~ /^[0-9]+$/) ? NF - 5 : NF - 4; impl = $4
        for (i = 5; i <= last; i++) impl = impl " " $i
        row[$1] = row[$1] sprintf("; %s %s", impl, $(NF-3)) }
      END { split("G D G+D", s, " "); for (i = 1; i <= 3; i++) if (s[i] in row) print s[i] ":" substr(row[s[i]], 2) }' "$bench"
    echo "---------------- train step, s/iter: median, min, peak MiB"
    awk -F'\t' 'NF == 6 && $4 ~ /^[0-9.]+$/ { printf "%-20s %-18s %-7s %8s %8s %7s\n", $1, $2, $3, $4, $5, $6 }' "$bench"
  fi
  if [[ -s $bench ]] && grep -q '^sagan kernel profile' "$bench"; then
    echo "---------------- train step kernel profile (bench_train_step --profile): per iteration, longest first"
    awk '/^sagan kernel profile/ { on = 1; n = 0 } on && n < 18 { print substr($0, 1, 160); n++ } /^total/ { on = 0 }' "$bench"
  fi
  if [[ -s $bench ]] && grep -q '^inception-' "$bench"; then
    echo "---------------- FID Inception-v3 forward: device batch ms/batch images/s"
    awk -F'\t' '$1 ~ /^inception-/ && NF == 5 { printf "%-16s %-7s %5s %9s %9s\n", $1, $2, $3, $4, $5 }' "$bench"
  fi
}

training() {
  if ls "$WORK"/runs/*/metrics.csv >/dev/null 2>&1; then
    echo "---------------- sagan-train SAGAN-32, seed 0: device step loss_d loss_g d_real d_fake it/s"
    for dev in cpu cuda; do
      [[ -f $WORK/runs/$dev/metrics.csv ]] || continue
      awk -F, -v dev="$dev" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        $1 <= 5 || $1 % 50 == 0 {
          printf "  %-4s %4s %10.5f %10.5f %9.4f %9.4f %7.2f\n", dev, $c["step"], $c["loss_d"], $c["loss_g"], $c["d_real"],
            $c["d_fake"], $c["it_per_s"] }' "$WORK/runs/$dev/metrics.csv"
    done
    # Two processes, same seed, deterministic mode (the default): the one-rank
    # NCCL job's logged values (shortest round-trip text, so equal text is
    # equal bits) must equal the plain CUDA run's, step for step. A difference
    # means cuDNN or a kernel chose differently in the second process, or the
    # one-rank all-reduce changed a gradient.
    if [[ -f $WORK/runs/cuda/metrics.csv && -f $WORK/runs/nccl/metrics.csv ]]; then
      awk -F, 'FNR == 1 { for (i = 1; i <= NF; i++) c[i] = $i; next }
        FILENAME == ARGV[1] { for (i = 1; i <= NF; i++) if (c[i] ~ /^(loss_d|loss_g|d_real|d_fake)$/) v[$1, c[i]] = $i; next }
        !(($1, "loss_d") in v) { next }  # a step the cuda run did not reach (cut short): nothing to compare
      { n++; for (i = 1; i <= NF; i++) if (c[i] ~ /^(loss_d|loss_g|d_real|d_fake)$/ && v[$1, c[i]] != $i && !bad) {
            bad = sprintf("first difference at step %s, %s: cuda %s, nccl %s", $1, c[i], v[$1, c[i]], $i) } }
        END { printf "  repeat across processes (cuda vs one-rank nccl, %d steps): %s\n", n,
                bad ? bad : "bitwise equal" }' "$WORK/runs/cuda/metrics.csv" "$WORK/runs/nccl/metrics.csv"
    fi
  fi
}

# The least needed first: the reply keeps only the end of the output, so the
# header, the step lines and the result come last.
echo "================ sagan device run: summary ================"
warnings
benchmarks
training
sanitizers
failures
echo "---------------- run"
cat "$LOGS/header.txt" 2>/dev/null
printf '%-20s %-8s %4s %5s  %s\n' step status exit secs "totals / notes"
cat "$LOGS/steps.txt" 2>/dev/null

echo "---------------- files in \$OUT ($OUT): $(cd "$OUT" && find . -maxdepth 1 -type f ! -name '*.tmp' -printf '%P\n' | sort | paste -sd' ' -)"
# run_device.sh writes this before and after each step: a summary left with
# a RUNNING step is that of a call killed from outside.
running=$(awk '$2 == "RUNNING" { print $1 }' "$LOGS/steps.txt" 2>/dev/null)
so_far=${running:+ so far (the run did not finish: killed during $running)}
# Steps the budget cut or left out did not fail, but did not run whole either.
short=$(awk '$2 == "CUT" || $2 == "SKIP" { printf "%s%s", n++ ? ", " : "", $1 }' "$LOGS/steps.txt" 2>/dev/null)
short=${short:+; cut or not started for time: $short}
if ((FAILED)); then echo "RESULT: SOME STEPS FAILED$so_far$short"; else echo "RESULT: no step failed$so_far$short"; fi
