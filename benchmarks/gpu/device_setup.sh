#!/bin/bash
# ON THE GPU MACHINE, after the transfer calls put the pieces in /tmp/parts/ (part-* = TF bundle, x-* = extras):
# reassemble and check both against benchmarks/gpu/manifest.txt, unpack the TF 2.17.1 + CUDA 12 bundle to
# /tmp/tfb and the extras (models, images, network batches, wheels, ptxas/libdevice) to /tmp/gpu, write
# /tmp/tfenv.sh, install the Ultralytics wheels to /tmp/site, and check that both environments see the GPU.
cd "$(dirname "$0")/../.."
T0=$(date +%s)
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
read -r _ bsha bn < <(grep ^bundle benchmarks/gpu/manifest.txt)
read -r _ xsha xn < <(grep ^extras benchmarks/gpu/manifest.txt)
have_b=$(ls /tmp/parts/part-* 2>/dev/null | wc -l); have_x=$(ls /tmp/parts/x-* 2>/dev/null | wc -l)
echo "pieces: bundle $have_b/$bn extras $have_x/$xn"
if [ "$have_b" != "$bn" ] || [ "$have_x" != "$xn" ]; then ls /tmp/parts; exit 2; fi
if [ ! -f /tmp/tfb/ok ]; then
  s=$(cat /tmp/parts/part-* | tee /tmp/tfb.tar.xz | sha256sum | cut -d' ' -f1)
  [ "$s" = "$bsha" ] || { echo "bundle sha256 $s != $bsha"; exit 3; }
  mkdir -p /tmp/tfb && xz -T0 -dc /tmp/tfb.tar.xz | tar -C /tmp/tfb -xf - && rm /tmp/tfb.tar.xz && touch /tmp/tfb/ok || exit 4
fi
if [ ! -f /tmp/gpu/ok ]; then
  s=$(cat /tmp/parts/x-* | tee /tmp/extras.tar.xz | sha256sum | cut -d' ' -f1)
  [ "$s" = "$xsha" ] || { echo "extras sha256 $s != $xsha"; exit 3; }
  mkdir -p /tmp/gpu && xz -T0 -dc /tmp/extras.tar.xz | tar -C /tmp/gpu -xf - && rm /tmp/extras.tar.xz && touch /tmp/gpu/ok || exit 4
fi
echo "unpacked after $(( $(date +%s) - T0 )) s; $(du -sh /tmp/tfb | cut -f1) bundle"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit,pstate --format=csv | tee $OUT/smi.csv
nvidia-smi | head -15 > $OUT/smi.txt; uname -a >> $OUT/smi.txt; nproc >> $OUT/smi.txt
PY=/usr/bin/python3; $PY -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null || PY=$(command -v python3)
cat > /tmp/tfenv.sh <<ENV
export LD_LIBRARY_PATH=$(ls -d /tmp/tfb/site/nvidia/*/lib | tr '\n' ':')\${LD_LIBRARY_PATH:-}
export XLA_FLAGS=--xla_gpu_cuda_data_dir=/tmp/gpu/nvcc/nvidia/cuda_nvcc PATH=/tmp/gpu/nvcc/nvidia/cuda_nvcc/bin:\$PATH
export CUDA_CACHE_PATH=/tmp/nvcache CUDA_CACHE_MAXSIZE=4294967296 TF_CPP_MIN_LOG_LEVEL=1 PYTHONUNBUFFERED=1
export PYTHONPATH=/tmp/tfb/site:$PWD TFPY="$PY -s"
ENV
cat /tmp/tfenv.sh
( . /tmp/tfenv.sh; ptxas --version | tail -1; $TFPY - <<'PY'
import sys, time, numpy, tensorflow as tf
t = time.time()
import cv2, tftrt_yolo
print(sys.version.split()[0], numpy.__version__, numpy.__file__, tf.__version__, cv2.__version__, tf.config.list_physical_devices("GPU"), flush=True)
with tf.device("/GPU:0"):
    a = tf.random.normal([2048, 2048]); print("matmul", float(tf.reduce_sum(a @ a)), (a @ a).device)
    f = tf.function(lambda x: tf.nn.sigmoid(x) * x + tf.exp(x), jit_compile=True); print("xla", float(tf.reduce_sum(f(a))))
print("tf check", round(time.time() - t, 1), "s")
PY
) 2>&1 | grep -v -E "^(W|I)0000|cuda_executor.cc" | tee $OUT/tf_check.log
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/gpu/whl/*.whl 2>&1 | tail -2
PYTHONPATH=/tmp/site python3 -c "import torch, ultralytics, cv2, numpy; print('torch', torch.__version__, torch.cuda.get_device_name(0), 'ultralytics', ultralytics.__version__, 'cv2', cv2.__version__, 'numpy', numpy.__version__)" | tee -a $OUT/tf_check.log
echo "setup done after $(( $(date +%s) - T0 )) s"
