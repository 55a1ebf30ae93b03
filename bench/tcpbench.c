/*
 * tcpbench: load generator + built-in backend for benchmarking TCP forwarders.
 *
 * One process, one thread, epoll, non-blocking sockets (except `halfclose`,
 * which forks a blocking backend). Every subcommand that needs a backend runs
 * it in-process: it listens on --target (what the proxy forwards to) and
 * connects to --connect (the proxy's listen port; == --target for "direct").
 * Byte counts are therefore known at both ends and verified.
 *
 *   tcpbench thr       --target T --connect C --streams N --seconds S --warmup W
 *   tcpbench connrate  --target T --connect C --concurrency 50 --seconds S --warmup W
 *   tcpbench latency   --target T --connect C --count 20000 --warmup-count 1000 [--cpu 0]
 *   tcpbench hold      --target T --connect C --conns 5000 --seconds 60
 *   tcpbench halfclose --target T --connect C --bytes 65536 --tries 3
 *   tcpbench serve     --target T --mode echo|sink --seconds S
 *
 * Common: --host 127.0.0.1 (or ::1), --proxy-pid P (CPU of P's process tree is
 * measured over the timed window), --timeout SEC (hard bound on the whole run).
 *
 * Output: one or more lines "RESULT key=value ..." on stdout; diagnostics on
 * stderr. `hold` also prints "HOLDING ..." once its connections are open and
 * then waits for a line (or EOF) on stdin, or --seconds, before closing them.
 * Exit status 0 = ran and verified, 1 = verification failed, 2 = usage/setup.
 *
 * Build: cc -O2 -o tcpbench tcpbench.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ options */

static struct {
    const char *host;
    int target, connect, streams, concurrency, count, warmup_count, conns, bytes, tries, cpu;
    double seconds, warmup, timeout, conn_timeout;
    long proxy_pid;
    const char *mode;
} O = {
    .host = "127.0.0.1", .target = 0, .connect = 0, .streams = 1, .concurrency = 50,
    .count = 20000, .warmup_count = 1000, .conns = 5000, .bytes = 65536, .tries = 3, .cpu = -1,
    .seconds = 2.0, .warmup = 0.5, .timeout = 120, .conn_timeout = 3.0, .proxy_pid = 0, .mode = "echo",
};

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tcpbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void parse_args(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        if (i + 1 >= argc) die("option %s needs a value", k);
        const char *v = argv[++i];
        if (!strcmp(k, "--host")) O.host = v;
        else if (!strcmp(k, "--target") || !strcmp(k, "--port")) O.target = atoi(v);
        else if (!strcmp(k, "--connect")) O.connect = atoi(v);
        else if (!strcmp(k, "--streams")) O.streams = atoi(v);
        else if (!strcmp(k, "--concurrency")) O.concurrency = atoi(v);
        else if (!strcmp(k, "--count")) O.count = atoi(v);
        else if (!strcmp(k, "--warmup-count")) O.warmup_count = atoi(v);
        else if (!strcmp(k, "--conns")) O.conns = atoi(v);
        else if (!strcmp(k, "--bytes")) O.bytes = atoi(v);
        else if (!strcmp(k, "--tries")) O.tries = atoi(v);
        else if (!strcmp(k, "--cpu")) O.cpu = atoi(v);
        else if (!strcmp(k, "--seconds")) O.seconds = atof(v);
        else if (!strcmp(k, "--warmup")) O.warmup = atof(v);
        else if (!strcmp(k, "--timeout")) O.timeout = atof(v);
        else if (!strcmp(k, "--conn-timeout")) O.conn_timeout = atof(v);
        else if (!strcmp(k, "--proxy-pid")) O.proxy_pid = atol(v);
        else if (!strcmp(k, "--mode")) O.mode = v;
        else die("unknown option %s", k);
    }
    if (O.target <= 0) die("--target PORT is required");
    if (O.connect <= 0) O.connect = O.target;
}

/* ------------------------------------------------------------------- clocks */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static double now_s(void) { return (double)now_ns() / 1e9; }

/* ---------------------------------------------------------- CPU accounting */

static double clk_tck;

/* utime+stime+cutime+cstime (s) of root and all its live descendants. */
static double tree_cpu(long root) {
    if (root <= 0) return 0;
    size_t cap = 1024, n = 0;
    long *pid = malloc(cap * sizeof *pid), *ppid = malloc(cap * sizeof *ppid);
    double *cpu = malloc(cap * sizeof *cpu);
    DIR *d = opendir("/proc");
    struct dirent *e;
    char path[300], buf[1024];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t r = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (r <= 0) continue;
        buf[r] = 0;
        char *p = strrchr(buf, ')');
        if (!p) continue;
        /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime */
        char st;
        long pp;
        unsigned long long f[15];
        if (sscanf(p + 2, "%c %ld %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &st, &pp,
                   &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10], &f[11],
                   &f[12]) < 15)
            continue;
        if (n == cap) {
            cap *= 2;
            pid = realloc(pid, cap * sizeof *pid);
            ppid = realloc(ppid, cap * sizeof *ppid);
            cpu = realloc(cpu, cap * sizeof *cpu);
        }
        pid[n] = atol(e->d_name);
        ppid[n] = pp;
        cpu[n] = (double)(f[9] + f[10] + f[11] + f[12]) / clk_tck;
        n++;
    }
    if (d) closedir(d);
    /* mark descendants: repeat until no change (trees here are shallow) */
    char *in = calloc(n ? n : 1, 1);
    double sum = 0;
    int changed = 1;
    for (size_t i = 0; i < n; i++)
        if (pid[i] == root) in[i] = 1;
    while (changed) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            if (in[i]) continue;
            for (size_t j = 0; j < n; j++)
                if (in[j] && pid[j] == ppid[i]) { in[i] = 1; changed = 1; break; }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (in[i]) sum += cpu[i];
    free(pid); free(ppid); free(cpu); free(in);
    return sum;
}

/* CPU-seconds spent in task context (user+nice+system) by the whole machine.
 * irq/softirq are left out: loopback traffic is processed there and would be
 * counted against "other" work although our own processes caused it. */
static double machine_busy(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    unsigned long long u = 0, ni = 0, sy = 0;
    if (fscanf(f, "cpu %llu %llu %llu", &u, &ni, &sy) != 3) u = ni = sy = 0;
    fclose(f);
    return (double)(u + ni + sy) / clk_tck;
}

static double self_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

typedef struct { double t, proxy, self, busy; } snap_t;
static snap_t snap(void) {
    snap_t s;
    s.proxy = tree_cpu(O.proxy_pid);
    s.self = self_cpu();
    s.busy = machine_busy();
    s.t = now_s();
    return s;
}
/* appends " proxy_cpu=.. self_cpu=.. other_cpu=.." (other_cpu in CPUs, i.e. per second) */
static void print_cpu(const snap_t *a, const snap_t *b) {
    double dt = b->t - a->t, px = b->proxy - a->proxy, me = b->self - a->self, busy = b->busy - a->busy;
    double other = busy - px - me;
    if (other < 0) other = 0;
    printf(" proxy_cpu=%.3f self_cpu=%.3f other_cpu=%.3f", px, me, dt > 0 ? other / dt : 0);
}

/* ---------------------------------------------------------------- sockets */

static int make_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof *a4;
        return AF_INET;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof *a6;
        return AF_INET6;
    }
    die("--host must be a numeric address (127.0.0.1 or ::1), got %s", host);
    return -1;
}

static int listen_on(int port) {
    struct sockaddr_storage ss;
    socklen_t len;
    int fam = make_addr(O.host, port, &ss, &len), one = 1;
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) die("bind %s:%d: %s", O.host, port, strerror(errno));
    if (listen(fd, 4096) < 0) die("listen: %s", strerror(errno));
    return fd;
}

/* non-blocking connect; returns fd (connect in progress) or -1 */
static int connect_nb(int port, int nodelay) {
    struct sockaddr_storage ss;
    socklen_t len;
    int fam = make_addr(O.host, port, &ss, &len), one = 1;
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static int sock_error(int fd) {
    int err = 0;
    socklen_t l = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0) return errno;
    return err;
}

/* ------------------------------------------------------ event loop + backend */

enum { K_LISTEN, K_BACK, K_CLI, K_STDIN };
enum { M_SINK, M_ECHO };

typedef struct conn {
    int fd, kind, state, idx;
    uint64_t t0, sent, rcvd, seq;
    unsigned char *pend; /* echo: bytes not yet written back */
    size_t pend_len, pend_off;
} conn_t;

static int ep;
static int bk_mode = M_ECHO, bk_nodelay = 0;
static uint64_t bk_accepted, bk_open, bk_eof, bk_err, bk_rx;
#define BIG (256 * 1024)
static unsigned char rbuf[BIG], wbuf[BIG];

static void ep_add(conn_t *c, uint32_t ev) {
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) < 0) die("epoll_ctl add: %s", strerror(errno));
}
static void ep_mod(conn_t *c, uint32_t ev) {
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static conn_t *backend_start(int port, int mode) {
    bk_mode = mode;
    conn_t *l = calloc(1, sizeof *l);
    l->fd = listen_on(port);
    l->kind = K_LISTEN;
    ep_add(l, EPOLLIN);
    return l;
}

static void bk_close(conn_t *c, int err) {
    close(c->fd); /* also removes it from epoll */
    free(c->pend);
    free(c);
    bk_open--;
    if (err) bk_err++; else bk_eof++;
}

static void backend_event(conn_t *c, uint32_t ev) {
    if (c->kind == K_LISTEN) {
        for (int i = 0; i < 256; i++) {
            int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                    static int warned;
                    if (!warned++) fprintf(stderr, "tcpbench: accept: %s\n", strerror(errno));
                }
                break;
            }
            if (bk_nodelay) { int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }
            conn_t *b = calloc(1, sizeof *b);
            b->fd = fd;
            b->kind = K_BACK;
            bk_accepted++;
            bk_open++;
            ep_add(b, EPOLLIN);
        }
        return;
    }
    if (bk_mode == M_SINK) {
        for (int i = 0; i < 8; i++) {
            ssize_t n = read(c->fd, rbuf, BIG);
            if (n > 0) { bk_rx += n; c->rcvd += n; continue; }
            if (n == 0) { bk_close(c, 0); return; }
            if (errno == EAGAIN || errno == EINTR) return;
            bk_close(c, 1);
            return;
        }
        return;
    }
    /* echo */
    if (c->pend) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        ssize_t w = send(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            bk_close(c, 1);
            return;
        }
        c->pend_off += w;
        if (c->pend_off < c->pend_len) return;
        free(c->pend);
        c->pend = NULL;
        ep_mod(c, EPOLLIN);
        return;
    }
    ssize_t n = read(c->fd, rbuf, 65536);
    if (n == 0) { bk_close(c, 0); return; }
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        bk_close(c, 1);
        return;
    }
    bk_rx += n;
    c->rcvd += n;
    ssize_t w = send(c->fd, rbuf, n, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) { bk_close(c, 1); return; }
        w = 0;
    }
    if (w < n) {
        c->pend_len = n - w;
        c->pend_off = 0;
        c->pend = malloc(c->pend_len);
        memcpy(c->pend, rbuf + w, c->pend_len);
        ep_mod(c, EPOLLOUT);
    }
}

/* wait up to ms for events; dispatch backend events, hand client events to cb */
typedef void (*client_cb)(conn_t *, uint32_t);
static int poll_once(int ms, client_cb cb) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, ms);
    for (int i = 0; i < n; i++) {
        conn_t *c = evs[i].data.ptr;
        if (c->kind == K_CLI || c->kind == K_STDIN) {
            if (cb) cb(c, evs[i].events);
        } else {
            backend_event(c, evs[i].events);
        }
    }
    return n;
}

/* let the backend see the last EOFs so the proxy is not left with half-dead
 * upstream connections when we exit */
static void drain_backend(double secs) {
    double end = now_s() + secs;
    while (bk_open > 0 && now_s() < end) poll_once(20, NULL);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
static double pct(uint64_t *v, size_t n, double p) { /* sorted, ns -> us */
    if (!n) return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    if (i >= n) i = n - 1;
    return v[i] / 1e3;
}

/* --------------------------------------------------------------------- thr */

static int thr_stopped;
static int thr_fail;
static uint64_t thr_sent;

static void thr_client(conn_t *c, uint32_t ev) {
    if (thr_stopped) return; /* removed from epoll at the stop; late events are stale */
    if (ev & (EPOLLERR | EPOLLHUP)) {
        if (!thr_fail) fprintf(stderr, "tcpbench: thr stream %d: %s\n", c->idx, strerror(sock_error(c->fd)));
        thr_fail = 1;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        return;
    }
    if (!(ev & EPOLLOUT)) return;
    for (int i = 0; i < 8; i++) {
        ssize_t w = send(c->fd, wbuf, BIG, MSG_NOSIGNAL);
        if (w > 0) { c->sent += w; thr_sent += w; continue; }
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (!thr_fail) fprintf(stderr, "tcpbench: thr stream %d send: %s\n", c->idx, strerror(errno));
        thr_fail = 1;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        return;
    }
}

static int cmd_thr(void) {
    for (int i = 0; i < BIG; i++) wbuf[i] = (unsigned char)(i * 31 + 7);
    backend_start(O.target, M_SINK);
    conn_t *cl = calloc(O.streams, sizeof *cl);
    for (int i = 0; i < O.streams; i++) {
        cl[i].fd = connect_nb(O.connect, 0);
        if (cl[i].fd < 0) die("connect: %s", strerror(errno));
        cl[i].kind = K_CLI;
        cl[i].idx = i;
        ep_add(&cl[i], EPOLLOUT);
    }
    double t_start = now_s(), t_warm = t_start + O.warmup, t_end = t_warm + O.seconds, t_hard = t_start + O.timeout;
    int phase = 0;
    snap_t s0 = {0}, s1 = {0};
    uint64_t rx0 = 0, rx1 = 0;
    int drained = 0;
    while (now_s() < t_hard) {
        poll_once(phase == 2 ? 20 : 5, thr_client);
        double t = now_s();
        if (phase == 0 && t >= t_warm) { rx0 = bk_rx; s0 = snap(); phase = 1; }
        else if (phase == 1 && t >= t_end) {
            rx1 = bk_rx;
            s1 = snap();
            phase = 2;
            thr_stopped = 1;
            /* no more writes; EOF goes through the proxy to the backend. The client
             * sockets leave epoll (a proxy closing them after the backend's close
             * raises EPOLLHUP, which is not a failure here) */
            for (int i = 0; i < O.streams; i++) {
                shutdown(cl[i].fd, SHUT_WR);
                epoll_ctl(ep, EPOLL_CTL_DEL, cl[i].fd, NULL);
            }
        } else if (phase == 2) {
            if (bk_eof + bk_err >= (uint64_t)O.streams) { drained = 1; break; }
            if (t > s1.t + 10) break;
        }
        if (thr_fail && phase < 2) break;
    }
    for (int i = 0; i < O.streams; i++) close(cl[i].fd);
    double dt = s1.t - s0.t;
    int ok = !thr_fail && drained && bk_err == 0 && bk_accepted == (uint64_t)O.streams && bk_rx == thr_sent;
    printf("RESULT test=thr streams=%d seconds=%.3f bytes=%llu gbps=%.3f sent_total=%llu received_total=%llu "
           "accepted=%llu drained=%d verify=%s",
           O.streams, dt, (unsigned long long)(rx1 - rx0), dt > 0 ? (rx1 - rx0) * 8 / dt / 1e9 : 0,
           (unsigned long long)thr_sent, (unsigned long long)bk_rx, (unsigned long long)bk_accepted, drained,
           ok ? "ok" : "FAIL");
    print_cpu(&s0, &s1);
    printf("\n");
    return ok ? 0 : 1;
}

/* ---------------------------------------------------------------- connrate */

#define MSG 64
enum { ERR_CONNECT, ERR_RESET, ERR_EOF, ERR_TIMEOUT, ERR_MISMATCH, ERR_N };
static const char *err_names[ERR_N] = {"connect", "reset", "eof", "timeout", "mismatch"};
static uint64_t cr_err[ERR_N], cr_next_seq, cr_done_window, cr_done_total, cr_active;
static uint64_t *cr_lat;
static size_t cr_nlat, cr_caplat;
static int cr_accepting = 1;
static uint64_t cr_win0, cr_win1; /* ns; completions inside count */
static unsigned char cr_got[MSG];

static void fill_msg(unsigned char *m, uint64_t seq, int len) {
    memcpy(m, &seq, 8);
    for (int i = 8; i < len; i++) m[i] = (unsigned char)(seq * 131 + i * 7);
}

static void cr_start(conn_t *c) {
    c->fd = connect_nb(O.connect, 1);
    c->t0 = now_ns();
    c->seq = cr_next_seq++;
    c->rcvd = 0;
    if (c->fd < 0) {
        cr_err[ERR_CONNECT]++;
        c->state = 0;
        return;
    }
    c->state = 1;
    cr_active++;
    ep_add(c, EPOLLOUT);
}

static void cr_finish(conn_t *c, int err) {
    uint64_t t = now_ns();
    close(c->fd);
    c->fd = -1;
    c->state = 0;
    cr_active--;
    if (err >= 0) cr_err[err]++;
    else {
        cr_done_total++;
        if (c->t0 >= cr_win0 && t <= cr_win1) {
            cr_done_window++;
            if (cr_nlat == cr_caplat) {
                cr_caplat = cr_caplat ? cr_caplat * 2 : 65536;
                cr_lat = realloc(cr_lat, cr_caplat * sizeof *cr_lat);
            }
            cr_lat[cr_nlat++] = t - c->t0;
        }
    }
    if (cr_accepting) cr_start(c);
}

static void cr_client(conn_t *c, uint32_t ev) {
    if (c->state == 1) {
        if ((ev & (EPOLLERR | EPOLLHUP)) || sock_error(c->fd)) { cr_finish(c, ERR_CONNECT); return; }
        unsigned char m[MSG];
        fill_msg(m, c->seq, MSG);
        ssize_t w = send(c->fd, m, MSG, MSG_NOSIGNAL);
        if (w != MSG) { cr_finish(c, ERR_RESET); return; }
        c->state = 2;
        ep_mod(c, EPOLLIN);
        return;
    }
    if (c->state == 2) {
        unsigned char m[MSG];
        ssize_t n = read(c->fd, m, MSG - c->rcvd);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            cr_finish(c, ERR_RESET);
            return;
        }
        if (n == 0) { cr_finish(c, ERR_EOF); return; }
        /* compare incrementally */
        unsigned char want[MSG];
        fill_msg(want, c->seq, MSG);
        if (memcmp(m, want + c->rcvd, n)) { cr_finish(c, ERR_MISMATCH); return; }
        c->rcvd += n;
        if (c->rcvd == MSG) cr_finish(c, -1);
    }
}

static int cmd_connrate(void) {
    (void)cr_got;
    backend_start(O.target, M_ECHO);
    bk_nodelay = 1;
    conn_t *cl = calloc(O.concurrency, sizeof *cl);
    uint64_t t_start = now_ns();
    cr_win0 = t_start + (uint64_t)(O.warmup * 1e9);
    cr_win1 = cr_win0 + (uint64_t)(O.seconds * 1e9);
    uint64_t t_hard = t_start + (uint64_t)(O.timeout * 1e9), to = (uint64_t)(O.conn_timeout * 1e9);
    for (int i = 0; i < O.concurrency; i++) {
        cl[i].kind = K_CLI;
        cl[i].idx = i;
        cl[i].fd = -1;
        cr_start(&cl[i]);
    }
    snap_t s0 = {0}, s1 = {0};
    int phase = 0;
    uint64_t last_scan = 0;
    while (1) {
        poll_once(5, cr_client);
        uint64_t t = now_ns();
        if (phase == 0 && t >= cr_win0) { s0 = snap(); phase = 1; }
        if (phase == 1 && t >= cr_win1) { s1 = snap(); phase = 2; cr_accepting = 0; }
        if (t - last_scan > 20000000ull) { /* per-connection timeouts, 20 ms granularity */
            last_scan = t;
            for (int i = 0; i < O.concurrency; i++)
                if (cl[i].state && t - cl[i].t0 > to) cr_finish(&cl[i], ERR_TIMEOUT);
            /* slots that failed to even get a socket: retry */
            if (cr_accepting)
                for (int i = 0; i < O.concurrency; i++)
                    if (!cl[i].state) cr_start(&cl[i]);
        }
        if (phase == 2 && cr_active == 0) break;
        if (t > t_hard) {
            for (int i = 0; i < O.concurrency; i++)
                if (cl[i].state) { cr_accepting = 0; cr_finish(&cl[i], ERR_TIMEOUT); }
            break;
        }
    }
    drain_backend(1.0);
    double dt = s1.t - s0.t;
    uint64_t errs = 0;
    for (int i = 0; i < ERR_N; i++) errs += cr_err[i];
    qsort(cr_lat, cr_nlat, sizeof *cr_lat, cmp_u64);
    printf("RESULT test=connrate concurrency=%d seconds=%.3f conns=%llu cps=%.1f total_ok=%llu errors=%llu",
           O.concurrency, dt, (unsigned long long)cr_done_window, dt > 0 ? cr_done_window / dt : 0,
           (unsigned long long)cr_done_total, (unsigned long long)errs);
    for (int i = 0; i < ERR_N; i++) printf(" err_%s=%llu", err_names[i], (unsigned long long)cr_err[i]);
    printf(" p50_ms=%.3f p99_ms=%.3f backend_accepted=%llu backend_left=%llu verify=%s",
           pct(cr_lat, cr_nlat, 50) / 1e3, pct(cr_lat, cr_nlat, 99) / 1e3, (unsigned long long)bk_accepted,
           (unsigned long long)bk_open, errs ? "FAIL" : "ok");
    print_cpu(&s0, &s1);
    printf("\n");
    return errs ? 1 : 0;
}

/* ----------------------------------------------------------------- latency */

static conn_t lat_c;
static size_t lat_got;
static int lat_dead;
static void lat_client(conn_t *c, uint32_t ev) {
    (void)ev;
    unsigned char m[MSG];
    ssize_t n = read(c->fd, m, MSG - lat_got);
    if (n > 0) lat_got += n;
    else if (n == 0 || (errno != EAGAIN && errno != EINTR)) lat_dead = 1;
}

static int cmd_latency(void) {
    if (O.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(O.cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0) fprintf(stderr, "tcpbench: setaffinity: %s\n", strerror(errno));
    }
    backend_start(O.target, M_ECHO);
    bk_nodelay = 1;
    lat_c.kind = K_CLI;
    lat_c.fd = connect_nb(O.connect, 1);
    if (lat_c.fd < 0) die("connect: %s", strerror(errno));
    double t_hard = now_s() + O.timeout;
    /* wait for connect */
    struct pollfd pf = {.fd = lat_c.fd, .events = POLLOUT};
    while (now_s() < t_hard) {
        poll_once(0, NULL);
        if (poll(&pf, 1, 5) > 0) break;
    }
    if (sock_error(lat_c.fd)) die("connect: %s", strerror(sock_error(lat_c.fd)));
    ep_add(&lat_c, EPOLLIN);
    int total = O.warmup_count + O.count, done = 0;
    uint64_t *rtt = malloc(sizeof *rtt * (O.count ? O.count : 1));
    unsigned char m[MSG];
    fill_msg(m, 42, MSG);
    snap_t s0 = snap(), s1;
    int timed_out = 0;
    for (int i = 0; i < total; i++) {
        if (i == O.warmup_count) s0 = snap();
        uint64_t t0 = now_ns();
        if (send(lat_c.fd, m, MSG, MSG_NOSIGNAL) != MSG) { lat_dead = 1; break; }
        lat_got = 0;
        while (lat_got < MSG && !lat_dead) {
            poll_once(100, lat_client);
            if (now_s() > t_hard) { timed_out = 1; break; }
        }
        if (lat_dead || timed_out) break;
        if (i >= O.warmup_count) rtt[done++] = now_ns() - t0;
    }
    s1 = snap();
    close(lat_c.fd);
    drain_backend(1.0);
    qsort(rtt, done, sizeof *rtt, cmp_u64);
    double sum = 0;
    for (int i = 0; i < done; i++) sum += rtt[i];
    int ok = done == O.count;
    printf("RESULT test=latency count=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f "
           "cpu=%d verify=%s",
           done, pct(rtt, done, 50), pct(rtt, done, 90), pct(rtt, done, 99), pct(rtt, done, 99.9),
           done ? rtt[done - 1] / 1e3 : 0, done ? sum / done / 1e3 : 0, O.cpu, ok ? "ok" : "FAIL");
    print_cpu(&s0, &s1);
    printf("\n");
    return ok ? 0 : 1;
}

/* -------------------------------------------------------------------- hold */

#define HOLD_MSG 16
static uint64_t hd_ok, hd_fail, hd_drop, hd_inflight, hd_stdin_done;

static void hd_client(conn_t *c, uint32_t ev) {
    if (c->kind == K_STDIN) {
        char b[256];
        ssize_t n = read(0, b, sizeof b);
        if (n <= 0 || memchr(b, '\n', n)) hd_stdin_done = 1;
        if (n <= 0) epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
        return;
    }
    if (c->state == 1) {
        if ((ev & (EPOLLERR | EPOLLHUP)) || sock_error(c->fd)) goto fail;
        unsigned char m[HOLD_MSG];
        fill_msg(m, c->seq, HOLD_MSG);
        if (send(c->fd, m, HOLD_MSG, MSG_NOSIGNAL) != HOLD_MSG) goto fail;
        c->state = 2;
        ep_mod(c, EPOLLIN);
        return;
    }
    if (c->state == 2) {
        unsigned char m[HOLD_MSG], want[HOLD_MSG];
        ssize_t n = read(c->fd, m, HOLD_MSG - c->rcvd);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n <= 0) goto fail;
        fill_msg(want, c->seq, HOLD_MSG);
        if (memcmp(m, want + c->rcvd, n)) goto fail;
        c->rcvd += n;
        if (c->rcvd == HOLD_MSG) { c->state = 3; hd_ok++; hd_inflight--; }
        return;
    }
    if (c->state == 3) { /* anything on an idle held connection = it was dropped */
        hd_drop++;
        hd_ok--;
        close(c->fd);
        c->fd = -1;
        c->state = 4;
    }
    return;
fail:
    hd_fail++;
    hd_inflight--;
    close(c->fd);
    c->fd = -1;
    c->state = 4;
}

static int cmd_hold(void) {
    backend_start(O.target, M_ECHO);
    conn_t *cl = calloc(O.conns, sizeof *cl);
    conn_t in = {.fd = 0, .kind = K_STDIN};
    int next = 0;
    const int par = 64;
    double t0 = now_s(), t_setup_end = t0 + O.timeout;
    uint64_t to = (uint64_t)(O.conn_timeout * 1e9);
    while (now_s() < t_setup_end) {
        while (hd_inflight < par && next < O.conns) {
            conn_t *c = &cl[next];
            c->kind = K_CLI;
            c->idx = c->seq = next++;
            c->t0 = now_ns();
            c->fd = connect_nb(O.connect, 1);
            if (c->fd < 0) { hd_fail++; c->state = 4; continue; }
            c->state = 1;
            hd_inflight++;
            ep_add(c, EPOLLOUT);
        }
        if (next >= O.conns && hd_inflight == 0) break;
        poll_once(10, hd_client);
        uint64_t t = now_ns();
        for (int i = 0; i < next; i++) /* cheap enough: only during setup */
            if ((cl[i].state == 1 || cl[i].state == 2) && t - cl[i].t0 > to) {
                hd_fail++;
                hd_inflight--;
                close(cl[i].fd);
                cl[i].fd = -1;
                cl[i].state = 4;
            }
    }
    double setup = now_s() - t0;
    printf("HOLDING ok=%llu failed=%llu backend_open=%llu setup_s=%.2f\n", (unsigned long long)hd_ok,
           (unsigned long long)hd_fail, (unsigned long long)bk_open, setup);
    fflush(stdout);
    ep_add(&in, EPOLLIN);
    double t_hold_end = now_s() + O.seconds;
    while (!hd_stdin_done && now_s() < t_hold_end) poll_once(50, hd_client);
    uint64_t held = hd_ok;
    for (int i = 0; i < O.conns; i++)
        if (cl[i].fd >= 0 && cl[i].state) close(cl[i].fd);
    double tc = now_s();
    drain_backend(10.0);
    printf("RESULT test=hold conns=%d ok=%llu failed=%llu dropped=%llu setup_s=%.2f held=%llu backend_left=%llu "
           "close_s=%.2f verify=%s\n",
           O.conns, (unsigned long long)held, (unsigned long long)hd_fail, (unsigned long long)hd_drop, setup,
           (unsigned long long)held, (unsigned long long)bk_open, now_s() - tc,
           (held == (uint64_t)O.conns && bk_open == 0) ? "ok" : "FAIL");
    return held == (uint64_t)O.conns ? 0 : 1;
}

/* --------------------------------------------------------------- halfclose */

static void set_timeouts(int fd, double s) {
    struct timeval tv = {.tv_sec = (time_t)s, .tv_usec = (suseconds_t)((s - (time_t)s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}
static long read_to_eof(int fd) { /* bytes read until EOF; -1-bytes on error/timeout */
    long got = 0;
    char b[16384];
    for (;;) {
        ssize_t n = read(fd, b, sizeof b);
        if (n > 0) { got += n; continue; }
        if (n == 0) return got;
        if (errno == EINTR) continue;
        return -1 - got;
    }
}
static long write_all(int fd, long len) {
    long done = 0;
    while (done < len) {
        long k = len - done > BIG ? BIG : len - done;
        ssize_t w = send(fd, wbuf, k, MSG_NOSIGNAL);
        if (w < 0) { if (errno == EINTR) continue; return done; }
        done += w;
    }
    return done;
}

/* dir 0 = c2s: client sends, shuts down its write side; backend reads to EOF,
 *             then replies; the reply must reach the client.
 * dir 1 = s2c: backend sends, shuts down first; client reads to EOF, then
 *             sends; that must still reach the backend. */
static int halfclose_once(int dir, int try) {
    int lfd = listen_on(O.target);
    int fl = fcntl(lfd, F_GETFL);
    fcntl(lfd, F_SETFL, fl & ~O_NONBLOCK);
    int pfd[2];
    if (pipe(pfd) < 0) die("pipe");
    double tmo = O.conn_timeout > 1 ? O.conn_timeout : 3;
    pid_t pid = fork();
    if (pid == 0) { /* backend */
        close(pfd[0]);
        long rx = -2;
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, (int)(tmo * 1000)) > 0) {
            int fd = accept(lfd, NULL, NULL);
            if (fd >= 0) {
                set_timeouts(fd, tmo);
                if (dir == 0) {
                    rx = read_to_eof(fd);
                    if (rx >= 0) write_all(fd, O.bytes);
                } else {
                    write_all(fd, O.bytes);
                    shutdown(fd, SHUT_WR);
                    rx = read_to_eof(fd);
                }
                close(fd);
            }
        }
        if (write(pfd[1], &rx, sizeof rx) < 0) _exit(1);
        _exit(0);
    }
    close(pfd[1]);
    close(lfd);
    long crx = -2, csent = 0;
    struct sockaddr_storage ss;
    socklen_t len;
    int fam = make_addr(O.host, O.connect, &ss, &len);
    int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    set_timeouts(fd, tmo);
    if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
        if (dir == 0) {
            csent = write_all(fd, O.bytes);
            shutdown(fd, SHUT_WR);
            crx = read_to_eof(fd);
        } else {
            crx = read_to_eof(fd);
            if (crx >= 0) csent = write_all(fd, O.bytes);
            shutdown(fd, SHUT_WR);
            char b[64]; /* wait for the backend to close (bounded by the timeout) */
            while (read(fd, b, sizeof b) > 0) {}
        }
    }
    close(fd);
    long brx = -2;
    if (read(pfd[0], &brx, sizeof brx) != sizeof brx) brx = -2;
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    long creply = crx < 0 ? -1 - crx : crx, bgot = brx < 0 ? (brx == -2 ? 0 : -1 - brx) : brx;
    int pass = crx == O.bytes && brx == O.bytes;
    printf("RESULT test=halfclose dir=%s try=%d bytes=%d client_sent=%ld backend_received=%ld%s "
           "client_received=%ld%s pass=%d\n",
           dir ? "s2c" : "c2s", try, O.bytes, csent, bgot, brx < 0 ? "(err)" : "", creply, crx < 0 ? "(err)" : "",
           pass);
    fflush(stdout);
    return pass;
}

static int cmd_halfclose(void) {
    for (int i = 0; i < BIG; i++) wbuf[i] = (unsigned char)i;
    int fails = 0;
    for (int t = 1; t <= O.tries; t++)
        for (int d = 0; d < 2; d++) fails += !halfclose_once(d, t);
    return fails ? 1 : 0;
}

/* ------------------------------------------------------------------- serve */

static volatile sig_atomic_t stop_flag;
static void on_term(int s) { (void)s; stop_flag = 1; }

static int cmd_serve(void) {
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    int mode = !strcmp(O.mode, "echo") ? M_ECHO : (!strcmp(O.mode, "sink") || !strcmp(O.mode, "discard")) ? M_SINK : -1;
    if (mode < 0) die("--mode echo|sink");
    backend_start(O.target, mode);
    fprintf(stderr, "tcpbench: serving %s on %s:%d for up to %.0f s\n", O.mode, O.host, O.target, O.seconds);
    double end = now_s() + O.seconds;
    while (!stop_flag && now_s() < end) poll_once(100, NULL);
    printf("RESULT test=serve mode=%s accepted=%llu received=%llu open=%llu errors=%llu\n", O.mode,
           (unsigned long long)bk_accepted, (unsigned long long)bk_rx, (unsigned long long)bk_open,
           (unsigned long long)bk_err);
    return 0;
}

/* -------------------------------------------------------------------- main */

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: tcpbench thr|connrate|latency|hold|halfclose|serve --target PORT [--connect PORT] ...\n"
                        "(see the comment at the top of tcpbench.c)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    clk_tck = (double)sysconf(_SC_CLK_TCK);
    parse_args(argc, argv);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    ep = epoll_create1(EPOLL_CLOEXEC);
    const char *c = argv[1];
    if (!strcmp(c, "thr")) return cmd_thr();
    if (!strcmp(c, "connrate")) return cmd_connrate();
    if (!strcmp(c, "latency")) return cmd_latency();
    if (!strcmp(c, "hold")) return cmd_hold();
    if (!strcmp(c, "halfclose")) return cmd_halfclose();
    if (!strcmp(c, "serve")) return cmd_serve();
    die("unknown subcommand %s", c);
    return 2;
}
