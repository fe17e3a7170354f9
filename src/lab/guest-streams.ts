/**
 * Where each client connection's request stream stands, so that the lab guest's snapshot holds what a VM's
 * does. A real checkpoint copies the primary's whole kernel, socket buffers included: afterwards the
 * secondary continues every connection from exactly where the primary stood. The lab guest copies only its
 * key-value map, so a request that arrived as a checkpoint began, answered by one guest and not yet by the
 * other, would be lost or applied twice on the secondary after the load. With each connection's position in
 * the snapshot, the loading guest makes up the difference:
 * - it had answered more than the primary: it applies those requests to the loaded state again, silently
 *   (its replies to them are already out, and equal the ones the primary will give);
 * - it had answered fewer: for the next requests it sends the replies the primary gave, without applying
 *   them (the loaded state already holds their effect).
 * Connections are matched by the client's address and port, which both VMs see alike behind the proxy.
 */

/** Answered requests remembered per connection: how far apart two guests can be and still be squared. */
export const STREAM_HISTORY = 64;

/** A reply that was a download body: it cannot be repeated from the snapshot. */
export const DOWNLOAD_REPLY = '\n(download)';

export interface StreamPosition {
  peer: string;
  answered: number;
  /** The replies to the last answered requests, oldest first (null: the request had none). */
  replies: (string | null)[];
}

export function isStreamPosition(value: unknown): value is StreamPosition {
  const p = value as StreamPosition | null;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.peer === 'string' &&
    Number.isSafeInteger(p.answered) &&
    p.answered >= 0 &&
    Array.isArray(p.replies) &&
    p.replies.every((r) => r === null || typeof r === 'string')
  );
}

export class RequestStream {
  answered = 0;
  private readonly lines: string[] = [];
  private readonly replies: (string | null)[] = [];
  /** Replies the primary gave to requests this guest has yet to answer, oldest first. */
  private owed: (string | null)[] = [];

  constructor(readonly peer: string) {}

  record(line: string, reply: string | null): void {
    this.answered++;
    this.lines.push(line);
    this.replies.push(reply);
    if (this.lines.length > STREAM_HISTORY) {
      this.lines.shift();
      this.replies.shift();
    }
  }

  position(): StreamPosition {
    return { peer: this.peer, answered: this.answered, replies: [...this.replies] };
  }

  /**
   * Squares this stream with the primary's after a load. Returns the requests to apply again (this guest was
   * ahead); when it was behind, the primary's replies are kept for takeOwed(). null: a gap wider than the
   * history, left as it is (the caller says so). A download in the way ends the owed replies before it.
   */
  adopt(primary: StreamPosition): string[] | null {
    this.owed = [];
    const ahead = this.answered - primary.answered;
    if (ahead > 0) return ahead <= this.lines.length ? this.lines.slice(-ahead) : null;
    const behind = -ahead;
    if (behind === 0) return [];
    if (behind > primary.replies.length) return null;
    const owed = primary.replies.slice(primary.replies.length - behind);
    const download = owed.indexOf(DOWNLOAD_REPLY);
    this.owed = download === -1 ? owed : owed.slice(0, download);
    return [];
  }

  /** The primary's reply to the next request, if this guest owes one; undefined: answer it normally. */
  takeOwed(): string | null | undefined {
    return this.owed.length === 0 ? undefined : this.owed.shift();
  }
}
