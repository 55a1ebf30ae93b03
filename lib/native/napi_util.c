/*
 * The Node-API helpers every C file of the addon shares (napi_util.h):
 * errors thrown with Node's conventions, and argument readers.
 */
#define _GNU_SOURCE
#include "napi_util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---------- errors ---------- */

napi_value napi_failed(napi_env env) {
  const napi_extended_error_info *info = NULL;
  char msg[200] = "Node-API call failed";
  bool pending = false;
  if (napi_get_last_error_info(env, &info) == napi_ok && info != NULL && info->error_message != NULL) {
    snprintf(msg, sizeof msg, "Node-API call failed: %s", info->error_message);
  }
  if (napi_is_exception_pending(env, &pending) == napi_ok && !pending) {
    napi_throw_error(env, NULL, msg);
  }
  return NULL;
}

const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name != NULL) return name;
#endif
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENOTCONN: return "ENOTCONN";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    default: return "EUNKNOWN";
  }
}

/* Throw `syscall: strerror(err)` with Node's conventions: `code` ("EPERM"),
 * `errno` (negative) and `syscall`. */
napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char msg[256];
  napi_value text, code, error, num, name;
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  NAPI_CALL(napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text));
  NAPI_CALL(napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code));
  NAPI_CALL(napi_create_error(env, code, text, &error));
  NAPI_CALL(napi_create_int32(env, -err, &num));
  NAPI_CALL(napi_set_named_property(env, error, "errno", num));
  NAPI_CALL(napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &name));
  NAPI_CALL(napi_set_named_property(env, error, "syscall", name));
  napi_throw(env, error);
  return NULL;
}

/* ---------- arguments ---------- */

bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_failed(env);
    return false;
  }
  if (argc < want) {
    napi_throw_type_error(env, NULL, "missing argument");
    return false;
  }
  return true;
}

bool get_int(napi_env env, napi_value value, int32_t *out) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) {
    napi_failed(env);
    return false;
  }
  if (type != napi_number) {
    napi_throw_type_error(env, NULL, "expected a number");
    return false;
  }
  if (napi_get_value_int32(env, value, out) != napi_ok) {
    napi_failed(env);
    return false;
  }
  return true;
}

/* ---------- exports ---------- */

bool export_functions(napi_env env, napi_value exports, const struct exported *list, size_t count) {
  for (size_t i = 0; i < count; i++) {
    napi_property_descriptor d = {list[i].name, NULL, list[i].fn, NULL, NULL, NULL, napi_enumerable, NULL};
    if (napi_define_properties(env, exports, 1, &d) != napi_ok) return false;
  }
  return true;
}
