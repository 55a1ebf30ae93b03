/*
 *   notifySend(address, abstract, message)   one sd_notify(3) datagram:
 *               `message` (a Buffer) sent on a fresh unix datagram socket
 *               to `address` (a Buffer: a socket path, or with `abstract`
 *               a name in the abstract namespace, without its leading NUL),
 *               then the socket closed. Returns the bytes sent. Node has no
 *               unix datagram sockets; lib/systemd/notifier.ts decides what
 *               to send and when.
 */
#define _GNU_SOURCE
#include "addon.h"
#include "napi_util.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static napi_value notify_send(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  void *name, *msg;
  size_t name_len, msg_len;
  bool abstract;
  struct sockaddr_un sa;
  socklen_t sa_len;
  ssize_t sent;
  int fd, err;
  if (!get_args(env, info, 3, argv)) return NULL;
  NAPI_CALL(napi_get_buffer_info(env, argv[0], &name, &name_len));
  NAPI_CALL(napi_get_value_bool(env, argv[1], &abstract));
  NAPI_CALL(napi_get_buffer_info(env, argv[2], &msg, &msg_len));
  /* Room for the abstract name's leading NUL, or the path's trailing one. */
  if (name_len == 0 || name_len >= sizeof sa.sun_path) return throw_errno(env, ENAMETOOLONG, "sendto");
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path + (abstract ? 1 : 0), name, name_len);
  /* An abstract address is exactly its bytes (no NUL terminator counts). */
  sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + name_len + 1);
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  sent = sendto(fd, msg, msg_len, MSG_NOSIGNAL, (struct sockaddr *)&sa, sa_len);
  err = errno;
  close(fd);
  if (sent < 0) return throw_errno(env, err, "sendto");
  NAPI_CALL(napi_create_int32(env, (int32_t)sent, &result));
  return result;
}

bool notify_init(napi_env env, napi_value exports) {
  static const struct exported list[] = {
    {"notifySend", notify_send},
  };
  return EXPORT_FUNCTIONS(env, exports, list);
}
