/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * internal.h - the one internal header of ecl-sock (not installed; the
 * public one for C hosts is ecl-sock.h).
 *
 * Every C file of the module includes this header and nothing else of ours.
 * It declares the layers from the bottom up; a file calls only the layers
 * listed above it here (tests/layers.sh checks it on the objects):
 *
 *   timeout.c  the monotonic clock, deadlines and the only blocking wait (poll)
 *   os.c       system calls on plain int descriptors, EINTR loops, interrupt
 *              discipline; returns 0 or an error code, never signals
 *   addr.c     name resolution, getsockname/getpeername, sockaddr <-> text
 *   options.c  the socket option table; option values read and written
 *   errors.c   error codes -> names and messages; eclsock_raise(), the one
 *              place where an error code becomes a Lisp condition; the
 *              module's symbols (eclsock_sym)
 *   args.c     Lisp arguments checked and turned into C values (strings
 *              without NUL, descriptors, integers in a range, octet vectors,
 *              property lists of settings, timeouts as deadlines) for
 *              every primitive file
 *   lispval.c  the Lisp-object half of the values the layers below speak:
 *              option values (options.c) and socket addresses (addr.c) as
 *              each face shows and names them; the one datagram send and
 *              the one datagram receive
 *   tls.c      the transport under the stream's buffers: the plain
 *              descriptor (os.c) or a TLS session (OpenSSL); TLS contexts,
 *              handshakes, certificates
 *   eclcompat.c  every use of ECL's internals (the fd stream constructor,
 *              the dispatch table, generic close, the flush call sites)
 *   marks.c    readiness marks for the poller and socket-status's set
 *   life.c     a socket stream's lifetime: states, threads inside, release
 *   flush.c    the output flusher (held output, stalled peers)
 *   stream.c   the buffered socket stream (a real ECL stream); the last
 *              four and stream.c share src/stream-private.h
 *   status.c   socket-status / socket-wait over many objects with poll
 *   poller.c   the poller: kept registrations, one epoll_wait per wait,
 *              cost by ready objects (poll(2) fallback without epoll)
 *   bsd.c      the primitives of the SB-BSD-SOCKETS face (unconnected
 *              sockets: socket, bind, listen, connect, accept, options,
 *              datagrams with flags), registered by glue.c's init
 *   conn.c     making sockets (eclsock_conn_open) and the connection
 *              primitives (connect, listen, accept, wrap, close)
 *   dgram.c    the core faces' datagram primitives
 *   tlsglue.c  the TLS primitives (contexts from named settings, wrap)
 *   glue.c     the remaining Lisp primitives (addresses, streams, options,
 *              errors, poller) and the registration of all (module init)
 *   api.c      the public C API (ecl-sock.h) for programs that embed ECL
 *
 * Error currency below glue: an int that is 0 for success, a positive errno
 * captured right at the failing call, or a negative ECLSOCK_E* code.
 */
#ifndef ECLSOCK_H
#define ECLSOCK_H

#include <ecl/ecl.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <poll.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>

#define ECLSOCK_HIDDEN __attribute__((visibility("hidden")))

/* -- Error codes that are not errno values ---------------------------- */

enum {
  ECLSOCK_ETIMEOUT = -1,        /* our own deadline expired */
  ECLSOCK_EBADARG  = -2,        /* argument rejected by C (bad address text) */
  ECLSOCK_ENOADDR  = -3,        /* the name resolved to no usable address */
  ECLSOCK_ETOOLONG = -4,        /* Unix socket path longer than sun_path */
  ECLSOCK_ETLS     = -5,        /* TLS protocol error after the handshake */
  ECLSOCK_ETLSHANDSHAKE = -6,   /* the TLS handshake failed */
  ECLSOCK_ETLSVERIFY = -7,      /* the peer's certificate was refused */
  ECLSOCK_ETLSCONFIG = -8,      /* bad TLS setting (certificate file, ciphers) */
  ECLSOCK_ENOTLS   = -9,        /* built without OpenSSL (--without-openssl) */
  ECLSOCK_ETLSTIMEOUT = -10,    /* the TLS handshake did not finish in time */
  ECLSOCK_ENOPATH  = -11,       /* empty Unix socket path (not an abstract socket) */
  ECLSOCK_EAI_BASE = -1000      /* getaddrinfo code X is ECLSOCK_EAI_BASE + X */
};
#define ECLSOCK_EAI(x) (ECLSOCK_EAI_BASE + (x))
#define ECLSOCK_IS_EAI(c) ((c) <= ECLSOCK_EAI_BASE + 0 && (c) > ECLSOCK_EAI_BASE - 100)

/* -- timeout.c ---------------------------------------------------------- */

/* A deadline is an absolute CLOCK_MONOTONIC time in seconds; negative
   means "no deadline" (block until ready). */
typedef double eclsock_deadline;
#define ECLSOCK_NO_DEADLINE (-1.0)

ECLSOCK_HIDDEN double eclsock_tm_now(void);
ECLSOCK_HIDDEN eclsock_deadline eclsock_tm_deadline(double seconds);
ECLSOCK_HIDDEN int eclsock_tm_poll(struct pollfd *fds, nfds_t n,
                                   eclsock_deadline dl, int *nready);
ECLSOCK_HIDDEN int eclsock_tm_wait(int fd, short events, eclsock_deadline dl);
ECLSOCK_HIDDEN int eclsock_tm_wait_plain(int epfd, struct pollfd *fds, nfds_t n,
                                        uint64_t *data, int max, eclsock_deadline dl);
/* At most this many events per epoll_wait (the poller's batch). */
#define ECLSOCK_EPOLL_MAX 256
ECLSOCK_HIDDEN int eclsock_tm_epoll_wait(int epfd, uint64_t *data, short *revents,
                                         int max, eclsock_deadline dl, int *nready);

/* -- os.c ----------------------------------------------------------------- */

ECLSOCK_HIDDEN int eclsock_os_socket(int family, int type, volatile int *fd);
ECLSOCK_HIDDEN int eclsock_os_close(int fd);
ECLSOCK_HIDDEN int eclsock_os_dup(int fd, int *newfd);
ECLSOCK_HIDDEN int eclsock_os_open_null(int *fd);
ECLSOCK_HIDDEN void eclsock_os_pin_module(const void *addr);
ECLSOCK_HIDDEN int eclsock_os_connect(int fd, const struct sockaddr *sa,
                                      socklen_t len, eclsock_deadline dl);
ECLSOCK_HIDDEN int eclsock_os_bind(int fd, const struct sockaddr *sa,
                                   socklen_t len, int reuse);
ECLSOCK_HIDDEN int eclsock_os_listen(int fd, int backlog);
ECLSOCK_HIDDEN int eclsock_os_bind_listen(int fd, const struct sockaddr *sa,
                                          socklen_t len, int backlog);
ECLSOCK_HIDDEN int eclsock_os_getsockopt(int fd, int level, int name, void *v,
                                         socklen_t *len);
ECLSOCK_HIDDEN int eclsock_os_setsockopt(int fd, int level, int name,
                                         const void *v, socklen_t len);
ECLSOCK_HIDDEN int eclsock_os_setflag(int fd, int level, int name, int on);
ECLSOCK_HIDDEN int eclsock_os_socket_kind(int fd, int *type, int *listening);
ECLSOCK_HIDDEN int eclsock_os_accept(int lfd, volatile int *fd, eclsock_deadline dl);
ECLSOCK_HIDDEN int eclsock_os_send_all(int fd, const unsigned char *p, size_t n,
                                       size_t *sent);
ECLSOCK_HIDDEN int eclsock_os_close_plain(int fd);
ECLSOCK_HIDDEN eclsock_deadline eclsock_os_sock_deadline(int fd, int opt);
ECLSOCK_HIDDEN int eclsock_os_epoll_arm_out(int epfd, int fd, uint64_t data, int add);
ECLSOCK_HIDDEN int eclsock_os_send_nowait(int fd, const unsigned char *p, size_t n,
                                          size_t *sent);
ECLSOCK_HIDDEN int eclsock_os_recv(int fd, unsigned char *p, size_t n,
                                   int flags, size_t *got);
ECLSOCK_HIDDEN int eclsock_os_recv_nowait(int fd, unsigned char *p, size_t n,
                                          size_t *got);
ECLSOCK_HIDDEN int eclsock_os_peek(int fd, size_t *got);
ECLSOCK_HIDDEN int eclsock_os_shutdown(int fd, int how);
ECLSOCK_HIDDEN void eclsock_os_shutdown_for_close(int fd);
ECLSOCK_HIDDEN int eclsock_os_set_nonblock(int fd, int on);
ECLSOCK_HIDDEN int eclsock_os_set_nodelay(int fd, int on);
ECLSOCK_HIDDEN int eclsock_os_start_thread(void *(*fn)(void *), void *arg);
enum { ECLSOCK_EP_ADD, ECLSOCK_EP_MOD, ECLSOCK_EP_DEL };
ECLSOCK_HIDDEN int eclsock_os_epoll_create(int *epfd);
ECLSOCK_HIDDEN int eclsock_os_epoll_ctl(int epfd, int op, int fd, short events,
                                        uint64_t data);
ECLSOCK_HIDDEN int eclsock_os_pipe(int fds[2]);
ECLSOCK_HIDDEN void eclsock_os_wake(int w);
ECLSOCK_HIDDEN void eclsock_os_drain(int r);
/* The output flusher's alarm: a descriptor that becomes readable at a
   given time (a timerfd), or a wake-up pipe where there is none. */
struct eclsock_alarm { int fd, wfd; };
ECLSOCK_HIDDEN int eclsock_os_alarm_open(struct eclsock_alarm *a);
ECLSOCK_HIDDEN int eclsock_os_alarm_timed(const struct eclsock_alarm *a);
ECLSOCK_HIDDEN void eclsock_os_alarm_set(struct eclsock_alarm *a, double at);
ECLSOCK_HIDDEN void eclsock_os_alarm_clear(struct eclsock_alarm *a);
ECLSOCK_HIDDEN void eclsock_os_alarm_close(struct eclsock_alarm *a);
/* How many send-family system calls (send, sendto; failed ones too) os.c
   has made in this process: for tests (ECLSOCK::%SEND-CALLS). */
ECLSOCK_HIDDEN unsigned long eclsock_os_send_calls(void);

/* -- addr.c --------------------------------------------------------------- */

typedef struct {
  struct sockaddr_storage ss;
  socklen_t len;
} eclsock_addr;

/* os.c, datagrams (they need eclsock_addr) */
ECLSOCK_HIDDEN int eclsock_os_sendto(int fd, const unsigned char *p, size_t n,
                                     int flags, const struct sockaddr *sa,
                                     socklen_t len, size_t *sent);
ECLSOCK_HIDDEN int eclsock_os_recvfrom(int fd, unsigned char *p, size_t n,
                                       int flags, eclsock_addr *from, size_t *got);
ECLSOCK_HIDDEN int eclsock_os_accept_from(int lfd, volatile int *fd,
                                          eclsock_deadline dl, eclsock_addr *peer);

/* os.c, unconnected sockets (the SB-BSD-SOCKETS face) */
ECLSOCK_HIDDEN int eclsock_os_socket_proto(int family, int type, int protocol,
                                           volatile int *fd);
ECLSOCK_HIDDEN int eclsock_os_get_nonblock(int fd, int *on);

/* Resolve HOST (NULL = wildcard for passive) and PORT into a malloc'd list;
   free it with eclsock_addr_free. */
ECLSOCK_HIDDEN int eclsock_addr_resolve(const char *host, int port, int passive,
                                        int socktype, struct addrinfo **out);
ECLSOCK_HIDDEN int eclsock_addr_resolve_af(const char *host, int port, int passive,
                                           int family, int socktype,
                                           struct addrinfo **out);
ECLSOCK_HIDDEN int eclsock_addr_resolve_canon(const char *host,
                                              struct addrinfo **out);
ECLSOCK_HIDDEN int eclsock_addr_parse_numeric(const char *text,
                                              struct addrinfo **out);
ECLSOCK_HIDDEN int eclsock_addr_service_port(const char *name, int socktype,
                                             int *port);
ECLSOCK_HIDDEN int eclsock_addr_unix(const char *path, eclsock_addr *a);
ECLSOCK_HIDDEN int eclsock_addr_unix_name(const void *name, size_t n, int abstract,
                                          eclsock_addr *a);
ECLSOCK_HIDDEN void eclsock_addr_inet(int family, const unsigned char *addr, int port,
                                      eclsock_addr *a);
ECLSOCK_HIDDEN int eclsock_addr_destination(int family, const char *host, int port,
                                            eclsock_addr *to);
ECLSOCK_HIDDEN void eclsock_addr_free(struct addrinfo *ai);
ECLSOCK_HIDDEN int eclsock_addr_numeric(const struct sockaddr *sa, socklen_t len,
                                        char *host, size_t hostlen, int *port);
ECLSOCK_HIDDEN int eclsock_addr_name(const struct sockaddr *sa, socklen_t len,
                                     char *host, size_t hostlen);
ECLSOCK_HIDDEN int eclsock_addr_local(int fd, eclsock_addr *a);
ECLSOCK_HIDDEN int eclsock_addr_peer(int fd, eclsock_addr *a);
ECLSOCK_HIDDEN void eclsock_addr_unnamed_sender(int fd, eclsock_addr *from);

/* -- options.c ------------------------------------------------------------ */

/* Option kinds: how a value travels between Lisp and getsockopt. */
enum eclsock_optkind { OPT_BOOL, OPT_INT, OPT_TIMEVAL, OPT_LINGER, OPT_STRING };
struct eclsock_option {
  const char *name;             /* keyword name, e.g. "SO-KEEPALIVE" */
  int level, optname;
  enum eclsock_optkind kind;
};
ECLSOCK_HIDDEN const struct eclsock_option *eclsock_opt_find(const char *name);
ECLSOCK_HIDDEN const struct eclsock_option *eclsock_opt_table(size_t *count);
/* An option's value as C sees it, whatever its kind. */
struct eclsock_optval {
  int on;                       /* OPT_BOOL; OPT_LINGER: lingering at all */
  int i;                        /* OPT_INT; OPT_LINGER: the seconds */
  double secs;                  /* OPT_TIMEVAL, 0 to INT_MAX */
  int whole;                    /* OPT_TIMEVAL read: no microseconds */
  char s[64];                   /* OPT_STRING read */
  const char *str;              /* OPT_STRING written */
};
ECLSOCK_HIDDEN int eclsock_opt_get(int fd, int level, int name,
                                   enum eclsock_optkind k, struct eclsock_optval *v);
ECLSOCK_HIDDEN int eclsock_opt_set(int fd, int level, int name,
                                   enum eclsock_optkind k,
                                   const struct eclsock_optval *v);

/* -- errors.c ------------------------------------------------------------- */

ECLSOCK_HIDDEN const char *eclsock_err_name(int code);
ECLSOCK_HIDDEN int eclsock_err_code(const char *name);
ECLSOCK_HIDDEN const char *eclsock_err_message(int code);
/* Signal the Lisp condition for CODE.  OP names the failing operation
   ("connect"), HOST/PORT/STREAM are Lisp objects or ECL_NIL.  Never
   returns.  Call it with interrupts enabled. */
ECLSOCK_HIDDEN void eclsock_raise(const char *op, int code, cl_object host,
                                  cl_object port, cl_object stream)
  __attribute__((noreturn));
/* The same with MESSAGE (a Lisp string) instead of the table's message for
   CODE when MESSAGE is not NIL. */
ECLSOCK_HIDDEN void eclsock_raise_msg(const char *op, int code, cl_object message,
                                      cl_object host, cl_object port,
                                      cl_object stream)
  __attribute__((noreturn));
/* The same with DETAIL for the condition (a TLS verify result). */
ECLSOCK_HIDDEN void eclsock_raise_detail(const char *op, int code,
                                         cl_object message, cl_object detail,
                                         cl_object host, cl_object port,
                                         cl_object stream)
  __attribute__((noreturn));
/* Signal ECLSOCK::SSL-TRUNCATED-EOF (a warning, not an error) for STREAM:
   its TLS peer closed the connection without close_notify.  Returns when
   no handler transfers control. */
ECLSOCK_HIDDEN void eclsock_signal_truncation(cl_object stream);
/* The symbol NAME of the module's own package ECLSOCK. */
ECLSOCK_HIDDEN cl_object eclsock_sym(const char *name);

/* -- args.c --------------------------------------------------------------- */

ECLSOCK_HIDDEN char *eclsock_arg_cstring(cl_object s, cl_object *keep);
ECLSOCK_HIDDEN int eclsock_arg_fd(cl_object fd);
ECLSOCK_HIDDEN void eclsock_arg_octets(cl_object v, cl_object start, cl_object end,
                                       unsigned char **p, size_t *n);
ECLSOCK_HIDDEN int eclsock_arg_int(cl_object x, long lo, long hi);
ECLSOCK_HIDDEN int eclsock_arg_int_or(cl_object x, int dflt, long lo, long hi);
ECLSOCK_HIDDEN int eclsock_arg_cint(cl_object x);
ECLSOCK_HIDDEN int eclsock_arg_port(cl_object x);
ECLSOCK_HIDDEN double eclsock_arg_seconds(cl_object x);
ECLSOCK_HIDDEN eclsock_deadline eclsock_arg_deadline(cl_object timeout);
ECLSOCK_HIDDEN void eclsock_arg_plist(cl_object plist, const char *const *keys);
ECLSOCK_HIDDEN cl_object eclsock_arg_key(cl_object plist, const char *name);

/* -- lispval.c ------------------------------------------------------------ */

/* How a face shows option values: the core faces' socket-options (CLISP,
   Allegro, PORT) or SB-BSD-SOCKETS' sockopt-... accessors. */
enum eclsock_face { ECLSOCK_FACE_CORE, ECLSOCK_FACE_BSD };
ECLSOCK_HIDDEN const struct eclsock_option *eclsock_lv_option(cl_object keyword);
ECLSOCK_HIDDEN cl_object eclsock_lv_option_names(void);
ECLSOCK_HIDDEN enum eclsock_optkind eclsock_lv_optkind(cl_object k);
ECLSOCK_HIDDEN cl_object eclsock_lv_getsockopt(int fd, int level, int name,
                                               enum eclsock_optkind k,
                                               enum eclsock_face face);
ECLSOCK_HIDDEN void eclsock_lv_setsockopt(int fd, int level, int name,
                                          enum eclsock_optkind k,
                                          enum eclsock_face face, cl_object value);
ECLSOCK_HIDDEN cl_object eclsock_lv_family_keyword(int af);
ECLSOCK_HIDDEN int eclsock_lv_address(const eclsock_addr *a, enum eclsock_face face,
                                      cl_object out[3]);
ECLSOCK_HIDDEN cl_object eclsock_lv_receive(int fd, cl_object v, cl_object start,
                                            cl_object end, int flags,
                                            enum eclsock_face face);
ECLSOCK_HIDDEN void eclsock_lv_sockaddr(cl_object family, cl_object address,
                                        cl_object port, eclsock_addr *a);
ECLSOCK_HIDDEN cl_object eclsock_lv_send(int fd, cl_object v, cl_object start,
                                         cl_object end, int flags,
                                         enum eclsock_face face, cl_object family,
                                         cl_object address, cl_object port);

/* -- tls.c ---------------------------------------------------------------- */

/* A TLS session on a descriptor; NULL stands for the plain descriptor. */
typedef struct eclsock_tls eclsock_tls;

/* The transport: what the stream's buffers call.  With T NULL each is the
   os.c call on FD; with a session, OpenSSL over FD (its I/O never blocks;
   waits go through eclsock_tm_wait, bounded by SO_RCVTIMEO/SO_SNDTIMEO).
   Same contracts as the os.c functions: 0 or an error code, never signal.
   eclsock_tp_send_nowait never touches the interrupt flag (callers may
   hold a lock with interrupts disabled); the others defer interrupts
   around each library call and let them run during waits. */
ECLSOCK_HIDDEN int eclsock_tp_send_all(eclsock_tls *t, int fd,
                                       const unsigned char *p, size_t n,
                                       size_t *sent);
ECLSOCK_HIDDEN int eclsock_tp_send_nowait(eclsock_tls *t, int fd,
                                          const unsigned char *p, size_t n,
                                          size_t *sent);
ECLSOCK_HIDDEN int eclsock_tp_recv(eclsock_tls *t, int fd, unsigned char *p,
                                   size_t n, int flags, size_t *got);
/* Decrypted input waiting inside the session (poll cannot see it). */
ECLSOCK_HIDDEN int eclsock_tp_pending(eclsock_tls *t);
/* A record is half sent: its octets must stay at the start of the output. */
ECLSOCK_HIDDEN int eclsock_tp_write_pending(eclsock_tls *t);
/* shutdown(2), after close_notify when the output side closes. */
ECLSOCK_HIDDEN int eclsock_tp_shutdown(eclsock_tls *t, int fd, int how);
/* End the session (close_notify when NOTIFY, never waiting) and free it;
   the descriptor stays open. */
ECLSOCK_HIDDEN void eclsock_tp_close(eclsock_tls *t, int notify);
/* 1 once after input ended without close_notify (a truncated stream). */
ECLSOCK_HIDDEN int eclsock_tp_take_truncation(eclsock_tls *t);
/* The text of the session's last error, for the condition's message. */
ECLSOCK_HIDDEN const char *eclsock_tls_message(eclsock_tls *t);
/* The X509 verify result of the session (0 = ok). */
ECLSOCK_HIDDEN long eclsock_tls_verify_result(eclsock_tls *t);

/* Context settings (Allegro's keywords, already checked by Lisp). */
struct eclsock_tls_opts {
  int server;
  int min_version, max_version;     /* TLS1_x_VERSION numbers; 0 = default */
  int verify;                       /* 0 none, 1 optional, 2 required */
  int max_depth;                    /* -1 = library default */
  int crl_check;                    /* 0 none, 1 leaf, 2 whole chain */
  int prefer_server_order;
  const char *certificate, *key, *password, *ca_file, *ca_directory;
  const char *ciphers, *ciphersuites, *crl_file;
};
/* A new SSL_CTX in *CTX, or an error code with a message in MSG. */
ECLSOCK_HIDDEN int eclsock_tls_ctx_new(const struct eclsock_tls_opts *o,
                                       void **ctx, char *msg, size_t msglen);
ECLSOCK_HIDDEN void eclsock_tls_ctx_free(void *ctx);
/* A session of CTX on FD.  A client checks the peer's name HOST (a host
   name or an IP address text; NULL for none) and sends it as SNI; VERIFY
   -1 keeps the context's mode, 0/1/2 overrides it; MAX_DEPTH -1 and NULL
   strings keep the context's. */
ECLSOCK_HIDDEN int eclsock_tls_new(void *ctx, int fd, int server,
                                   const char *host, int verify, int max_depth,
                                   int min_version, int max_version,
                                   const char *ciphers, const char *ciphersuites,
                                   eclsock_tls **out, char *msg, size_t msglen);
ECLSOCK_HIDDEN int eclsock_tls_handshake(eclsock_tls *t, eclsock_deadline dl);
/* The peer's certificate as (version serial-hex subject issuer not-before
   not-after alt-names pem), times as (sec min hour day month year); NIL
   when the peer sent none. */
ECLSOCK_HIDDEN cl_object eclsock_tls_peer_certificate(eclsock_tls *t);
/* Negotiated protocol and cipher names. */
ECLSOCK_HIDDEN cl_object eclsock_tls_description(eclsock_tls *t);
/* Live SSL sessions and contexts made by the module (for leak tests). */
ECLSOCK_HIDDEN long eclsock_tls_live_sessions(void);
ECLSOCK_HIDDEN long eclsock_tls_live_contexts(void);
ECLSOCK_HIDDEN int eclsock_tls_available(void);

/* -- eclcompat.c ---------------------------------------------------------- */

/* The kinds of call site of a stream's force_output (eclcompat.c). */
enum { ECLSOCK_SITE_HARD = 0, ECLSOCK_SITE_SOFT = 1 };
/* Which rule tells them apart: call sites calibrated at load, or none
   (every flush sends). */
enum { ECLSOCK_FLUSH_EVERY = 0, ECLSOCK_FLUSH_CALL_SITE = 1 };
ECLSOCK_HIDDEN void eclsock_ecl_init(void);
ECLSOCK_HIDDEN cl_object eclsock_ecl_fd_stream(cl_object name, int fd,
                                               cl_fixnum byte_size, int flags,
                                               cl_object extfmt);
ECLSOCK_HIDDEN void eclsock_ecl_own_ops(cl_object s, struct ecl_file_ops *ops);
ECLSOCK_HIDDEN void eclsock_ecl_retype(cl_object s, cl_fixnum byte_size, int flags,
                                       cl_object extfmt);
ECLSOCK_HIDDEN void eclsock_ecl_copy_encoding(cl_object s, cl_object from);
ECLSOCK_HIDDEN cl_object eclsock_ecl_generic_close(cl_object s);
ECLSOCK_HIDDEN int eclsock_ecl_flush_site(const void *return_address);
ECLSOCK_HIDDEN int eclsock_ecl_flush_mode(void);
ECLSOCK_HIDDEN cl_object eclsock_ecl_finalize(void (*fn)(cl_object), cl_object o);

/* -- life.c, marks.c, flush.c (struct sockbuf: stream-private.h) ------------ */

struct sockbuf;
ECLSOCK_HIDDEN void eclsock_life_init(struct sockbuf *b);
ECLSOCK_HIDDEN void eclsock_life_leave(struct sockbuf *b);
ECLSOCK_HIDDEN int eclsock_life_begin_close(struct sockbuf *b);
ECLSOCK_HIDDEN int eclsock_life_others(struct sockbuf *b);
ECLSOCK_HIDDEN void eclsock_life_woke(struct sockbuf *b);
ECLSOCK_HIDDEN void eclsock_life_end_close(struct sockbuf *b);
ECLSOCK_HIDDEN void eclsock_life_abandon(struct sockbuf *b);

ECLSOCK_HIDDEN void eclsock_marks_note(struct sockbuf *b);
ECLSOCK_HIDDEN void eclsock_marks_drop(struct sockbuf *b);
ECLSOCK_HIDDEN void eclsock_marks_sset_drop(struct sockbuf *b);
ECLSOCK_HIDDEN int eclsock_marks_watched(struct sockbuf *b);
/* A poller's view into the streams registered with it (poller.c owns it).
   The stream layer only notes, under LOCK, the registration slot of a
   stream whose read left octets in its buffer (IN), whose write left
   output pending (OUT), or that was closed while registered (CLOSED); so
   a wait looks at those streams only, never at every registered one.
   Each set holds a slot at most once and has room for every slot (CAP). */
struct eclsock_slotset { int *v; size_t n; };
struct eclsock_watch {
  pthread_mutex_t lock;
  int epfd;                         /* the stream's close deregisters; -1: poll */
  int wake;                         /* written to wake the poller's wait (the
                                       stream's close does), -1: none */
  size_t cap;
  struct eclsock_slotset in, out, closed;
};
ECLSOCK_HIDDEN int eclsock_marks_watch(cl_object x, struct eclsock_watch *w, int slot);
ECLSOCK_HIDDEN void eclsock_marks_unwatch(cl_object x);
ECLSOCK_HIDDEN struct eclsock_watch *eclsock_marks_watcher(cl_object x, int *slot);
ECLSOCK_HIDDEN void eclsock_marks_unmark(cl_object x, int *in, int *out);
ECLSOCK_HIDDEN void eclsock_marks_renote(cl_object x);
ECLSOCK_HIDDEN uint64_t eclsock_marks_status_token(cl_object x, uint64_t token);
ECLSOCK_HIDDEN int eclsock_marks_sset_acquire(int *fresh);
ECLSOCK_HIDDEN int eclsock_marks_sset_release(void);
ECLSOCK_HIDDEN void eclsock_marks_sset_close(int fd);

ECLSOCK_HIDDEN int eclsock_flush_send_pending(struct sockbuf *b);
ECLSOCK_HIDDEN int eclsock_flush_hold(struct sockbuf *b);
ECLSOCK_HIDDEN void eclsock_flush_unlist(struct sockbuf *b);
ECLSOCK_HIDDEN void eclsock_flush_init(void);

/* -- stream.c ------------------------------------------------------------- */

ECLSOCK_HIDDEN void eclsock_stream_init(void);
ECLSOCK_HIDDEN cl_object eclsock_stream_make(int fd, cl_object elttype,
                                             cl_object extfmt, int buffered,
                                             cl_object host, cl_object port,
                                             cl_object name);
ECLSOCK_HIDDEN int eclsock_stream_p(cl_object x);
ECLSOCK_HIDDEN int eclsock_stream_fd(cl_object x);
ECLSOCK_HIDDEN int eclsock_stream_enter(cl_object x);
ECLSOCK_HIDDEN void eclsock_stream_leave(cl_object x);
ECLSOCK_HIDDEN int eclsock_stream_buffered_input(cl_object x);
ECLSOCK_HIDDEN int eclsock_stream_probe(cl_object x);
ECLSOCK_HIDDEN void eclsock_stream_flush(cl_object x);
ECLSOCK_HIDDEN void eclsock_stream_flush_some(cl_object x);
ECLSOCK_HIDDEN size_t eclsock_stream_pending(cl_object x);
ECLSOCK_HIDDEN cl_object eclsock_stream_host(cl_object x);
ECLSOCK_HIDDEN cl_object eclsock_stream_port(cl_object x);
ECLSOCK_HIDDEN void eclsock_stream_shutdown(cl_object x, int how);
ECLSOCK_HIDDEN void eclsock_stream_set_element_type(cl_object x, cl_object elttype,
                                                    cl_object extfmt);
ECLSOCK_HIDDEN cl_index eclsock_stream_read_octets(cl_object x, unsigned char *p,
                                                   cl_index n, int mode);
ECLSOCK_HIDDEN void eclsock_stream_set_buffered(cl_object x, int buffered);
ECLSOCK_HIDDEN int eclsock_stream_get_buffered(cl_object x);
ECLSOCK_HIDDEN void eclsock_stream_set_finalizing(cl_object x);
ECLSOCK_HIDDEN void eclsock_stream_set_shared(cl_object x);
/* A new stream on OLD's descriptor, with OLD's element type, format and
   names, whose transport is the session T; OLD is closed without closing
   the descriptor (its pending output is sent first). */
ECLSOCK_HIDDEN cl_object eclsock_stream_move_to_tls(cl_object old, eclsock_tls *t);
ECLSOCK_HIDDEN eclsock_tls *eclsock_stream_tls(cl_object x);
ECLSOCK_HIDDEN void eclsock_stream_restrict(cl_object x, int input, int output);


/* -- status.c ------------------------------------------------------------- */

ECLSOCK_HIDDEN cl_object eclsock_status(cl_object what, eclsock_deadline dl);
ECLSOCK_HIDDEN void eclsock_status_set_server_class(cl_object cls);
ECLSOCK_HIDDEN int eclsock_server_fd(cl_object x);
ECLSOCK_HIDDEN int eclsock_server_p(cl_object x);
/* What socket-status says of one object: KIND an ECLSOCK_KIND_*, DIR
   ECLSOCK_DIR_* bits, BUFFERED true when input waits inside the stream,
   REVENTS the poll(2) bits the kernel reported. */
enum { ECLSOCK_KIND_STREAM, ECLSOCK_KIND_SERVER, ECLSOCK_KIND_FD };
enum { ECLSOCK_DIR_INPUT = 1, ECLSOCK_DIR_OUTPUT = 2, ECLSOCK_DIR_IO = 3 };
ECLSOCK_HIDDEN cl_object eclsock_status_of(cl_object obj, int kind, int dir, int fd,
                                           int buffered, short revents);

/* -- poller.c ------------------------------------------------------------- */

ECLSOCK_HIDDEN cl_object eclsock_poller_make(void);
ECLSOCK_HIDDEN cl_object eclsock_poller_close(cl_object p);
ECLSOCK_HIDDEN cl_object eclsock_poller_add(cl_object p, cl_object obj, int kind,
                                            int fd, int dir, int modify);
ECLSOCK_HIDDEN cl_object eclsock_poller_remove(cl_object p, cl_object obj, int kind,
                                               int fd);
ECLSOCK_HIDDEN cl_object eclsock_poller_wait(cl_object p, eclsock_deadline dl);
ECLSOCK_HIDDEN cl_object eclsock_poller_count(cl_object p);

/* -- bsd.c ---------------------------------------------------------------- */

/* A Lisp primitive of a file above: ECLSOCK::NAME, a C function of NARG
   arguments.  Each such file exports its table (eclsock_FILE_prims, with
   eclsock_FILE_nprims entries); glue.c's init registers them all. */
struct eclsock_prim { const char *name; void *fn; int narg; };

/* The SB-BSD-SOCKETS face's primitives (ECLSOCK::%BSD-...). */
ECLSOCK_HIDDEN extern const struct eclsock_prim eclsock_bsd_prims[];
ECLSOCK_HIDDEN extern const size_t eclsock_bsd_nprims;

/* -- conn.c --------------------------------------------------------------- */

/* How to finish a fresh socket for one address (TRY: bind and listen,
   connect, bind a datagram socket) and which Lisp object then owns it
   (OWN: a stream; NULL: the descriptor itself), with their arguments. */
struct eclsock_setup {
  int (*try)(int fd, const struct addrinfo *a, const struct eclsock_setup *s);
  cl_object (*own)(int fd, const struct addrinfo *a, const struct eclsock_setup *s);
  int backlog, reuse, broadcast;
  const char *lhost;            /* connect from here (NULL: any) */
  int lport;                    /* and this port (0: any) */
  eclsock_deadline dl;
  cl_object host, port, elttype, extfmt, buffered;
};

/* A socket of SOCKTYPE for the first address on which S->try succeeds
   (HOST resolved with PORT in FAMILY, PASSIVE for a local address; for
   AF_UNIX the file HOST, NULL: none), owned as S->own says; signals as OP
   on failure, never leaking a descriptor. */
ECLSOCK_HIDDEN cl_object eclsock_conn_open(const char *op, const char *host, int port,
                                           int passive, int family, int socktype,
                                           const struct eclsock_setup *s);
ECLSOCK_HIDDEN cl_object eclsock_conn_stream_arg(cl_object s);
ECLSOCK_HIDDEN extern const struct eclsock_prim eclsock_conn_prims[];
ECLSOCK_HIDDEN extern const size_t eclsock_conn_nprims;

/* -- dgram.c, tlsglue.c ---------------------------------------------------- */

ECLSOCK_HIDDEN extern const struct eclsock_prim eclsock_dgram_prims[];
ECLSOCK_HIDDEN extern const size_t eclsock_dgram_nprims;
ECLSOCK_HIDDEN extern const struct eclsock_prim eclsock_tlsglue_prims[];
ECLSOCK_HIDDEN extern const size_t eclsock_tlsglue_nprims;
ECLSOCK_HIDDEN void eclsock_tlsglue_init(void);

/* -- glue.c --------------------------------------------------------------- */

/* ecl_return1 stores the value count before it evaluates its value, and
   a value computed by a call that runs an unwind-protect (or signals
   through one) leaves the count of that inner form: the primitive then
   returns zero values.  ECLSOCK_RETURN1 computes the value first. */
#define ECLSOCK_RETURN1(env, x)                         \
  do {                                                  \
    cl_object value_ = (x);                             \
    ecl_return1((env), value_);                         \
  } while (0)


/* Register the primitives ECLSOCK::%... (and make the package if the Lisp
   layer has not).  Safe to call more than once.  api.c and the C tests
   call it; the module's Lisp layer calls it from its FFI form. */
ECLSOCK_HIDDEN void eclsock_init_primitives(void);

/* Run a blocking system call with ECL's interrupt discipline: Lisp
   interrupts are deferred during the call and run right after it, with
   errno saved across them.  The caller loops on EINTR. */
#define ECLSOCK_BLOCKING(env, result, err, call)   \
  do {                                             \
    ecl_disable_interrupts_env(env);               \
    (result) = (call);                             \
    (err) = errno;                                 \
    ecl_enable_interrupts_env(env);                \
  } while (0)

#endif /* ECLSOCK_H */
