/*
 * An exclusive, non-blocking flock(2) on a file: how `livery serve` makes sure it is the only
 * server on its data dir.
 *
 * Why native: Node has no flock. A pid file alone cannot tell a live server from a recycled
 * pid after kill -9; a flock is released by the kernel when its holder dies, however it dies,
 * so a stale lock file can never refuse a start. The descriptor is opened close-on-exec, so
 * forked HTTP workers and build tools never inherit (and outlive) the lock.
 */
#define _GNU_SOURCE
#include "napi_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <unistd.h>

/* tryLock(path): the locked descriptor, or -1 when another open file description holds it. */
static napi_value try_lock(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1], result;
  char path[PATH_MAX];
  size_t length;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, args[0], path, sizeof path, &length) != napi_ok || length >= sizeof path - 1) {
    napi_throw_type_error(env, NULL, "tryLock(path): path must be a string shorter than PATH_MAX");
    return NULL;
  }
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return throw_errno(env, "open lock file", errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    close(fd);
    if (error != EWOULDBLOCK) return throw_errno(env, "flock lock file", error);
    fd = -1;
  }
  napi_create_int32(env, fd, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor methods[] = {
      {"tryLock", NULL, try_lock, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof methods / sizeof methods[0], methods) != napi_ok) return NULL;
  return exports;
}
