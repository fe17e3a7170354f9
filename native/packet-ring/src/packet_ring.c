/*
 * N-API side of the packet ring: one PacketRing object per interface. libuv watches the socket; on each
 * wake-up every ready frame is copied into a region of a Buffer that is never reused (see SLAB_BYTES) and
 * JS is called once per batch with (buffer, entries, kernelDrops); the (offset, length) pairs, offsets
 * from the start of that Buffer, go into the Int32Array given at construction.
 */
#include <errno.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "ring.h"

/*
 * Received frames are copied into consecutive regions of a slab Buffer that is never written twice, so a
 * frame stays valid as long as JS holds it. Why a slab and not one Buffer per batch: at small frames a batch
 * is a few kilobytes, and each new Buffer cost a malloc, a backing-store registration and its sweep by the
 * garbage collector, about a tenth of both bench processes' CPU in a profile. A frame a sink keeps pins its
 * whole slab, so slabs stay small; a batch larger than half a slab gets a Buffer of its own.
 */
#ifndef SLAB_BYTES /* -DSLAB_BYTES=0: a Buffer per batch, as before slabs (for A/B measurements) */
#define SLAB_BYTES (256u * 1024u)
#endif
/* Batches per wake-up before yielding to the rest of the event loop (the poll is level-triggered). */
#define ROUNDS_PER_WAKE 8
#define SEND_RESULT_FIELDS 5

typedef struct port {
  ring_t ring;
  napi_env env;
  int32_t *meta;
  uint32_t max_batch;
  napi_ref meta_ref;
  /* Optional: one receive time per meta entry (a Float64Array), or NULL. */
  double *times;
  napi_ref times_ref;
  napi_ref on_batch_ref;
  napi_ref on_writable_ref;
  /* The current slab: its JS Buffer (held until the next slab replaces it), its memory, bytes handed out. */
  napi_ref slab_ref;
  uint8_t *slab_data;
  size_t slab_used;
  napi_async_context async_context;
  uv_poll_t poll;
  int events;
  int open;
  int handle_live;
  int finalized;
} port_t;

#define CHECK(call)                                                                                            \
  do {                                                                                                         \
    if ((call) != napi_ok) return NULL;                                                                        \
  } while (0)

static const char *errno_code(int err) {
  switch (err) {
  case EPERM: return "EPERM";
  case EACCES: return "EACCES";
  case ENODEV: return "ENODEV";
  case ENXIO: return "ENXIO";
  case ENOMEM: return "ENOMEM";
  case EINVAL: return "EINVAL";
  case EBUSY: return "EBUSY";
  case ENETDOWN: return "ENETDOWN";
  case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
  case EAFNOSUPPORT: return "EAFNOSUPPORT";
  default: return "EPACKETRING";
  }
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

static void free_if_done(port_t *p) {
  if (p->finalized && !p->handle_live) free(p);
}

/* Runs on a later loop turn, outside any JS call: the last place that touches the ring and the refs. */
static void on_handle_closed(uv_handle_t *handle) {
  port_t *p = handle->data;
  ring_unmap(&p->ring);
  napi_delete_reference(p->env, p->meta_ref);
  if (p->times_ref != NULL) napi_delete_reference(p->env, p->times_ref);
  napi_delete_reference(p->env, p->on_batch_ref);
  napi_delete_reference(p->env, p->on_writable_ref);
  if (p->slab_ref != NULL) napi_delete_reference(p->env, p->slab_ref);
  napi_async_destroy(p->env, p->async_context);
  p->handle_live = 0;
  free_if_done(p);
}

static void port_close(port_t *p) {
  if (!p->open) return;
  p->open = 0;
  /* uv_close stops the watch at once; the fd goes after it, so libuv never touches a closed (or reused) fd. */
  uv_close((uv_handle_t *)&p->poll, on_handle_closed);
  ring_close_fd(&p->ring);
}

static void call_js(port_t *p, napi_ref ref, size_t argc, napi_value *argv) {
  napi_value fn, recv, result;
  if (napi_get_reference_value(p->env, ref, &fn) != napi_ok || napi_get_global(p->env, &recv) != napi_ok) return;
  if (napi_make_callback(p->env, p->async_context, recv, fn, argc, argv, &result) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(p->env, &error);
    napi_fatal_exception(p->env, error);
  }
}

/* Where a batch of `bytes` goes: *buffer (a JS Buffer), at *at in its memory *data. 0 when out of memory. */
static int batch_memory(port_t *p, size_t bytes, napi_value *buffer, uint8_t **data, size_t *at) {
  void *raw = NULL;
  if (bytes > SLAB_BYTES / 2) {
    if (napi_create_buffer(p->env, bytes, &raw, buffer) != napi_ok) return 0;
    *data = raw;
    *at = 0;
    return 1;
  }
  if (p->slab_ref == NULL || p->slab_used + bytes > SLAB_BYTES) {
    napi_value slab;
    if (napi_create_buffer(p->env, SLAB_BYTES, &raw, &slab) != napi_ok) return 0;
    if (p->slab_ref != NULL) napi_delete_reference(p->env, p->slab_ref);
    p->slab_ref = NULL;
    if (napi_create_reference(p->env, slab, 1, &p->slab_ref) != napi_ok) return 0;
    p->slab_data = raw;
    p->slab_used = 0;
  }
  if (napi_get_reference_value(p->env, p->slab_ref, buffer) != napi_ok) return 0;
  *data = p->slab_data;
  *at = p->slab_used;
  p->slab_used += bytes;
  return 1;
}

static void drain(port_t *p) {
  for (int round = 0; round < ROUNDS_PER_WAKE && p->open; round++) {
    ring_scan_t scan;
    ring_scan(&p->ring, p->max_batch, &scan);
    if (scan.slots == 0) return;
    if (scan.losing) ring_read_stats(&p->ring);
    napi_value argv[3];
    uint8_t *data = NULL;
    size_t at = 0;
    if (!batch_memory(p, scan.bytes, &argv[0], &data, &at)) return;
    uint32_t entries = ring_take(&p->ring, scan.slots, data, at, p->meta, p->times);
    if (entries > 0) {
      napi_create_uint32(p->env, entries, &argv[1]);
      napi_create_double(p->env, (double)p->ring.kernel_drops, &argv[2]);
      call_js(p, p->on_batch_ref, 3, argv);
    }
    if (scan.slots < p->max_batch) return;
  }
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  port_t *p = handle->data;
  if (!p->open) return;
  if (status < 0) events = UV_READABLE | (p->events & UV_WRITABLE);
  napi_handle_scope scope;
  if (napi_open_handle_scope(p->env, &scope) != napi_ok) return;
  if ((events & UV_WRITABLE) && (p->events & UV_WRITABLE)) {
    p->events &= ~UV_WRITABLE;
    uv_poll_start(&p->poll, p->events, on_poll);
    call_js(p, p->on_writable_ref, 0, NULL);
  }
  if ((events & UV_READABLE) && p->open) drain(p);
  napi_close_handle_scope(p->env, scope);
}

static void finalize(napi_env env, void *data, void *hint) {
  port_t *p = data;
  p->finalized = 1;
  port_close(p);
  free_if_done(p);
}

static port_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok) return NULL;
  return data;
}

static int get_int32_array(napi_env env, napi_value value, int32_t **data, size_t *length) {
  napi_typedarray_type type;
  void *raw;
  if (napi_get_typedarray_info(env, value, &type, length, &raw, NULL, NULL) != napi_ok) return 0;
  if (type != napi_int32_array) return 0;
  *data = raw;
  return 1;
}

/* new PacketRing(iface, frameSize, frameCount, qdiscBypass, sndbufBytes, meta: Int32Array, onBatch, onWritable,
                  times?: Float64Array) */
static napi_value construct(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9], self;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (argc < 8) return throw_type(env, "PacketRing takes 8 or 9 arguments");
  char ifname[32];
  size_t ifname_len;
  if (napi_get_value_string_utf8(env, argv[0], ifname, sizeof ifname, &ifname_len) != napi_ok)
    return throw_type(env, "iface must be a string");
  uint32_t frame_size, frame_count;
  int32_t sndbuf;
  bool bypass;
  if (napi_get_value_uint32(env, argv[1], &frame_size) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &frame_count) != napi_ok ||
      napi_get_value_bool(env, argv[3], &bypass) != napi_ok || napi_get_value_int32(env, argv[4], &sndbuf) != napi_ok)
    return throw_type(env, "frameSize, frameCount: numbers; qdiscBypass: boolean; sndbufBytes: number");
  int32_t *meta;
  size_t meta_length;
  if (!get_int32_array(env, argv[5], &meta, &meta_length) || meta_length < 2)
    return throw_type(env, "meta must be an Int32Array of at least 2 elements");
  double *times = NULL;
  napi_valuetype t9 = napi_undefined;
  if (argc > 8) CHECK(napi_typeof(env, argv[8], &t9));
  if (t9 != napi_undefined && t9 != napi_null) {
    napi_typedarray_type type;
    size_t times_length;
    void *raw;
    if (napi_get_typedarray_info(env, argv[8], &type, &times_length, &raw, NULL, NULL) != napi_ok ||
        type != napi_float64_array || times_length < meta_length / 2)
      return throw_type(env, "times must be a Float64Array with one element per meta pair");
    times = raw;
  }
  napi_valuetype t1, t2;
  CHECK(napi_typeof(env, argv[6], &t1));
  CHECK(napi_typeof(env, argv[7], &t2));
  if (t1 != napi_function || t2 != napi_function) return throw_type(env, "onBatch and onWritable must be functions");

  port_t *p = calloc(1, sizeof *p);
  if (p == NULL) {
    napi_throw_error(env, "ENOMEM", "packet-ring: out of memory");
    return NULL;
  }
  const char *step = "";
  int err = ring_open(&p->ring, ifname, frame_size, frame_count, bypass, sndbuf, &step);
  if (err != 0) {
    char message[256];
    snprintf(message, sizeof message, "packet-ring: %s on %s: %s", step, ifname, strerror(err));
    free(p);
    napi_throw_error(env, errno_code(err), message);
    return NULL;
  }
  p->env = env;
  p->meta = meta;
  p->times = times;
  if (times != NULL) napi_create_reference(env, argv[8], 1, &p->times_ref);
  p->max_batch = (uint32_t)(meta_length / 2);
  uv_loop_t *loop;
  napi_value name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &p->poll, p->ring.fd) != 0) {
    ring_close_fd(&p->ring);
    ring_unmap(&p->ring);
    free(p);
    napi_throw_error(env, "EPACKETRING", "packet-ring: cannot watch the socket");
    return NULL;
  }
  p->poll.data = p;
  p->handle_live = 1;
  p->open = 1;
  napi_create_reference(env, argv[5], 1, &p->meta_ref);
  napi_create_reference(env, argv[6], 1, &p->on_batch_ref);
  napi_create_reference(env, argv[7], 1, &p->on_writable_ref);
  napi_create_string_utf8(env, "PacketRing", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &p->async_context);
  if (napi_wrap(env, self, p, finalize, NULL, NULL) != napi_ok) {
    port_close(p);
    return NULL;
  }
  p->events = UV_READABLE;
  uv_poll_start(&p->poll, p->events, on_poll);
  return self;
}

/* sendBatch(buffer, meta: Int32Array, first, count, result: Float64Array(5)) -> frames done */
static napi_value send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], out;
  port_t *p = unwrap(env, info, &argc, argv);
  if (p == NULL || argc < 5) return throw_type(env, "sendBatch(buffer, meta, first, count, result)");
  void *buf;
  size_t buf_len, meta_length, result_length;
  int32_t *meta;
  uint32_t first, count;
  napi_typedarray_type type;
  void *result_raw;
  if (napi_get_buffer_info(env, argv[0], &buf, &buf_len) != napi_ok || !get_int32_array(env, argv[1], &meta, &meta_length) ||
      napi_get_value_uint32(env, argv[2], &first) != napi_ok || napi_get_value_uint32(env, argv[3], &count) != napi_ok ||
      napi_get_typedarray_info(env, argv[4], &type, &result_length, &result_raw, NULL, NULL) != napi_ok ||
      type != napi_float64_array || result_length < SEND_RESULT_FIELDS)
    return throw_type(env, "sendBatch(buffer: Buffer, meta: Int32Array, first, count, result: Float64Array(5))");
  if ((size_t)first + count > meta_length / 2) return throw_type(env, "sendBatch: first + count exceeds meta");
  ring_send_result_t res = {0};
  if (p->open) ring_send_batch(&p->ring, buf, buf_len, meta + 2 * (size_t)first, count, &res);
  else res.blocked_errno = EBADF;
  double *result = result_raw;
  result[0] = res.done;
  result[1] = res.failed;
  result[2] = res.blocked_errno;
  result[3] = res.failed_errno;
  result[4] = (double)res.bytes;
  CHECK(napi_create_uint32(env, res.done, &out));
  return out;
}

/* sendOne(buffer, offset, length) -> 0 or an errno */
static napi_value send_one(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  port_t *p = unwrap(env, info, &argc, argv);
  void *buf;
  size_t buf_len;
  uint32_t offset, length;
  if (p == NULL || argc < 3 || napi_get_buffer_info(env, argv[0], &buf, &buf_len) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &offset) != napi_ok || napi_get_value_uint32(env, argv[2], &length) != napi_ok)
    return throw_type(env, "sendOne(buffer, offset, length)");
  int err = EBADF;
  if ((size_t)offset + length > buf_len) err = EINVAL;
  else if (p->open) err = ring_send_one(&p->ring, (const uint8_t *)buf + offset, length);
  CHECK(napi_create_int32(env, err, &out));
  return out;
}

static napi_value watch_writable(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  port_t *p = unwrap(env, info, &argc, NULL);
  if (p != NULL && p->open && !(p->events & UV_WRITABLE)) {
    p->events |= UV_WRITABLE;
    uv_poll_start(&p->poll, p->events, on_poll);
  }
  return NULL;
}

static void set_number(napi_env env, napi_value object, const char *key, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, object, key, v);
}

static napi_value stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value out;
  port_t *p = unwrap(env, info, &argc, NULL);
  if (p == NULL) return NULL;
  if (p->open) ring_read_stats(&p->ring);
  CHECK(napi_create_object(env, &out));
  set_number(env, out, "kernelPackets", (double)p->ring.kernel_packets);
  set_number(env, out, "kernelDrops", (double)p->ring.kernel_drops);
  set_number(env, out, "outgoingSkipped", (double)p->ring.outgoing_skipped);
  set_number(env, out, "frameSize", p->ring.frame_size);
  set_number(env, out, "frameCount", p->ring.frame_count);
  set_number(env, out, "qdiscBypass", p->ring.qdisc_bypass);
  set_number(env, out, "ignoreOutgoing", p->ring.ignore_outgoing);
  return out;
}

static napi_value close_port(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  port_t *p = unwrap(env, info, &argc, NULL);
  if (p != NULL) {
    /* The last counts, before the socket goes. */
    if (p->open) ring_read_stats(&p->ring);
    port_close(p);
  }
  return NULL;
}

/* clockUs() -> CLOCK_REALTIME in microseconds: the clock of the receive times. */
static napi_value clock_us(napi_env env, napi_callback_info info) {
  struct timespec ts;
  napi_value out;
  clock_gettime(CLOCK_REALTIME, &ts);
  CHECK(napi_create_double(env, (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"sendBatch", NULL, send_batch, NULL, NULL, NULL, napi_default, NULL},
      {"sendOne", NULL, send_one, NULL, NULL, NULL, napi_default, NULL},
      {"watchWritable", NULL, watch_writable, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_port, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  CHECK(napi_define_class(env, "PacketRing", NAPI_AUTO_LENGTH, construct, NULL, sizeof methods / sizeof methods[0],
                          methods, &cls));
  CHECK(napi_set_named_property(env, exports, "PacketRing", cls));
  napi_value clock;
  CHECK(napi_create_function(env, "clockUs", NAPI_AUTO_LENGTH, clock_us, NULL, &clock));
  CHECK(napi_set_named_property(env, exports, "clockUs", clock));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
