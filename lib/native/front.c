/*
 * The relay thread's front (lib/relay/front.ts): for plain forwarded
 * services, the thread accepts on the listeners JavaScript gives it and
 * connects upstream where JavaScript says, so that such a connection never
 * becomes a Node socket (bench/RESULTS.md, "Profile": Node's two sockets
 * per connection, their construction, the connect and the hand-over were
 * most of a short connection's cost).
 *
 * Every decision stays in JavaScript: which service, whether the client
 * may connect at all, which server and in what order, what to log. The
 * thread only does the mechanics and reports, in order, through the relay
 * thread's one queue:
 *
 *   onAccept(id, listener, localIp, localPort, peerIp, peerPort, fd, plan)
 *       a connection was accepted; it waits (unread) until JavaScript
 *       answers with relayConnect, or ends it with relayAbort (fd: the
 *       thread's descriptor, which relayRelease gives JavaScript for a
 *       service that needs Node's socket); id 0: relayUnlisten closed the
 *       listener, and this comes after every connection it accepted.
 *       plan != 0: the listener's plan (relayPlan) was followed, and the
 *       connect attempt is under way already: its onConnect follows, as
 *       for a relayConnect; id -1: relayPlan's `plan` is in force, no
 *       connection reported after names an earlier one;
 *   onConnect(id, errno, timedOut)
 *       a connect attempt ended: errno 0, connected, and the relay has
 *       begun (relay_thread.c: its end is reported like any other);
 *       else the server socket is closed and the client waits again.
 *
 *   relayFront(onAccept, onConnect)      once, after relayInit
 *   relayListen(id, fd)                  poll a listening socket (duplicated)
 *   relayUnlisten(id)                    stop, and close the duplicate: when
 *                                        it returns the thread has let go
 *   relayConnect(id, family, address, port, timeoutMs, idleMs, keepalive,
 *                first, live, slot)      one attempt; first: bytes to send
 *                                        the server before the client's
 *                                        (a PROXY header), or null; the
 *                                        live counts go to live[3 * slot..]
 *   relayRelease(id)                     JavaScript takes the connection's
 *                                        descriptor (a Node socket); the
 *                                        thread forgets it
 *   relayPlan(listener, plan, family, address, port, timeoutMs, idleMs,
 *             keepalive)                 connect every connection accepted
 *                                        there from now on at once, and
 *                                        name `plan` in its onAccept
 *                                        (family 0: no plan, the
 *                                        connections wait)
 *   relayAdopt(id, live, slot)           a planned connection's live counts
 *
 * A plan is JavaScript's decision made once for a listener whose every
 * connection would get the same answer (lib/server/plan.ts): it spares
 * each connection the wait for the event loop before its connect. What the
 * answer was stays JavaScript's to log and count, as for any other.
 *
 * Accepting mirrors libuv's: up to ACCEPTS_PER_WAKE per wake-up; out of
 * descriptors, a spare one is given up to accept and close what waits
 * (the client sees a close, the daemon goes on).
 */
#define _GNU_SOURCE
#include "napi_util.h"
#include "relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define ACCEPTS_PER_WAKE 64

struct listener {
  struct end end; /* first: epoll's data points here (end.c == NULL) */
  double id;
  int fd;
  /* Bound to one address (not a wildcard, not transparent): every
   * connection's local address is this one, so accepting needs no
   * getsockname() per connection. */
  bool fixed;
  char local[ADDR_TEXT];
  int local_port;
  /* Until its queue is first found empty: connections that completed
   * before relayListen set TCP_NODELAY on the listener did not inherit it. */
  bool fresh;
  /* The relay thread's copy of relayPlan's: every connection accepted is
   * connected there at once, without waiting for JavaScript (plan 0: none). */
  struct target plan;
  double plan_id;
  bool closing;          /* the relay thread's: relayUnlisten came */
  /* Its last word (onAccept id 0), allocated with it: relayUnlisten's
   * promise in JavaScript waits for it, so it must not fail to come. */
  struct result *last;
  bool *done;            /* ...and this is set when the thread let go */
  struct listener *next; /* the JS thread's list, then the thread's closing list */
};

static struct listener *listening; /* JS thread */
static struct listener *closing;   /* relay thread: let go after this round */
static napi_ref on_accept, on_connect;
/* Connections the thread accepts are numbered from here up; relayAdd's
 * (JavaScript's) stay below. */
static double next_id = 1099511627776.0; /* 2^40 */
static int spare = -1;                   /* relay thread (JS thread while no listener is polled): /dev/null, given up when descriptors run out */

/* ---------- the relay thread ---------- */

static void addr_text(const struct sockaddr_storage *a, char *text, int *port) {
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
    inet_ntop(AF_INET6, &in6->sin6_addr, text, ADDR_TEXT);
    *port = ntohs(in6->sin6_port);
  } else {
    const struct sockaddr_in *in = (const struct sockaddr_in *)a;
    inet_ntop(AF_INET, &in->sin_addr, text, ADDR_TEXT);
    *port = ntohs(in->sin_port);
  }
}

static void set_int(int fd, int level, int name, int value) {
  setsockopt(fd, level, name, &value, sizeof value);
}

/* Out of descriptors: accept what waits with the spare one and close it. */
static void shed(int fd) {
  if (spare < 0) return;
  close(spare);
  for (int k = 0; k < ACCEPTS_PER_WAKE; k++) {
    int s = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (s < 0) break;
    close(s);
  }
  spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void connect_to(struct conn *c, struct result *ev, const struct target *t, char *first, size_t first_len, uint64_t *live);

static void accepted(struct listener *l, int fd, const struct sockaddr_storage *peer) {
  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  struct conn *c = NULL;
  struct result *ev = NULL, *attempt = NULL;
  if ((!l->fixed && getsockname(fd, (struct sockaddr *)&local, &len) != 0) || (c = conn_new()) == NULL || (ev = calloc(1, sizeof *ev)) == NULL) {
    if (c != NULL) conn_free(c);
    close(fd);
    return;
  }
  /* No Nagle delay, as Node's accepted sockets (lib/server/listeners.ts):
   * set on the listener (relayListen), and Linux's accepted sockets
   * inherit it when their handshake completes (test/relay/front.test.ts
   * checks it is so); the ones queued before are set here. */
  if (l->fresh) set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  c->id = next_id++;
  c->state = S_ACCEPTED;
  c->own = true;
  c->fd[CLIENT] = fd;
  ev->kind = EV_ACCEPT;
  ev->id = c->id;
  ev->listener = l->id;
  ev->fd = fd;
  if (l->fixed) {
    memcpy(ev->local, l->local, sizeof ev->local);
    ev->local_port = l->local_port;
  } else {
    addr_text(&local, ev->local, &ev->local_port);
  }
  addr_text(peer, ev->peer, &ev->peer_port);
  conn_link(c);
  /* A planned listener's connection is connected now; JavaScript hears of
   * the accept first, then of the attempt, as if it had asked for it (out
   * of memory for the report, it asks: the connection waits as unplanned). */
  if (l->plan_id != 0 && (attempt = calloc(1, sizeof *attempt)) != NULL) ev->plan = l->plan_id;
  post(ev);
  if (attempt != NULL) connect_to(c, attempt, &l->plan, NULL, 0, NULL);
}

void front_ready(struct end *e) {
  struct listener *l = (struct listener *)e;
  if (l->closing) return;
  if (spare < 0) spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
  for (int k = 0; k < ACCEPTS_PER_WAKE; k++) {
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int fd = accept4(l->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) shed(l->fd);
      if (errno == EAGAIN) l->fresh = false;
      /* EAGAIN: all taken. Anything else: the listener is polled
       * level-triggered, so it is tried again next round. */
      return;
    }
    accepted(l, fd, &peer);
  }
}

/* The attempt ended (err 0: connected). Reported before the relay starts,
 * so JavaScript hears of the connect before the end. */
static void connect_done(struct conn *c, int err, bool timed_out) {
  struct result *ev = c->connect_ev;
  c->connect_ev = NULL;
  ev->err = err;
  ev->timed_out = timed_out;
  if (err == 0) {
    c->result->live_ref = ev->live_ref;
    ev->live_ref = NULL;
    post(ev);
    relay_start(c);
    return;
  }
  /* Out of the epoll set before the close, as in finish(). */
  if (c->polled[SERVER]) epoll_ctl(R.ep, EPOLL_CTL_DEL, c->fd[SERVER], NULL);
  if (c->fd[SERVER] >= 0) close(c->fd[SERVER]);
  c->fd[SERVER] = -1;
  c->polled[SERVER] = false;
  unkeep(&c->h[CLIENT]);
  c->live = NULL;
  c->state = S_ACCEPTED;
  post(ev);
}

void front_connecting(struct conn *c, uint32_t events) {
  int err = 0;
  socklen_t len = sizeof err;
  if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
  /* Writable without an error or hang-up is connected (connect(2),
   * EINPROGRESS): SO_ERROR is asked only when there is one to read. */
  if ((events & (EPOLLERR | EPOLLHUP)) != 0 && getsockopt(c->fd[SERVER], SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  /* The server may have sent bytes or its FIN already: this edge was the one to say so. */
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->h[SERVER].readable = true;
  if (events & (EPOLLRDHUP | EPOLLHUP)) c->h[SERVER].fin_seen = true;
  connect_done(c, err, false);
}

int64_t front_deadline(struct conn *c) {
  if (c->deadline > R.now) return c->deadline;
  connect_done(c, ETIMEDOUT, true);
  return INT64_MAX;
}

/* As Node's setKeepAlive() sets it (libuv 1.45 and later: probes 1 s apart,
 * 10 of them), so a session's sockets are the same on either path. */
static void keepalive(int fd, int seconds) {
  set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
  set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, seconds);
  set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, 1);
  set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, 10);
}

/* One attempt of accepted connection c (S_ACCEPTED) to t; ev is its report. */
static void connect_to(struct conn *c, struct result *ev, const struct target *t, char *first, size_t first_len, uint64_t *live) {
  struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
  int fd;
  ev->kind = EV_CONNECT;
  ev->id = c->id;
  c->idle_ms = t->idle_ms;
  c->h[CLIENT].pending = first;
  c->h[CLIENT].pending_len = first_len;
  c->h[CLIENT].pending_off = 0;
  kept_more(first_len);
  c->live = live;
  c->connect_ev = ev;
  c->deadline = t->timeout_ms > 0 ? R.now + t->timeout_ms : INT64_MAX;
  fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return connect_done(c, errno, false);
  c->fd[SERVER] = fd;
  set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  if (t->keepalive > 0) {
    keepalive(c->fd[CLIENT], t->keepalive);
    keepalive(fd, t->keepalive);
  }
  if (connect(fd, (struct sockaddr *)&t->addr, t->addr_len) != 0 && errno != EINPROGRESS) return connect_done(c, errno, false);
  e.data.ptr = &c->ends[SERVER];
  if (epoll_ctl(R.ep, EPOLL_CTL_ADD, fd, &e) != 0) return connect_done(c, errno, false);
  c->polled[SERVER] = true;
  c->state = S_CONNECTING;
  if (c->deadline < R.next_check) R.next_check = c->deadline;
}

static void start_connect(struct cmd *q) {
  struct conn *c = conn_find(q->id);
  if (c == NULL || c->state != S_ACCEPTED) {
    /* Ended meanwhile (relayAbort): its end is reported already. */
    free(q->first);
    q->ev->kind = EV_CONNECT;
    q->ev->id = q->id;
    q->ev->gone = true;
    post(q->ev);
    return;
  }
  connect_to(c, q->ev, &q->t, q->first, q->first_len, q->live);
}

/* relayAdopt: where a planned connection's live counts go. Not after its
 * attempt failed (JavaScript lets go of them when it hears so) or it ended. */
static void adopt(struct cmd *q) {
  struct conn *c = conn_find(q->id);
  if (c == NULL || c->state == S_ACCEPTED) return;
  c->live = q->live;
  publish(c);
}

/* relayPlan's, in force from now on; JavaScript hears when (onAccept -1):
 * no connection reported after names a plan given before this one. */
static void set_plan(struct cmd *q) {
  struct result *ev = calloc(1, sizeof *ev);
  q->l->plan = q->t;
  q->l->plan_id = q->planned ? q->plan : 0;
  /* Out of memory JavaScript keeps the earlier plans a while longer. */
  if (ev == NULL) return;
  ev->kind = EV_ACCEPT;
  ev->id = -1;
  ev->listener = q->l->id;
  ev->plan = q->plan;
  post(ev);
}

/* The connection is JavaScript's now (relayRelease): forget it, its descriptor left open. */
static void release(double id) {
  struct conn *c = conn_find(id);
  if (c == NULL || c->state != S_ACCEPTED) return;
  conn_unlink(c);
  conn_free(c);
}

void front_command(struct cmd *q) {
  if (q->kind == CMD_CONNECT) return start_connect(q);
  if (q->kind == CMD_RELEASE) return release(q->id);
  if (q->kind == CMD_ADOPT) return adopt(q);
  if (q->kind == CMD_PLAN) return set_plan(q);
  /* CMD_UNLISTEN: its events of this round may still come; let go after it. */
  q->l->closing = true;
  q->l->done = q->done;
  q->l->next = closing;
  closing = q->l;
}

void front_round_end(void) {
  while (closing != NULL) {
    struct listener *l = closing;
    closing = l->next;
    close(l->fd);
    /* After every connection it accepted: onAccept(0, listener). */
    l->last->kind = EV_ACCEPT;
    l->last->listener = l->id;
    post(l->last);
    pthread_mutex_lock(&R.lock);
    *l->done = true;
    pthread_cond_broadcast(&R.done);
    pthread_mutex_unlock(&R.lock);
    free(l);
  }
}

/* ---------- the JavaScript thread ---------- */

/* The thread has stopped: close what it polled. */
void front_stop(void) {
  while (listening != NULL) {
    struct listener *l = listening;
    listening = l->next;
    close(l->fd);
    free(l->last);
    free(l);
  }
  if (spare >= 0) close(spare);
  spare = -1;
}

bool front_call_js(napi_env env, struct result *r) {
  napi_value argv[8], cb, undefined;
  size_t argc = 3;
  if (r->kind == EV_CONNECT && r->gone) {
    if (r->live_ref != NULL) napi_delete_reference(env, r->live_ref);
    free(r);
    return true;
  }
  if (napi_get_reference_value(env, r->kind == EV_ACCEPT ? on_accept : on_connect, &cb) != napi_ok || napi_get_undefined(env, &undefined) != napi_ok ||
      napi_create_double(env, r->id, &argv[0]) != napi_ok) {
    return false;
  }
  if (r->kind == EV_ACCEPT) {
    argc = 8;
    if (napi_create_double(env, r->listener, &argv[1]) != napi_ok || napi_create_string_latin1(env, r->local, NAPI_AUTO_LENGTH, &argv[2]) != napi_ok ||
        napi_create_int32(env, r->local_port, &argv[3]) != napi_ok || napi_create_string_latin1(env, r->peer, NAPI_AUTO_LENGTH, &argv[4]) != napi_ok ||
        napi_create_int32(env, r->peer_port, &argv[5]) != napi_ok || napi_create_int32(env, r->fd, &argv[6]) != napi_ok ||
        napi_create_double(env, r->plan, &argv[7]) != napi_ok) {
      return false;
    }
    /* JavaScript now has a connection to end: it keeps the callbacks
     * referenced; a listener's last word lets go of its reference. */
    if (r->id > 0) active_more(env);
    else if (r->id == 0) active_less(env);
  } else if (napi_create_int32(env, r->err, &argv[1]) != napi_ok || napi_get_boolean(env, r->timed_out, &argv[2]) != napi_ok) {
    return false;
  }
  if (r->live_ref != NULL) napi_delete_reference(env, r->live_ref);
  free(r);
  napi_call_function(env, undefined, cb, argc, argv, NULL);
  return true;
}

static bool get_callback(napi_env env, napi_value value, napi_ref *ref) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return napi_failed(env), false;
  if (type != napi_function) {
    napi_throw_type_error(env, NULL, "expected a function");
    return false;
  }
  if (*ref != NULL) napi_delete_reference(env, *ref);
  *ref = NULL;
  return napi_create_reference(env, value, 1, ref) == napi_ok || (napi_failed(env), false);
}

static napi_value relay_front(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  if (get_callback(env, argv[0], &on_accept)) get_callback(env, argv[1], &on_connect);
  return NULL;
}

static bool started(napi_env env) {
  if (R.started && on_accept != NULL && on_connect != NULL) return true;
  napi_throw_error(env, NULL, "relayInit() and relayFront() were not called");
  return false;
}

/* Whether every connection on l has the listener's own address (and which):
 * bound to one address, and not IP_TRANSPARENT (a TPROXY'd connection's
 * local address is where its client meant to go). */
static void fixed_local(struct listener *l) {
  struct sockaddr_storage a;
  socklen_t len = sizeof a;
  int transparent = 0;
  socklen_t tlen = sizeof transparent;
  bool any;
  l->fixed = false;
  if (getsockname(l->fd, (struct sockaddr *)&a, &len) != 0) return;
  if (a.ss_family == AF_INET6) {
    any = IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&a)->sin6_addr);
    if (getsockopt(l->fd, SOL_IPV6, IPV6_TRANSPARENT, &transparent, &tlen) != 0) transparent = 1;
  } else if (a.ss_family == AF_INET) {
    any = ((struct sockaddr_in *)&a)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (getsockopt(l->fd, SOL_IP, IP_TRANSPARENT, &transparent, &tlen) != 0) transparent = 1;
  } else {
    return;
  }
  if (any || transparent) return;
  addr_text(&a, l->local, &l->local_port);
  l->fixed = true;
}

static napi_value relay_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct epoll_event e = {.events = EPOLLIN};
  struct listener *l;
  double id;
  int32_t fd;
  if (!get_args(env, info, 2, argv) || !started(env)) return NULL;
  NAPI_CALL(napi_get_value_double(env, argv[0], &id));
  if (!get_int(env, argv[1], &fd)) return NULL;
  l = calloc(1, sizeof *l);
  if (l != NULL && (l->last = calloc(1, sizeof *l->last)) == NULL) {
    free(l);
    l = NULL;
  }
  if (l == NULL) return throw_errno(env, ENOMEM, "calloc");
  l->end.side = LISTENER;
  l->id = id;
  /* Our own descriptor: Node may close its listener; close-on-exec, so
   * programs started later do not hold the port. */
  l->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (l->fd < 0) {
    free(l->last);
    free(l);
    return throw_errno(env, errno, "fcntl(F_DUPFD_CLOEXEC)");
  }
  fixed_local(l);
  set_int(l->fd, IPPROTO_TCP, TCP_NODELAY, 1);
  l->fresh = true;
  /* The spare descriptor is opened now, while there are some: at the
   * first accept the table may be full already, and without it nothing
   * would take the waiting connections off the (level-triggered) queue.
   * With no listener polled the relay thread does not touch it. */
  if (listening == NULL && spare < 0) spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
  /* Level-triggered. Not EPOLLEXCLUSIVE: with several workers on one
   * socket, that wakes the same one each time, and it takes every
   * connection waiting; all woken, they share the load as Node's did. */
  e.data.ptr = &l->end;
  if (epoll_ctl(R.ep, EPOLL_CTL_ADD, l->fd, &e) != 0) {
    int err = errno;
    close(l->fd);
    free(l->last);
    free(l);
    return throw_errno(env, err, "epoll_ctl");
  }
  l->next = listening;
  listening = l;
  active_more(env);
  return NULL;
}

static napi_value relay_unlisten(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  struct listener **p = &listening, *l;
  struct cmd *q;
  bool done = false;
  double id;
  if (!get_args(env, info, 1, argv)) return NULL;
  NAPI_CALL(napi_get_value_double(env, argv[0], &id));
  while (*p != NULL && (*p)->id != id) p = &(*p)->next;
  l = *p;
  if (l == NULL || (q = calloc(1, sizeof *q)) == NULL) {
    NAPI_CALL(napi_get_boolean(env, false, &out));
    return out;
  }
  *p = l->next;
  epoll_ctl(R.ep, EPOLL_CTL_DEL, l->fd, NULL);
  q->kind = CMD_UNLISTEN;
  q->l = l;
  q->done = &done;
  enqueue(q);
  pthread_mutex_lock(&R.lock);
  while (!done) pthread_cond_wait(&R.done, &R.lock);
  pthread_mutex_unlock(&R.lock);
  /* The callbacks stay referenced until JavaScript has its last word. */
  NAPI_CALL(napi_get_boolean(env, true, &out));
  return out;
}

/* A `kind` command for connection argv[0], the first of `argc` arguments;
 * NULL with an exception pending. */
static struct cmd *conn_command(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, enum cmd_kind kind) {
  struct cmd *q;
  if (!get_args(env, info, argc, argv) || !started(env)) return NULL;
  q = calloc(1, sizeof *q);
  if (q == NULL) {
    throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  if (napi_get_value_double(env, argv[0], &q->id) != napi_ok) {
    free(q);
    napi_failed(env);
    return NULL;
  }
  q->kind = kind;
  return q;
}

/* relayRelease(id): JavaScript takes accepted connection `id`, its
 * descriptor and all (a service that needs Node's socket); the thread only
 * forgets it, and reports nothing more of it. */
static napi_value relay_release(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct cmd *q = conn_command(env, info, 1, argv, CMD_RELEASE);
  if (q == NULL) return NULL;
  enqueue(q);
  active_less(env);
  return NULL;
}

/* relayConnect's live counts: three entries at `slot` of a BigUint64Array
 * that JavaScript keeps for the life of the process (lib/relay/front.ts),
 * so no reference is taken (one per connection cost a tenth of the event
 * loop's time in allocations and their collection). */
static bool get_slot(napi_env env, napi_value value, int32_t slot, uint64_t **live) {
  bool is_typed;
  napi_typedarray_type kind;
  size_t length;
  void *data;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok) return napi_failed(env), false;
  if (is_typed && napi_get_typedarray_info(env, value, &kind, &length, &data, NULL, NULL) != napi_ok) return napi_failed(env), false;
  if (!is_typed || kind != napi_biguint64_array || slot < 0 || (size_t)slot * 3 + 3 > length) {
    napi_throw_range_error(env, NULL, "expected a BigUint64Array with room for slot");
    return false;
  }
  *live = (uint64_t *)data + (size_t)slot * 3;
  return true;
}

/* A target from (family, address, port, timeoutMs, idleMs, keepalive) at argv. */
static bool get_target(napi_env env, napi_value *argv, struct target *t) {
  int32_t family, port, keep;
  double timeout, idle;
  char address[ADDR_TEXT];
  size_t len;
  int ok;
  if (!get_int(env, argv[0], &family) || !get_int(env, argv[2], &port) || !get_int(env, argv[5], &keep)) return false;
  if (napi_get_value_double(env, argv[3], &timeout) != napi_ok || napi_get_value_double(env, argv[4], &idle) != napi_ok ||
      napi_get_value_string_latin1(env, argv[1], address, sizeof address, &len) != napi_ok) {
    return napi_failed(env), false;
  }
  memset(t, 0, sizeof *t);
  if (family == 6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&t->addr;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    t->addr_len = sizeof *a;
    ok = inet_pton(AF_INET6, address, &a->sin6_addr);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&t->addr;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    t->addr_len = sizeof *a;
    ok = family == 4 ? inet_pton(AF_INET, address, &a->sin_addr) : 0;
  }
  if (ok != 1 || port < 1 || port > 65535) {
    napi_throw_type_error(env, NULL, "expected an IPv4 or IPv6 address and a port");
    return false;
  }
  t->timeout_ms = (int64_t)timeout;
  t->idle_ms = (int64_t)idle;
  t->keepalive = keep;
  return true;
}

/* relayConnect(id, family, address, port, timeoutMs, idleMs, keepalive, first, live, slot) */
static napi_value relay_connect(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  int32_t slot;
  struct cmd *q = conn_command(env, info, 10, argv, CMD_CONNECT);
  if (q == NULL) return NULL;
  if ((q->ev = calloc(1, sizeof *q->ev)) == NULL) {
    free(q);
    return throw_errno(env, ENOMEM, "calloc");
  }
  if (!get_target(env, argv + 1, &q->t) || !get_int(env, argv[9], &slot) || !get_bytes(env, argv[7], &q->first, &q->first_len) ||
      !get_slot(env, argv[8], slot, &q->live)) {
    free(q->first);
    free(q->ev);
    free(q);
    return NULL;
  }
  enqueue(q);
  return NULL;
}

/* relayPlan(listener, plan, family, address, port, timeoutMs, idleMs,
 * keepalive): from now on, every connection listener `listener` accepts is
 * connected there at once, and its accept report names `plan` (a number
 * JavaScript keeps the decision under, above those it gave before);
 * family 0: none from now on (the rest may be left out). False when no
 * such listener is polled. */
static napi_value relay_plan(napi_env env, napi_callback_info info) {
  napi_value argv[8], out;
  struct listener *l = listening;
  struct cmd *q;
  double id, plan;
  int32_t family;
  if (!get_args(env, info, 3, argv) || !started(env)) return NULL;
  NAPI_CALL(napi_get_value_double(env, argv[0], &id));
  NAPI_CALL(napi_get_value_double(env, argv[1], &plan));
  if (!get_int(env, argv[2], &family)) return NULL;
  while (l != NULL && l->id != id) l = l->next;
  if (l == NULL) {
    NAPI_CALL(napi_get_boolean(env, false, &out));
    return out;
  }
  q = calloc(1, sizeof *q);
  if (q == NULL) return throw_errno(env, ENOMEM, "calloc");
  if (family != 0 && (!get_args(env, info, 8, argv) || !get_target(env, argv + 2, &q->t))) {
    free(q);
    return NULL;
  }
  q->kind = CMD_PLAN;
  q->l = l;
  q->plan = plan;
  q->planned = family != 0;
  enqueue(q);
  NAPI_CALL(napi_get_boolean(env, true, &out));
  return out;
}

/* relayAdopt(id, live, slot): a planned connection's live counts go to
 * live[3 * slot..] (as relayConnect's). */
static napi_value relay_adopt(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t slot;
  struct cmd *q = conn_command(env, info, 3, argv, CMD_ADOPT);
  if (q == NULL) return NULL;
  if (!get_int(env, argv[2], &slot) || !get_slot(env, argv[1], slot, &q->live)) {
    free(q);
    return NULL;
  }
  enqueue(q);
  return NULL;
}

bool front_init(napi_env env, napi_value exports) {
  static const struct exported list[] = {
    {"relayFront", relay_front},
    {"relayListen", relay_listen},
    {"relayUnlisten", relay_unlisten},
    {"relayConnect", relay_connect},
    {"relayRelease", relay_release},
    {"relayPlan", relay_plan},
    {"relayAdopt", relay_adopt},
  };
  return EXPORT_FUNCTIONS(env, exports, list);
}
