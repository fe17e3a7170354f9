import type { Logger } from 'pino';
import type { ChunkSink, FramedSocket } from '../../proxy/ports/framed-socket.js';
import { encodeFrame } from '../../proxy/ports/framed.js';
import type { FramingRejectReason } from '../../proxy/port.js';

/**
 * Xen's userspace-proxy notify protocol (libxl's colo_proxy_* in userspace mode), spoken on --notify-dev.
 * Every message is plain framing, `u32 BE length` + ASCII with no NUL, and never carries a vnet field,
 * whatever --vnet-hdr-support says (QEMU applies vnet framing to notify input too, and then cannot parse
 * libxl's messages). Matching is exact in length and bytes, as QEMU's is.
 *
 *   libxl -> us  COLO_USERSPACE_PROXY_INIT   we reply COLO_COMPARE_GET_XEN_INIT
 *   libxl -> us  COLO_CHECKPOINT             the checkpoint is done: flush
 *   us -> libxl  DO_CHECKPOINT               please checkpoint
 *   anything else: logged and counted, ignored
 */
export const XenNotifyMessage = {
  init: 'COLO_USERSPACE_PROXY_INIT',
  initReply: 'COLO_COMPARE_GET_XEN_INIT',
  checkpoint: 'COLO_CHECKPOINT',
  doCheckpoint: 'DO_CHECKPOINT',
} as const;

const INIT = Buffer.from(XenNotifyMessage.init, 'ascii');
const CHECKPOINT = Buffer.from(XenNotifyMessage.checkpoint, 'ascii');
// Whole frames, built once. libxl reads the length with one unlooped recv(), so each message is written as
// a single buffer (header and text together), never split across writes.
const INIT_REPLY_FRAME = encodeFrame(Buffer.from(XenNotifyMessage.initReply, 'ascii'), false);
const DO_CHECKPOINT_FRAME = encodeFrame(Buffer.from(XenNotifyMessage.doCheckpoint, 'ascii'), false);

export interface XenNotifyCounters {
  inits: number;
  checkpoints: number;
  doCheckpointsSent: number;
  /** DO_CHECKPOINT re-sent to a notify peer that (re)connected while a request was outstanding. */
  doCheckpointsResent: number;
  unknown: number;
  framing: Record<FramingRejectReason, number>;
}

export interface XenNotifyOptions {
  logger: Logger;
  /** COLO_CHECKPOINT arrived: the checkpoint is complete. */
  onCheckpoint: () => void;
  /** Whether a request is still unanswered, asked when a notify peer connects. */
  isOutstanding: () => boolean;
}

/** The notify_dev endpoint: a FrameSink for its socket, and the loop's CheckpointNotifier. */
export class XenNotify implements ChunkSink {
  readonly counters: XenNotifyCounters = {
    inits: 0,
    checkpoints: 0,
    doCheckpointsSent: 0,
    doCheckpointsResent: 0,
    unknown: 0,
    framing: { 'zero-length': 0, oversized: 0, 'vnet-length': 0, truncated: 0 },
  };
  private socket: FramedSocket | null = null;

  constructor(private readonly options: XenNotifyOptions) {}

  /**
   * Binds the notify socket. A request made while no peer is connected is sent when one connects; so is an
   * outstanding one, since a peer that went away may never have read it (a repeated DO_CHECKPOINT only
   * costs libxl one early checkpoint, a lost one can stall the diverged connections).
   */
  attach(socket: FramedSocket): void {
    this.socket = socket;
    socket.on('connect', () => {
      if (this.options.isOutstanding()) {
        this.counters.doCheckpointsResent++;
        this.options.logger.info('notify peer connected while a checkpoint request is outstanding: re-sent');
        socket.write(DO_CHECKPOINT_FRAME);
      }
    });
  }

  requestCheckpoint(): void {
    this.counters.doCheckpointsSent++;
    // Not connected: the 'connect' handler sends it, since the request is then outstanding.
    if (this.socket?.connected === true) this.socket.write(DO_CHECKPOINT_FRAME);
  }

  onFrame(frame: Buffer): void {
    if (frame.equals(CHECKPOINT)) {
      this.counters.checkpoints++;
      this.options.onCheckpoint();
    } else if (frame.equals(INIT)) {
      this.counters.inits++;
      this.options.logger.info('notify: COLO_USERSPACE_PROXY_INIT received, replied COLO_COMPARE_GET_XEN_INIT');
      this.socket?.write(INIT_REPLY_FRAME);
    } else {
      const count = ++this.counters.unknown;
      if ((count & (count - 1)) === 0) {
        this.options.logger.warn(
          { length: frame.length, text: printable(frame), count },
          'notify: unsupported message ignored',
        );
      }
    }
  }

  onReject(reason: FramingRejectReason, length: number): void {
    const count = ++this.counters.framing[reason];
    if ((count & (count - 1)) === 0) {
      const action = reason === 'oversized' ? 'closing the notify connection' : 'skipped';
      this.options.logger.warn({ reason, length, count }, `notify: bad frame (${reason}): ${action}`);
    }
  }

  onChunkEnd(): void {}
}

/** The first bytes of a message, with anything non-printable escaped, for a log line. */
function printable(frame: Buffer): string {
  const limit = 64;
  let out = '';
  for (let i = 0; i < Math.min(frame.length, limit); i++) {
    const c = frame[i];
    out += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return frame.length > limit ? `${out}...` : out;
}
