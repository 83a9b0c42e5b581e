#!/bin/bash
# ON THE GPU MACHINE, after device_setup.sh: where the SavedModels' end-to-end time goes (diagnostics only).
# These are the three commands that were run inline for benchmarks/results/gpu/ (same code, gathered here):
# 1) eager JPEG decode time per image; 2) predict_images on already decoded uint8 SxS images -> $OUT/decoded.json;
# 3) op placement of one serving_default call (detect, plain graph) -> $OUT/placement.log.gz.
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
. /tmp/tfenv.sh; export TF_CPP_MIN_LOG_LEVEL=3
$TFPY -c "
import tensorflow as tf, time, glob
for t in ['detect','segment','classify']:
  fs=sorted(glob.glob('/tmp/gpu/images/%s/*'%t)); b=[open(f,'rb').read() for f in fs]
  x=tf.constant(b)
  d=lambda: [tf.io.decode_image(x[i],channels=3).numpy() for i in range(8)]
  d(); t0=time.perf_counter(); [d() for _ in range(20)]; dt=(time.perf_counter()-t0)/20
  print(t, 'decode 8 imgs on CPU: %.2f ms/img'%(dt*1000/8), d()[0].shape)
" 2>&1 | grep -v -E "^(W|I)0000|gpu_timer"
$TFPY -c "
import tensorflow as tf, time, glob, json, os
R={}
for t in ['detect','segment','classify','pose','obb']:
  S=224 if t=='classify' else 640
  fs=sorted(glob.glob('/tmp/gpu/images/%s/*'%t))
  im=tf.stack([tf.cast(tf.image.resize(tf.io.decode_image(open(f,'rb').read(),channels=3,expand_animations=False),[S,S]),tf.uint8) for f in fs])
  for b in ['tensorflow','xla']:
    m=tf.saved_model.load('/tmp/gpu/models/%s-%s/1'%(t,b))
    c=tf.constant([.25]*8);i=tf.constant([.7]*8);k=tf.constant([300]*8)
    fn=lambda: [v.numpy() for v in tf.nest.flatten(m.predict_images(im,c,i,k))]
    for _ in range(15): fn()
    ts=[]
    for _ in range(60):
      t0=time.perf_counter(); fn(); ts.append(time.perf_counter()-t0)
    ts=sorted(x*1000/8 for x in ts); R[t+'-'+b]={'mean':sum(ts)/len(ts),'min':ts[0],'max':ts[-1],'median':ts[30],'iterations':60,'input':'uint8 [8,%d,%d,3] decoded+resized to SxS outside timing'%(S,S)}
    print(t,b,'predict_images (decoded) mean %.3f median %.3f ms/img'%(R[t+'-'+b]['mean'],ts[30]),flush=True)
json.dump(R,open(os.environ['OUT']+'/decoded.json','w'),indent=1)
" 2>&1 | grep -v -E "^(W|I)0000|gpu_timer|WARNING: All"
TF_CPP_MIN_LOG_LEVEL=0 $TFPY -c "
import tensorflow as tf, glob
tf.debugging.set_log_device_placement(True)
m=tf.saved_model.load('/tmp/gpu/models/detect-tensorflow/1')
fs=sorted(glob.glob('/tmp/gpu/images/detect/*'))
out=m.signatures['serving_default'](images=tf.constant([open(f,'rb').read() for f in fs]),conf=tf.constant([.25]*8),iou=tf.constant([.7]*8),max_det=tf.constant([300]*8))
print('DONE')
" > $OUT/placement.log 2>&1
grep -c 'device:GPU' $OUT/placement.log; grep -c 'device:CPU' $OUT/placement.log
grep 'device:CPU' $OUT/placement.log | grep -oE '\(([A-Za-z0-9]+)\)' | sort | uniq -c | sort -rn | head -40
gzip -f $OUT/placement.log
