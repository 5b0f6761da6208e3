/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * os.c - system calls on plain descriptors for ecl-sock.
 *
 * Owns: socket, connect, bind, listen, accept, send, recv (and peek),
 * sendto, recvfrom, getsockopt/setsockopt, shutdown, close: every system
 * call on a socket descriptor in the module (name resolution and
 * getsockname/getpeername are addr.c's); also TCP_NODELAY, the output
 * flusher's thread and alarm (timerfd), and pinning our shared object
 * (dladdr); the epoll instances and wake-up pipes of the poller and the
 * flusher (epoll_create1, epoll_ctl, pipe2; their waits are timeout.c's);
 * the count of send-family calls made (for tests).
 * Each function returns 0 or an error code (positive errno captured at the
 * call, or a negative ECLSOCK_E* code) and never signals.  Blocking calls
 * run with Lisp interrupts deferred and are retried on EINTR, so that
 * mp:interrupt-process and Ctrl-C run at a known point between tries.
 * Descriptors are created close-on-exec; sends use MSG_NOSIGNAL so a peer
 * that vanished gives EPIPE, never SIGPIPE, whatever the host did with
 * ECL's SIGPIPE handler.  Must not: hold a descriptor across a wait (the
 * caller owns it and cleans up if an interrupt unwinds).
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE                    /* dladdr */
#endif
#include "internal.h"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_EPOLL
# include <sys/epoll.h>
#endif
#ifdef HAVE_SYS_TIMERFD_H
# include <sys/timerfd.h>
#endif
#include <time.h>

#ifndef SOCK_CLOEXEC
# define SOCK_CLOEXEC 0
#endif
#ifndef MSG_NOSIGNAL
# define MSG_NOSIGNAL 0
#endif

/* Every send-family system call made here (send, sendto), failed ones
   included: tests read it (eclsock_os_send_calls, ECLSOCK::%SEND-CALLS) to
   see that nothing polls a stalled peer. */
static unsigned long send_calls;

#define COUNT_SEND() ((void)__atomic_add_fetch(&send_calls, 1, __ATOMIC_RELAXED))

unsigned long
eclsock_os_send_calls(void)
{
  return __atomic_load_n(&send_calls, __ATOMIC_RELAXED);
}

int
eclsock_os_set_nonblock(int fd, int on)
{
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0)
    return errno;
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  return fcntl(fd, F_SETFL, flags) < 0 ? errno : 0;
}

/* Create a socket of FAMILY and TYPE in *FD, close-on-exec. */
int
eclsock_os_socket(int family, int type, volatile int *fd)
{
  const cl_env_ptr env = ecl_process_env();
  int e;
  /* *FD is written before interrupts are enabled again, so a caller's
     cleanup sees the descriptor even if an interrupt unwinds right here */
  ECLSOCK_BLOCKING(env, *fd, e, socket(family, type | SOCK_CLOEXEC, 0));
  return *fd < 0 ? e : 0;
}

/* A new descriptor for the socket of FD, close-on-exec, in *NEWFD. */
int
eclsock_os_dup(int fd, int *newfd)
{
  *newfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return *newfd < 0 ? errno : 0;
}

/* A descriptor on /dev/null in *FD (the stream layer's template stream). */
int
eclsock_os_open_null(int *fd)
{
  *fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  return *fd < 0 ? errno : 0;
}

/* Close FD.  Linux releases the descriptor even when close reports EINTR,
   so it is never retried. */
int
eclsock_os_close(int fd)
{
  const cl_env_ptr env = ecl_process_env();
  int r, e;
  ECLSOCK_BLOCKING(env, r, e, close(fd));
  return (r < 0 && e != EINTR) ? e : 0;
}

/* close(2) for a thread without a Lisp environment (the flusher) and for
   a forked child's at-fork handler: no interrupt discipline. */
int
eclsock_os_close_plain(int fd)
{
  int r = close(fd);
  return (r < 0 && errno != EINTR) ? errno : 0;
}

/* Connect FD to SA, waiting until DL.  With a deadline the connect runs
   non-blocking and the wait goes through poll, so the deadline bounds it;
   an interrupted connect is never restarted (that gives EALREADY), its
   outcome is read from SO_ERROR.  FD is left in blocking mode.  Returns 0,
   an errno or ECLSOCK_ETIMEOUT.  Blocks. */
int
eclsock_os_connect(int fd, const struct sockaddr *sa, socklen_t len,
                   eclsock_deadline dl)
{
  const cl_env_ptr env = ecl_process_env();
  int r, e, soerr = 0, flags;
  socklen_t sl = sizeof soerr;
  if (dl < 0) {
    /* No deadline: a plain blocking connect, four system calls fewer.  A
       signal interrupts it without stopping it (EINTR): then wait for the
       outcome as below, the socket being blocking already. */
    do
      ECLSOCK_BLOCKING(env, r, e, connect(fd, sa, len));
    while (r < 0 && e == EINTR && sa->sa_family == AF_UNIX);  /* restartable */
    if (r == 0)
      return 0;
    if (e != EINTR)
      return e;
    if ((e = eclsock_tm_wait(fd, POLLOUT, dl)))
      return e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
      return errno;
    return soerr;
  }
  flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return errno;
  ECLSOCK_BLOCKING(env, r, e, connect(fd, sa, len));
  /* A Unix-domain listener whose queue is full refuses a non-blocking
     connect with EAGAIN and offers nothing to poll for (Linux): try again
     every 10 ms until DL, as a blocking connect would wait. */
  while (r < 0 && e == EAGAIN && sa->sa_family == AF_UNIX) {
    double now = eclsock_tm_now(), until = now + 0.01;
    int n;
    if (dl >= 0 && now >= dl)
      return ECLSOCK_ETIMEOUT;
    (void)eclsock_tm_poll(NULL, 0, (dl >= 0 && dl < until) ? dl : until, &n);
    ECLSOCK_BLOCKING(env, r, e, connect(fd, sa, len));
  }
  if (r < 0 && e != EINPROGRESS && e != EINTR)
    return e;
  if (r < 0) {
    e = eclsock_tm_wait(fd, POLLOUT, dl);
    if (e)
      return e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
      return errno;
    if (soerr)
      return soerr;
  }
  /* the flags read above: one fcntl less per connection */
  return fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ? errno : 0;
}

/* getsockopt(2): the value in V, its length in *LEN. */
int
eclsock_os_getsockopt(int fd, int level, int name, void *v, socklen_t *len)
{
  return getsockopt(fd, level, name, v, len) < 0 ? errno : 0;
}

/* setsockopt(2). */
int
eclsock_os_setsockopt(int fd, int level, int name, const void *v, socklen_t len)
{
  return setsockopt(fd, level, name, v, len) < 0 ? errno : 0;
}

/* Turn the boolean option NAME (at LEVEL) on or off. */
int
eclsock_os_setflag(int fd, int level, int name, int on)
{
  return eclsock_os_setsockopt(fd, level, name, &on, sizeof on);
}

/* Bind FD to SA, with SO_REUSEADDR first when REUSE (what servers expect:
   a port in TIME_WAIT can be bound again). */
int
eclsock_os_bind(int fd, const struct sockaddr *sa, socklen_t len, int reuse)
{
  int e;
  if (reuse && (e = eclsock_os_setflag(fd, SOL_SOCKET, SO_REUSEADDR, 1)))
    return e;
  return bind(fd, sa, len) < 0 ? errno : 0;
}

int
eclsock_os_listen(int fd, int backlog)
{
  return listen(fd, backlog) < 0 ? errno : 0;
}

/* Bind FD to SA (with SO_REUSEADDR for TCP, as servers expect) and listen. */
int
eclsock_os_bind_listen(int fd, const struct sockaddr *sa, socklen_t len,
                       int backlog)
{
  int e = eclsock_os_bind(fd, sa, len, sa->sa_family != AF_UNIX);
  return e ? e : eclsock_os_listen(fd, backlog);
}

/* What kind of socket FD is: its SO_TYPE in *TYPE and whether it listens
   (SO_ACCEPTCONN) in *LISTENING.  An error when FD is no socket. */
int
eclsock_os_socket_kind(int fd, int *type, int *listening)
{
  socklen_t len = sizeof *type;
  int e;
  *type = 0;
  *listening = 0;
  if ((e = eclsock_os_getsockopt(fd, SOL_SOCKET, SO_TYPE, type, &len)))
    return e;
  len = sizeof *listening;
  (void)eclsock_os_getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, listening, &len);
  return 0;
}

/* Accept a connection on LFD into *FD, waiting until DL.  Returns 0, an
   errno or ECLSOCK_ETIMEOUT.  Blocks.  *FD is set before interrupts run
   again, so the caller's cleanup can close it if one unwinds. */
int
eclsock_os_accept(int lfd, volatile int *fd, eclsock_deadline dl)
{
  return eclsock_os_accept_from(lfd, fd, dl, NULL);
}

/* Accept as eclsock_os_accept; also stores the peer's address in *PEER
   when PEER is not NULL (its len 0 when the system gave none), which
   saves the stream's name a getpeername. */
int
eclsock_os_accept_from(int lfd, volatile int *fd, eclsock_deadline dl,
                       eclsock_addr *peer)
{
  const cl_env_ptr env = ecl_process_env();
  for (;;) {
    int e;
    struct sockaddr *sa = peer ? (struct sockaddr *)&peer->ss : NULL;
    socklen_t *len = peer ? &peer->len : NULL;
    if ((e = eclsock_tm_wait(lfd, POLLIN, dl)))
      return e;
    if (peer)
      peer->len = sizeof peer->ss;
    /* The stream wants a blocking descriptor.  accept4 makes one whatever
       the listening socket is (non-blocking, so that a connection the peer
       dropped while we woke up does not block us); plain accept may copy
       the listener's O_NONBLOCK, which is cleared then. */
#ifdef HAVE_ACCEPT4
    ECLSOCK_BLOCKING(env, *fd, e, accept4(lfd, sa, len, SOCK_CLOEXEC));
    if (*fd >= 0)
      return 0;
#else
    ECLSOCK_BLOCKING(env, *fd, e, accept(lfd, sa, len));
    if (*fd >= 0) fcntl(*fd, F_SETFD, FD_CLOEXEC);
    if (*fd >= 0)
      return eclsock_os_set_nonblock(*fd, 0);
#endif
    if (peer)
      peer->len = 0;
    /* the connection went away between poll and accept, or a signal */
    if (e == EINTR || e == EAGAIN || e == EWOULDBLOCK || e == ECONNABORTED
        || e == EPROTO)
      continue;
    return e;
  }
}

/* Send all N octets of P, looping on EINTR and short counts, waiting (in
   the kernel) at most the socket's send timeout.  *SENT (when not NULL)
   says how many went, also on an error or a timeout. */
int
eclsock_os_send_all(int fd, const unsigned char *p, size_t n, size_t *sent)
{
  const cl_env_ptr env = ecl_process_env();
  size_t done = 0;
  int code = 0;
  while (done < n) {
    ssize_t w;
    int e;
    ECLSOCK_BLOCKING(env, w, e, (COUNT_SEND(), send(fd, p + done, n - done, MSG_NOSIGNAL)));
    if (w < 0) {
      if (e == EINTR)
        continue;
      /* EAGAIN: SO_SNDTIMEO expired, a timeout */
      code = (e == EAGAIN || e == EWOULDBLOCK) ? ECLSOCK_ETIMEOUT : e;
      break;
    }
    done += (size_t)w;
  }
  if (sent)
    *sent = done;
  return code;
}

/* The deadline of a transfer on FD that must wait: its OPT timeout
   (SO_RCVTIMEO or SO_SNDTIMEO) from now, or none. */
eclsock_deadline
eclsock_os_sock_deadline(int fd, int opt)
{
  struct timeval tv;
  socklen_t len = sizeof tv;
  if (eclsock_os_getsockopt(fd, SOL_SOCKET, opt, &tv, &len)
      || (tv.tv_sec == 0 && tv.tv_usec == 0))
    return ECLSOCK_NO_DEADLINE;
  return eclsock_tm_deadline((double)tv.tv_sec + tv.tv_usec * 1e-6);
}

/* Send what the socket takes now of the N octets at P, never waiting:
   *SENT says how many went (0 when the send buffer is full).  It never
   blocks, so it does not touch the interrupt flag: callers may hold a lock
   with interrupts disabled around it. */
int
eclsock_os_send_nowait(int fd, const unsigned char *p, size_t n, size_t *sent)
{
  *sent = 0;
  while (*sent < n) {
    ssize_t w;
    COUNT_SEND();
    w = send(fd, p + *sent, n - *sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      int e = errno;
      if (e == EINTR)
        continue;
      return (e == EAGAIN || e == EWOULDBLOCK) ? 0 : e;
    }
    *sent += (size_t)w;
  }
  return 0;
}

/* Receive up to N octets into P; *GOT = 0 means end of file.  FLAGS go to
   recv (MSG_DONTWAIT for a non-blocking try, which gives EAGAIN). */
int
eclsock_os_recv(int fd, unsigned char *p, size_t n, int flags, size_t *got)
{
  const cl_env_ptr env = ecl_process_env();
  for (;;) {
    ssize_t r;
    int e;
    ECLSOCK_BLOCKING(env, r, e, recv(fd, p, n, flags));
    if (r >= 0) {
      *got = (size_t)r;
      return 0;
    }
    if (e == EINTR)
      continue;
    if ((e == EAGAIN || e == EWOULDBLOCK) && !(flags & MSG_DONTWAIT))
      return ECLSOCK_ETIMEOUT;            /* SO_RCVTIMEO expired */
    return e;
  }
}

/* Receive what has arrived, up to N octets, never waiting: EAGAIN when
   nothing has; *GOT = 0 at end of file.  Like eclsock_os_send_nowait it
   never touches the interrupt flag (the TLS transport calls both from
   inside OpenSSL, with interrupts deferred). */
int
eclsock_os_recv_nowait(int fd, unsigned char *p, size_t n, size_t *got)
{
  for (;;) {
    ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
    if (r >= 0) {
      *got = (size_t)r;
      return 0;
    }
    if (errno != EINTR)
      return errno;
  }
}

int
eclsock_os_shutdown(int fd, int how)
{
  return shutdown(fd, how) < 0 ? errno : 0;
}

/* Wake every thread blocked on FD before it is closed: shut the
   connection down both ways, or only for reading when the user asked for
   an abortive close (SO_LINGER on with 0 s: the RST must not be preceded
   by a FIN).  Errors are ignored: the descriptor is closed next anyway. */
void
eclsock_os_shutdown_for_close(int fd)
{
  struct linger l;
  socklen_t len = sizeof l;
  int abortive = eclsock_os_getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &len) == 0
    && l.l_onoff && l.l_linger == 0;
  (void)shutdown(fd, abortive ? SHUT_RD : SHUT_RDWR);
}

/* Look at the next octet of FD without taking it and without waiting:
   *GOT is 1 when there is one, 0 at end of file.  Returns 0 or the errno
   (EAGAIN when nothing has arrived, ENOTSOCK for a descriptor that is no
   socket, ENOTCONN for a listening one). */
int
eclsock_os_peek(int fd, size_t *got)
{
  unsigned char c;
  *got = 0;
  return eclsock_os_recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT, got);
}

/* Turn Nagle's algorithm off (ON) or on for the TCP socket FD. */
int
eclsock_os_set_nodelay(int fd, int on)
{
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) < 0 ? errno : 0;
}

/* Start FN(ARG) in a detached thread that the garbage collector knows
   (ecl.h makes pthread_create GC_pthread_create) but ECL does not: it has
   no Lisp environment, so it must only run plain C.  Every signal but the
   collector's own and the synchronous ones is blocked in it, so that no
   Lisp signal handler ever runs on it. */
int
eclsock_os_start_thread(void *(*fn)(void *), void *arg)
{
  sigset_t all, old;
  pthread_attr_t attr;
  pthread_t t;
  int e;
  sigfillset(&all);
  sigdelset(&all, GC_get_suspend_signal());
  sigdelset(&all, GC_get_thr_restart_signal());
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGFPE);
  sigdelset(&all, SIGILL);
  if ((e = pthread_attr_init(&attr)))
    return e;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  e = pthread_create(&t, &attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  return e;
}

/* Keep the shared object that holds ADDR (sock.fas, libecl-sock.so)
   mapped until the process ends: ECL's exit (cl_shutdown) dlcloses every
   library it loaded, and a thread of ours still running there (the
   flusher) would then wake up in unmapped code.  Nothing to do when ADDR
   lies in the program itself or the loader refuses. */
void
eclsock_os_pin_module(const void *addr)
{
  Dl_info info;
  if (dladdr(addr, &info) && info.dli_fname && info.dli_fname[0])
    (void)dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
}

/* -- Unconnected sockets (the SB-BSD-SOCKETS face) ------------------------ */

/* Create a socket of FAMILY, TYPE and PROTOCOL in *FD, close-on-exec. */
int
eclsock_os_socket_proto(int family, int type, int protocol, volatile int *fd)
{
  const cl_env_ptr env = ecl_process_env();
  int e;
  ECLSOCK_BLOCKING(env, *fd, e, socket(family, type | SOCK_CLOEXEC, protocol));
  return *fd < 0 ? e : 0;
}

/* *ON = whether FD is in non-blocking mode. */
int
eclsock_os_get_nonblock(int fd, int *on)
{
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0)
    return errno;
  *on = (flags & O_NONBLOCK) != 0;
  return 0;
}

/* Send N octets of P with FLAGS (MSG_NOSIGNAL always) to SA (NULL: the
   connected peer), looping on EINTR.  *SENT gets the count; EAGAIN comes
   back as EAGAIN (a non-blocking socket, or MSG_DONTWAIT). */
int
eclsock_os_sendto(int fd, const unsigned char *p, size_t n, int flags,
                  const struct sockaddr *sa, socklen_t len, size_t *sent)
{
  const cl_env_ptr env = ecl_process_env();
  for (;;) {
    ssize_t w;
    int e;
    ECLSOCK_BLOCKING(env, w, e, (COUNT_SEND(),
                                 sendto(fd, p, n, flags | MSG_NOSIGNAL, sa,
                                        sa ? len : 0)));
    if (w >= 0) {
      *sent = (size_t)w;
      return 0;
    }
    if (e != EINTR)
      return e == EWOULDBLOCK ? EAGAIN : e;
  }
}

/* Receive into P (at most N octets) with FLAGS (MSG_PEEK, MSG_TRUNC ...),
   the sender in *FROM.  *GOT is what recvfrom returned (with MSG_TRUNC, a
   datagram's full length).  Loops on EINTR; EAGAIN comes back as EAGAIN. */
int
eclsock_os_recvfrom(int fd, unsigned char *p, size_t n, int flags,
                    eclsock_addr *from, size_t *got)
{
  const cl_env_ptr env = ecl_process_env();
  for (;;) {
    ssize_t r;
    int e;
    from->len = sizeof from->ss;
    ECLSOCK_BLOCKING(env, r, e, recvfrom(fd, p, n, flags,
                                         (struct sockaddr *)&from->ss, &from->len));
    if (r >= 0) {
      *got = (size_t)r;
      return 0;
    }
    if (e != EINTR)
      return e == EWOULDBLOCK ? EAGAIN : e;
  }
}

/* -- The poller's descriptors (poller.c) ---------------------------------- */

/* A new epoll instance in *EPFD, close-on-exec; ENOSYS where the module was
   built without epoll (the poller then uses poll). */
int
eclsock_os_epoll_create(int *epfd)
{
#ifdef HAVE_EPOLL
  *epfd = epoll_create1(EPOLL_CLOEXEC);
  return *epfd < 0 ? errno : 0;
#else
  *epfd = -1;
  return ENOSYS;
#endif
}

/* epoll_ctl: OP is EPOLL_CTL_ADD, _MOD or _DEL (the ECLSOCK_EP_* values),
   EVENTS poll(2) bits (POLLIN, POLLOUT), DATA what the wait reports. */
int
eclsock_os_epoll_ctl(int epfd, int op, int fd, short events, uint64_t data)
{
#ifdef HAVE_EPOLL
  struct epoll_event ev;
  int r;
  memset(&ev, 0, sizeof ev);
  ev.events = ((events & POLLIN) ? EPOLLIN : 0) | ((events & POLLOUT) ? EPOLLOUT : 0);
  ev.data.u64 = data;
  r = epoll_ctl(epfd, op == ECLSOCK_EP_ADD ? EPOLL_CTL_ADD
                : op == ECLSOCK_EP_MOD ? EPOLL_CTL_MOD : EPOLL_CTL_DEL, fd, &ev);
  return r < 0 ? errno : 0;
#else
  (void)epfd; (void)op; (void)fd; (void)events; (void)data;
  return ENOSYS;
#endif
}

/* Arm FD in the epoll set EPFD for one writability event (EPOLLOUT,
   one-shot) reported with DATA; ADD for its first time in the set, else
   re-arm (either falls back to the other: a forked child's new set does
   not have what the parent's had).  The flusher watches stalled streams
   this way. */
int
eclsock_os_epoll_arm_out(int epfd, int fd, uint64_t data, int add)
{
#ifdef HAVE_EPOLL
  struct epoll_event ev;
  int r;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLOUT | EPOLLONESHOT;
  ev.data.u64 = data;
  r = epoll_ctl(epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
  if (r < 0 && add && errno == EEXIST)
    r = epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
  else if (r < 0 && !add && errno == ENOENT)
    r = epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  return r < 0 ? errno : 0;
#else
  (void)epfd; (void)fd; (void)data; (void)add;
  return ENOSYS;
#endif
}

/* A non-blocking, close-on-exec pipe: the poller's wake-up channel. */
int
eclsock_os_pipe(int fds[2])
{
  int r = pipe2(fds, O_CLOEXEC | O_NONBLOCK);
  return r < 0 ? errno : 0;
}

/* Put one octet into the wake-up pipe W (never blocks: a full pipe already
   wakes the reader). */
void
eclsock_os_wake(int w)
{
  unsigned char c = 1;
  ssize_t r;
  do
    r = write(w, &c, 1);
  while (r < 0 && errno == EINTR);
}

/* Empty the wake-up pipe R. */
void
eclsock_os_drain(int r)
{
  unsigned char buf[64];
  ssize_t n;
  do
    n = read(r, buf, sizeof buf);
  while (n > 0 || (n < 0 && errno == EINTR));
}

/* -- The flusher's alarm --------------------------------------------------- */

/* Open A: a monotonic timerfd (the kernel keeps the deadline, so setting
   it wakes nobody), or without timerfd a wake-up pipe (setting it wakes
   the waiting thread at once; it then waits with a timeout of its own).
   Returns 0 or an error code. */
int
eclsock_os_alarm_open(struct eclsock_alarm *a)
{
  a->fd = a->wfd = -1;
#ifdef HAVE_SYS_TIMERFD_H
  a->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (a->fd >= 0)
    return 0;
#endif
  {
    int p[2], code = eclsock_os_pipe(p);
    if (code)
      return code;
    a->fd = p[0];
    a->wfd = p[1];
    return 0;
  }
}

/* 1 when A is a kernel timer (eclsock_os_alarm_set then only moves its
   deadline), 0 for the pipe. */
int
eclsock_os_alarm_timed(const struct eclsock_alarm *a)
{
  return a->wfd < 0;
}

/* Make A's descriptor readable at AT (eclsock_tm_now's clock; a time
   already past: at once), or never when AT is ECLSOCK_NO_DEADLINE.  The
   pipe cannot wait: any AT makes it readable now. */
void
eclsock_os_alarm_set(struct eclsock_alarm *a, double at)
{
#ifdef HAVE_SYS_TIMERFD_H
  if (a->wfd < 0) {
    struct itimerspec it;
    memset(&it, 0, sizeof it);
    if (at >= 0) {
      it.it_value.tv_sec = (time_t)at;
      it.it_value.tv_nsec = (long)((at - (double)it.it_value.tv_sec) * 1e9);
      if (it.it_value.tv_nsec > 999999999L)
        it.it_value.tv_nsec = 999999999L;
      if (!it.it_value.tv_sec && !it.it_value.tv_nsec)
        it.it_value.tv_nsec = 1;        /* zero would disarm it */
    }
    (void)timerfd_settime(a->fd, TFD_TIMER_ABSTIME, &it, NULL);
    return;
  }
#endif
  if (at >= 0)
    eclsock_os_wake(a->wfd);
}

/* A's descriptor is no longer readable (until it is set again). */
void
eclsock_os_alarm_clear(struct eclsock_alarm *a)
{
  eclsock_os_drain(a->fd);
}

void
eclsock_os_alarm_close(struct eclsock_alarm *a)
{
  if (a->fd >= 0)
    (void)eclsock_os_close_plain(a->fd);
  if (a->wfd >= 0)
    (void)eclsock_os_close_plain(a->wfd);
  a->fd = a->wfd = -1;
}
