/*
 *   dupFd(fd)   a close-on-exec duplicate of fd (F_DUPFD_CLOEXEC): the
 *               supervisor (lib/daemon/supervisor.ts) keeps each listening
 *               socket open this way, never polled, so fuser(1) finds it too.
 *   noDelay(fd) whether TCP_NODELAY is set on socket fd: what Node cannot
 *               ask, for the tests of the thread's accepted sockets
 *               (test/relay/front.test.ts).
 */
#define _GNU_SOURCE
#include "addon.h"
#include "napi_util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

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

static napi_value no_delay(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int32_t fd;
  int on = 0;
  socklen_t len = sizeof on;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd)) return NULL;
  if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0) return throw_errno(env, errno, "getsockopt(TCP_NODELAY)");
  NAPI_CALL(napi_get_boolean(env, on != 0, &result));
  return result;
}

bool descriptors_init(napi_env env, napi_value exports) {
  static const struct exported list[] = {
    {"dupFd", dup_fd},
    {"noDelay", no_delay},
  };
  return EXPORT_FUNCTIONS(env, exports, list);
}
