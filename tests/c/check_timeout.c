/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_timeout.c - Check suite "timeout" for src/timeout.c: the monotonic
 * clock, deadline arithmetic, and the one wait (poll with EINTR retries).
 * Timing bounds are generous on the upper side: the machine is shared.
 */
#include "testutil.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* -- Clock and deadlines ------------------------------------------------ */

START_TEST(test_now_monotonic)
{
  double a = eclsock_tm_now(), b;
  usleep(50000);
  b = eclsock_tm_now();
  ck_assert(a > 0);
  ck_assert_msg(b - a >= 0.049 && b - a < 2.0, "50 ms sleep measured %f s", b - a);
}
END_TEST

START_TEST(test_deadline_math)
{
  double before, after;
  eclsock_deadline d;
  ck_assert(eclsock_tm_deadline(-1.0) < 0);
  ck_assert(eclsock_tm_deadline(-0.001) == ECLSOCK_NO_DEADLINE);
  before = eclsock_tm_now();
  d = eclsock_tm_deadline(2.5);
  after = eclsock_tm_now();
  ck_assert(d >= before + 2.5 && d <= after + 2.5);
  before = eclsock_tm_now();
  d = eclsock_tm_deadline(0.0);
  after = eclsock_tm_now();
  ck_assert(d >= before && d <= after);
}
END_TEST

/* -- Waiting ------------------------------------------------------------ */

/* Wait for EVENTS on FD for SECONDS; return the result and store the
   elapsed time. */
static int
timed_wait(int fd, short events, double seconds, double *elapsed)
{
  double t0 = eclsock_tm_now();
  int r = eclsock_tm_wait(fd, events, eclsock_tm_deadline(seconds));
  *elapsed = eclsock_tm_now() - t0;
  return r;
}

START_TEST(test_wait_idle_times_out)
{
  int sv[2];
  double el;
  tu_socketpair(sv);
  ck_assert_int_eq(timed_wait(sv[0], POLLIN, 0.1, &el), ECLSOCK_ETIMEOUT);
  ck_assert_msg(el >= 0.09 && el < 2.0, "0.1 s wait took %f s", el);
  ck_assert_int_eq(timed_wait(sv[0], POLLIN, 0.3, &el), ECLSOCK_ETIMEOUT);
  ck_assert_msg(el >= 0.29 && el < 2.0, "0.3 s wait took %f s", el);
}
END_TEST

START_TEST(test_wait_zero_and_past_deadline)
{
  int sv[2];
  double el, t0;
  tu_socketpair(sv);
  ck_assert_int_eq(timed_wait(sv[0], POLLIN, 0.0, &el), ECLSOCK_ETIMEOUT);
  ck_assert_msg(el < 0.5, "zero wait took %f s", el);
  t0 = eclsock_tm_now();
  ck_assert_int_eq(eclsock_tm_wait(sv[0], POLLIN, t0 - 10.0), ECLSOCK_ETIMEOUT);
  ck_assert(eclsock_tm_now() - t0 < 0.5);
}
END_TEST

START_TEST(test_wait_ready_returns_at_once)
{
  int sv[2];
  double el;
  tu_socketpair(sv);
  /* writable at once, even with no deadline or a far one */
  ck_assert_int_eq(timed_wait(sv[0], POLLOUT, 5.0, &el), 0);
  ck_assert_msg(el < 0.5, "writable wait took %f s", el);
  ck_assert_int_eq(eclsock_tm_wait(sv[0], POLLOUT, ECLSOCK_NO_DEADLINE), 0);
  ck_assert_int_eq(eclsock_tm_wait(sv[0], POLLOUT, eclsock_tm_now() + 1e12), 0);
  /* readable once the peer wrote */
  ck_assert_int_eq(write(sv[1], "x", 1), 1);
  ck_assert_int_eq(timed_wait(sv[0], POLLIN, 5.0, &el), 0);
  ck_assert_msg(el < 0.5, "readable wait took %f s", el);
}
END_TEST

START_TEST(test_wait_hangup_and_bad_fd)
{
  int sv[2];
  double el;
  tu_socketpair(sv);
  close(sv[1]);
  /* a closed peer counts as ready (the read then gives EOF) */
  ck_assert_int_eq(timed_wait(sv[0], POLLIN, 5.0, &el), 0);
  ck_assert(el < 0.5);
  /* a descriptor that is not open: ready (POLLNVAL), never a hang */
  close(sv[0]);
  ck_assert_int_eq(timed_wait(sv[0], POLLIN, 5.0, &el), 0);
  ck_assert(el < 0.5);
}
END_TEST

struct delayed_write { int fd; useconds_t delay; };

static void *
write_later(void *arg)
{
  struct delayed_write *d = arg;
  usleep(d->delay);
  if (write(d->fd, "y", 1) != 1)
    return (void *)1;
  return NULL;
}

START_TEST(test_wait_wakes_on_data)
{
  int sv[2];
  double el, t0;
  pthread_t th;
  struct delayed_write d;
  tu_socketpair(sv);
  d.fd = sv[1];
  d.delay = 150000;
  t0 = eclsock_tm_now();               /* before the writer's clock starts */
  ck_assert_int_eq(pthread_create(&th, NULL, write_later, &d), 0);
  ck_assert_int_eq(timed_wait(sv[0], POLLIN, 10.0, &el), 0);
  el = eclsock_tm_now() - t0;
  pthread_join(th, NULL);
  ck_assert_msg(el >= 0.1 && el < 5.0, "woke after %f s", el);
}
END_TEST

START_TEST(test_poll_many)
{
  int a[2], b[2], nready = -1;
  struct pollfd p[2];
  double t0, el;
  tu_socketpair(a);
  tu_socketpair(b);
  ck_assert_int_eq(write(b[1], "z", 1), 1);
  p[0].fd = a[0]; p[0].events = POLLIN; p[0].revents = 0;
  p[1].fd = b[0]; p[1].events = POLLIN; p[1].revents = 0;
  ck_assert_int_eq(eclsock_tm_poll(p, 2, eclsock_tm_deadline(5.0), &nready), 0);
  ck_assert_int_eq(nready, 1);
  ck_assert_int_eq(p[0].revents, 0);
  ck_assert(p[1].revents & POLLIN);
  /* nothing ready: timeout with *nready = 0 */
  p[1].fd = a[1]; p[1].revents = 0;
  nready = -1;
  t0 = eclsock_tm_now();
  ck_assert_int_eq(eclsock_tm_poll(p, 2, eclsock_tm_deadline(0.1), &nready),
                   ECLSOCK_ETIMEOUT);
  el = eclsock_tm_now() - t0;
  ck_assert_int_eq(nready, 0);
  ck_assert_msg(el >= 0.09 && el < 2.0, "took %f s", el);
  /* no descriptors at all: a plain sleep until the deadline */
  t0 = eclsock_tm_now();
  ck_assert_int_eq(eclsock_tm_poll(NULL, 0, eclsock_tm_deadline(0.05), &nready),
                   ECLSOCK_ETIMEOUT);
  el = eclsock_tm_now() - t0;
  ck_assert_msg(el >= 0.045 && el < 2.0, "took %f s", el);
}
END_TEST

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

/* poll is never restarted after a signal: the wait must retry with the
   time that is left, neither ending early nor starting over. */
START_TEST(test_wait_survives_signals)
{
  int sv[2];
  double el;
  struct sigaction sa;
  struct itimerval it;
  tu_socketpair(sv);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = 0;                      /* no SA_RESTART */
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
  memset(&it, 0, sizeof it);
  it.it_interval.tv_usec = 20000;
  it.it_value.tv_usec = 20000;
  ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
  ck_assert_int_eq(timed_wait(sv[0], POLLIN, 0.5, &el), ECLSOCK_ETIMEOUT);
  memset(&it, 0, sizeof it);
  setitimer(ITIMER_REAL, &it, NULL);
  ck_assert_msg(alarms >= 5, "only %d signals arrived", (int)alarms);
  ck_assert_msg(el >= 0.49 && el < 3.0, "0.5 s wait under signals took %f s", el);
}
END_TEST

static Suite *
timeout_suite(void)
{
  Suite *s = suite_create("timeout");
  TCase *tc = tcase_create("clock");
  tcase_add_test(tc, test_now_monotonic);
  tcase_add_test(tc, test_deadline_math);
  suite_add_tcase(s, tc);
  tc = tcase_create("wait");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_wait_idle_times_out);
  tcase_add_test(tc, test_wait_zero_and_past_deadline);
  tcase_add_test(tc, test_wait_ready_returns_at_once);
  tcase_add_test(tc, test_wait_hangup_and_bad_fd);
  tcase_add_test(tc, test_wait_wakes_on_data);
  tcase_add_test(tc, test_poll_many);
  tcase_add_test(tc, test_wait_survives_signals);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(timeout_suite, 0)
