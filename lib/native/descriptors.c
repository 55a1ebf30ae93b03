/*
 *   dupFd(fd)   a close-on-exec duplicate of fd (F_DUPFD_CLOEXEC): the
 *               supervisor (lib/daemon/supervisor.ts) keeps each listening
 *               socket open this way, never polled, so fuser(1) finds it too.
 */
#define _GNU_SOURCE
#include "addon.h"
#include "napi_util.h"

#include <errno.h>
#include <fcntl.h>

static napi_value dup_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int32_t fd;
  int copy;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd)) return NULL;
  copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return throw_errno(env, errno, "fcntl(F_DUPFD_CLOEXEC)");
  NAPI_CALL(napi_create_int32(env, copy, &result));
  return result;
}

bool descriptors_init(napi_env env, napi_value exports) {
  static const struct exported list[] = {
    {"dupFd", dup_fd},
  };
  return EXPORT_FUNCTIONS(env, exports, list);
}
