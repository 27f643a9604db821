#!/usr/bin/env bash
# The GPU checks, as one script for the device machine (an H200 lent to some tasks).
#
# Here, first:   bash ../shared/device/wheels.sh        (fills .whl/ with skorch, librosa, ...)
# Then run on the device, with carry [".whl"]:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site:$PWD && bash benchmarks/gpu_checks.sh
# Results land in $OUT (or ./gpu_results): fit/predict ratios on CUDA, audio features on
# CUDA, and a CUDA-trained model unpickled and used in a process that cannot see the GPU.
set -uo pipefail
out=${OUT:-gpu_results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv >"$out/gpu.txt" 2>&1

# 1. Fit and predict speed on the GPU (DESIGN: fit <= 1.1x a hand loop, predict <= 2x no_grad),
#    with a row per training option (bf16, 16-mixed, compile; AdamW is fused on CUDA)
timeout 300 python3 benchmarks/bench_fit_speed.py --n 200000 --epochs 2 --repeats 2 \
  --device cuda --options 2>&1 | tee "$out/fit_speed_cuda.md"

# 2. Audio features on the GPU (issue target: >= 50x librosa one clip at a time)
DATA=${SKLEARN_MTML_DATA:-../shared/data}
if [ -d "$DATA/fsdd" ]; then
  timeout 240 python3 benchmarks/bench_audio_features.py --data "$DATA" --repeat 2 2>&1 \
    | tee "$out/audio_features_cuda.md"
else
  echo "no FSDD folder at $DATA: copy ../shared/data/fsdd into the repo (ignored) and set SKLEARN_MTML_DATA" \
    | tee "$out/audio_features_cuda.md"
fi

# 3. A CUDA-trained MultiTaskNet pickles and loads, identical, on a CPU-only process
timeout 120 python3 - "$out" <<'PY' 2>&1 | tee "$out/pickle_cuda_to_cpu.txt"
import subprocess, sys, joblib, numpy as np
from sklearn_mtml import MultiTaskNet
out = sys.argv[1]
rng = np.random.RandomState(0)
X = rng.randn(2000, 16).astype("float32")
Y = np.column_stack([X[:, 0] > 0, X[:, 1] * 2, (X[:, 2] > 0.5)]).astype(float)
net = MultiTaskNet(max_epochs=3, weighting="uncertainty", random_state=0).fit(X, Y)
print("trained on", net.device_)
joblib.dump(net, f"{out}/net.joblib")
np.save(f"{out}/pred.npy", net.predict(X))
code = (
    "import joblib, numpy as np, torch;"
    f"net = joblib.load('{out}/net.joblib');"
    "X = np.random.RandomState(0).randn(2000, 16).astype('float32');"
    f"ok = np.allclose(net.predict(X), np.load('{out}/pred.npy'), atol=1e-4);"
    "print('cuda visible:', torch.cuda.is_available(), 'loaded on', net.device_, 'same:', ok)"
)
env = {"CUDA_VISIBLE_DEVICES": "", **{k: v for k, v in __import__('os').environ.items()
                                      if k != "CUDA_VISIBLE_DEVICES"}}
print(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True))
PY
rm -f "$out/net.joblib" "$out/pred.npy"
