/*
 * What the relay thread's two files share: relay_thread.c (the thread, its
 * command queue, and relaying established connections) and front.c
 * (accepting on listeners the thread polls, and connecting upstream for
 * them). Internal to the addon; the exports are in addon.h.
 */
#ifndef TCPPROXY_RELAY_H
#define TCPPROXY_RELAY_H

#include <node_api.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

enum { CLIENT = 0, SERVER = 1 };

/* lib/relay/close-reasons.ts's CLOSE_REASONS, in its order (the names are in
 * relay_thread.c; test/relay/close-reasons.test.ts compares them). */
enum reason { R_CLIENT, R_SERVER, R_TIMEOUT, R_CLIENT_ERROR, R_SERVER_ERROR, R_SHUTDOWN };

/* Where a connection is: accepted by the thread and waiting for JavaScript
 * to choose its upstream, connecting to it, or relayed (the state of every
 * connection JavaScript hands over with relayAdd). */
enum conn_state { S_ACCEPTED, S_CONNECTING, S_RELAYING };

/* What the thread tells the JavaScript thread: a connection ended (EV_END,
 * relayInit's onEnd), a listener accepted one (EV_ACCEPT) or a connect
 * attempt ended (EV_CONNECT, relayFront's callbacks). One queue carries
 * them all, so they arrive in the order they happened. */
enum event_kind { EV_END, EV_ACCEPT, EV_CONNECT };

#define ADDR_TEXT 46 /* INET6_ADDRSTRLEN */

struct result {
  enum event_kind kind;
  struct result *next; /* the round's reports go to the JS thread as one list */
  double id;
  /* EV_END */
  uint64_t to_server, to_client;
  int reason, err; /* err: also EV_CONNECT's (0: connected) */
  const char *syscall;
  /* The live counts' array (EV_END; EV_CONNECT when the attempt failed or
   * the connection was gone): released on the JS thread. */
  napi_ref live_ref;
  /* EV_CONNECT: the attempt ran out of time (err is ETIMEDOUT); the
   * connection was gone when the command came (no callback). */
  bool timed_out, gone;
  /* EV_ACCEPT */
  double listener;
  double plan; /* the listener's plan it is connecting by (relayPlan), 0: none */
  char local[ADDR_TEXT], peer[ADDR_TEXT];
  int local_port, peer_port;
  int fd; /* the client's socket, the thread's descriptor (for a duplicate) */
};

/* One direction: from fd[i] to fd[1 - i]. */
struct half {
  /* Bytes the destination has not taken yet (sent before anything else). */
  char *pending;
  size_t pending_len, pending_off;
  uint64_t bytes; /* delivered to the destination */
  bool eof;       /* the source sent its FIN */
  bool shut;      /* ...and it was passed on */
  /* The source may have bytes (or its FIN) to read: cleared when a read
   * found it drained, set by its next epoll edge (relay_thread.c, pump). */
  bool readable;
  /* A FIN may wait that no edge will announce again (after an EPOLLRDHUP
   * edge): read until EAGAIN or the end, not just until a short read. */
  bool fin_seen;
  bool big;      /* a read has filled SMALL_READ: reads are sized to the destination's room */
};

struct conn;

/* What an epoll event points at: a connection and which of its sockets,
 * or (c == NULL, side == LISTENER) one of front.c's listeners. */
enum { LISTENER = 2 };
struct end {
  struct conn *c;
  int side;
};

struct conn {
  double id;
  enum conn_state state;
  int fd[2];
  bool polled[2]; /* fd[s] is in the epoll set */
  /* The thread made both descriptors (front.c) and no other process
   * keeps them past an exec: closing one sends the FIN. */
  bool own;
  struct half h[2]; /* h[CLIENT]: client to server; h[SERVER]: server to client */
  struct end ends[2];
  int64_t idle_ms, last;
  int64_t deadline;            /* S_CONNECTING: the connect timeout's end (INT64_MAX: none) */
  struct result *connect_ev;   /* S_CONNECTING: the attempt's report */
  int reason; /* -1 until known */
  int err;    /* errno of a failure */
  const char *syscall;
  struct result *result; /* allocated with the connection, handed to the JS thread at its end */
  /* JS's BigUint64Array for `show sessions` (NULL: none): bytes to the
   * server, bytes to the client, and which directions were shut (bit 0:
   * to the server, bit 1: to the client). The thread stores, JS loads. */
  uint64_t *live;
  bool again; /* on the run-again list */
  bool dead;  /* finished in this round of events; freed after it */
  struct conn *prev, *next, *next_again, *next_dead, *next_hash;
};

struct listener;

enum cmd_kind { CMD_ADD, CMD_ABORT, CMD_STOP, CMD_UNLISTEN, CMD_CONNECT, CMD_RELEASE, CMD_PLAN, CMD_ADOPT };

/* Where and how to connect upstream: one attempt (relayConnect) or a
 * listener's plan for every connection it accepts (relayPlan). */
struct target {
  struct sockaddr_storage addr;
  socklen_t addr_len;
  int64_t timeout_ms, idle_ms;
  int keepalive; /* seconds, 0: off */
};

struct cmd {
  enum cmd_kind kind;
  struct conn *c;         /* CMD_ADD */
  double id;              /* CMD_ABORT, CMD_CONNECT, CMD_RELEASE, CMD_ADOPT */
  struct listener *l;     /* CMD_UNLISTEN, CMD_PLAN */
  struct target t;        /* CMD_CONNECT, CMD_PLAN */
  double plan;            /* CMD_PLAN: its number */
  bool planned;           /* CMD_PLAN: t is the plan; false: none */
  /* CMD_CONNECT */
  char *first;            /* bytes to send the server first */
  size_t first_len;
  uint64_t *live;         /* CMD_CONNECT, CMD_ADOPT */
  struct result *ev;      /* the attempt's report, live_ref in it */
  /* CMD_UNLISTEN: the JS thread waits until the thread has let go */
  bool *done;
  struct cmd *next;
};

/* The thread's state (relay_thread.c). The JS thread's fields say so. */
struct relay_state {
  bool started;
  int ep, wake;
  pthread_mutex_t lock;
  pthread_cond_t done; /* a CMD_UNLISTEN was run (its *done is true) */
  napi_threadsafe_function tsfn;
  uint32_t active; /* JS thread: connections and listeners that keep the thread's callbacks referenced */
  int64_t now, next_check; /* the relay thread's */
};
extern struct relay_state R;

/* relay_thread.c, for front.c. */
struct conn *conn_new(void);               /* a connection with its report, or NULL */
void conn_free(struct conn *c);            /* one never linked */
void conn_link(struct conn *c);            /* into the list and the id table */
void conn_unlink(struct conn *c);
struct conn *conn_find(double id);
void relay_start(struct conn *c);          /* poll what is not polled yet, and relay */
void publish(struct conn *c);              /* the live counts, where JS reads them */
void finish(struct conn *c);
void post(struct result *r);               /* to the JS thread, with the round's other reports */
void enqueue(struct cmd *q);
void kept_more(size_t len);
void unkeep(struct half *h);               /* drop what is kept for a direction */                /* bytes now kept for a destination (relayKept) */
void active_more(napi_env env);            /* JS thread: one more connection or listener to hear of */
void active_less(napi_env env);
/* JS thread: a copy of a Buffer argument (null: none). */
bool get_bytes(napi_env env, napi_value value, char **out, size_t *len);

/* front.c, for relay_thread.c. */
void front_ready(struct end *e);                        /* a listener is readable */
void front_connecting(struct conn *c, uint32_t events); /* an event while connecting */
void front_command(struct cmd *q);                      /* CMD_UNLISTEN, CMD_CONNECT, CMD_RELEASE, CMD_PLAN, CMD_ADOPT */
int64_t front_deadline(struct conn *c);                 /* a connect timeout that ran out, or the next due */
void front_round_end(void);                             /* let go of the listeners relayUnlisten named */
void front_stop(void);                                  /* JS thread, the thread stopped: close the listeners */
bool front_call_js(napi_env env, struct result *r);     /* EV_ACCEPT and EV_CONNECT; false: try again later */

#endif
