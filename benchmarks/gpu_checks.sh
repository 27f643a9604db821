#!/usr/bin/env bash
# The GPU checks, as one script for the device machine (an H200 lent to some tasks).
#
# Here, first:   bash ../shared/device/wheels.sh        (fills .whl/ with skorch, librosa, ...)
# Then run on the device, with carry [".whl"]:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site:$PWD && bash benchmarks/gpu_checks.sh
# Results land in $OUT (or ./gpu_results): fit/predict ratios on CUDA, audio features on
# CUDA, a CUDA-trained model unpickled and used in a process that cannot see the GPU, the
# loss-weight search ratio on CUDA, and channels_last against NCHW for the image encoder.
# Expected on an H200 (estimated from the sizes): 1. ~2.5 min (9 runs x 2 repeats of 1,560
# steps, plus the first compilation), 2. ~2 min, 3. <20 s, 4. ~1 min (27 + 3 fits of at most
# 8 epochs), 5. <40 s (2 x 2 fits of 96 steps, then the CUDA tests): about 6.5 minutes; every
# section has its own timeout.
set -uo pipefail
out=${OUT:-gpu_results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv >"$out/gpu.txt" 2>&1

# 1. Fit and predict speed on the GPU (DESIGN: fit <= 1.1x a hand loop, predict <= 2x no_grad),
#    with a row per training option (bf16, 16-mixed, compile, cuda_graphs with float32 and
#    bf16; AdamW is fused on CUDA)
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

# 4. Loss-weight search on the GPU: LossWeightSearchCV's time against GridSearchCV's
#    (9 candidates x 3 folds, 3,000 rows; at most 8 epochs a fit to bound the time)
timeout 90 python3 benchmarks/bench_search.py --n 3000 --max-epochs 8 --skip-parallel 2>&1 \
  | tee "$out/search_cuda.md"

# 5. channels_last for the image encoder (automatic on CUDA) against NCHW, and CUDA graphs
#    matched against eager training (the skipped-on-CPU tests)
timeout 45 python3 - <<'PY' 2>&1 | tee "$out/channels_last_cuda.txt"
import time, numpy as np, torch
from sklearn_mtml import MultiTaskNet
rng = np.random.RandomState(0)
images = rng.rand(8192, 3, 32, 32).astype("float32")
y = images[:, 0, :16].mean((1, 2)) - images[:, 1, 16:].mean((1, 2))
for fmt in (False, True):
    times = []
    for _ in range(2):
        net = MultiTaskNet(max_epochs=3, batch_size=256, early_stopping=False, random_state=0,
                           module__encoder_params={"channels_last": fmt, "max_side": None,
                                                   "channels": (32, 64, 128)})
        torch.cuda.synchronize(); t0 = time.perf_counter()
        net.fit({"img": images}, y); torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    w = net.module_.encoders["img"].features[0].weight
    print(f"channels_last={fmt}: fit {min(times):.3f} s (best of 2), first conv weight "
          f"channels_last: {w.is_contiguous(memory_format=torch.channels_last)}")
PY
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_training_options.py \
  -k "cuda or channels" 2>&1 | tail -5 | tee "$out/cuda_graph_tests.txt"
