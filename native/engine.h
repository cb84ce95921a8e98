/*
 * What livery's two transfer engines (tftp_pump.c, file_sender.c) share: one thread per Node
 * environment that waits on its transfers' sockets with epoll, is handed new work through a
 * locked inbox and an eventfd, and reports each outcome to JS through a thread-safe function
 * that keeps Node alive only while transfers run.
 */
#ifndef LIVERY_ENGINE_H
#define LIVERY_ENGINE_H

#include "napi_helpers.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define CHECK(call)                                                              \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      const napi_extended_error_info *info;                                      \
      napi_get_last_error_info(env, &info);                                      \
      bool pending;                                                              \
      napi_is_exception_pending(env, &pending);                                  \
      if (!pending) napi_throw_error(env, NULL, info->error_message ? info->error_message : #call); \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

static inline double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Makes room for one more item in a growable array; -1 when memory runs out. */
static inline int grow(void **items, size_t *cap, size_t len, size_t size) {
  if (len < *cap) return 0;
  size_t next = *cap ? *cap * 2 : 16;
  void *bigger = realloc(*items, next * size);
  if (!bigger) return -1;
  *items = bigger;
  *cap = next;
  return 0;
}

static inline void set_number(napi_env env, napi_value object, const char *name, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, object, name, v);
}

static inline void set_string(napi_env env, napi_value object, const char *name, const char *value) {
  napi_value v;
  napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, object, name, v);
}

typedef struct engine_core {
  const char *name;                  /* for messages: "tftp pump", "file sender" */
  napi_threadsafe_function finished; /* calls JS with each outcome */
  uint32_t active;                   /* transfers JS is waiting on; main thread only */
  uint32_t next_id;                  /* main thread only */
  pthread_t thread;
  int epoll_fd, wake_fd; /* the wake eventfd is in the epoll set with data.ptr NULL */
  pthread_mutex_t lock;  /* guards the inbox, and what each engine queues beside it (aborts) */
  void **inbox;
  size_t inbox_len, inbox_cap;
  int stop; /* atomic: read by the thread after every wakeup */
} engine_core;

static inline napi_value throw_out_of_memory(napi_env env, const engine_core *c) {
  char message[64];
  snprintf(message, sizeof message, "%s: out of memory", c->name);
  napi_throw_error(env, NULL, message);
  return NULL;
}

static inline void core_wake(engine_core *c) {
  uint64_t one = 1;
  (void)!write(c->wake_fd, &one, sizeof one);
}

/* Engine thread, with the lock held: takes everything queued so far; the eventfd is drained. */
static inline void **core_take_inbox(engine_core *c, size_t *len) {
  uint64_t count;
  (void)!read(c->wake_fd, &count, sizeof count);
  void **items = c->inbox;
  *len = c->inbox_len;
  c->inbox = NULL;
  c->inbox_len = c->inbox_cap = 0;
  return items;
}

/* Main thread: hands an item to the engine; 0, or -1 with a JS error thrown. */
static inline int core_submit(napi_env env, engine_core *c, void *item) {
  pthread_mutex_lock(&c->lock);
  int queued = grow((void **)&c->inbox, &c->inbox_cap, c->inbox_len, sizeof *c->inbox);
  if (queued == 0) c->inbox[c->inbox_len++] = item;
  pthread_mutex_unlock(&c->lock);
  if (queued < 0) {
    throw_out_of_memory(env, c);
    return -1;
  }
  core_wake(c);
  if (c->active++ == 0) napi_ref_threadsafe_function(env, c->finished);
  return 0;
}

/* Main thread, once per outcome delivered: idle again, the engine lets Node exit. */
static inline void core_delivered(napi_env env, engine_core *c) {
  if (--c->active == 0) napi_unref_threadsafe_function(env, c->finished);
}

/* Stops and joins the thread and frees what is still queued; the engine frees its own transfers. */
static inline void core_stop(engine_core *c, void (*free_item)(void *)) {
  __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
  core_wake(c);
  pthread_join(c->thread, NULL);
  for (size_t i = 0; i < c->inbox_len; i++) free_item(c->inbox[i]);
  free(c->inbox);
  close(c->epoll_fd);
  close(c->wake_fd);
  napi_release_threadsafe_function(c->finished, napi_tsfn_abort);
}

static inline int core_stopping(engine_core *c) { return __atomic_load_n(&c->stop, __ATOMIC_ACQUIRE); }

/*
 * Main thread, in init(onFinished): starts the thread `run(engine)` for this environment, with
 * `deliver` turning each outcome into JS, and `stop` (which calls core_stop) as the cleanup
 * hook. `engine` begins with its engine_core. Returns 0, or -1 with a JS error thrown and
 * nothing left running (the caller frees `engine`).
 */
static inline int core_start(napi_env env, engine_core *c, void *engine, napi_value on_finished, const char *thread_name,
                             napi_threadsafe_function_call_js deliver, void *(*run)(void *), void (*stop)(void *)) {
  void *existing = NULL;
  napi_get_instance_data(env, &existing);
  char message[96];
  if (existing) {
    snprintf(message, sizeof message, "%s: init() called twice", c->name);
    napi_throw_error(env, NULL, message);
    return -1;
  }
  c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  napi_value name;
  if (c->epoll_fd < 0 || c->wake_fd < 0 || epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, c->wake_fd, &ev) < 0) {
    snprintf(message, sizeof message, "%s: epoll", c->name);
    throw_errno(env, message, errno);
  } else if (napi_create_string_utf8(env, thread_name, NAPI_AUTO_LENGTH, &name) != napi_ok ||
             napi_create_threadsafe_function(env, on_finished, NULL, name, 0, 1, NULL, NULL, engine, deliver, &c->finished) != napi_ok) {
    napi_throw_error(env, NULL, "cannot create a thread-safe function");
  } else {
    pthread_mutex_init(&c->lock, NULL);
    /* Idle, the engine must not keep Node alive; core_submit refs it while transfers run. */
    napi_unref_threadsafe_function(env, c->finished);
    if (pthread_create(&c->thread, NULL, run, engine) == 0) {
      pthread_setname_np(c->thread, thread_name);
      napi_set_instance_data(env, engine, NULL, NULL);
      napi_add_env_cleanup_hook(env, stop, engine);
      return 0;
    }
    napi_release_threadsafe_function(c->finished, napi_tsfn_abort);
    snprintf(message, sizeof message, "%s: cannot start its thread", c->name);
    napi_throw_error(env, NULL, message);
  }
  if (c->epoll_fd >= 0) close(c->epoll_fd);
  if (c->wake_fd >= 0) close(c->wake_fd);
  return -1;
}

/* The environment's engine, or NULL with a JS error thrown when init() was not called. */
static inline void *core_of(napi_env env, const char *name) {
  void *engine = NULL;
  napi_get_instance_data(env, &engine);
  if (engine == NULL) {
    char message[64];
    snprintf(message, sizeof message, "%s: init() was not called", name);
    napi_throw_error(env, NULL, message);
  }
  return engine;
}

#endif
