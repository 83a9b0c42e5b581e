"""A TF profiler trace (xplane.pb): per plane, the events by total time; with a marker event name, the
last such call's long host events and idle gaps.

    .venv/bin/python benchmarks/gpu/experiments/profile_ops.py PATH.xplane.pb [TOP [MARKER]]
"""
import collections
import sys

from tensorflow.tsl.profiler.protobuf import xplane_pb2

space = xplane_pb2.XSpace()
space.ParseFromString(open(sys.argv[1], "rb").read())
top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
for plane in space.planes:
    totals, counts = collections.Counter(), collections.Counter()
    lines = 0
    for line in plane.lines:
        lines += 1
        for ev in line.events:
            name = plane.event_metadata[ev.metadata_id].name
            totals[name] += ev.duration_ps / 1e9
            counts[name] += 1
    if not totals:
        continue
    print(f"== plane {plane.name!r}: {lines} lines, {sum(counts.values())} events")
    for name, ms in totals.most_common(top):
        print(f"  {ms:9.3f} ms  x{counts[name]:<5d} {name[:150]}")

# the last call's op events on the host, in time order: the long ones, and idle gaps between ops
if len(sys.argv) > 3:
    marker = sys.argv[3]
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        events = []
        for line in plane.lines:
            for ev in line.events:
                events.append((line.timestamp_ns * 1000 + ev.offset_ps, ev.duration_ps, plane.event_metadata[ev.metadata_id].name, line.name))
        calls = sorted(e for e in events if e[2] == marker)
        start, dur = calls[-1][0], calls[-1][1]
        inside = sorted(e for e in events if start <= e[0] <= start + dur and ":" in e[2])
        print(f"== last {marker}: {dur / 1e9:.3f} ms, {len(inside)} op events")
        t_prev = start
        busy_until = start
        for t, d, name, line in inside:
            gap = t - busy_until
            if gap > 100e6:
                print(f"  gap {gap / 1e9:7.3f} ms before {name[:110]}")
            if d > 100e6:
                print(f"  +{(t - start) / 1e9:7.3f} ms {d / 1e9:7.3f} ms [{line[:20]}] {name[:110]}")
            busy_until = max(busy_until, t + d)
