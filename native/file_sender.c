/*
 * The body of an artifact response, sent with sendfile(2) on one sender thread per Node
 * environment that waits on every transfer's socket with epoll.
 *
 * Why native: Node has no sendfile, so a body read into a buffer and written to the socket is
 * copied twice on the event loop (page cache -> buffer -> socket). sendfile hands the kernel the
 * page-cache pages themselves, and the thread keeps the event loop free for boot scripts while
 * hundreds of machines fetch their images.
 *
 * Ownership: JS writes the headers through Node and waits until they have left (nothing of its
 * own is queued on the socket), then calls start() with the socket's and the file's descriptors.
 * start() dups both and hands the transfer to the thread through a locked inbox; from then on
 * only the thread writes to that connection, until the outcome is posted back to JS through a
 * thread-safe function and JS ends the response. Node keeps reading the socket meanwhile (a
 * pipelined request waits for this response to end, as HTTP/1.1 requires). Node's idle timer
 * sees none of these writes, so JS stops it for the transfer and the thread applies it instead:
 * a transfer whose socket takes no byte for idle_ms ends as ETIMEDOUT. Closing the dup
 * never closes the connection while Node still holds its own descriptor, and Node's close never
 * cuts a transfer short while the dup is open: so JS aborts a transfer when its response closes.
 */
#define _GNU_SOURCE
#include "engine.h"

#include <fcntl.h>
#include <math.h>
#include <sys/resource.h>
#include <sys/sendfile.h>

/* Bytes one transfer sends per wakeup before the thread turns to the others that are writable. */
#define TURN_BYTES (1024 * 1024)
/*
 * The thread's nice value. Bulk bytes yield the CPU to whatever answers machines: DHCP, TFTP
 * and boot scripts (and their clients, on a shared host) run first when the cores are busy, and
 * the thread still takes every cycle they leave.
 */
#define SENDER_NICE 10

enum result { RESULT_OK, RESULT_ABORTED, RESULT_ERROR };
static const char *const RESULT_NAMES[] = {"ok", "aborted", "error"};

typedef struct transfer {
  uint32_t id;
  int sock, file_fd;
  off_t position, end; /* end: one past the last byte to send */
  double idle_ms, deadline; /* deadline: when the transfer times out without progress (INFINITY: never) */
  int done;
  enum result result;
  int error; /* errno of a failed send */
} transfer;

typedef struct sender {
  engine_core core;
  uint32_t *aborts; /* ids whose abort was asked for; guarded by core.lock */
  size_t aborts_len, aborts_cap;

  /* Sender thread only. */
  transfer **live;
  size_t live_len, live_cap;
  double earliest; /* no deadline is before this; a scan is due when it passes */
} sender;

static void set_deadline(sender *s, transfer *t) {
  if (t->idle_ms <= 0) return;
  t->deadline = now_ms() + t->idle_ms;
  if (t->deadline < s->earliest) s->earliest = t->deadline;
}

static void finish(transfer *t, enum result result, int error) {
  t->done = 1;
  t->result = result;
  t->error = error;
}

/* Sends up to TURN_BYTES of the file; a full socket buffer (EAGAIN) waits for the next EPOLLOUT. */
static void pump(sender *s, transfer *t) {
  off_t budget = TURN_BYTES;
  while (t->position < t->end && budget > 0) {
    off_t want = t->end - t->position < budget ? t->end - t->position : budget;
    ssize_t sent = sendfile(t->sock, t->file_fd, &t->position, (size_t)want);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) finish(t, RESULT_ERROR, errno);
      return;
    }
    /* The file is shorter than the catalog says: it changed under us, so the body cannot be completed. */
    if (sent == 0) return finish(t, RESULT_ERROR, ENODATA);
    budget -= sent;
  }
  if (t->position >= t->end) finish(t, RESULT_OK, 0);
  else if (budget < TURN_BYTES) set_deadline(s, t);
}

static void free_transfer(void *item) {
  transfer *t = item;
  if (t->sock >= 0) close(t->sock);
  if (t->file_fd >= 0) close(t->file_fd);
  free(t);
}

/*
 * Takes a finished transfer out of the epoll set and hands it to JS. The removal is explicit:
 * closing the dup would not do it, as Node's descriptor keeps the socket (and its registration) alive.
 */
static void post(sender *s, transfer *t) {
  epoll_ctl(s->core.epoll_fd, EPOLL_CTL_DEL, t->sock, NULL);
  close(t->sock);
  close(t->file_fd);
  t->sock = t->file_fd = -1;
  if (napi_call_threadsafe_function(s->core.finished, t, napi_tsfn_nonblocking) != napi_ok) free_transfer(t);
}

static void adopt_inbox(sender *s) {
  size_t arrived_len;
  pthread_mutex_lock(&s->core.lock);
  transfer **arrived = (transfer **)core_take_inbox(&s->core, &arrived_len);
  uint32_t *aborts = s->aborts;
  size_t aborts_len = s->aborts_len;
  s->aborts = NULL;
  s->aborts_len = s->aborts_cap = 0;
  pthread_mutex_unlock(&s->core.lock);

  for (size_t i = 0; i < arrived_len; i++) {
    transfer *t = arrived[i];
    if (grow((void **)&s->live, &s->live_cap, s->live_len, sizeof *s->live) < 0) {
      finish(t, RESULT_ERROR, ENOMEM);
      post(s, t);
      continue;
    }
    s->live[s->live_len++] = t;
    set_deadline(s, t);
    /* Level-triggered: a socket with room left after its turn is offered again on the next wait. */
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = t};
    if (epoll_ctl(s->core.epoll_fd, EPOLL_CTL_ADD, t->sock, &ev) < 0) finish(t, RESULT_ERROR, errno);
  }
  free(arrived);
  for (size_t i = 0; i < aborts_len; i++) {
    for (size_t j = 0; j < s->live_len; j++) {
      if (s->live[j]->id == aborts[i] && !s->live[j]->done) finish(s->live[j], RESULT_ABORTED, 0);
    }
  }
  free(aborts);
}

/* Ends the transfers whose sockets took nothing for their idle time (a stalled client). */
static void check_deadlines(sender *s) {
  double now = now_ms();
  if (now < s->earliest) return;
  double earliest = INFINITY;
  for (size_t i = 0; i < s->live_len; i++) {
    transfer *t = s->live[i];
    if (t->done) continue;
    if (now >= t->deadline) finish(t, RESULT_ERROR, ETIMEDOUT);
    else if (t->deadline < earliest) earliest = t->deadline;
  }
  s->earliest = earliest;
}

/* Hands every finished transfer's outcome to JS. */
static void reap(sender *s) {
  for (size_t i = 0; i < s->live_len;) {
    transfer *t = s->live[i];
    if (!t->done) {
      i++;
      continue;
    }
    s->live[i] = s->live[--s->live_len];
    post(s, t);
  }
}

static void *run_sender(void *arg) {
  sender *s = arg;
  struct epoll_event events[64];
  /* Linux applies a nice value set by thread id to that thread alone. */
  setpriority(PRIO_PROCESS, (id_t)gettid(), SENDER_NICE);
  for (;;) {
    int timeout = -1;
    if (s->live_len > 0 && s->earliest != INFINITY) {
      double wait = s->earliest - now_ms();
      timeout = wait <= 0 ? 0 : (int)wait + 1;
    }
    int n = epoll_wait(s->core.epoll_fd, events, 64, timeout);
    for (int i = 0; i < n; i++) {
      transfer *t = events[i].data.ptr;
      if (t == NULL) adopt_inbox(s);
      else if (!t->done) pump(s, t);
    }
    check_deadlines(s);
    reap(s);
    if (core_stopping(&s->core)) return NULL;
  }
}

/* ---- JS face ------------------------------------------------------------------------------- */

/* Main thread: turns an outcome into { id, result, position, code? } for the JS callback, then frees it. */
static void deliver(napi_env env, napi_value callback, void *context, void *data) {
  sender *s = context;
  transfer *t = data;
  if (env != NULL) {
    napi_value outcome, undefined;
    napi_create_object(env, &outcome);
    set_number(env, outcome, "id", t->id);
    set_string(env, outcome, "result", RESULT_NAMES[t->result]);
    set_number(env, outcome, "position", (double)t->position);
    if (t->error) {
      const char *name = strerrorname_np(t->error);
      set_string(env, outcome, "code", name ? name : "EUNKNOWN");
    }
    core_delivered(env, &s->core);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, callback, 1, &outcome, NULL);
  }
  free_transfer(t);
}

static void stop_sender(void *arg) {
  sender *s = arg;
  core_stop(&s->core, free_transfer);
  for (size_t i = 0; i < s->live_len; i++) free_transfer(s->live[i]);
  free(s->live);
  free(s->aborts);
}

/* init(onFinished): starts this environment's sender thread; onFinished(outcome) is called once per transfer. */
static napi_value init_sender(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value callback;
  CHECK(napi_get_cb_info(env, info, &argc, &callback, NULL, NULL));
  sender *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, NULL, "file sender: out of memory");
    return NULL;
  }
  s->core.name = "file sender";
  s->earliest = INFINITY;
  if (core_start(env, &s->core, s, callback, "livery-sendfile", deliver, run_sender, stop_sender) < 0) free(s);
  return NULL;
}

/*
 * start(socketFd, fileFd, start, end, idleMs): sends bytes [start, end) of the file, giving up
 * after idleMs without progress (0: never); returns the transfer's id.
 */
static napi_value start_transfer(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value args[5];
  int32_t sock, file;
  double start, end, idle_ms;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  sender *s = core_of(env, "file sender");
  if (!s) return NULL;
  if (argc < 5 || napi_get_value_int32(env, args[0], &sock) != napi_ok || napi_get_value_int32(env, args[1], &file) != napi_ok ||
      napi_get_value_double(env, args[2], &start) != napi_ok || napi_get_value_double(env, args[3], &end) != napi_ok ||
      napi_get_value_double(env, args[4], &idle_ms) != napi_ok || sock < 0 || file < 0 || !(start >= 0) || !(end >= start) ||
      start != (off_t)start || end != (off_t)end || !(idle_ms >= 0)) {
    napi_throw_type_error(env, NULL, "file sender: start(socketFd, fileFd, start, end, idleMs) with descriptors >= 0, 0 <= start <= end, idleMs >= 0");
    return NULL;
  }
  transfer *t = calloc(1, sizeof *t);
  if (!t) return throw_out_of_memory(env, &s->core);
  t->position = (off_t)start;
  t->end = (off_t)end;
  t->idle_ms = idle_ms;
  t->deadline = INFINITY;
  t->sock = fcntl(sock, F_DUPFD_CLOEXEC, 0);
  t->file_fd = t->sock < 0 ? -1 : fcntl(file, F_DUPFD_CLOEXEC, 0);
  if (t->file_fd < 0) {
    int error = errno;
    free_transfer(t);
    return throw_errno(env, "file sender: dup", error);
  }
  t->id = ++s->core.next_id;
  if (core_submit(env, &s->core, t) < 0) {
    free_transfer(t);
    return NULL;
  }
  napi_value id;
  CHECK(napi_create_uint32(env, t->id, &id));
  return id;
}

/* abort(id): stops a transfer whose response has closed; its outcome still arrives, as "aborted". */
static napi_value abort_transfer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  uint32_t id;
  CHECK(napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  sender *s = core_of(env, "file sender");
  if (!s) return NULL;
  if (argc < 1 || napi_get_value_uint32(env, arg, &id) != napi_ok) {
    napi_throw_type_error(env, NULL, "file sender: abort(id)");
    return NULL;
  }
  pthread_mutex_lock(&s->core.lock);
  int queued = grow((void **)&s->aborts, &s->aborts_cap, s->aborts_len, sizeof *s->aborts);
  if (queued == 0) s->aborts[s->aborts_len++] = id;
  pthread_mutex_unlock(&s->core.lock);
  if (queued < 0) return throw_out_of_memory(env, &s->core);
  core_wake(&s->core);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor methods[] = {
      {"init", NULL, init_sender, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, start_transfer, NULL, NULL, NULL, napi_default, NULL},
      {"abort", NULL, abort_transfer, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof methods / sizeof methods[0], methods) != napi_ok) return NULL;
  return exports;
}
