import { buildIcmp, buildIpRaw, buildTcp, buildUdp, type TcpSpec } from '../support/wire-build.js';
import { TcpFlag } from '../../compare/wire/frame-info.js';
import { expect, it } from 'vitest';
import { describeWith, hasCommand } from '../support/prerequisites.js';
import { openCompare, qemuBinary, type CompareSettings, type Implementation } from '../support/qemu.js';

/**
 * Scenarios fed to QEMU's colo-compare and to `colo-proxy compare` alike. A scenario names its frames,
 * sends them step by step, and at each `settle` or `flush` step records what has been released so far
 * (by frame name, in order) and how many checkpoints were requested. The expected records are written out
 * per implementation: `ours` is absent where colo-proxy behaves as QEMU does, and present, with the
 * difference named, where colo-proxy deliberately differs (docs/qemu-differences.md).
 */

export type Step =
  | { send: 'pri' | 'sec'; frames: string[] }
  /**
   * Both inputs processed up to here, no snapshot. Needed wherever the order between the two inputs
   * matters: each input is read in order, but nothing orders pri against sec.
   */
  | { barrier: true }
  /** Both inputs and notify processed; record a snapshot. */
  | { settle: true }
  /** COLO_CHECKPOINT on notify; wait until handled and its releases arrived; record a snapshot. */
  | { flush: true };

export interface Snapshot {
  /** Names of the released frames, cumulative, in release order. */
  released: string[];
  /** DO_CHECKPOINT frames received so far. */
  requests: number;
}

export interface Scenario {
  name: string;
  /** Why this scenario exists: the behaviour it pins down. */
  about: string;
  settings?: CompareSettings;
  frames: Record<string, Buffer>;
  steps: Step[];
  /** One snapshot per settle/flush step. */
  qemu: Snapshot[];
  /** Only where colo-proxy deliberately differs. */
  ours?: Snapshot[];
  /** The difference, as docs/qemu-differences.md names it. */
  difference?: string;
}

/** Non-timer scenarios must not see QEMU's stale-packet timer: push it far beyond the scenario's length. */
export const quietTimers: CompareSettings = { compareTimeoutMs: 60_000, expiredScanCycleMs: 1_000 };

export interface ScenarioResult {
  snapshots: Snapshot[];
  stderr: string;
}

/** Which implementations run: COLO_DIFF_IMPLS=qemu runs QEMU alone (to record its behaviour). */
export const implementations: Implementation[] = (process.env.COLO_DIFF_IMPLS ?? 'qemu,ours')
  .split(',')
  .map((s) => s.trim())
  .filter((s): s is Implementation => s === 'qemu' || s === 'ours');

function nameReleased(scenario: Scenario, sentOnPri: Set<string>, frame: Buffer): string {
  // Released frames are primary frames: look them up among those sent on pri first.
  for (const name of sentOnPri) if (scenario.frames[name].equals(frame)) return name;
  for (const [name, bytes] of Object.entries(scenario.frames)) if (bytes.equals(frame)) return `${name}?`;
  return `unknown:${frame.subarray(0, 64).toString('hex')}`;
}

export async function runScenario(impl: Implementation, scenario: Scenario): Promise<ScenarioResult> {
  const settings = { ...quietTimers, ...scenario.settings };
  const s = await openCompare(impl, settings);
  const snapshots: Snapshot[] = [];
  const sentOnPri = new Set<string>();
  try {
    const snapshot = (): void => {
      snapshots.push({
        released: s.releasedFrames().map((f) => nameReleased(scenario, sentOnPri, f)),
        requests: s.checkpointRequests(),
      });
    };
    for (const step of scenario.steps) {
      if ('send' in step) {
        const frames = step.frames.map((name) => {
          const bytes = scenario.frames[name];
          if (bytes === undefined) throw new Error(`scenario ${scenario.name}: no frame named ${name}`);
          if (step.send === 'pri') sentOnPri.add(name);
          return bytes;
        });
        s.send(step.send, frames);
      } else if ('barrier' in step) {
        await s.barrier();
      } else if ('settle' in step) {
        await s.settle();
        snapshot();
      } else {
        await s.flush();
        snapshot();
      }
    }
    return { snapshots, stderr: s.proc.stderr() };
  } catch (err) {
    const detail = `${impl}: ${(err as Error).message}\nsnapshots so far: ${JSON.stringify(snapshots)}`;
    throw new Error(`${detail}\n--- ${impl} stderr ---\n${s.proc.stderr().slice(-3000)}`, { cause: err });
  } finally {
    await s.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Frame helpers: one client (10.0.0.2) talking to one guest (10.0.0.1); the guest's output is compared.

const guest = { src: '10.0.0.1', dst: '10.0.0.2' } as const;

export function udp(payload: string, extra: Partial<Parameters<typeof buildUdp>[0]> = {}): Buffer {
  return buildUdp({ ...guest, srcPort: 5000, dstPort: 6000, payload, ...extra });
}

export function icmp(id: number, seq: number, payload: string, extra: Partial<Parameters<typeof buildIcmp>[0]> = {}) {
  return buildIcmp({ ...guest, type: 0, id, seq, payload, ...extra });
}

const PA = TcpFlag.PSH | TcpFlag.ACK;

export function tcp(seq: number, payload: string, extra: Partial<TcpSpec> = {}): Buffer {
  return buildTcp({ ...guest, srcPort: 80, dstPort: 40000, seq, ack: 5000, flags: PA, payload, ...extra });
}

/** The same Ethernet frame with the bytes from `from` to the end replaced by `fill` (padding content). */
export function withTrailer(frame: Buffer, from: number, fill: number): Buffer {
  const copy = Buffer.from(frame);
  copy.fill(fill, from);
  return copy;
}

export { buildIpRaw, TcpFlag };

/**
 * One vitest case per scenario: both implementations run it concurrently; each must produce its expected
 * snapshots, and where a difference is declared the two must really differ.
 */
export function scenarioSuite(title: string, scenarios: Scenario[]): void {
  describeWith([hasCommand(qemuBinary, 'qemu-system-x86')], title, () => {
    for (const scenario of scenarios) {
      const label = scenario.difference ? `${scenario.name} [differs: ${scenario.difference}]` : scenario.name;
      it(label, async () => {
        const results = await Promise.all(implementations.map((impl) => runScenario(impl, scenario)));
        const byImpl = new Map(implementations.map((impl, i) => [impl, results[i]]));
        for (const [impl, result] of byImpl) {
          const expected = impl === 'ours' ? (scenario.ours ?? scenario.qemu) : scenario.qemu;
          expect(result.snapshots, `${impl} (${scenario.about})`).toEqual(expected);
        }
        if (scenario.ours !== undefined) {
          expect(scenario.ours, 'a declared difference must be a real one').not.toEqual(scenario.qemu);
        }
      });
    }
  });
}
