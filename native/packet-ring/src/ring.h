/*
 * An AF_PACKET socket bound to one interface: a TPACKET_V2 receive ring read in batches, and batched
 * sends through sendmmsg. No Node types here: packet_ring.c is the N-API side.
 */
#ifndef COLO_PACKET_RING_H
#define COLO_PACKET_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct ring {
  int fd;
  uint8_t *map;
  size_t map_len;
  uint32_t frame_size;
  uint32_t frame_count;
  /* The next slot to read: the kernel fills slots in order, so this is the oldest unread frame. */
  uint32_t head;
  /* Cumulative PACKET_STATISTICS (the kernel resets its own on every read). */
  uint64_t kernel_packets;
  uint64_t kernel_drops;
  /* Frames this host sent out of the interface, skipped where PACKET_IGNORE_OUTGOING is missing. */
  uint64_t outgoing_skipped;
  int qdisc_bypass;
  int ignore_outgoing;
} ring_t;

/* What a scan found ready: `slots` consecutive slots from head, `bytes` to copy out of them. */
typedef struct ring_scan {
  uint32_t slots;
  uint32_t entries;
  size_t bytes;
  int losing;
} ring_scan_t;

typedef struct ring_send_result {
  /* Frames dealt with, from the first: sent, or failed for good (counted in `failed`). */
  uint32_t done;
  uint32_t failed;
  /* EAGAIN or ENOBUFS when the kernel had no room for frame `done`: the caller retries from there. */
  int blocked_errno;
  /* The errno of the last frame that failed for good (EMSGSIZE, ENETDOWN, ...). */
  int failed_errno;
  uint64_t bytes;
} ring_send_result_t;

/* Meta entry for a frame that did not fit its slot: offset RING_TRUNCATED, length = its wire length. */
#define RING_TRUNCATED (-1)

/* Returns 0, or an errno with *step naming the call that failed. */
int ring_open(ring_t *r, const char *ifname, uint32_t frame_size, uint32_t frame_count, int qdisc_bypass,
              int sndbuf_bytes, const char **step);
/* Closes the socket; the ring stays mapped until ring_unmap (a batch being handed out may still read it). */
void ring_close_fd(ring_t *r);
void ring_unmap(ring_t *r);

void ring_scan(ring_t *r, uint32_t max_slots, ring_scan_t *out);
/*
 * Copies the scanned slots to dst + at, fills meta with (offset from dst, length) pairs and, when times is
 * not NULL, times with each frame's kernel receive time (CLOCK_REALTIME, microseconds); hands the slots back.
 */
uint32_t ring_take(ring_t *r, uint32_t slots, uint8_t *dst, size_t at, int32_t *meta, double *times);
int ring_read_stats(ring_t *r);

void ring_send_batch(ring_t *r, const uint8_t *buf, size_t buf_len, const int32_t *meta, uint32_t count,
                     ring_send_result_t *res);
/* 0, or the errno of the failed send. */
int ring_send_one(ring_t *r, const uint8_t *frame, size_t len);

#endif
