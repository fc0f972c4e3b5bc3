#!/usr/bin/env bash
# One device call: ember's CUDA test variants on the lent GPU, plus a cross-check of ember's
# safetensors output against the real safetensors library (installed there, not here).
set -u
export PYTHONPATH=packages/core/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m pytest tests/core -m gpu -q -p no:cacheprovider -rxX > /tmp/gpu.log 2>&1
echo "XPASS: $(grep -c "^XPASS" /tmp/gpu.log)  XFAIL: $(grep -c "^XFAIL" /tmp/gpu.log)"
grep -E "^(FAILED|ERROR)" /tmp/gpu.log | head -20
tail -2 /tmp/gpu.log
python3 - <<'PY'
import numpy as np, ember
from safetensors.numpy import load_file, save_file
sd = {"w": ember.randn(3, 4), "n": ember.tensor([1, 2, 3]), "b": ember.ones(2, dtype=ember.float16)}
ember.save(sd, "/tmp/e.safetensors")
got = load_file("/tmp/e.safetensors")
ok = all(np.array_equal(got[k], sd[k].numpy()) for k in sd)
save_file({"x": np.arange(6, dtype=np.float32).reshape(2, 3)}, "/tmp/s.safetensors")
back = ember.load("/tmp/s.safetensors")
ok2 = np.array_equal(back["x"].numpy(), np.arange(6, dtype=np.float32).reshape(2, 3))
print(f"safetensors library reads ember.save: {ok}; ember.load reads safetensors.save_file: {ok2}")
PY
