import type { DivergenceWindow, FrameWindow } from '../stats/divergence-record.js';
import { esc } from './format.js';

const BYTES_PER_LINE = 16;
/** Printable ASCII shown beside the hex; everything else is a dot. */
const printable = (byte: number): string => (byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : '.');

/**
 * A divergence's byte window as a small hex dump, one block per side, the first differing byte marked:
 *
 *   P 0x0055  4a 61 6e 20 32 30 32 36 20 30 30 3a 30 30 3a 30  Jan 2026 00:00:0
 *     0x0065  <mark>30</mark> 20 47 4d 54 0d 0a 53 65 72 76 65 72 3a 20 63  <mark>0</mark> GMT..Server: c
 *
 * Offsets count from the frame's Ethernet header. Empty when the record has no window. The hex comes from
 * the record, which only ever holds [0-9a-f]; it is checked all the same, since a summary file may be edited.
 */
export function hexWindow(window: DivergenceWindow | null): string {
  if (window === null) return '';
  const blocks = [side('P', window.primary), side('S', window.secondary)].filter((b) => b !== '');
  return blocks.length === 0 ? '' : `<pre class="hex">${blocks.join('\n')}</pre>`;
}

function side(label: string, w: FrameWindow | null): string {
  if (w === null || !/^(?:[0-9a-f]{2})*$/.test(w.hex) || !Number.isInteger(w.offset) || !Number.isInteger(w.at)) {
    return '';
  }
  const bytes = Buffer.from(w.hex, 'hex');
  const marked = w.at - w.offset;
  // One slot more when the side ended at the differing byte: the mark says where.
  const slots = marked === bytes.length ? bytes.length + 1 : bytes.length;
  const lines: string[] = [];
  for (let i = 0; i < slots; i += BYTES_PER_LINE) {
    const hex: string[] = [];
    let text = '';
    for (let k = i; k < i + BYTES_PER_LINE; k++) {
      if (k >= bytes.length) {
        // A side that ended before the differing byte (a shorter datagram): mark where it ends.
        hex.push(k === marked ? '<mark title="the frame ends here">--</mark>' : '  ');
        continue;
      }
      const digits = bytes.toString('hex', k, k + 1);
      const char = esc(printable(bytes[k]));
      hex.push(k === marked ? `<mark>${digits}</mark>` : digits);
      text += k === marked ? `<mark class="ch">${char}</mark>` : char;
    }
    const prefix = i === 0 ? `<span class="side">${label}</span>` : ' ';
    const offset = `0x${(w.offset + i).toString(16).padStart(4, '0')}`;
    lines.push(`${prefix} <span class="off">${offset}</span>  ${hex.join(' ')}  <span class="ascii">${text}</span>`);
  }
  return lines.join('\n');
}
