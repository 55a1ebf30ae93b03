/*
 * Transparent proxying: the Linux socket options Node's `net` cannot reach
 * (lib/transparent/sockets.ts), and the capabilities a worker that forges
 * client addresses keeps.
 *
 *   originalDst(fd)                   SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST:
 *                                     { address, port, family } of the
 *                                     destination the client asked for before
 *                                     a REDIRECT or DNAT, or null when it was
 *                                     not redirected (the kernel answers with
 *                                     the local address, ENOENT or
 *                                     ENOPROTOOPT).
 *   transparentSocket(family, addr, port)
 *                                     a new non-blocking TCP socket with
 *                                     IP_TRANSPARENT / IPV6_TRANSPARENT set and
 *                                     then bound to addr:port (port 0 = any),
 *                                     which need not be a local address:
 *                                     returns the fd, not yet connected.
 *   setTransparent(fd)                IP_TRANSPARENT / IPV6_TRANSPARENT on an
 *                                     existing socket (a TPROXY listener).
 *   probeTransparent(family)          sets the option once on a throw-away
 *                                     socket: fails with EPERM without
 *                                     CAP_NET_ADMIN.
 *
 *   keepCapabilities()                prctl(PR_SET_KEEPCAPS, 1): the next
 *                                     setuid() away from root keeps the
 *                                     permitted capabilities (the worker of a
 *                                     daemon that forges client addresses).
 *   limitCapabilities()               capset(): CAP_NET_ADMIN alone, permitted
 *                                     and effective, nothing inheritable; then
 *                                     PR_SET_KEEPCAPS back to 0. Programs the
 *                                     process runs get no capability (execve
 *                                     by a non-root user clears them).
 */
#define _GNU_SOURCE
#include "addon.h"
#include "napi_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The values from <linux/netfilter_ipv4.h>, <linux/netfilter_ipv6/ip6_tables.h>
 * and <linux/in.h>, <linux/in6.h>, which clash with glibc's headers when
 * included together; they are kernel ABI and never change. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static bool get_family(napi_env env, napi_value value, int *domain) {
  int32_t family;
  if (!get_int(env, value, &family)) return false;
  if (family != 4 && family != 6) {
    napi_throw_range_error(env, NULL, "family must be 4 or 6");
    return false;
  }
  *domain = family == 6 ? AF_INET6 : AF_INET;
  return true;
}

/* ---------- addresses ---------- */

static bool is_v4_mapped(const struct sockaddr_storage *ss) {
  return ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* Is the original destination `orig` the socket's own local address `local`
 * (no redirection happened)? `local` may be a v4-mapped IPv6 address. */
static bool same_endpoint(const struct sockaddr_storage *orig, const struct sockaddr_storage *local) {
  if (orig->ss_family == AF_INET) {
    const struct sockaddr_in *o = (const struct sockaddr_in *)orig;
    if (local->ss_family == AF_INET) {
      const struct sockaddr_in *l = (const struct sockaddr_in *)local;
      return o->sin_port == l->sin_port && o->sin_addr.s_addr == l->sin_addr.s_addr;
    }
    if (is_v4_mapped(local)) {
      const struct sockaddr_in6 *l = (const struct sockaddr_in6 *)local;
      return o->sin_port == l->sin6_port && memcmp(&o->sin_addr, &l->sin6_addr.s6_addr[12], 4) == 0;
    }
    return false;
  }
  if (orig->ss_family == AF_INET6 && local->ss_family == AF_INET6) {
    const struct sockaddr_in6 *o = (const struct sockaddr_in6 *)orig;
    const struct sockaddr_in6 *l = (const struct sockaddr_in6 *)local;
    return o->sin6_port == l->sin6_port && memcmp(&o->sin6_addr, &l->sin6_addr, sizeof o->sin6_addr) == 0;
  }
  return false;
}

static napi_value set_string(napi_env env, napi_value object, const char *key, const char *value) {
  napi_value v;
  NAPI_CALL(napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v));
  NAPI_CALL(napi_set_named_property(env, object, key, v));
  return object;
}

static napi_value set_int(napi_env env, napi_value object, const char *key, int32_t value) {
  napi_value v;
  NAPI_CALL(napi_create_int32(env, value, &v));
  NAPI_CALL(napi_set_named_property(env, object, key, v));
  return object;
}

/* { address, port, family } for an AF_INET or AF_INET6 address. */
static napi_value address_object(napi_env env, const struct sockaddr_storage *ss) {
  char text[INET6_ADDRSTRLEN] = "";
  int port = 0, family = 4;
  napi_value object;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    if (inet_ntop(AF_INET, &a->sin_addr, text, sizeof text) == NULL) return throw_errno(env, errno, "inet_ntop");
    port = ntohs(a->sin_port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    if (inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text) == NULL) return throw_errno(env, errno, "inet_ntop");
    port = ntohs(a->sin6_port);
    family = 6;
  } else {
    return throw_errno(env, EAFNOSUPPORT, "getsockopt(SO_ORIGINAL_DST)");
  }
  NAPI_CALL(napi_create_object(env, &object));
  if (set_string(env, object, "address", text) == NULL) return NULL;
  if (set_int(env, object, "port", port) == NULL) return NULL;
  if (set_int(env, object, "family", family) == NULL) return NULL;
  return object;
}

/* ---------- exported functions ---------- */

static napi_value original_dst(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int32_t fd;
  struct sockaddr_storage local, orig;
  socklen_t llen = sizeof local, olen;
  int rc;
  const char *what;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd)) return NULL;

  memset(&local, 0, sizeof local);
  memset(&orig, 0, sizeof orig);
  if (getsockname(fd, (struct sockaddr *)&local, &llen) != 0) return throw_errno(env, errno, "getsockname");
  if (local.ss_family == AF_INET || is_v4_mapped(&local)) {
    /* An IPv4 connection, also one accepted on a dual-stack IPv6 socket:
     * conntrack's IPv4 lookup answers SOL_IP on either kind of socket. */
    what = "getsockopt(SO_ORIGINAL_DST)";
    olen = sizeof(struct sockaddr_in);
    rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &orig, &olen);
  } else if (local.ss_family == AF_INET6) {
    what = "getsockopt(IP6T_SO_ORIGINAL_DST)";
    olen = sizeof(struct sockaddr_in6);
    rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &orig, &olen);
  } else {
    return throw_errno(env, EAFNOSUPPORT, "getsockname");
  }
  /* Not redirected: ENOENT when conntrack has no entry for the connection
   * (no NAT rule in this network namespace), ENOPROTOOPT when conntrack is
   * not there at all, else the entry's original destination is the socket's
   * own local address. */
  if (rc != 0 && (errno == ENOENT || errno == ENOPROTOOPT)) {
    NAPI_CALL(napi_get_null(env, &result));
    return result;
  }
  if (rc != 0) return throw_errno(env, errno, what);
  if (same_endpoint(&orig, &local)) {
    NAPI_CALL(napi_get_null(env, &result));
    return result;
  }
  return address_object(env, &orig);
}

static int set_transparent(int fd, int domain) {
  int one = 1;
  if (domain == AF_INET6) return setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one);
  return setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one);
}

static const char *transparent_name(int domain) {
  return domain == AF_INET6 ? "setsockopt(IPV6_TRANSPARENT)" : "setsockopt(IP_TRANSPARENT)";
}

static napi_value transparent_socket(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  int domain, fd, one = 1, err;
  int32_t port;
  char address[INET6_ADDRSTRLEN + 1];
  size_t alen = 0;
  struct sockaddr_storage ss;
  socklen_t slen;
  napi_valuetype type;
  if (!get_args(env, info, 3, argv) || !get_family(env, argv[0], &domain) || !get_int(env, argv[2], &port)) return NULL;
  NAPI_CALL(napi_typeof(env, argv[1], &type));
  if (type != napi_string) {
    napi_throw_type_error(env, NULL, "address must be a string");
    return NULL;
  }
  NAPI_CALL(napi_get_value_string_utf8(env, argv[1], address, sizeof address, &alen));
  if (port < 0 || port > 65535) {
    napi_throw_range_error(env, NULL, "port must be 0 to 65535");
    return NULL;
  }

  memset(&ss, 0, sizeof ss);
  if (domain == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (alen >= sizeof address - 1 || inet_pton(AF_INET6, address, &a->sin6_addr) != 1) {
      napi_throw_type_error(env, NULL, "not an IPv6 address");
      return NULL;
    }
    slen = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (alen >= sizeof address - 1 || inet_pton(AF_INET, address, &a->sin_addr) != 1) {
      napi_throw_type_error(env, NULL, "not an IPv4 address");
      return NULL;
    }
    slen = sizeof *a;
  }

  fd = socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return throw_errno(env, errno, "socket");
  /* IP_TRANSPARENT before bind(): it is what lets bind() take an address
   * that is not local (the client's). */
  if (set_transparent(fd, domain) != 0) {
    err = errno;
    close(fd);
    return throw_errno(env, err, transparent_name(domain));
  }
  /* A forged port may still be in TIME_WAIT from the previous connection. */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    err = errno;
    close(fd);
    return throw_errno(env, err, "setsockopt(SO_REUSEADDR)");
  }
  /* Any port: let connect() choose it, so many connections from one forged
   * address share ports across destinations. Best effort (Linux >= 4.2). */
  if (port == 0) (void)setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, slen) != 0) {
    err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  NAPI_CALL(napi_create_int32(env, fd, &result));
  return result;
}

static napi_value set_transparent_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int32_t fd;
  int domain = 0;
  socklen_t len = sizeof domain;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd)) return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return throw_errno(env, errno, "getsockopt(SO_DOMAIN)");
  if (domain != AF_INET && domain != AF_INET6) return throw_errno(env, EAFNOSUPPORT, transparent_name(AF_INET));
  if (set_transparent(fd, domain) != 0) return throw_errno(env, errno, transparent_name(domain));
  NAPI_CALL(napi_get_undefined(env, &result));
  return result;
}

static napi_value probe_transparent(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int domain, fd, err;
  if (!get_args(env, info, 1, argv) || !get_family(env, argv[0], &domain)) return NULL;
  fd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return throw_errno(env, errno, "socket");
  if (set_transparent(fd, domain) != 0) {
    err = errno;
    close(fd);
    return throw_errno(env, err, transparent_name(domain));
  }
  close(fd);
  NAPI_CALL(napi_get_undefined(env, &result));
  return result;
}

/* ---------- capabilities ---------- */

static napi_value keep_capabilities(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0) return throw_errno(env, errno, "prctl(PR_SET_KEEPCAPS)");
  return NULL;
}

static napi_value limit_capabilities(napi_env env, napi_callback_info info) {
  /* glibc has no capset() wrapper; the raw system call takes two 32-bit
   * words per set in version 3. CAP_NET_ADMIN (12) is in the first word. */
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  (void)info;
  memset(data, 0, sizeof data);
  data[0].permitted = data[0].effective = 1u << CAP_NET_ADMIN;
  if (syscall(SYS_capset, &header, data) != 0) return throw_errno(env, errno, "capset");
  if (prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) != 0) return throw_errno(env, errno, "prctl(PR_SET_KEEPCAPS)");
  return NULL;
}

bool transparent_init(napi_env env, napi_value exports) {
  static const struct exported list[] = {
    {"originalDst", original_dst},
    {"transparentSocket", transparent_socket},
    {"setTransparent", set_transparent_fd},
    {"probeTransparent", probe_transparent},
    {"keepCapabilities", keep_capabilities},
    {"limitCapabilities", limit_capabilities},
  };
  return EXPORT_FUNCTIONS(env, exports, list);
}
