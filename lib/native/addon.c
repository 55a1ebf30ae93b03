/*
 * tcpproxy's Node-API addon (lib/native/addon.ts loads it): the module's
 * exports, one group per file.
 *
 *   transparent.c     SO_ORIGINAL_DST, IP_TRANSPARENT and the capabilities
 *                     of transparent proxying (lib/transparent/sockets.ts);
 *   descriptors.c     dupFd (lib/daemon/supervisor.ts);
 *   notify.c          notifySend, sd_notify's datagram (lib/systemd/notifier.ts);
 *   relay_thread.c    the relay thread (lib/relay/thread.ts);
 *   front.c           its accepting and connecting (lib/relay/front.ts);
 *   napi_util.c       the helpers they share.
 *
 * Failures throw an Error with Node's conventions: `code` ("EPERM"), `errno`
 * (negative) and `syscall`. Plain C on node_api.h, no dependencies; Linux
 * only.
 */
#include "addon.h"

#ifndef __linux__
#error "tcpproxy's native addon is Linux-only (SO_ORIGINAL_DST, IP_TRANSPARENT, epoll)"
#endif

static napi_value init(napi_env env, napi_value exports) {
  if (!transparent_init(env, exports) || !descriptors_init(env, exports) || !notify_init(env, exports) || !relay_thread_init(env, exports) || !front_init(env, exports)) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
