/**
 * `npm run soak`: the inline proxy in namespaces under load and faults for a bounded time (bench/soak/run.ts);
 * prints one JSON line at the end. Root, the packet-ring addon (or COLO_LAB_CAPTURE=pcap) and the built CLI.
 * Knobs: SOAK_SECONDS (60), or --hours N / --minutes N; SOAK_FAULT_EVERY (seconds between agent kills: a
 * quarter of the run, at least 5; 0 never), SOAK_SUBNET (83), SOAK_KEEP=1 keeps the lab directory.
 * Exit status 1 when anything crashed, hung, went unaccounted or a client byte did not verify.
 */
import { runSoak } from './soak/run.js';

function seconds(): number {
  const args = process.argv.slice(2);
  const flag = (name: string): number | null => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : null;
  };
  const hours = flag('--hours');
  const minutes = flag('--minutes');
  const value =
    hours !== null ? hours * 3600 : minutes !== null ? minutes * 60 : Number(process.env.SOAK_SECONDS ?? 60);
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`the soak's length must be positive, got ${value} s`);
  return value;
}

const fault = process.env.SOAK_FAULT_EVERY;
const result = await runSoak({
  seconds: seconds(),
  faultEverySeconds: fault === undefined ? undefined : Number(fault),
  subnet: process.env.SOAK_SUBNET ? Number(process.env.SOAK_SUBNET) : undefined,
  keep: process.env.SOAK_KEEP === '1',
});
process.stdout.write(`${JSON.stringify(result)}\n`);
const bad = result.crashes + result.hangs + (result.unaccounted ?? 0) + result.bytes_mismatched;
process.exitCode = bad > 0 || result.bytes_verified === 0 ? 1 : 0;
