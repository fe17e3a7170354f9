import type { DivergenceWindow, FrameWindow } from '../stats/divergence-record.js';

const BYTES_PER_LINE = 16;

/**
 * A divergence's byte window as a small hex dump, one block per side, the first differing byte marked:
 *
 *   P 0x0036  48 54 54 50 2f 31 2e 31 20 32 30 30 20 4f 4b 0d
 *     0x0046  0a 44 61 74 65 3a 20 <mark>31</mark> ...
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
  const bytes = w.hex.match(/../g) ?? [];
  const cells = bytes.map((b, i) => (w.offset + i === w.at ? `<mark>${b}</mark>` : b));
  // A side that ended before the differing byte (a shorter datagram): mark where it ends.
  if (w.at === w.offset + bytes.length) cells.push('<mark title="the frame ends here">end</mark>');
  const lines: string[] = [];
  for (let i = 0; i < cells.length; i += BYTES_PER_LINE) {
    const prefix = i === 0 ? `<span class="side">${label}</span>` : ' ';
    const offset = `0x${(w.offset + i).toString(16).padStart(4, '0')}`;
    lines.push(`${prefix} <span class="off">${offset}</span>  ${cells.slice(i, i + BYTES_PER_LINE).join(' ')}`);
  }
  return lines.join('\n');
}
