/** The command service on injected timers and a fake clock: long-poll deadlines, wake-ups, redelivery, expiry sweep. */
import { afterEach, describe, expect, it } from 'vitest';
import { createCommandPayload, signCommand, type SignedCommand } from '../../protocol/command.js';
import { generateKeyPair } from '../../protocol/keys.js';
import { createCommandService, type CommandService } from './command-store.js';
import { loadPolicyFile } from './command-policy.js';
import { createCommitFanout, perEntry } from '../store/commit-fanout.js';
import { applyEnvelope, createFleetState } from '../fleet/fleet-state.js';
import { openJournal, type Journal } from '../store/journal.js';
import { createPipeline, RecentIds, recentIdsProjection } from '../store/pipeline.js';
import { manualTimers, quietLogger, tempDir } from '../../test/helpers.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const centerKey = generateKeyPair();
const open: Array<{ journal: Journal; service: CommandService; cleanup: () => void }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    o.service.stop();
    await o.journal.close();
    o.cleanup();
  }
});

/** A command service over a real journal and fleet state, on manual timers whose clock is also the journal's. */
async function setup() {
  const t = tempDir();
  const manual = manualTimers(T0);
  const now = () => new Date(manual.nowMs);
  const state = createFleetState();
  const recentIds = new RecentIds();
  const fanout = createCommitFanout({ log: quietLogger });
  fanout.addProjection('fleet-state', perEntry(({ envelope }) => applyEnvelope(state, envelope)));
  fanout.addProjection('recent-ids', recentIdsProjection(recentIds));
  fanout.seal();
  const journal = await openJournal({ dir: t.dir, fsync: 'off', now, onCommit: fanout.commit });
  const pipeline = createPipeline({ store: journal, recentIds });
  const service = createCommandService({ state, submit: pipeline.submit, centerKey, policy: loadPolicyFile(), now, timers: manual.timers, redeliverMs: 30_000, receiptGraceMs: 0 });
  open.push({ journal, service, cleanup: t.cleanup });
  let n = 0;
  const command = (ttlMs = 300_000): SignedCommand =>
    signCommand(createCommandPayload({ id: `cmd-${++n}`, nodeId: 'n1', action: 'ping', args: {}, nonce: `${n}`.padStart(32, '0'), now: now(), ttlMs, keyId: centerKey.keyId }), centerKey);
  return { manual, service, state, command };
}

/** Resolves to the settled value, or 'waiting' if the promise is still pending after the IO queue drained. */
async function peek<T>(p: Promise<T>): Promise<T | 'waiting'> {
  return Promise.race([p, new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), 20))]);
}

describe('command service timers', () => {
  it('a long-poll with nothing to deliver ends at its deadline on the injected timers', async () => {
    const { manual, service } = await setup();
    const poll = service.poll('n1', 10_000);
    expect(await peek(poll)).toBe('waiting');
    expect(manual.pending).toBe(1); // the deadline; nothing is due for redelivery
    manual.advance(9_999);
    expect(await peek(poll)).toBe('waiting');
    manual.advance(1);
    expect(await poll).toEqual([]);
    expect(manual.pending).toBe(0);
  });

  it('a queued command wakes the waiting poll at once and its timers are cleared', async () => {
    const { manual, service, command } = await setup();
    const poll = service.poll('n1', 10_000);
    expect(await peek(poll)).toBe('waiting');
    const signed = command();
    await service.enqueueSigned(signed, { author: 'test' });
    expect((await poll).map((c) => c.payload.id)).toEqual([signed.payload.id]);
    expect(manual.pending).toBe(0);
    expect(service.get(signed.payload.id)).toMatchObject({ status: 'delivered', deliveries: 1 });
  });

  it('an unanswered delivery is handed out again when the redelivery falls due, within a waiting poll', async () => {
    const { manual, service, command } = await setup();
    const signed = command();
    await service.enqueueSigned(signed, { author: 'test' });
    expect(await service.poll('n1', 0)).toHaveLength(1);
    const again = service.poll('n1', 60_000);
    expect(await peek(again)).toBe('waiting');
    expect(manual.pending).toBe(2); // the deadline and the redelivery
    manual.advance(29_999);
    expect(await peek(again)).toBe('waiting');
    manual.advance(1);
    expect((await again).map((c) => c.payload.id)).toEqual([signed.payload.id]);
    expect(service.get(signed.payload.id)).toMatchObject({ deliveries: 2 });
  });

  it('a newer poll for the node supersedes the waiting one; stop() releases the rest', async () => {
    const { service } = await setup();
    const older = service.poll('n1', 60_000);
    expect(await peek(older)).toBe('waiting');
    const newer = service.poll('n1', 60_000);
    expect(await older).toEqual([]);
    expect(await peek(newer)).toBe('waiting');
    service.stop();
    expect(await newer).toEqual([]);
  });

  it('the expiry sweep runs on the interval timer and marks an overdue queued command expired', async () => {
    const { manual, service, command } = await setup();
    const signed = command(10_000);
    await service.enqueueSigned(signed, { author: 'test' });
    service.start();
    expect(manual.active).toBe(1);
    manual.advance(10_000); // ten sweeps: at 10 s the command is due, not yet overdue
    await new Promise((r) => setTimeout(r, 20));
    expect(service.get(signed.payload.id)!.status).toBe('queued');
    manual.advance(1_000);
    for (let i = 0; i < 50 && service.get(signed.payload.id)!.status !== 'expired'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(service.get(signed.payload.id)!.status).toBe('expired');
    service.stop();
    expect(manual.active).toBe(0);
  });

  it('the expiry sweep as a leader job: stopping it stops expiring but leaves long-polls waiting and answered; it starts again', async () => {
    const { manual, service, command } = await setup();
    const expiring = command(10_000);
    await service.enqueueSigned(expiring, { author: 'test' });
    service.expirySweep.start();
    expect(manual.active).toBe(1);
    service.expirySweep.stop(); // this replica stopped leading
    expect(manual.active).toBe(0);
    manual.advance(20_000);
    await new Promise((r) => setTimeout(r, 20));
    expect(service.get(expiring.payload.id)!.status).toBe('queued'); // nobody swept: the leader's job
    // A follower's long-poll still waits and is answered, and never hands out the command past its expiry.
    const poll = service.poll('n1', 60_000);
    expect(await peek(poll)).toBe('waiting');
    const fresh = command();
    await service.enqueueSigned(fresh, { author: 'test' });
    expect((await poll).map((c) => c.payload.id)).toEqual([fresh.payload.id]);
    service.expirySweep.start(); // leading again
    manual.advance(1_000);
    for (let i = 0; i < 50 && service.get(expiring.payload.id)!.status !== 'expired'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(service.get(expiring.payload.id)!.status).toBe('expired');
  });
});
