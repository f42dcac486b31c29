#!/usr/bin/env bash
# The prepared GPU check (issue 20): one command, at most about 8 minutes, no network. Run from the repository
# root on a machine whose python3 already has cupy, numba, h5py, click, matplotlib, scipy and pytest:
#     OUT=/some/dir bash bench/gpu_check.sh
# Every step has its own time limit and the script goes on past a failure; every log and JSON lands in $OUT,
# and $OUT/summary.txt lists each step with its exit code and seconds. Without a GPU the cupy steps fail fast
# (their logs say why) and the CPU steps still run: that is how the script is checked on a CPU machine.
set -u
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
REPO="$(pwd)"
PY="${PYTHON:-python3}"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $OUT/NAME.log, never stop the script
  local name="$1" limit="$2"; shift 2
  local started; started=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  printf '%-24s rc=%-4s %4ss  %s\n' "$name" "$rc" "$(( $(date +%s) - started ))" "$*" | tee -a "$SUMMARY"
}

# calosim from this working tree, without dependencies or build isolation (no network); where pip cannot build
# it (no setuptools / wheel), the sources laid out as installed, on PYTHONPATH
step install 120 "$PY" -m pip install --no-deps --no-build-isolation --quiet -e .
if ! "$PY" -c "import calosim.cli.main" > /dev/null 2>&1; then
  SITE="$OUT/site"
  rm -rf "$SITE" && mkdir -p "$SITE"
  cp -r calosim "$SITE/calosim" && cp -r backends "$SITE/calosim/backends" && cp -r kernels "$SITE/calosim/kernels" \
    && cp -r cli "$SITE/calosim/cli"
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  echo "install: pip failed, using the source layout in $SITE" | tee -a "$SUMMARY"
fi
cd "$OUT"  # from here on the repository's own calosim/ (without backends/, cli/) must not shadow the installed one
step info 60 "$PY" -m calosim info --json
step nvidia_smi 20 nvidia-smi
step selftest_cupy 120 "$PY" -m calosim selftest --backend cupy
step pytest_gpu 120 "$PY" -m pytest -q -m gpu -p no:cacheprovider -c "$REPO/pyproject.toml" "$REPO/tests"
RUN="$OUT/run"
rm -rf "$RUN"
step train_cupy 90 "$PY" -m calosim train --backend cupy --config small --epochs 2 --out "$RUN"
MODEL="$RUN"
[ -f "$RUN/last.h5" ] || MODEL=""
if [ -z "$MODEL" ]; then  # the cupy training failed: compare generation on an untrained model instead
  step untrained_model 60 "$PY" -c "
import numpy as np
from calosim.backends import get_backend
from calosim.models import registry
from calosim.models.files import save_model
kind = registry.get_model_type('calogan')
model = kind.build(kind.get_config('small'), kind.default_geometry(), get_backend('numpy'), np.random.default_rng(0),
                   particle='e+', energy_range=(1.0, 100.0))
save_model('$OUT/untrained_small.h5', model)"
  MODEL="$OUT/untrained_small.h5"
fi
step generate_cupy 60 "$PY" -m calosim generate --model "$MODEL" --backend cupy -n 100000 --seed 1 \
    --batch-size 10000 -o "$OUT/generated_cupy.h5"
step generate_numba 120 "$PY" -m calosim generate --model "$MODEL" --backend numba -n 100000 --seed 1 \
    --batch-size 10000 -o "$OUT/generated_numba.h5"
step compare_cupy_numba 60 "$PY" "$REPO/bench/compare_samples.py" "$OUT/generated_numba.h5" "$OUT/generated_cupy.h5" \
    --json "$OUT/compare_cupy_numba.json"
step bench_cupy 150 bash -c "'$PY' -m calosim bench --backend cupy --config calogan --batch-sizes 1,128,1024,10000 \
    --train-step --json > '$OUT/bench_cupy.json'"
echo "done: $SUMMARY" | tee -a "$SUMMARY"
