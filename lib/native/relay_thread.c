/*
 * The relay of established connections in a native thread: one thread per
 * process moves every handed-over connection's bytes with recv()/send()
 * through one shared buffer, so no chunk of a relayed stream is ever a
 * JavaScript object (see bench/RESULTS.md, "Profile": copying each chunk
 * through the JS heap in the event loop's thread was the ceiling).
 *
 * JavaScript hands a connection over once its upstream is connected
 * (lib/relay/thread.ts): the two socket descriptors (duplicated here, so
 * Node may close its own), the bytes to send first (a PROXY header, data
 * Node had already read) and the idle timeout. From then on the thread owns
 * the connection and reports its end, with byte counts and the reason,
 * through a thread-safe function. The semantics are those of lib/relay/event-loop.ts:
 *
 *   - half-close: a side's EOF becomes shutdown(SHUT_WR) toward the other
 *     once everything read before it is delivered; the other direction goes
 *     on until it ends too, then both descriptors are closed;
 *   - an error on either side resets both (SO_LINGER 0) and names the side;
 *   - no byte in either direction for the idle timeout closes both;
 *   - backpressure: what the destination did not take is kept for that
 *     connection and its source is not read again until it is delivered.
 *     A read asks for no more than the destination's free send-buffer
 *     space (SO_MEMINFO), and at least KEEP_MIN bytes, so
 *     the kept rest stays small: what the destination refuses of a read
 *     that fitted, or at most KEEP_MIN once it is full. A slow reader's
 *     bytes wait in the kernel (the source's receive window closes)
 *     instead of here.
 *
 * Memory: an idle connection holds ~250 bytes here and no buffer. A read
 * asks for up to READ_MAX bytes, so a fast stream moves in big reads;
 * capped by the destination's free space, it leaves a slow reader's
 * connection holding little (about KEEP_MIN per direction; it held up to
 * a whole 1 MiB read's rest before, when a shrinking read size was the
 * only bound).
 *
 * The end of every connection is reported: its report is allocated with
 * the connection (relayAdd), so nothing is allocated when it ends, and a
 * report whose Node-API calls fail on the JS thread is queued again for
 * a later turn instead of being dropped (a session left unreported would
 * never end).
 *
 * Descriptors are epoll'ed edge-triggered; every pump ends at EAGAIN, or
 * puts the connection on the run-again list when its turn's budget is
 * spent, so one fast stream cannot starve the others.
 *
 *   relayInit(onEnd)       start the thread; onEnd(id, toServer, toClient,
 *                          reason, errno, syscall) is called on the JS
 *                          thread for each connection that ends.
 *   relayAdd(id, clientFd, serverFd, idleMs, toServer, toClient, live)
 *                          hand a connection over; toServer/toClient are
 *                          Buffers to send first, or null; live, a
 *                          BigUint64Array of 3 (or null) where the thread
 *                          keeps the counts for `show sessions`.
 *   relayAbort(id)         end a connection now: reason "shutdown".
 *   closeReasons()         the reason names, in the order of enum reason
 *                          (test/relay/close-reasons.test.ts compares
 *                          them with the TypeScript list).
 */
#define _GNU_SOURCE
#include "addon.h"
#include "napi_util.h"
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sock_diag.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Bounds of one read. 1 MiB reads measured 13.8 Gbit/s on one loopback
 * stream here, 256 KiB 12.3, 64 KiB 3.3 (HAProxy 11.0); splice(2) through
 * a pipe measured 2.5-5.9 and was dropped. */
#define READ_MAX (1024 * 1024)
/* The least a read asks for even when the destination has no room: a
 * send must still meet the full buffer (EAGAIN or a short send), for only
 * then does the kernel wake the relay with EPOLLOUT when room is made. */
#define KEEP_MIN (4 * 1024)
/* A read's size until a read fills it: short exchanges never ask the
 * destination's room (SO_MEMINFO, one system call per read); what such a
 * read leaves to keep is bounded by it. */
#define SMALL_READ (16 * 1024)
/* Bytes one connection may move in one turn before the others get theirs. */
#define TURN_BUDGET (2 * READ_MAX)
#define EVENTS_MAX 256

struct relay_state R = {.ep = -1, .wake = -1, .lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

/* Connections by id (relayAbort, relayConnect): ids are dense, so the low
 * bits spread them evenly. */
#define ID_BUCKETS 4096

static struct {
  pthread_t thread;
  struct cmd *head, *tail; /* under R.lock */
  uint32_t fail_reports; /* JS thread: a test hook, relayFailReports() */
  /* Bytes kept for destinations now, all connections: a test hook,
   * relayKept(); written by the relay thread, read by the JS thread. */
  uint64_t kept;
  /* The relay thread's own: */
  struct conn *conns;
  struct conn *again;
  struct conn *dead;
  struct conn *by_id[ID_BUCKETS];
  struct result *batch_head, *batch_tail; /* this round's reports */
} Q;

/* The relay thread's read buffer: every read lands here and is sent at once. */
static char buffer[READ_MAX];

static int64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- the relay thread ---------- */

/* The first failure is the cause; it overrides a half-close already seen. */
static bool fail(struct conn *c, int side, int err, const char *syscall) {
  if (c->reason < R_TIMEOUT) {
    c->reason = side == CLIENT ? R_CLIENT_ERROR : R_SERVER_ERROR;
    c->err = err;
    c->syscall = syscall;
  }
  return false;
}

/* Keep what the destination did not take; false when out of memory. */
static bool keep(struct half *h, const char *data, size_t len) {
  h->pending = malloc(len);
  if (h->pending == NULL) return false;
  memcpy(h->pending, data, len);
  h->pending_len = len;
  h->pending_off = 0;
  __atomic_add_fetch(&Q.kept, len, __ATOMIC_RELAXED);
  return true;
}

/* Drop what is kept for direction h (delivered, or the connection ended). */
void unkeep(struct half *h) {
  __atomic_sub_fetch(&Q.kept, h->pending_len, __ATOMIC_RELAXED);
  free(h->pending);
  h->pending = NULL;
  h->pending_len = h->pending_off = 0;
}

/* How much to read for destination `to`: READ_MAX, but no more than it has
 * room for now (and no less than KEEP_MIN), so that little of the read is
 * left over to keep. SO_MEMINFO gives, in one call, the two figures the
 * kernel itself compares before it takes a send: its send buffer (which
 * TCP grows by itself while the stream is fast) and the memory queued in
 * it. Should the call fail the read is not capped. */
static size_t read_size(int to) {
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t len = sizeof mem;
  size_t room;
  if (getsockopt(to, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0) return READ_MAX;
  room = mem[SK_MEMINFO_SNDBUF] > mem[SK_MEMINFO_WMEM_QUEUED] ? mem[SK_MEMINFO_SNDBUF] - mem[SK_MEMINFO_WMEM_QUEUED] : 0;
  if (room < KEEP_MIN) room = KEEP_MIN;
  return room < READ_MAX ? room : READ_MAX;
}

/* Move what can be moved in direction i now. False: the connection failed.
 * It returns only where an edge will wake it again: the destination said
 * EAGAIN (EPOLLOUT comes) or the source did (EPOLLIN comes), the source
 * ended, or the turn's budget is spent (then the run-again list). */
static bool pump(struct conn *c, int i, size_t *budget) {
  struct half *h = &c->h[i];
  int from = c->fd[i], to = c->fd[1 - i];
  ssize_t n, m;
  size_t want;
  while (h->pending_off < h->pending_len) {
    n = send(to, h->pending + h->pending_off, h->pending_len - h->pending_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN ? true : fail(c, 1 - i, errno, "write");
    h->pending_off += (size_t)n;
    h->bytes += (uint64_t)n;
    c->last = R.now;
  }
  unkeep(h);
  for (;;) {
    if (h->eof) {
      if (!h->shut) {
        h->shut = true;
        /* The other way is over too: the close that follows sends the FIN. */
        if (c->own && c->h[1 - i].shut) return true;
        if (shutdown(to, SHUT_WR) != 0 && errno != ENOTCONN) return fail(c, 1 - i, errno, "shutdown");
      }
      return true;
    }
    /* Drained, and no edge since: nothing to read (the edge will come). */
    if (!h->readable) return true;
    if (*budget == 0) {
      /* Not at EAGAIN: no edge will come, so come back next round. */
      if (!c->again) {
        c->again = true;
        c->next_again = Q.again;
        Q.again = c;
      }
      return true;
    }
    want = h->big ? read_size(to) : SMALL_READ;
    n = recv(from, buffer, want, MSG_DONTWAIT);
    if (n == 0) {
      h->eof = true;
      if (c->reason < 0) c->reason = i == CLIENT ? R_CLIENT : R_SERVER;
      continue;
    }
    if (n < 0 && errno == EAGAIN) h->readable = h->fin_seen = false;
    if (n < 0) return errno == EAGAIN ? true : fail(c, i, errno, "read");
    /* A stream socket's read that comes back short took all there was; a
     * FIN that came with the last edge is still to be read (no edge will
     * tell it again). */
    if ((size_t)n < want && !h->fin_seen) h->readable = false;
    if ((size_t)n == SMALL_READ) h->big = true;
    c->last = R.now;
    *budget = *budget > (size_t)n ? *budget - (size_t)n : 0;
    m = send(to, buffer, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (m < 0 && errno != EAGAIN) return fail(c, 1 - i, errno, "write");
    if (m < 0) m = 0;
    h->bytes += (uint64_t)m;
    if (m < n) {
      /* The destination is full: keep the rest, read no more until it is
       * delivered (EPOLLOUT). */
      return keep(h, buffer + m, (size_t)(n - m)) ? true : fail(c, 1 - i, ENOMEM, "malloc");
    }
  }
}

/* A report for the JS thread: sent with the others of this round (one
 * wake-up of the event loop per round, not one per report). */
void post(struct result *r) {
  r->next = NULL;
  if (Q.batch_tail != NULL) Q.batch_tail->next = r;
  else Q.batch_head = r;
  Q.batch_tail = r;
}

static void free_reports(struct result *r) {
  while (r != NULL) {
    struct result *next = r->next;
    free(r);
    r = next;
  }
}

/* Hand the round's reports to the JS thread: the queue has no limit, so it
 * fails only while Node shuts down. */
static void post_round(void) {
  struct result *r = Q.batch_head;
  Q.batch_head = Q.batch_tail = NULL;
  if (r != NULL && napi_call_threadsafe_function(R.tsfn, r, napi_tsfn_nonblocking) != napi_ok) free_reports(r);
}

/* The connection's end report: allocated with it, so nothing to allocate now. */
static void post_end(struct conn *c) {
  struct result *r = c->result;
  c->result = NULL;
  r->kind = EV_END;
  r->id = c->id;
  r->to_server = c->h[CLIENT].bytes;
  r->to_client = c->h[SERVER].bytes;
  r->reason = c->reason;
  r->err = c->err;
  r->syscall = c->syscall;
  post(r);
}

void conn_link(struct conn *c) {
  struct conn **b = &Q.by_id[(uint64_t)c->id % ID_BUCKETS];
  c->next_hash = *b;
  *b = c;
  c->prev = NULL;
  c->next = Q.conns;
  if (Q.conns != NULL) Q.conns->prev = c;
  Q.conns = c;
}

void conn_unlink(struct conn *c) {
  struct conn **b = &Q.by_id[(uint64_t)c->id % ID_BUCKETS];
  while (*b != c) b = &(*b)->next_hash;
  *b = c->next_hash;
  if (c->prev != NULL) c->prev->next = c->next;
  else Q.conns = c->next;
  if (c->next != NULL) c->next->prev = c->prev;
}

struct conn *conn_new(void) {
  struct conn *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->result = calloc(1, sizeof *c->result);
  if (c->result == NULL) {
    free(c);
    return NULL;
  }
  c->reason = -1;
  c->fd[0] = c->fd[1] = -1;
  for (int s = 0; s < 2; s++) {
    c->ends[s].c = c;
    c->ends[s].side = s;
  }
  return c;
}

void conn_free(struct conn *c) {
  free(c->result);
  free(c);
}

struct conn *conn_find(double id) {
  struct conn *c = Q.by_id[(uint64_t)id % ID_BUCKETS];
  while (c != NULL && c->id != id) c = c->next_hash;
  return c;
}

/* Close both sockets (with RST after an error), report, and free later.
 * A connection the thread accepted may have no server socket yet, and a
 * connect attempt's report not sent: its live array goes with the end. */
void finish(struct conn *c) {
  struct linger reset = {1, 0};
  if (c->dead) return;
  c->dead = true;
  for (int s = 0; s < 2; s++) {
    if (c->fd[s] >= 0) {
      /* Out of the epoll set first, even for a descriptor no one else
       * has: a child process Node forks holds a copy until its exec, and
       * while it does, close() leaves the registration (and events that
       * would point at this freed connection). */
      if (c->polled[s]) epoll_ctl(R.ep, EPOLL_CTL_DEL, c->fd[s], NULL);
      if (c->err != 0) setsockopt(c->fd[s], SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
      close(c->fd[s]);
    }
    unkeep(&c->h[s]);
  }
  if (c->connect_ev != NULL) {
    c->result->live_ref = c->connect_ev->live_ref;
    free(c->connect_ev);
    c->connect_ev = NULL;
  }
  conn_unlink(c);
  post_end(c);
  /* Events of this round may still point at it. */
  c->next_dead = Q.dead;
  Q.dead = c;
}

/* The connection's counts where JS reads them (relayAdd's live array). */
void publish(struct conn *c) {
  if (c->live == NULL) return;
  __atomic_store_n(&c->live[0], c->h[CLIENT].bytes, __ATOMIC_RELAXED);
  __atomic_store_n(&c->live[1], c->h[SERVER].bytes, __ATOMIC_RELAXED);
  __atomic_store_n(&c->live[2], (uint64_t)c->h[CLIENT].shut | (uint64_t)c->h[SERVER].shut << 1, __ATOMIC_RELAXED);
}

static void run(struct conn *c) {
  size_t budget = TURN_BUDGET;
  if (c->dead) return;
  if (!pump(c, CLIENT, &budget) || !pump(c, SERVER, &budget)) return finish(c);
  publish(c);
  if (c->h[CLIENT].shut && c->h[SERVER].shut) finish(c);
}

/* A reset or error reported by the kernel on a socket no direction is reading. */
static void check_error(struct conn *c, int side) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd[side], SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
    fail(c, side, err, "read");
    finish(c);
  }
}

static void cut(struct conn *c, int reason) {
  if (c->err == 0 && c->reason < R_TIMEOUT) c->reason = reason;
  finish(c);
}

/* Relay from now on: poll the sockets not polled yet (a connect polls the
 * server's already) and move what is there. */
void relay_start(struct conn *c) {
  struct epoll_event ev;
  c->state = S_RELAYING;
  c->last = R.now;
  /* Nothing is read or sent here: adding a descriptor to the epoll set
   * queues its event at once when it is ready (and it is: writable), and
   * that event says what there is to read (front.c notes what the connect's
   * event said of the server). So no read is made only to meet EAGAIN. */
  for (int s = 0; s < 2; s++) {
    if (c->polled[s]) continue;
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &c->ends[s];
    if (epoll_ctl(R.ep, EPOLL_CTL_ADD, c->fd[s], &ev) != 0) {
      fail(c, s, errno, "epoll_ctl");
      return finish(c);
    }
    c->polled[s] = true;
  }
  if (c->idle_ms > 0 && R.now + c->idle_ms < R.next_check) R.next_check = R.now + c->idle_ms;
}

/* A connection JavaScript handed over (relayAdd). */
static void add(struct conn *c) {
  /* The bytes given with the hand-over are kept too, until delivered. */
  __atomic_add_fetch(&Q.kept, c->h[CLIENT].pending_len + c->h[SERVER].pending_len, __ATOMIC_RELAXED);
  conn_link(c);
  relay_start(c);
}

/* Count bytes given to a connection to keep until delivered (relayConnect's first bytes). */
void kept_more(size_t len) {
  __atomic_add_fetch(&Q.kept, len, __ATOMIC_RELAXED);
}

/* Idle and connect timeouts: cut the expired, and find when the next one is due. */
static void check_timeouts(void) {
  int64_t next = INT64_MAX;
  for (struct conn *c = Q.conns, *n; c != NULL; c = n) {
    n = c->next;
    if (c->state == S_CONNECTING) {
      int64_t due = front_deadline(c);
      if (due < next) next = due;
      continue;
    }
    if (c->state != S_RELAYING || c->idle_ms <= 0) continue;
    int64_t due = c->last + c->idle_ms;
    if (due <= R.now) cut(c, R_TIMEOUT);
    else if (due < next) next = due;
  }
  R.next_check = next;
}

/* Run the queued commands; false on CMD_STOP. */
static bool commands(void) {
  uint64_t count;
  struct cmd *q;
  bool go_on = true;
  if (read(R.wake, &count, sizeof count) < 0) { /* EAGAIN: nothing new */ }
  pthread_mutex_lock(&R.lock);
  q = Q.head;
  Q.head = Q.tail = NULL;
  pthread_mutex_unlock(&R.lock);
  while (q != NULL) {
    struct cmd *next = q->next;
    if (q->kind == CMD_ADD) {
      add(q->c);
    } else if (q->kind == CMD_ABORT) {
      struct conn *c = conn_find(q->id);
      if (c != NULL) cut(c, R_SHUTDOWN);
    } else if (q->kind == CMD_STOP) {
      go_on = false;
    } else {
      front_command(q);
    }
    free(q);
    q = next;
  }
  return go_on;
}

/* Free the connections finished this round (also off the run-again list). */
static void free_dead(void) {
  while (Q.dead != NULL) {
    struct conn *c = Q.dead;
    Q.dead = c->next_dead;
    if (c->again) {
      struct conn **p = &Q.again;
      while (*p != c) p = &(*p)->next_again;
      *p = c->next_again;
    }
    free(c);
  }
}

static void *relay_thread(void *arg) {
  struct epoll_event events[EVENTS_MAX];
  (void)arg;
  /* Its name in top -H, ps -L and /proc/PID/task/TID/comm. */
  pthread_setname_np(pthread_self(), "tcpproxy-relay");
  R.next_check = INT64_MAX;
  for (;;) {
    int timeout;
    R.now = monotonic_ms();
    if (Q.again != NULL) timeout = 0;
    else if (R.next_check == INT64_MAX) timeout = -1;
    else timeout = R.next_check <= R.now ? 0 : (int)(R.next_check - R.now < INT_MAX ? R.next_check - R.now : INT_MAX);
    int n = epoll_wait(R.ep, events, EVENTS_MAX, timeout);
    R.now = monotonic_ms();
    if (n < 0 && errno != EINTR) break;
    /* Those that spent their budget last round go first. */
    struct conn *again = Q.again;
    Q.again = NULL;
    for (struct conn *c = again, *next; c != NULL; c = next) {
      next = c->next_again;
      c->again = false;
      run(c);
    }
    /* Commands first: a connection accepted in this round is planned as
     * JavaScript last said (relayPlan), whatever epoll's order. */
    for (int k = 0; k < n; k++) {
      if (events[k].data.ptr == NULL && !commands()) goto stop;
    }
    for (int k = 0; k < n; k++) {
      if (events[k].data.ptr == NULL) continue;
      struct end *e = events[k].data.ptr;
      if (e->c == NULL) {
        front_ready(e);
        continue;
      }
      if (e->c->dead) continue;
      if (e->c->state == S_CONNECTING) {
        front_connecting(e->c, events[k].events);
        continue;
      }
      if (events[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) e->c->h[e->side].readable = true;
      if (events[k].events & (EPOLLRDHUP | EPOLLHUP)) e->c->h[e->side].fin_seen = true;
      if (events[k].events & EPOLLERR) check_error(e->c, e->side);
      run(e->c);
    }
    if (R.next_check <= R.now) check_timeouts();
    free_dead();
    front_round_end();
    post_round();
  }
stop:
  while (Q.conns != NULL) cut(Q.conns, R_SHUTDOWN);
  free_dead();
  front_round_end();
  post_round();
  return NULL;
}

/* ---------- the JavaScript thread ---------- */

void enqueue(struct cmd *q) {
  uint64_t one = 1;
  bool was_empty;
  q->next = NULL;
  pthread_mutex_lock(&R.lock);
  was_empty = Q.head == NULL;
  if (Q.tail != NULL) Q.tail->next = q;
  else Q.head = q;
  Q.tail = q;
  pthread_mutex_unlock(&R.lock);
  /* The thread takes the whole queue per wake-up: a queue that was not
   * empty has a wake-up pending already (one system call less per
   * connection under load). */
  if (was_empty && write(R.wake, &one, sizeof one) < 0) { /* the counter is already non-zero */ }
}

static const char *reason_names[] = {"client", "server", "timeout", "client-error", "server-error", "shutdown"};
_Static_assert(sizeof reason_names / sizeof reason_names[0] == R_SHUTDOWN + 1, "one name per enum reason");

static napi_value close_reasons(napi_env env, napi_callback_info info) {
  napi_value list, name;
  (void)info;
  NAPI_CALL(napi_create_array(env, &list));
  for (uint32_t i = 0; i <= R_SHUTDOWN; i++) {
    NAPI_CALL(napi_create_string_utf8(env, reason_names[i], NAPI_AUTO_LENGTH, &name));
    NAPI_CALL(napi_set_element(env, list, i, name));
  }
  return list;
}

/* The arguments of onEnd(id, toServer, toClient, reason, errno, syscall);
 * false when a Node-API call failed. */
static bool report_args(napi_env env, const struct result *r, napi_value *argv, napi_value *undefined) {
  if (Q.fail_reports > 0) {
    Q.fail_reports--;
    return false;
  }
  return napi_create_double(env, r->id, &argv[0]) == napi_ok &&
         napi_create_double(env, (double)r->to_server, &argv[1]) == napi_ok &&
         napi_create_double(env, (double)r->to_client, &argv[2]) == napi_ok &&
         napi_create_string_utf8(env, reason_names[r->reason < 0 ? R_SHUTDOWN : r->reason], NAPI_AUTO_LENGTH, &argv[3]) == napi_ok &&
         napi_create_int32(env, r->err, &argv[4]) == napi_ok &&
         napi_create_string_utf8(env, r->syscall == NULL ? "" : r->syscall, NAPI_AUTO_LENGTH, &argv[5]) == napi_ok &&
         napi_get_undefined(env, undefined) == napi_ok;
}

void active_more(napi_env env) {
  if (R.active++ == 0) napi_ref_threadsafe_function(env, R.tsfn);
}

void active_less(napi_env env) {
  if (--R.active == 0) napi_unref_threadsafe_function(env, R.tsfn);
}

/* An exception a callback left (JavaScript's handlers catch their own):
 * cleared, so that the next report can be delivered. */
static void clear_exception(napi_env env) {
  napi_value ignored;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
}

/* On the JS thread: onEnd(...) for one connection, or front.c's callbacks;
 * false when a Node-API call failed (r is kept). */
static bool deliver(napi_env env, napi_value js_cb, struct result *r) {
  napi_value argv[6], undefined;
  if (r->kind != EV_END) return front_call_js(env, r);
  if (!report_args(env, r, argv, &undefined)) return false;
  if (r->live_ref != NULL) napi_delete_reference(env, r->live_ref);
  free(r);
  active_less(env);
  napi_call_function(env, undefined, js_cb, 6, argv, NULL);
  return true;
}

/* On the JS thread: a round's reports, in order. */
static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  struct result *r = data, *next;
  (void)context;
  if (env == NULL) return free_reports(r);
  for (; r != NULL; r = next) {
    next = r->next;
    if (deliver(env, js_cb, r)) {
      clear_exception(env);
      continue;
    }
    /* Out of memory in V8, or an exception left pending: the session must
     * still end, so clear the way and try this one and the rest again on a
     * later turn. */
    clear_exception(env);
    if (napi_call_threadsafe_function(R.tsfn, r, napi_tsfn_nonblocking) != napi_ok) free_reports(r);
    return;
  }
}

/* relayFailReports(n): the next n reports fail as if a Node-API call had
 * failed. A test hook (test/relay/thread.test.ts), harmless otherwise. */
static napi_value relay_fail_reports(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t n;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &n)) return NULL;
  Q.fail_reports = n < 0 ? 0 : (uint32_t)n;
  return NULL;
}

/* relayKept(): the bytes the thread keeps for destinations now, all
 * connections together. A test hook (test/relay/thread.test.ts). */
static napi_value relay_kept(napi_env env, napi_callback_info info) {
  napi_value out;
  (void)info;
  NAPI_CALL(napi_create_double(env, (double)__atomic_load_n(&Q.kept, __ATOMIC_RELAXED), &out));
  return out;
}

static void stop_thread(void *arg) {
  struct cmd *q = calloc(1, sizeof *q);
  (void)arg;
  if (q == NULL || !R.started) {
    free(q);
    return;
  }
  q->kind = CMD_STOP;
  enqueue(q);
  pthread_join(Q.thread, NULL);
  front_stop();
  R.started = false;
}

static napi_value relay_init(napi_env env, napi_callback_info info) {
  napi_value argv[1], name;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  sigset_t all, old;
  int err;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (R.started) return NULL;
  R.ep = epoll_create1(EPOLL_CLOEXEC);
  if (R.ep < 0) return throw_errno(env, errno, "epoll_create1");
  R.wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (R.wake < 0) return throw_errno(env, errno, "eventfd");
  if (epoll_ctl(R.ep, EPOLL_CTL_ADD, R.wake, &ev) != 0) return throw_errno(env, errno, "epoll_ctl");
  NAPI_CALL(napi_create_string_utf8(env, "tcpproxy relay thread", NAPI_AUTO_LENGTH, &name));
  NAPI_CALL(napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &R.tsfn));
  /* Referenced only while connections are handed over (relayAdd). */
  NAPI_CALL(napi_unref_threadsafe_function(env, R.tsfn));
  /* Signals are Node's: the thread blocks them all. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  err = pthread_create(&Q.thread, NULL, relay_thread, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) return throw_errno(env, err, "pthread_create");
  R.started = true;
  NAPI_CALL(napi_add_env_cleanup_hook(env, stop_thread, NULL));
  return NULL;
}

/* A copy of a Buffer argument (null/undefined: none). */
bool get_bytes(napi_env env, napi_value value, char **out, size_t *len) {
  napi_valuetype type;
  bool is_buffer;
  void *data;
  *out = NULL;
  *len = 0;
  if (napi_typeof(env, value, &type) != napi_ok) return napi_failed(env), false;
  if (type == napi_null || type == napi_undefined) return true;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok) return napi_failed(env), false;
  if (!is_buffer) {
    napi_throw_type_error(env, NULL, "expected a Buffer or null");
    return false;
  }
  if (napi_get_buffer_info(env, value, &data, len) != napi_ok) return napi_failed(env), false;
  if (*len == 0) return true;
  *out = malloc(*len);
  if (*out == NULL) {
    throw_errno(env, ENOMEM, "malloc");
    return false;
  }
  memcpy(*out, data, *len);
  return true;
}

/* relayAdd's optional live-counts array: a BigUint64Array of 3, kept alive
 * (a reference) until the connection's report reaches the JS thread. */
static bool get_live(napi_env env, napi_value value, napi_ref *ref, uint64_t **live) {
  napi_valuetype type;
  bool is_typed;
  napi_typedarray_type kind;
  size_t length;
  void *data;
  if (napi_typeof(env, value, &type) != napi_ok) return napi_failed(env), false;
  if (type == napi_null || type == napi_undefined) return true;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok) return napi_failed(env), false;
  if (is_typed && napi_get_typedarray_info(env, value, &kind, &length, &data, NULL, NULL) != napi_ok) return napi_failed(env), false;
  if (!is_typed || kind != napi_biguint64_array || length < 3) {
    napi_throw_type_error(env, NULL, "expected a BigUint64Array of 3 or null");
    return false;
  }
  if (napi_create_reference(env, value, 1, ref) != napi_ok) return napi_failed(env), false;
  *live = data;
  return true;
}

static napi_value relay_add(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  double id, idle;
  int32_t fds[2];
  struct conn *c;
  struct cmd *q;
  if (!get_args(env, info, 7, argv)) return NULL;
  if (!R.started) {
    napi_throw_error(env, NULL, "relayInit() was not called");
    return NULL;
  }
  NAPI_CALL(napi_get_value_double(env, argv[0], &id));
  if (!get_int(env, argv[1], &fds[0]) || !get_int(env, argv[2], &fds[1])) return NULL;
  NAPI_CALL(napi_get_value_double(env, argv[3], &idle));
  c = conn_new();
  q = calloc(1, sizeof *q);
  if (c == NULL || q == NULL) {
    if (c != NULL) conn_free(c);
    free(q);
    return throw_errno(env, ENOMEM, "calloc");
  }
  c->id = id;
  c->idle_ms = (int64_t)idle;
  if (!get_bytes(env, argv[4], &c->h[CLIENT].pending, &c->h[CLIENT].pending_len) ||
      !get_bytes(env, argv[5], &c->h[SERVER].pending, &c->h[SERVER].pending_len) || !get_live(env, argv[6], &c->result->live_ref, &c->live)) {
    goto failed;
  }
  /* Our own descriptors (close-on-exec: programs started later must not
   * hold the connection open); Node closes its own. */
  for (int s = 0; s < 2; s++) {
    c->fd[s] = fcntl(fds[s], F_DUPFD_CLOEXEC, 0);
    if (c->fd[s] < 0) {
      throw_errno(env, errno, "fcntl(F_DUPFD_CLOEXEC)");
      goto failed;
    }
  }
  active_more(env);
  q->kind = CMD_ADD;
  q->c = c;
  enqueue(q);
  return NULL;
failed:
  for (int s = 0; s < 2; s++) {
    if (c->fd[s] >= 0) close(c->fd[s]);
    free(c->h[s].pending);
  }
  if (c->result->live_ref != NULL) napi_delete_reference(env, c->result->live_ref);
  conn_free(c);
  free(q);
  return NULL;
}

static napi_value relay_abort(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct cmd *q;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (!R.started) return NULL;
  q = calloc(1, sizeof *q);
  if (q == NULL) return throw_errno(env, ENOMEM, "calloc");
  NAPI_CALL(napi_get_value_double(env, argv[0], &q->id));
  q->kind = CMD_ABORT;
  enqueue(q);
  return NULL;
}

bool relay_thread_init(napi_env env, napi_value exports) {
  static const struct exported list[] = {
    {"relayInit", relay_init},
    {"relayAdd", relay_add},
    {"relayAbort", relay_abort},
    {"relayFailReports", relay_fail_reports},
    {"relayKept", relay_kept},
    {"closeReasons", close_reasons},
  };
  return EXPORT_FUNCTIONS(env, exports, list);
}
