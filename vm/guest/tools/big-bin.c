/*
 * Writes big.bin to standard output: 16 MiB from a splitmix64 sequence with a fixed seed. The guest runs it
 * at boot (shipping the bytes would add 16 MiB to the initramfs) and the builder runs the same binary on the
 * host to record the SHA-256. No libc: raw system calls keep the static binary a few KiB.
 */
typedef unsigned long u64;

#define SYS_WRITE 1
#define SYS_EXIT 60
#define TOTAL_BYTES (16UL << 20)
#define CHUNK_WORDS 8192

static long syscall3(long number, long a, long b, long c) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(number), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}

static u64 chunk[CHUNK_WORDS];

static int write_all(const char *bytes, u64 length) {
  while (length > 0) {
    long written = syscall3(SYS_WRITE, 1, (long)bytes, (long)length);
    if (written <= 0) return 1;
    bytes += written;
    length -= (u64)written;
  }
  return 0;
}

void _start(void) {
  u64 state = 0x436f6c6f47756573UL;
  int failed = 0;
  for (u64 done = 0; done < TOTAL_BYTES && !failed; done += sizeof chunk) {
    for (int i = 0; i < CHUNK_WORDS; i++) {
      u64 z = (state += 0x9e3779b97f4a7c15UL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
      chunk[i] = z ^ (z >> 31);
    }
    failed = write_all((const char *)chunk, sizeof chunk);
  }
  syscall3(SYS_EXIT, failed, 0, 0);
  for (;;) {
  }
}
