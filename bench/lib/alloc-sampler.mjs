/**
 * A preload (`node --import bench/lib/alloc-sampler.mjs`) for bench/profile-ingest.mjs --alloc: the first SIGUSR2
 * starts V8's sampling heap profiler on the main thread, counting objects a GC has already collected too (so it
 * measures what is allocated, not what stays), and the second stops it and writes the profile to
 * VAULTMESH_ALLOC_PROFILE. Not for production use: a center does not handle SIGUSR2 otherwise.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

const session = new Session();
session.connect();
session.post('HeapProfiler.enable');
let sampling = false;
process.on('SIGUSR2', () => {
  if (!sampling) {
    sampling = true;
    const samplingInterval = Number(process.env.VAULTMESH_ALLOC_INTERVAL ?? 8192);
    session.post('HeapProfiler.startSampling', { samplingInterval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return;
  }
  session.post('HeapProfiler.stopSampling', (err, result) => {
    if (err) console.error(`alloc-sampler: ${err.message}`);
    else writeFileSync(process.env.VAULTMESH_ALLOC_PROFILE, JSON.stringify(result.profile));
  });
});
