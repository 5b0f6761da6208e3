/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_options.c - Check suite "options" for src/options.c: the option
 * table is complete for CLISP's socket-options, its names are unique and
 * found by lookup, and every entry is a real option of a TCP socket whose
 * value has the size its kind says; option values set and read back
 * through eclsock_opt_set/eclsock_opt_get.
 */
#include "testutil.h"
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

START_TEST(test_table_names)
{
  size_t n = 0, i, j;
  const struct eclsock_option *t = eclsock_opt_table(&n);
  ck_assert_ptr_nonnull(t);
  ck_assert_uint_ge(n, 17);
  for (i = 0; i < n; i++) {
    const char *p;
    ck_assert_ptr_nonnull(t[i].name);
    ck_assert_int_gt((int)strlen(t[i].name), 0);
    /* a keyword's name: upper case, digits and hyphens */
    for (p = t[i].name; *p; p++)
      ck_assert_msg(isupper((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-',
                    "bad character in option name %s", t[i].name);
    for (j = i + 1; j < n; j++)
      ck_assert_msg(strcmp(t[i].name, t[j].name) != 0, "%s twice", t[i].name);
    /* lookup finds this very entry */
    ck_assert_ptr_eq(eclsock_opt_find(t[i].name), &t[i]);
  }
}
END_TEST

/* CLISP's socket-options keywords, with the kind CLISP gives them. */
static const struct { const char *name; enum eclsock_optkind kind; } clisp_options[] = {
  { "SO-DEBUG", OPT_BOOL }, { "SO-ACCEPTCONN", OPT_BOOL },
  { "SO-BROADCAST", OPT_BOOL }, { "SO-REUSEADDR", OPT_BOOL },
  { "SO-DONTROUTE", OPT_BOOL }, { "SO-KEEPALIVE", OPT_BOOL },
  { "SO-ERROR", OPT_BOOL }, { "SO-OOBINLINE", OPT_BOOL },
  { "SO-TYPE", OPT_BOOL }, { "SO-RCVBUF", OPT_INT }, { "SO-SNDBUF", OPT_INT },
  { "SO-RCVLOWAT", OPT_INT }, { "SO-SNDLOWAT", OPT_INT },
  { "SO-RCVTIMEO", OPT_TIMEVAL }, { "SO-SNDTIMEO", OPT_TIMEVAL },
  { "SO-LINGER", OPT_LINGER },
};

START_TEST(test_clisp_options_present)
{
  size_t i;
  for (i = 0; i < sizeof clisp_options / sizeof clisp_options[0]; i++) {
    const struct eclsock_option *o = eclsock_opt_find(clisp_options[i].name);
    ck_assert_msg(o != NULL, "%s missing", clisp_options[i].name);
    ck_assert_int_eq(o->level, SOL_SOCKET);
    ck_assert_msg(o->kind == clisp_options[i].kind, "%s has kind %d",
                  o->name, (int)o->kind);
  }
  ck_assert_int_eq(eclsock_opt_find("SO-KEEPALIVE")->optname, SO_KEEPALIVE);
  ck_assert_int_eq(eclsock_opt_find("SO-LINGER")->optname, SO_LINGER);
  /* Allegro's set-socket-options needs TCP_NODELAY */
  ck_assert_ptr_nonnull(eclsock_opt_find("TCP-NODELAY"));
  ck_assert_int_eq(eclsock_opt_find("TCP-NODELAY")->level, IPPROTO_TCP);
  ck_assert_int_eq(eclsock_opt_find("TCP-NODELAY")->optname, TCP_NODELAY);
}
END_TEST

START_TEST(test_unknown_names)
{
  ck_assert_ptr_null(eclsock_opt_find("SO-NO-SUCH-OPTION"));
  ck_assert_ptr_null(eclsock_opt_find("so-keepalive"));   /* exact names only */
  ck_assert_ptr_null(eclsock_opt_find("SO-KEEPALIVE "));
  ck_assert_ptr_null(eclsock_opt_find("SO-"));
  ck_assert_ptr_null(eclsock_opt_find(""));
}
END_TEST

static socklen_t
kind_size(enum eclsock_optkind k)
{
  switch (k) {
  case OPT_TIMEVAL: return sizeof(struct timeval);
  case OPT_LINGER: return sizeof(struct linger);
  default: return sizeof(int);
  }
}

/* Every entry reads back from a TCP socket with the size of its kind. */
START_TEST(test_getsockopt_every_entry)
{
  size_t n, i;
  const struct eclsock_option *t = eclsock_opt_table(&n);
  int sv[2];
  tu_tcp_pair(sv);
  for (i = 0; i < n; i++) {
    union { int i; struct timeval tv; struct linger l; char pad[64]; } v;
    socklen_t len = sizeof v;
    memset(&v, 0, sizeof v);
    ck_assert_msg(getsockopt(sv[0], t[i].level, t[i].optname, &v, &len) == 0,
                  "getsockopt %s: %s", t[i].name, strerror(errno));
    ck_assert_msg(len == kind_size(t[i].kind), "%s: %u octets, kind says %u",
                  t[i].name, (unsigned)len, (unsigned)kind_size(t[i].kind));
  }
  close(sv[0]);
  close(sv[1]);
}
END_TEST

/* Booleans that a program sets go both ways. */
START_TEST(test_set_booleans)
{
  static const char *names[] = { "SO-KEEPALIVE", "SO-REUSEADDR", "SO-OOBINLINE",
                                 "TCP-NODELAY" };
  size_t i;
  int sv[2];
  tu_tcp_pair(sv);
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    const struct eclsock_option *o = eclsock_opt_find(names[i]);
    int on, v;
    socklen_t len;
    ck_assert_ptr_nonnull(o);
    for (on = 1; on >= 0; on--) {
      ck_assert_int_eq(setsockopt(sv[0], o->level, o->optname, &on, sizeof on), 0);
      len = sizeof v;
      ck_assert_int_eq(getsockopt(sv[0], o->level, o->optname, &v, &len), 0);
      ck_assert_msg(!!v == on, "%s set to %d reads %d", names[i], on, v);
    }
  }
  close(sv[0]);
  close(sv[1]);
}
END_TEST

/* eclsock_opt_set and eclsock_opt_get carry each kind both ways. */
START_TEST(test_optval_round_trip)
{
  struct eclsock_optval v, r;
  int sv[2];
  tu_tcp_pair(sv);
  memset(&v, 0, sizeof v);
  v.secs = 1.5;
  ck_assert_int_eq(eclsock_opt_set(sv[0], SOL_SOCKET, SO_RCVTIMEO, OPT_TIMEVAL, &v), 0);
  ck_assert_int_eq(eclsock_opt_get(sv[0], SOL_SOCKET, SO_RCVTIMEO, OPT_TIMEVAL, &r), 0);
  ck_assert(r.secs > 1.49 && r.secs < 1.51);
  ck_assert_int_eq(r.whole, 0);
  v.secs = 3;
  ck_assert_int_eq(eclsock_opt_set(sv[0], SOL_SOCKET, SO_SNDTIMEO, OPT_TIMEVAL, &v), 0);
  ck_assert_int_eq(eclsock_opt_get(sv[0], SOL_SOCKET, SO_SNDTIMEO, OPT_TIMEVAL, &r), 0);
  ck_assert(r.secs == 3.0 && r.whole);
  memset(&v, 0, sizeof v);
  v.on = 1;
  v.i = 7;
  ck_assert_int_eq(eclsock_opt_set(sv[0], SOL_SOCKET, SO_LINGER, OPT_LINGER, &v), 0);
  ck_assert_int_eq(eclsock_opt_get(sv[0], SOL_SOCKET, SO_LINGER, OPT_LINGER, &r), 0);
  ck_assert(r.on && r.i == 7);
  v.on = 0;
  v.i = 65536;
  ck_assert_int_eq(eclsock_opt_set(sv[0], SOL_SOCKET, SO_SNDBUF, OPT_INT, &v), 0);
  ck_assert_int_eq(eclsock_opt_get(sv[0], SOL_SOCKET, SO_SNDBUF, OPT_INT, &r), 0);
  ck_assert_int_ge(r.i, 65536);       /* Linux doubles it */
  ck_assert_int_eq(eclsock_opt_get(-1, SOL_SOCKET, SO_SNDBUF, OPT_INT, &r), EBADF);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

static Suite *
options_suite(void)
{
  Suite *s = suite_create("options");
  TCase *tc = tcase_create("table");
  tcase_add_test(tc, test_table_names);
  tcase_add_test(tc, test_clisp_options_present);
  tcase_add_test(tc, test_unknown_names);
  suite_add_tcase(s, tc);
  tc = tcase_create("sockets");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_getsockopt_every_entry);
  tcase_add_test(tc, test_set_booleans);
  tcase_add_test(tc, test_optval_round_trip);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(options_suite, 0)
