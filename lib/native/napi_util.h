/*
 * What the addon's C files share: Node-API error helpers with Node's
 * conventions and argument readers (defined in napi_util.c).
 */
#ifndef TCPPROXY_NAPI_UTIL_H
#define TCPPROXY_NAPI_UTIL_H

#include <node_api.h>
#include <stdbool.h>

/* A Node-API call failed: make sure a JavaScript exception is pending. */
napi_value napi_failed(napi_env env);

#define NAPI_CALL(call)                                                                            \
  do {                                                                                             \
    if ((call) != napi_ok) return napi_failed(env);                                                \
  } while (0)

/* The symbolic name of an errno value ("EPERM"), as Node's `code`. */
const char *errno_name(int err);

/* Throw `syscall: strerror(err)` with `code`, `errno` (negative) and `syscall`. */
napi_value throw_errno(napi_env env, int err, const char *syscall);

/* Read `want` arguments (a TypeError when fewer were given). */
bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);

/* A number argument as int32 (a TypeError otherwise). */
bool get_int(napi_env env, napi_value value, int32_t *out);

/* A function the addon exports. */
struct exported {
  const char *name;
  napi_callback fn;
};

/* Add `count` functions to `exports` (enumerable, read-only); false when a Node-API call failed. */
bool export_functions(napi_env env, napi_value exports, const struct exported *list, size_t count);

#define EXPORT_FUNCTIONS(env, exports, list) export_functions((env), (exports), (list), sizeof(list) / sizeof((list)[0]))

#endif
