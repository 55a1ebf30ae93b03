/*
 * What the addon's C files share: Node-API error helpers with Node's
 * conventions and argument readers (defined in tcpproxy_native.c).
 */
#ifndef TCPPROXY_NATIVE_H
#define TCPPROXY_NATIVE_H

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

/* The relay thread's functions (relay_thread.c), added to `exports`. */
bool relay_thread_init(napi_env env, napi_value exports);

#endif
