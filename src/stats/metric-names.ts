import type { Side } from '../../compare/types.js';
import type { Mode } from '../../proxy/inline.js';
import type { CheckpointPhase, PhaseDurations } from '../checkpoint/engine.js';

/**
 * The Prometheus metric names ColoMetrics registers and the label values it gives each series. Names are
 * fixed (dashboards and alerts key on them); docs/statistics.md describes each one.
 */
export const MetricName = {
  framesIn: 'colo_frames_in_total',
  framesReleased: 'colo_frames_released_total',
  secondaryDropped: 'colo_secondary_dropped_total',
  malformedFrames: 'colo_malformed_frames_total',
  divergences: 'colo_divergences_total',
  checkpointRequests: 'colo_checkpoint_requests_total',
  checkpoints: 'colo_checkpoints_total',
  checkpointPhaseSeconds: 'colo_checkpoint_phase_seconds',
  heldFrames: 'colo_held_frames',
  heldBytes: 'colo_held_bytes',
  queueDepth: 'colo_queue_depth',
  mode: 'colo_mode',
  compareLatencySeconds: 'colo_compare_latency_seconds',
  connections: 'colo_connections',
  buildInfo: 'colo_build_info',
  captureDrops: 'colo_capture_drops_total',
  peerConnected: 'colo_peer_connected',
  modeSwitches: 'colo_mode_switches_total',
} as const;

export const metricNames: readonly string[] = Object.values(MetricName);

export const sides: readonly Side[] = ['primary', 'secondary'];

// Each label set below (and the outcome counts in ColoMetrics) is the keys of a Record over the domain type,
// so the compiler insists on every value: a Mode, phase or outcome added elsewhere cannot go unreported here.
const modeSeries: Record<Mode, null> = { protected: null, solo: null, failover: null, unprotected: null };
export const modes = Object.keys(modeSeries) as Mode[];

/**
 * The phases colo_checkpoint_phase_seconds and the event log report (docs/statistics.md): every
 * CheckpointPhase but resume, which `total` includes.
 */
export type ReportedPhase = Exclude<CheckpointPhase, 'resume'>;
const phaseSeries: Record<ReportedPhase, null> = { suspend: null, save: null, transfer: null, load: null, total: null };
export const reportedPhases = Object.keys(phaseSeries) as ReportedPhase[];

/** The reported phases a checkpoint reached, in ms (the metric's and the event log's `phasesMs`). */
export function reportedPhasesMs(durations: PhaseDurations): Partial<Record<ReportedPhase, number>> {
  const phases: Partial<Record<ReportedPhase, number>> = {};
  for (const phase of reportedPhases) {
    const ms = durations[phase];
    if (ms !== null) phases[phase] = ms;
  }
  return phases;
}
