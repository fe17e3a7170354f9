#include "ring.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* 64 KiB blocks: small enough to allocate without a high-order page run, large enough to hold 32 slots. */
#define RING_BLOCK_BYTES (1u << 16)
#define SEND_CHUNK 64
#define ETH_HEADER 14
#define MAC_ADDRESSES 12
#define VLAN_TAG 4

static inline struct tpacket2_hdr *slot_at(const ring_t *r, uint32_t index) {
  return (struct tpacket2_hdr *)(r->map + (size_t)index * r->frame_size);
}

static inline uint32_t slot_status(const struct tpacket2_hdr *h) {
  return __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
}

static inline const struct sockaddr_ll *slot_address(const struct tpacket2_hdr *h) {
  return (const struct sockaddr_ll *)((const uint8_t *)h + TPACKET_ALIGN(sizeof(struct tpacket2_hdr)));
}

static inline int slot_has_vlan(uint32_t status) { return (status & TP_STATUS_VLAN_VALID) != 0; }

/* A frame this host sent: only seen when the kernel lacks PACKET_IGNORE_OUTGOING. */
static inline int slot_is_outgoing(const struct tpacket2_hdr *h) {
  return slot_address(h)->sll_pkttype == PACKET_OUTGOING;
}

static int fail(int *saved, const char **step, const char *name) {
  *saved = errno;
  *step = name;
  return *saved;
}

int ring_open(ring_t *r, const char *ifname, uint32_t frame_size, uint32_t frame_count, int qdisc_bypass,
              int sndbuf_bytes, const char **step) {
  int err = 0;
  memset(r, 0, sizeof *r);
  r->fd = -1;
  if (frame_size < 256 || (frame_size & (frame_size - 1)) != 0 || frame_count == 0) {
    *step = "ring geometry (frame size a power of two >= 256, at least one frame)";
    return EINVAL;
  }
  uint32_t block = frame_size > RING_BLOCK_BYTES ? frame_size : RING_BLOCK_BYTES;
  uint32_t per_block = block / frame_size;
  uint32_t blocks = (frame_count + per_block - 1) / per_block;

  unsigned int ifindex = if_nametoindex(ifname);
  if (ifindex == 0) return fail(&err, step, "if_nametoindex");

  /* Protocol 0: the socket receives nothing until bind, so no frame of another interface slips in. */
  r->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (r->fd < 0) return fail(&err, step, "socket(AF_PACKET)");

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(r->fd, SIOCGIFHWADDR, &ifr) < 0) goto failed_ioctl;
  if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
    *step = "link type (not an Ethernet interface)";
    err = EPROTONOSUPPORT;
    goto failed;
  }

  int version = TPACKET_V2;
  if (setsockopt(r->fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0) {
    fail(&err, step, "setsockopt(PACKET_VERSION, TPACKET_V2)");
    goto failed;
  }
  int one = 1;
  /* Older kernels lack it: outgoing frames are then skipped by their sll_pkttype while reading. */
  r->ignore_outgoing = setsockopt(r->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) == 0;
  if (qdisc_bypass) r->qdisc_bypass = setsockopt(r->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) == 0;
  if (sndbuf_bytes > 0) {
    /* A bigger send buffer means fewer EAGAIN stalls on a burst; FORCE needs CAP_NET_ADMIN, else the
       sysctl cap applies. */
    if (setsockopt(r->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf_bytes, sizeof sndbuf_bytes) < 0)
      (void)setsockopt(r->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf_bytes, sizeof sndbuf_bytes);
  }

  struct tpacket_req req = {
      .tp_block_size = block,
      .tp_block_nr = blocks,
      .tp_frame_size = frame_size,
      .tp_frame_nr = blocks * per_block,
  };
  if (setsockopt(r->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) {
    fail(&err, step, "setsockopt(PACKET_RX_RING)");
    goto failed;
  }
  r->frame_size = frame_size;
  r->frame_count = req.tp_frame_nr;
  r->map_len = (size_t)block * blocks;
  void *map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, 0);
  if (map == MAP_FAILED) {
    fail(&err, step, "mmap(rx ring)");
    goto failed;
  }
  r->map = map;

  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)ifindex;
  if (bind(r->fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
    fail(&err, step, "bind");
    goto failed;
  }
  return 0;

failed_ioctl:
  fail(&err, step, "ioctl(SIOCGIFHWADDR)");
failed:
  ring_close_fd(r);
  ring_unmap(r);
  return err;
}

void ring_close_fd(ring_t *r) {
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
}

void ring_unmap(ring_t *r) {
  if (r->map != NULL) munmap(r->map, r->map_len);
  r->map = NULL;
}

void ring_scan(ring_t *r, uint32_t max_slots, ring_scan_t *out) {
  memset(out, 0, sizeof *out);
  uint32_t index = r->head;
  while (out->slots < max_slots) {
    const struct tpacket2_hdr *h = slot_at(r, index);
    uint32_t status = slot_status(h);
    if ((status & TP_STATUS_USER) == 0) break;
    if (status & TP_STATUS_LOSING) out->losing = 1;
    out->slots++;
    if (++index == r->frame_count) index = 0;
    if (slot_is_outgoing(h)) continue;
    out->entries++;
    if (h->tp_snaplen < h->tp_len) continue; /* truncated: reported, not copied */
    out->bytes += h->tp_snaplen + (slot_has_vlan(status) ? VLAN_TAG : 0);
  }
}

/* Writes the 802.1Q tag the NIC (or veth) moved into the slot header back between the MAC addresses. */
static uint32_t copy_with_vlan(uint8_t *dst, const uint8_t *src, uint32_t len, const struct tpacket2_hdr *h,
                               uint32_t status) {
  if (len < MAC_ADDRESSES) {
    memcpy(dst, src, len);
    return len;
  }
  uint16_t tpid = (status & TP_STATUS_VLAN_TPID_VALID) && h->tp_vlan_tpid != 0 ? h->tp_vlan_tpid : ETH_P_8021Q;
  uint16_t tag[2] = {htons(tpid), htons(h->tp_vlan_tci)};
  memcpy(dst, src, MAC_ADDRESSES);
  memcpy(dst + MAC_ADDRESSES, tag, VLAN_TAG);
  memcpy(dst + MAC_ADDRESSES + VLAN_TAG, src + MAC_ADDRESSES, len - MAC_ADDRESSES);
  return len + VLAN_TAG;
}

uint32_t ring_take(ring_t *r, uint32_t slots, uint8_t *dst, size_t at, int32_t *meta, double *times) {
  uint32_t entries = 0;
  size_t offset = at;
  for (uint32_t n = 0; n < slots; n++) {
    struct tpacket2_hdr *h = slot_at(r, r->head);
    uint32_t status = slot_status(h);
    int outgoing = slot_is_outgoing(h);
    if (!outgoing && times != NULL) times[entries] = (double)h->tp_sec * 1e6 + (double)h->tp_nsec / 1e3;
    if (outgoing) {
      r->outgoing_skipped++;
    } else if (h->tp_snaplen < h->tp_len) {
      meta[2 * entries] = RING_TRUNCATED;
      meta[2 * entries + 1] = (int32_t)(h->tp_len + (slot_has_vlan(status) ? VLAN_TAG : 0));
      entries++;
    } else {
      const uint8_t *data = (const uint8_t *)h + h->tp_mac;
      uint32_t len = slot_has_vlan(status) ? copy_with_vlan(dst + offset, data, h->tp_snaplen, h, status)
                                           : (memcpy(dst + offset, data, h->tp_snaplen), h->tp_snaplen);
      meta[2 * entries] = (int32_t)offset;
      meta[2 * entries + 1] = (int32_t)len;
      offset += len;
      entries++;
    }
    /* Release: the copy above must be complete before the kernel may reuse the slot. */
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    if (++r->head == r->frame_count) r->head = 0;
  }
  return entries;
}

int ring_read_stats(ring_t *r) {
  struct tpacket_stats stats;
  socklen_t len = sizeof stats;
  if (r->fd < 0) return EBADF;
  if (getsockopt(r->fd, SOL_PACKET, PACKET_STATISTICS, &stats, &len) < 0) return errno;
  r->kernel_packets += stats.tp_packets;
  r->kernel_drops += stats.tp_drops;
  return 0;
}

static int frame_ok(size_t buf_len, int32_t offset, int32_t len) {
  return offset >= 0 && len >= ETH_HEADER && (size_t)offset + (size_t)len <= buf_len;
}

void ring_send_batch(ring_t *r, const uint8_t *buf, size_t buf_len, const int32_t *meta, uint32_t count,
                     ring_send_result_t *res) {
  struct mmsghdr msgs[SEND_CHUNK];
  struct iovec iov[SEND_CHUNK];
  memset(res, 0, sizeof *res);
  while (res->done < count) {
    uint32_t chunk = 0;
    while (chunk < SEND_CHUNK && res->done + chunk < count) {
      uint32_t i = res->done + chunk;
      int32_t offset = meta[2 * i];
      int32_t len = meta[2 * i + 1];
      if (!frame_ok(buf_len, offset, len)) break;
      iov[chunk].iov_base = (void *)(buf + offset);
      iov[chunk].iov_len = (size_t)len;
      memset(&msgs[chunk], 0, sizeof msgs[chunk]);
      msgs[chunk].msg_hdr.msg_iov = &iov[chunk];
      msgs[chunk].msg_hdr.msg_iovlen = 1;
      chunk++;
    }
    if (chunk == 0) {
      /* The first frame's offset or length is out of bounds: it fails alone, the rest go on. */
      res->failed++;
      res->failed_errno = EINVAL;
      res->done++;
      continue;
    }
    int sent = r->fd < 0 ? (errno = EBADF, -1) : sendmmsg(r->fd, msgs, chunk, MSG_DONTWAIT);
    if (sent > 0) {
      for (int k = 0; k < sent; k++) res->bytes += iov[k].iov_len;
      res->done += (uint32_t)sent;
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    if (sent == 0 || errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      res->blocked_errno = sent == 0 ? EAGAIN : errno;
      return;
    }
    /* sendmmsg reports an error only for the first frame of a call: that frame fails for good. */
    res->failed_errno = errno;
    res->failed++;
    res->done++;
  }
}

int ring_send_one(ring_t *r, const uint8_t *frame, size_t len) {
  if (r->fd < 0) return EBADF;
  for (;;) {
    ssize_t sent = send(r->fd, frame, len, MSG_DONTWAIT);
    if (sent >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}
