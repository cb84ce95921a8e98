/*
 * The data path of livery's TFTP server: once a read request is accepted (in TypeScript), the
 * DATA/ACK exchange of the transfer runs here, on one engine thread per Node environment that
 * waits on every transfer socket with epoll.
 *
 * Why native: at windowsize 1 each block is a round trip (ACK in, DATA out), so the server's CPU
 * per packet is the transfer's speed. Node's dgram path costs 35-40 us of CPU per block (a 64 KiB
 * receive buffer, a remote-info object and a JS callback per packet); tftpd-hpa needs 16 us. Here
 * a block costs a recvfrom, a memcpy and a sendto, and no transfer waits on the JS event loop.
 *
 * The protocol is the one RFC 1350/2347/7440 describe, as a state machine over sequence numbers:
 * 0 is the OACK (if any), 1.. are DATA blocks; on the wire a block number is the sequence number
 * modulo 65536, so files beyond 65535 blocks roll over. An ACK for k acknowledges everything up
 * to k and the window restarts at k+1, which covers full windows, partial ones and windowsize 1.
 * An ACK that acknowledges nothing new never sends anything (no Sorcerer's Apprentice storm);
 * lost packets are recovered by our own timer, with exponential backoff.
 *
 * Ownership: start() creates the socket and dups the file descriptor on the calling thread and
 * hands the transfer to the engine through a locked inbox; from then on only the engine thread
 * touches it, until its outcome is posted back to JS through a thread-safe function.
 */
#define _GNU_SOURCE
#include "engine.h"

#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <sys/socket.h>

enum { OP_RRQ = 1, OP_DATA = 3, OP_ACK = 4, OP_ERROR = 5, OP_OACK = 6 };
enum { ERR_NOT_DEFINED = 0, ERR_UNKNOWN_TID = 5 };

/* Caps the backoff at 32 times the base timeout (tftpd-hpa's last wait with its default six tries). */
#define MAX_BACKOFF_DOUBLINGS 5
#define DETAIL_MAX 200

/* Why a packet that reached a transfer socket was dropped; names match the TypeScript codec's. */
enum drop { DROP_UNKNOWN_TID, DROP_TOO_SHORT, DROP_TRAILING, DROP_UNTERMINATED, DROP_UNEXPECTED, DROP_UNKNOWN_OPCODE, DROP_KINDS };
static const char *const DROP_NAMES[DROP_KINDS] = {
    "unknown-tid", "too-short", "trailing-bytes", "unterminated-string", "unexpected-opcode", "unknown-opcode",
};

enum result { RESULT_OK, RESULT_TIMEOUT, RESULT_ABORTED_BY_CLIENT, RESULT_ERROR };
static const char *const RESULT_NAMES[] = {"ok", "timeout", "aborted-by-client", "error"};

typedef struct transfer {
  uint32_t id;
  int sock;
  struct sockaddr_storage peer;
  socklen_t peer_len;

  /* The bytes to send: a file read with pread in chunks of `read_ahead`, or a copied buffer. */
  int file_fd;
  uint8_t *raw;      /* current chunk (the whole buffer for in-memory content) */
  size_t raw_len, raw_at;
  size_t read_ahead;
  uint64_t size, position; /* position: file offset of the next read */
  int buffer_given;        /* in-memory content: the one chunk has been handed out */
  int netascii;
  int carry; /* netascii: second byte of a CR LF / CR NUL pair that did not fit the last block, or -1 */

  uint32_t blksize, windowsize, retries;
  double timeout_ms;
  uint8_t *oack;
  size_t oack_len;

  /* Prepared DATA packets of the window, indexed by (seq - 1) % windowsize, kept for retransmission. */
  uint8_t *ring;
  uint32_t *ring_len;
  int64_t base;         /* oldest unacknowledged sequence number */
  int64_t next_to_send; /* next sequence number to put on the wire */
  int64_t highest_sent; /* sending at or below it again is a retransmission */
  int64_t prepared_end; /* first sequence number not yet read into the ring */
  int64_t last_seq;     /* the short final block, once read; INT64_MAX before */

  uint32_t timeouts; /* timeouts in a row without progress */
  double deadline, retransmitted_at;
  /* The server's bound on a silent peer, whatever timeout it negotiated: no deadline falls later
   * than silence_limit_ms after the last progress (the start, or an ACK that advanced). */
  double silence_limit_ms, progress_at;

  uint64_t acked_bytes;
  /* Written by the engine thread with relaxed atomics, so JS can read them while the transfer runs. */
  uint64_t data_bytes_sent, retransmissions;
  uint64_t dropped[DROP_KINDS];

  int done;
  enum result result;
  char detail[DETAIL_MAX];
  int abort_requested;
  char abort_message[DETAIL_MAX];
} transfer;

typedef struct engine {
  engine_core core;
  uint32_t *aborts; /* ids whose abort was asked for, with their messages in abort_messages; guarded by core.lock */
  char (*abort_messages)[DETAIL_MAX];
  size_t aborts_len, aborts_cap;

  /* Engine thread only. */
  transfer **live;
  size_t live_len, live_cap;
  double earliest; /* no deadline is before this; a scan is due when it passes */
} engine;

/* ---- wire ---------------------------------------------------------------------------------- */

static void put16(uint8_t *at, unsigned value) {
  at[0] = (uint8_t)(value >> 8);
  at[1] = (uint8_t)value;
}

static unsigned get16(const uint8_t *at) { return ((unsigned)at[0] << 8) | at[1]; }

static void send_error_to(int sock, const struct sockaddr *to, socklen_t to_len, unsigned code, const char *message) {
  uint8_t packet[4 + DETAIL_MAX + 1];
  size_t length = strnlen(message, DETAIL_MAX);
  put16(packet, OP_ERROR);
  put16(packet + 2, code);
  memcpy(packet + 4, message, length);
  packet[4 + length] = 0;
  /* A failed send is a lost packet; the peer's own timer deals with it. */
  (void)sendto(sock, packet, 5 + length, MSG_DONTWAIT, to, to_len);
}

static int same_peer(const transfer *t, const struct sockaddr_storage *from) {
  if (from->ss_family != t->peer.ss_family) return 0;
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const void *)from, *b = (const void *)&t->peer;
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *a = (const void *)from, *b = (const void *)&t->peer;
  return a->sin6_port == b->sin6_port && memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
}

/* ---- the bytes of a transfer --------------------------------------------------------------- */

/* Makes raw[raw_at..raw_len) the next chunk; an empty chunk means the end. -1 with errno on a read error. */
static int refill(transfer *t) {
  t->raw_at = 0;
  if (t->file_fd < 0) {
    t->raw_len = t->buffer_given ? 0 : (size_t)t->size;
    t->buffer_given = 1;
    return 0;
  }
  size_t want = t->size - t->position < t->read_ahead ? (size_t)(t->size - t->position) : t->read_ahead;
  size_t got = 0;
  while (got < want) {
    ssize_t n = pread(t->file_fd, t->raw + got, want - got, (off_t)(t->position + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break; /* the file shrank under us: the transfer ends where the file now ends */
    got += (size_t)n;
  }
  if (got < want) t->size = t->position + got;
  t->position += got;
  t->raw_len = got;
  return 0;
}

/* Fills up to `capacity` payload bytes; fewer only at the end. Netascii: LF -> CR LF, CR -> CR NUL. */
static ssize_t fill_block(transfer *t, uint8_t *out, size_t capacity) {
  size_t n = 0;
  if (t->carry >= 0 && n < capacity) {
    out[n++] = (uint8_t)t->carry;
    t->carry = -1;
  }
  while (n < capacity) {
    if (t->raw_at == t->raw_len) {
      if (refill(t) < 0) return -1;
      if (t->raw_len == 0) break;
    }
    if (!t->netascii) {
      size_t k = capacity - n < t->raw_len - t->raw_at ? capacity - n : t->raw_len - t->raw_at;
      memcpy(out + n, t->raw + t->raw_at, k);
      n += k;
      t->raw_at += k;
      continue;
    }
    uint8_t b = t->raw[t->raw_at++];
    if (b != '\n' && b != '\r') {
      out[n++] = b;
      continue;
    }
    uint8_t second = b == '\n' ? '\n' : 0;
    out[n++] = '\r';
    if (n < capacity) out[n++] = second;
    else t->carry = second;
  }
  return (ssize_t)n;
}

/* ---- the protocol -------------------------------------------------------------------------- */

static void count(uint64_t *counter, uint64_t amount) { __atomic_fetch_add(counter, amount, __ATOMIC_RELAXED); }

static uint64_t counted(uint64_t *counter) { return __atomic_load_n(counter, __ATOMIC_RELAXED); }

static void drop(transfer *t, enum drop why) { count(&t->dropped[why], 1); }

static void finish(transfer *t, enum result result, const char *detail) {
  if (t->done) return;
  t->done = 1;
  t->result = result;
  snprintf(t->detail, sizeof t->detail, "%s", detail);
}

static void set_deadline(engine *e, transfer *t, double at) {
  double limit = t->progress_at + t->silence_limit_ms;
  t->deadline = at < limit ? at : limit;
  at = t->deadline;
  if (at < e->earliest) e->earliest = at;
}

static uint8_t *slot(transfer *t, int64_t seq) { return t->ring + (size_t)((seq - 1) % t->windowsize) * (t->blksize + 4); }

static void transmit(transfer *t, int64_t seq, const uint8_t *packet, size_t length, size_t payload) {
  if (seq <= t->highest_sent) count(&t->retransmissions, 1);
  else t->highest_sent = seq;
  count(&t->data_bytes_sent, payload);
  (void)sendto(t->sock, packet, length, MSG_DONTWAIT, (const struct sockaddr *)&t->peer, t->peer_len);
}

/* Reads the block after the last prepared one into its ring slot. */
static int prepare_next(transfer *t) {
  int64_t seq = t->prepared_end;
  uint8_t *packet = slot(t, seq);
  ssize_t n = fill_block(t, packet + 4, t->blksize);
  if (n < 0) {
    char detail[DETAIL_MAX];
    snprintf(detail, sizeof detail, "read failed: %s", strerror(errno));
    send_error_to(t->sock, (struct sockaddr *)&t->peer, t->peer_len, ERR_NOT_DEFINED, "read error");
    finish(t, RESULT_ERROR, detail);
    return -1;
  }
  put16(packet, OP_DATA);
  put16(packet + 2, (unsigned)(seq & 0xffff));
  t->ring_len[(seq - 1) % t->windowsize] = (uint32_t)n + 4;
  if ((size_t)n < t->blksize) t->last_seq = seq;
  t->prepared_end++;
  return 0;
}

static int64_t window_end(const transfer *t) {
  if (t->base == 0) return 1; /* nothing but the OACK until the client acknowledges it */
  int64_t end = t->base + t->windowsize;
  return end < t->last_seq + 1 ? end : t->last_seq + 1;
}

/* Sends whatever the window allows. */
static void pump(transfer *t) {
  while (!t->done && t->next_to_send < window_end(t)) {
    int64_t seq = t->next_to_send;
    if (seq == 0) {
      transmit(t, 0, t->oack, t->oack_len, 0);
    } else {
      if (seq == t->prepared_end && prepare_next(t) < 0) return;
      uint32_t length = t->ring_len[(seq - 1) % t->windowsize];
      transmit(t, seq, slot(t, seq), length, length - 4);
    }
    t->next_to_send++;
  }
}

/*
 * The client acknowledged the block before `base` again: it is alive and still waiting. Backoff is
 * meant for a silent peer, so it is dropped: the next retransmission becomes due one base timeout
 * after the previous one. Still at most one retransmission per base timeout, however often the
 * client repeats itself, so this cannot become the Sorcerer's Apprentice storm.
 */
static void on_repeated_ack(engine *e, transfer *t) {
  if (t->timeouts == 0) return;
  double due = t->retransmitted_at + t->timeout_ms;
  if (due < t->deadline) {
    double now = now_ms();
    set_deadline(e, t, due > now ? due : now);
  }
}

static void on_ack(engine *e, transfer *t, unsigned block) {
  int64_t acked = t->base + (int64_t)((block - (unsigned)t->base) & 0xffff);
  if (acked == t->base + 0xffff) return on_repeated_ack(e, t);
  if (acked > t->highest_sent) return; /* stale or bogus: acknowledges nothing we have in flight */
  for (int64_t seq = t->base > 0 ? t->base : 1; seq <= acked; seq++) t->acked_bytes += t->ring_len[(seq - 1) % t->windowsize] - 4;
  t->base = acked + 1;
  t->next_to_send = t->base;
  if (acked == t->last_seq) return finish(t, RESULT_OK, "");
  pump(t);
  t->timeouts = 0;
  t->progress_at = now_ms();
  set_deadline(e, t, t->progress_at + t->timeout_ms);
}

static void on_timeout(engine *e, transfer *t, double now) {
  if (t->timeouts == t->retries) {
    char detail[DETAIL_MAX];
    snprintf(detail, sizeof detail, "no ACK after %u retransmissions", t->retries);
    return finish(t, RESULT_TIMEOUT, detail);
  }
  if (now >= t->progress_at + t->silence_limit_ms) {
    char detail[DETAIL_MAX];
    snprintf(detail, sizeof detail, "no ACK for %.0f ms, the server's limit for a silent client", now - t->progress_at);
    return finish(t, RESULT_TIMEOUT, detail);
  }
  t->timeouts++;
  t->next_to_send = t->base;
  pump(t);
  t->retransmitted_at = now;
  /* Exponential backoff, as tftpd-hpa does: it eases a congested link, and a client that ignores
   * duplicate DATA and only re-ACKs on its own timer (atftp) gets a gap long enough to do so. */
  unsigned doublings = t->timeouts < MAX_BACKOFF_DOUBLINGS ? t->timeouts : MAX_BACKOFF_DOUBLINGS;
  set_deadline(e, t, now + t->timeout_ms * (double)(1u << doublings));
}

static void on_packet(engine *e, transfer *t, const uint8_t *p, size_t length, size_t stored) {
  if (length < 2) return drop(t, DROP_TOO_SHORT);
  unsigned op = get16(p);
  if (op == OP_ACK) {
    if (length < 4) return drop(t, DROP_TOO_SHORT);
    if (length > 4) return drop(t, DROP_TRAILING);
    return on_ack(e, t, get16(p + 2));
  }
  if (op == OP_ERROR) {
    if (length < 5) return drop(t, DROP_TOO_SHORT);
    const uint8_t *nul = memchr(p + 4, 0, stored - 4);
    if (!nul) return drop(t, DROP_UNTERMINATED);
    if ((size_t)(nul - p) + 1 != length) return drop(t, DROP_TRAILING);
    char detail[DETAIL_MAX];
    snprintf(detail, sizeof detail, "client error %u: %.*s", get16(p + 2), (int)(nul - (p + 4)), (const char *)(p + 4));
    return finish(t, RESULT_ABORTED_BY_CLIENT, detail);
  }
  drop(t, op >= OP_RRQ && op <= OP_OACK ? DROP_UNEXPECTED : DROP_UNKNOWN_OPCODE);
}

/*
 * One datagram per readiness report: epoll is level-triggered, so anything left is reported again
 * at once. Reading until EAGAIN would cost an extra recvfrom per block at windowsize 1, where
 * there is never a second packet waiting, and it keeps one chatty peer from starving the others.
 */
static void on_readable(engine *e, transfer *t) {
  /* ACKs and ERRORs are small; a larger datagram is only read far enough to classify it. */
  uint8_t packet[1024];
  struct sockaddr_storage from;
  socklen_t from_len = sizeof from;
  ssize_t n = recvfrom(t->sock, packet, sizeof packet, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &from_len);
  if (n < 0) return; /* EAGAIN, or an error that only a retransmission can recover from */
  size_t length = (size_t)n, stored = length < sizeof packet ? length : sizeof packet;
  if (!same_peer(t, &from)) {
    /* Another transfer ID: RFC 1350 says tell it, without disturbing this transfer. Never answer
     * an ERROR with an ERROR: two confused peers would bounce them forever. */
    drop(t, DROP_UNKNOWN_TID);
    if (stored < 2 || get16(packet) != OP_ERROR) send_error_to(t->sock, (struct sockaddr *)&from, from_len, ERR_UNKNOWN_TID, "unknown transfer ID");
    return;
  }
  if (!t->done) on_packet(e, t, packet, length, stored);
}

static void begin(engine *e, transfer *t) {
  t->base = t->oack ? 0 : 1;
  t->next_to_send = t->base;
  t->highest_sent = t->base - 1;
  t->prepared_end = 1;
  t->last_seq = INT64_MAX;
  t->progress_at = now_ms();
  set_deadline(e, t, t->progress_at + t->timeout_ms);
  pump(t);
}

/* ---- engine -------------------------------------------------------------------------------- */

static void free_transfer(void *item) {
  transfer *t = item;
  if (t->sock >= 0) close(t->sock);
  if (t->file_fd >= 0) close(t->file_fd);
  free(t->raw);
  free(t->oack);
  free(t->ring);
  free(t->ring_len);
  free(t);
}

/* Closes a finished transfer's socket (which also leaves the epoll set) and hands it to JS. */
static void post(engine *e, transfer *t) {
  close(t->sock);
  t->sock = -1;
  if (napi_call_threadsafe_function(e->core.finished, t, napi_tsfn_nonblocking) != napi_ok) free_transfer(t);
}

static void adopt_inbox(engine *e) {
  size_t arrived_len;
  pthread_mutex_lock(&e->core.lock);
  transfer **arrived = (transfer **)core_take_inbox(&e->core, &arrived_len);
  size_t aborts_len = e->aborts_len;
  uint32_t *aborts = e->aborts;
  char(*messages)[DETAIL_MAX] = e->abort_messages;
  e->aborts = NULL;
  e->abort_messages = NULL;
  e->aborts_len = e->aborts_cap = 0;
  pthread_mutex_unlock(&e->core.lock);

  for (size_t i = 0; i < arrived_len; i++) {
    transfer *t = arrived[i];
    if (grow((void **)&e->live, &e->live_cap, e->live_len, sizeof *e->live) < 0) {
      finish(t, RESULT_ERROR, "out of memory");
      post(e, t);
      continue;
    }
    e->live[e->live_len++] = t;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = t};
    if (epoll_ctl(e->core.epoll_fd, EPOLL_CTL_ADD, t->sock, &ev) < 0) finish(t, RESULT_ERROR, "epoll_ctl failed");
    else begin(e, t);
  }
  free(arrived);
  for (size_t i = 0; i < aborts_len; i++) {
    for (size_t j = 0; j < e->live_len; j++) {
      transfer *t = e->live[j];
      if (t->id != aborts[i] || t->done) continue;
      send_error_to(t->sock, (struct sockaddr *)&t->peer, t->peer_len, ERR_NOT_DEFINED, messages[i]);
      finish(t, RESULT_ERROR, messages[i]);
    }
  }
  free(aborts);
  free(messages);
}

/* Hands every finished transfer's outcome to JS and frees it. */
static void reap(engine *e) {
  for (size_t i = 0; i < e->live_len;) {
    transfer *t = e->live[i];
    if (!t->done) {
      i++;
      continue;
    }
    e->live[i] = e->live[--e->live_len];
    post(e, t);
  }
}

static void check_deadlines(engine *e) {
  double now = now_ms();
  if (now < e->earliest) return;
  double earliest = INFINITY;
  for (size_t i = 0; i < e->live_len; i++) {
    transfer *t = e->live[i];
    if (t->done) continue;
    if (now >= t->deadline) on_timeout(e, t, now);
    if (!t->done && t->deadline < earliest) earliest = t->deadline;
  }
  /* on_timeout may have lowered `earliest` through set_deadline; the scan saw every deadline anyway. */
  e->earliest = earliest;
}

static void *run_engine(void *arg) {
  engine *e = arg;
  struct epoll_event events[64];
  for (;;) {
    int timeout = -1;
    if (e->live_len > 0 && e->earliest != INFINITY) {
      double wait = e->earliest - now_ms();
      timeout = wait <= 0 ? 0 : (int)wait + 1;
    }
    int n = epoll_wait(e->core.epoll_fd, events, 64, timeout);
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) adopt_inbox(e);
      else on_readable(e, events[i].data.ptr);
    }
    check_deadlines(e);
    reap(e);
    if (core_stopping(&e->core)) return NULL;
  }
}

/* ---- JS face ------------------------------------------------------------------------------- */

/* The packet counts of a transfer, finished or still running. */
static void set_counters(napi_env env, napi_value object, transfer *t) {
  napi_value dropped;
  set_number(env, object, "dataBytesSent", (double)counted(&t->data_bytes_sent));
  set_number(env, object, "retransmissions", (double)counted(&t->retransmissions));
  napi_create_object(env, &dropped);
  for (int k = 0; k < DROP_KINDS; k++) {
    uint64_t n = counted(&t->dropped[k]);
    if (n) set_number(env, dropped, DROP_NAMES[k], (double)n);
  }
  napi_set_named_property(env, object, "dropped", dropped);
}

/* Main thread: turns an outcome into a plain object for the JS callback, then frees the transfer. */
static void deliver(napi_env env, napi_value callback, void *context, void *data) {
  engine *e = context;
  transfer *t = data;
  if (env != NULL) {
    napi_value outcome, undefined;
    napi_create_object(env, &outcome);
    set_number(env, outcome, "id", t->id);
    set_string(env, outcome, "result", RESULT_NAMES[t->result]);
    set_number(env, outcome, "bytes", (double)t->acked_bytes);
    if (t->detail[0]) set_string(env, outcome, "detail", t->detail);
    set_counters(env, outcome, t);
    core_delivered(env, &e->core);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, callback, 1, &outcome, NULL);
  }
  free_transfer(t);
}

static void stop_engine(void *arg) {
  engine *e = arg;
  core_stop(&e->core, free_transfer);
  for (size_t i = 0; i < e->live_len; i++) free_transfer(e->live[i]);
  free(e->live);
  free(e->aborts);
  free(e->abort_messages);
}

/* init(onFinished): starts this environment's engine; onFinished(outcome) is called once per transfer. */
static napi_value init_engine(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value callback;
  CHECK(napi_get_cb_info(env, info, &argc, &callback, NULL, NULL));
  engine *e = calloc(1, sizeof *e);
  if (!e) {
    napi_throw_error(env, NULL, "tftp pump: out of memory");
    return NULL;
  }
  e->core.name = "tftp pump";
  e->earliest = INFINITY;
  if (core_start(env, &e->core, e, callback, "livery-tftp", deliver, run_engine, stop_engine) < 0) free(e);
  return NULL;
}

static int get_prop(napi_env env, napi_value object, const char *name, napi_value *out) {
  return napi_get_named_property(env, object, name, out) == napi_ok ? 0 : -1;
}

static int get_double(napi_env env, napi_value object, const char *name, double *out) {
  napi_value v;
  return get_prop(env, object, name, &v) == 0 && napi_get_value_double(env, v, out) == napi_ok ? 0 : -1;
}

static int get_text(napi_env env, napi_value object, const char *name, char *out, size_t size) {
  napi_value v;
  return get_prop(env, object, name, &v) == 0 && napi_get_value_string_utf8(env, v, out, size, NULL) == napi_ok ? 0 : -1;
}

/* Copies a Buffer property into fresh memory; absent (undefined/null) leaves *out NULL. */
static int get_bytes(napi_env env, napi_value object, const char *name, uint8_t **out, size_t *length) {
  napi_value v;
  napi_valuetype type;
  bool is_buffer;
  void *data;
  *out = NULL;
  *length = 0;
  if (get_prop(env, object, name, &v) < 0 || napi_typeof(env, v, &type) != napi_ok) return -1;
  if (type == napi_undefined || type == napi_null) return 0;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer) return -1;
  if (napi_get_buffer_info(env, v, &data, length) != napi_ok) return -1;
  *out = malloc(*length ? *length : 1);
  if (!*out) return -1;
  memcpy(*out, data, *length);
  return 0;
}

static int numeric_address(const char *host, unsigned port, struct sockaddr_storage *out, socklen_t *length) {
  struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_DGRAM}, *found;
  char service[8];
  snprintf(service, sizeof service, "%u", port);
  int status = getaddrinfo(host, service, &hints, &found);
  if (status != 0) return status;
  memcpy(out, found->ai_addr, found->ai_addrlen);
  *length = found->ai_addrlen;
  freeaddrinfo(found);
  return 0;
}

/*
 * start({ host, peerAddress, peerPort, fd, data, size, netascii, blksize, windowsize, timeoutMs,
 *         retries, silenceLimitMs, readAhead, oack }) -> { id, port }
 * Content is either `fd` (dup'd here; the caller may close its own descriptor at once) or `data`.
 */
static napi_value start_transfer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value spec;
  CHECK(napi_get_cb_info(env, info, &argc, &spec, NULL, NULL));
  engine *e = core_of(env, "tftp pump");
  if (!e) return NULL;

  char host[INET6_ADDRSTRLEN + 64], peer[INET6_ADDRSTRLEN + 64];
  uint32_t peer_port, blksize, windowsize, retries, read_ahead;
  double fd_number, size, timeout_ms, silence_limit_ms;
  napi_value netascii_value;
  bool netascii;
  transfer *t = calloc(1, sizeof *t);
  if (!t) {
    napi_throw_error(env, NULL, "tftp pump: out of memory");
    return NULL;
  }
  t->sock = t->file_fd = -1;
  t->carry = -1;
  if (get_text(env, spec, "host", host, sizeof host) < 0 || get_text(env, spec, "peerAddress", peer, sizeof peer) < 0 ||
      get_u32(env, spec, "peerPort", &peer_port) < 0 || get_double(env, spec, "fd", &fd_number) < 0 ||
      get_double(env, spec, "size", &size) < 0 || get_u32(env, spec, "blksize", &blksize) < 0 ||
      get_u32(env, spec, "windowsize", &windowsize) < 0 || get_double(env, spec, "timeoutMs", &timeout_ms) < 0 ||
      get_u32(env, spec, "retries", &retries) < 0 || get_u32(env, spec, "readAhead", &read_ahead) < 0 ||
      get_double(env, spec, "silenceLimitMs", &silence_limit_ms) < 0 || !(silence_limit_ms > 0) ||
      get_prop(env, spec, "netascii", &netascii_value) < 0 || napi_get_value_bool(env, netascii_value, &netascii) != napi_ok ||
      get_bytes(env, spec, "oack", &t->oack, &t->oack_len) < 0 || get_bytes(env, spec, "data", &t->raw, &t->raw_len) < 0 ||
      blksize < 8 || windowsize < 1 || timeout_ms <= 0 || read_ahead < blksize || size < 0 ||
      (t->raw == NULL && (fd_number < 0 || fd_number != (int)fd_number)) || (t->raw != NULL && fd_number >= 0)) {
    free_transfer(t);
    napi_throw_type_error(env, NULL, "tftp pump: start() was given an invalid transfer spec");
    return NULL;
  }
  t->netascii = netascii;
  t->blksize = blksize;
  t->windowsize = windowsize;
  t->retries = retries;
  t->timeout_ms = timeout_ms;
  t->silence_limit_ms = silence_limit_ms;
  t->read_ahead = read_ahead;
  t->size = t->raw ? t->raw_len : (uint64_t)size;
  t->raw_len = 0; /* in-memory content: refill() hands it out as the one chunk */

  struct sockaddr_storage local;
  socklen_t local_len;
  int status = numeric_address(host, 0, &local, &local_len);
  if (status == 0) status = numeric_address(peer, peer_port, &t->peer, &t->peer_len);
  if (status != 0) {
    free_transfer(t);
    napi_throw_type_error(env, NULL, "tftp pump: host and peerAddress must be IP literals");
    return NULL;
  }
  t->ring = malloc((size_t)windowsize * (blksize + 4));
  t->ring_len = calloc(windowsize, sizeof *t->ring_len);
  if (!t->raw) t->raw = malloc(read_ahead);
  if (!t->ring || !t->ring_len || !t->raw) {
    free_transfer(t);
    napi_throw_error(env, NULL, "tftp pump: out of memory");
    return NULL;
  }
  if (fd_number >= 0 && (t->file_fd = fcntl((int)fd_number, F_DUPFD_CLOEXEC, 0)) < 0) {
    int error = errno;
    free_transfer(t);
    return throw_errno(env, "tftp pump: dup", error);
  }
  t->sock = socket(local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (t->sock < 0 || bind(t->sock, (struct sockaddr *)&local, local_len) < 0 || getsockname(t->sock, (struct sockaddr *)&local, &local_len) < 0) {
    int error = errno;
    free_transfer(t);
    return throw_errno(env, "tftp pump: transfer socket", error);
  }
  unsigned port = ntohs(local.ss_family == AF_INET ? ((struct sockaddr_in *)&local)->sin_port : ((struct sockaddr_in6 *)&local)->sin6_port);
  t->id = ++e->core.next_id;
  if (core_submit(env, &e->core, t) < 0) {
    free_transfer(t);
    return NULL;
  }

  napi_value result;
  CHECK(napi_create_object(env, &result));
  set_number(env, result, "id", t->id);
  set_number(env, result, "port", port);
  napi_value handle;
  CHECK(napi_create_external(env, t, NULL, NULL, &handle));
  CHECK(napi_set_named_property(env, result, "handle", handle));
  return result;
}

/*
 * counters(handle): the packet counts so far. Only valid until the transfer's outcome has been
 * delivered, which is also when the struct is freed: both happen on this (the main) thread, and
 * the JS side stops asking once it has the outcome.
 */
static napi_value read_counters(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value handle, result;
  transfer *t;
  CHECK(napi_get_cb_info(env, info, &argc, &handle, NULL, NULL));
  if (argc < 1 || napi_get_value_external(env, handle, (void **)&t) != napi_ok) {
    napi_throw_type_error(env, NULL, "tftp pump: counters(handle)");
    return NULL;
  }
  CHECK(napi_create_object(env, &result));
  set_counters(env, result, t);
  return result;
}

/* abort(id, message): ends a transfer from our side, telling the client why (ERROR 0). */
static napi_value abort_transfer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  uint32_t id;
  char message[DETAIL_MAX];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  engine *e = core_of(env, "tftp pump");
  if (!e) return NULL;
  if (argc < 2 || napi_get_value_uint32(env, args[0], &id) != napi_ok ||
      napi_get_value_string_utf8(env, args[1], message, sizeof message, NULL) != napi_ok) {
    napi_throw_type_error(env, NULL, "tftp pump: abort(id, message)");
    return NULL;
  }
  pthread_mutex_lock(&e->core.lock);
  int queued = grow((void **)&e->aborts, &e->aborts_cap, e->aborts_len, sizeof *e->aborts);
  if (queued == 0) {
    void *bigger = realloc(e->abort_messages, e->aborts_cap * sizeof *e->abort_messages);
    if (bigger) {
      e->abort_messages = bigger;
      memcpy(e->abort_messages[e->aborts_len], message, sizeof message);
      e->aborts[e->aborts_len++] = id;
    } else {
      queued = -1;
    }
  }
  pthread_mutex_unlock(&e->core.lock);
  if (queued < 0) return throw_out_of_memory(env, &e->core);
  core_wake(&e->core);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor methods[] = {
      {"init", NULL, init_engine, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, start_transfer, NULL, NULL, NULL, napi_default, NULL},
      {"abort", NULL, abort_transfer, NULL, NULL, NULL, napi_default, NULL},
      {"counters", NULL, read_counters, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof methods / sizeof methods[0], methods) != napi_ok) return NULL;
  return exports;
}
