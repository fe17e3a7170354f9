import { EMPTY_BUFFER } from './bytes.js';

/**
 * What every packet view holds: the buffer, where its header starts, and how many bytes are available from
 * there. A view holds nothing else, so one instance is reset onto each frame and nothing is allocated per
 * packet. Each protocol's view adds its field accessors and its own `checkLength()`.
 */
export abstract class WireView {
  constructor(
    public buf: Buffer = EMPTY_BUFFER,
    public offset = 0,
    /** Bytes available from offset (to the end of the frame, or of the enclosing payload). */
    public length = 0,
  ) {}

  reset(buf: Buffer, offset: number, length: number): this {
    this.buf = buf;
    this.offset = offset;
    this.length = length;
    return this;
  }
}
