import { afterAll, afterEach, beforeAll } from 'vitest';
import { liveCaptureAvailable } from '../../proxy/ports/live.js';
import { ringCaptureAvailable } from '../../proxy/ports/packet-ring.js';
import { InlineLab, type LabOptions } from './inline-lab.js';
import { labCapture } from './lab-process.js';
import { createInlineTopology, type InlineTopology } from './netns.js';
import { hasCommand, isRoot, type Prerequisite } from './prerequisites.js';

/** What a test on the inline lab needs on the host: root, iproute2, ethtool, curl, the lab's capture backend, and `more`. */
export function inlineLabPrerequisites(...more: Prerequisite[]): Prerequisite[] {
  const capture: Prerequisite =
    labCapture === 'ring'
      ? {
          name: 'packet-ring addon (native/packet-ring)',
          ok: ringCaptureAvailable(),
          fix: 'apt-get install build-essential python3 && npm ci',
        }
      : { name: 'cap (libpcap binding)', ok: liveCaptureAvailable(), fix: 'apt-get install libpcap-dev && npm ci' };
  return [
    isRoot(),
    hasCommand('ip', 'iproute2'),
    hasCommand('ethtool', 'ethtool'),
    hasCommand('curl', 'curl'),
    ...more,
    capture,
  ];
}

export interface InlineLabPerTest {
  /** The namespaces every test of the block shares (made in beforeAll). */
  readonly topo: InlineTopology;
  /** A test's lab, started (the pair protected); finished after the test. */
  start(options?: LabOptions): Promise<InlineLab>;
}

/**
 * Call in a describe block: its namespaces are made once on `subnet` (one per test file: files run in parallel)
 * and removed after its tests, and the lab a test starts is finished after it (logs kept when it failed).
 */
export function inlineLabPerTest(subnet: number): InlineLabPerTest {
  let topo: InlineTopology | null = null;
  let lab: InlineLab | null = null;
  beforeAll(async () => {
    topo = await createInlineTopology(subnet);
  }, 30_000);
  afterAll(async () => {
    await topo?.destroy();
  });
  afterEach(async (context) => {
    await lab?.finish(context.task.result?.state === 'fail');
    lab = null;
  });
  return {
    get topo(): InlineTopology {
      if (topo === null) throw new Error('the inline lab topology is made in beforeAll');
      return topo;
    },
    async start(options: LabOptions = {}): Promise<InlineLab> {
      lab = new InlineLab(this.topo, options);
      await lab.start();
      return lab;
    },
  };
}
