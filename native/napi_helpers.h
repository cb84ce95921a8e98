/* Small N-API helpers shared by livery's addons: reading a spec object, throwing an errno. */
#ifndef LIVERY_NAPI_HELPERS_H
#define LIVERY_NAPI_HELPERS_H

#define NAPI_VERSION 8
#include <node_api.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Reads an unsigned 32-bit property; -1 when it is missing or not such a number. */
static inline int get_u32(napi_env env, napi_value object, const char *name, uint32_t *out) {
  napi_value v;
  return napi_get_named_property(env, object, name, &v) == napi_ok && napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -1;
}

/* Throws an Error "<what>: <strerror>" whose `code` is the errno's name (EADDRINUSE, ...). */
static inline napi_value throw_errno(napi_env env, const char *what, int error) {
  napi_value message, code, err;
  char text[256];
  const char *name = strerrorname_np(error);
  snprintf(text, sizeof text, "%s: %s", what, strerror(error));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, message, &err);
  napi_throw(env, err);
  return NULL;
}

#endif
