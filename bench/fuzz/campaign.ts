/**
 * The whole fuzz campaign (`npm run fuzz`, test/bench/fuzz-short.test.ts): frames through framing + engine,
 * captures through replay, garbage through the agent, summed into one result. Inputs depend only on the seed
 * and the counts; the agent's outcomes also on timing (its bounds are wall-clock).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAgentCampaign, type AgentReport } from './agent.js';
import { runCaptureCampaign, type CaptureReport } from './captures.js';
import { runFrameCampaign, type FrameReport } from './frames.js';

export interface FuzzOptions {
  frames: number;
  captures: number;
  agentInputs: number;
  seed: number;
  /** Per-capture replay bound (ms); past it the capture is a hang. */
  captureBoundMs?: number;
}

export interface FuzzResult {
  seed: number;
  frames: number;
  crashes: number;
  hangs: number;
  /** Frames (decoded, and read from captures) minus every fate counted for them. */
  unaccounted: number;
  peak_rss_mb: number;
  /** [frames so far, RSS MiB] at about ten points of the frame campaign. */
  rss_mb: Array<[number, number]>;
  seconds: number;
  captures: number;
  agent_inputs: number;
  frame_campaign: Omit<FrameReport, 'failures'>;
  capture_campaign: Omit<CaptureReport, 'failures'>;
  agent_campaign: Omit<AgentReport, 'failures'>;
  /** Every crash and hang found, with what reproduces it (seed, index, input or kept files). */
  failures: unknown[];
}

const EXAMPLES = ['http', 'http-nondeterministic', 'resegmented'].map((name) =>
  fileURLToPath(new URL(join('../../examples', name), import.meta.url)),
);

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const started = performance.now();
  const rss: Array<[number, number]> = [];
  const frameReport = runFrameCampaign({
    frames: options.frames,
    seed: options.seed,
    onRss: (frames, mb) => rss.push([frames, Math.round(mb)]),
  });
  const captureReport = await runCaptureCampaign({
    captures: options.captures,
    seed: options.seed,
    boundMs: options.captureBoundMs,
    examples: EXAMPLES,
  });
  const agentReport = await runAgentCampaign({ inputs: options.agentInputs, seed: options.seed });
  const { failures: frameFailures, ...frameCampaign } = frameReport;
  const { failures: captureFailures, ...captureCampaign } = captureReport;
  const { failures: agentFailures, ...agentCampaign } = agentReport;
  return {
    seed: options.seed,
    frames: frameReport.frames,
    crashes: frameReport.crashes + captureReport.crashes + agentReport.crashes,
    hangs: frameReport.hangs + captureReport.hangs + agentReport.hangs,
    unaccounted: frameReport.unaccounted + captureReport.unaccounted,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    rss_mb: rss,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    captures: captureReport.captures,
    agent_inputs: agentReport.inputs,
    frame_campaign: frameCampaign,
    capture_campaign: captureCampaign,
    agent_campaign: agentCampaign,
    failures: [...frameFailures, ...captureFailures, ...agentFailures],
  };
}
