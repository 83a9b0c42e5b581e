"""GPU busy time inside the last SavedModel call of a profiler trace, per millisecond of the call (which
part of the graph ran when: the kernels' names tell), and the largest idle gaps; with BOUNDS (ms into the
call, comma-separated, read off the per-millisecond table), each part's span, GPU time and kernel count.

    .venv/bin/python benchmarks/gpu/experiments/profile_gpu_idle.py 'PATH/*.xplane.pb' [BOUNDS]
"""
import glob
import sys

from tensorflow.tsl.profiler.protobuf import xplane_pb2
space = xplane_pb2.XSpace()
space.ParseFromString(open(glob.glob(sys.argv[1])[0], "rb").read())
host = next(p for p in space.planes if p.name == "/host:CPU")
gpu = next(p for p in space.planes if p.name == "/device:GPU:0")
def events(plane):
    for line in plane.lines:
        for ev in line.events:
            yield line.timestamp_ns * 1000 + ev.offset_ps, ev.duration_ps, plane.event_metadata[ev.metadata_id].name, line.name
calls = sorted(e for e in events(host) if e[2] == "signature_wrapper_predict_images")
start, dur = calls[-1][0], calls[-1][1]
k = sorted(e for e in events(gpu) if start <= e[0] <= start + dur)
busy, end, gaps = 0, start, []
for t, d, name, line in k:
    if t > end:
        gaps.append((t - end, name, line))
    busy += max(0, t + d - max(t, end))
    end = max(end, t + d)
print(f"call {dur/1e9:.2f} ms; GPU busy {busy/1e9:.2f} ms in {len(k)} events; idle {(dur-busy)/1e9:.2f} ms")
by_line = {}
for t, d, name, line in k:
    by_line[line] = by_line.get(line, 0) + d
print({l: round(v / 1e9, 2) for l, v in by_line.items()})
for g, name, line in sorted(gaps, reverse=True)[:12]:
    print(f"  idle {g/1e9:6.3f} ms before {name[:90]} [{line}]")
print("ms of the call: GPU busy ms, kernels, the first kernel's name")
buckets = {}
for t, d, name, line in k:
    busy_ms, count, first = buckets.get(int((t - start) / 1e9), (0.0, 0, name))
    buckets[int((t - start) / 1e9)] = (busy_ms + d / 1e9, count + 1, first)
for ms_, (busy_ms, count, first) in sorted(buckets.items()):
    print(f"  {ms_:3d}  {busy_ms:5.2f}  {count:4d}  {first[:80]}")
if len(sys.argv) > 2:  # parts: events that start inside each, their summed durations
    bounds = [0.0] + [float(b) for b in sys.argv[2].split(",")] + [dur / 1e9]
    print("part (ms of the call): span ms, GPU ms, kernels and copies")
    for lo, hi in zip(bounds, bounds[1:]):
        inside = [d for t, d, _, _ in k if lo <= (t - start) / 1e9 < hi]
        print(f"  {lo:6.2f}-{hi:6.2f}  {hi - lo:5.2f}  {sum(inside) / 1e9:5.2f}  {len(inside):4d}")
