/** Cut `stream` at the given points (taken modulo its length) into [offset, bytes] segments, in stream order. */
export function cut(stream: Buffer, cuts: number[]): { offset: number; bytes: Buffer }[] {
  const points = [...new Set(cuts.map((c) => c % stream.length))].filter((c) => c > 0).sort((a, b) => a - b);
  const segments = [];
  let from = 0;
  for (const to of [...points, stream.length]) {
    segments.push({ offset: from, bytes: stream.subarray(from, to) });
    from = to;
  }
  return segments;
}
