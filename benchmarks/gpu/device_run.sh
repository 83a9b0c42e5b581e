#!/bin/bash
# ON THE GPU MACHINE, after device_setup.sh:  device_run.sh torch   |   device_run.sh tf tensorflow [xla]
# Writes $OUT/<name>.json (rows so far, rewritten after each model) and $OUT/<name>.log.
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; set -o pipefail
what=$1; shift
if [ "$what" = torch ]; then
  PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD python3 benchmarks/gpu/torch_rows.py --root /tmp/gpu --out $OUT/torch.json "$@" 2>&1 | tee $OUT/torch.log
else
  . /tmp/tfenv.sh
  name=tf-$(echo "$@" | tr ' ' '-')
  $TFPY benchmarks/gpu/tf_rows.py --root /tmp/gpu --backends "$@" --out $OUT/$name.json 2>&1 | grep --line-buffered -v -E "^(W|I)0000 .*(cuda_executor|service.cc|gpu_device.cc:2|device_compiler)" | tee $OUT/$name.log
fi
