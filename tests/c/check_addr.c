/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_addr.c - Check suite "addr" for src/addr.c: resolving numeric
 * addresses, localhost and an unknown name; the numeric text of IPv4,
 * IPv6 and Unix addresses; the local and peer addresses of a connection.
 */
#include "testutil.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

/* The numeric text and port of AI's first address. */
static void
first_numeric(struct addrinfo *ai, char *host, size_t hostlen, int *port)
{
  ck_assert_ptr_nonnull(ai);
  ck_assert_int_eq(eclsock_addr_numeric(ai->ai_addr, ai->ai_addrlen, host,
                                        hostlen, port), 0);
}

/* -- Resolving ------------------------------------------------------------ */

START_TEST(test_resolve_ipv4)
{
  struct addrinfo *ai = NULL;
  char host[NI_MAXHOST];
  int port = -1;
  ck_assert_int_eq(eclsock_addr_resolve("127.0.0.1", 80, 0, SOCK_STREAM, &ai), 0);
  ck_assert_int_eq(ai->ai_family, AF_INET);
  ck_assert_int_eq(ai->ai_socktype, SOCK_STREAM);
  first_numeric(ai, host, sizeof host, &port);
  ck_assert_str_eq(host, "127.0.0.1");
  ck_assert_int_eq(port, 80);
  ck_assert_ptr_null(ai->ai_next);      /* one socktype asked, one answer */
  eclsock_addr_free(ai);
}
END_TEST

START_TEST(test_resolve_ipv6)
{
  struct addrinfo *ai = NULL;
  char host[NI_MAXHOST];
  int port = -1;
  ck_assert_int_eq(eclsock_addr_resolve("::1", 65535, 0, SOCK_STREAM, &ai), 0);
  ck_assert_int_eq(ai->ai_family, AF_INET6);
  first_numeric(ai, host, sizeof host, &port);
  ck_assert_str_eq(host, "::1");
  ck_assert_int_eq(port, 65535);
  eclsock_addr_free(ai);
}
END_TEST

START_TEST(test_resolve_localhost)
{
  struct addrinfo *ai = NULL, *a;
  int n = 0;
  ck_assert_int_eq(eclsock_addr_resolve("localhost", 8080, 0, SOCK_STREAM, &ai), 0);
  for (a = ai; a; a = a->ai_next, n++) {
    char host[NI_MAXHOST];
    int port = -1;
    ck_assert_int_eq(a->ai_socktype, SOCK_STREAM);
    ck_assert_int_eq(eclsock_addr_numeric(a->ai_addr, a->ai_addrlen, host,
                                          sizeof host, &port), 0);
    ck_assert_int_eq(port, 8080);
    ck_assert_msg(!strncmp(host, "127.", 4) || !strcmp(host, "::1"),
                  "localhost resolved to %s", host);
  }
  ck_assert_int_ge(n, 1);
  eclsock_addr_free(ai);
}
END_TEST

START_TEST(test_resolve_passive_and_ports)
{
  struct addrinfo *ai = NULL, *a;
  char host[NI_MAXHOST];
  int port;
  /* NULL host, passive: the wildcard address */
  ck_assert_int_eq(eclsock_addr_resolve(NULL, 4321, 1, SOCK_STREAM, &ai), 0);
  for (a = ai; a; a = a->ai_next) {
    ck_assert_int_eq(eclsock_addr_numeric(a->ai_addr, a->ai_addrlen, host,
                                          sizeof host, &port), 0);
    ck_assert_int_eq(port, 4321);
    ck_assert_msg(!strcmp(host, "0.0.0.0") || !strcmp(host, "::"),
                  "wildcard is %s", host);
  }
  eclsock_addr_free(ai);
  /* port 0 (the kernel picks) survives resolution */
  ai = NULL;
  ck_assert_int_eq(eclsock_addr_resolve("127.0.0.1", 0, 1, SOCK_STREAM, &ai), 0);
  first_numeric(ai, host, sizeof host, &port);
  ck_assert_int_eq(port, 0);
  eclsock_addr_free(ai);
  /* datagram sockets get datagram answers */
  ai = NULL;
  ck_assert_int_eq(eclsock_addr_resolve("127.0.0.1", 53, 0, SOCK_DGRAM, &ai), 0);
  ck_assert_int_eq(ai->ai_socktype, SOCK_DGRAM);
  eclsock_addr_free(ai);
  eclsock_addr_free(NULL);              /* allowed, does nothing */
}
END_TEST

START_TEST(test_resolve_unknown_host)
{
  struct addrinfo *ai = NULL;
  int r = eclsock_addr_resolve("no-such-host.invalid", 80, 0, SOCK_STREAM, &ai);
  ck_assert_msg(ECLSOCK_IS_EAI(r), "unknown host gave code %d (%s)", r,
                eclsock_err_name(r));
  ck_assert_msg(r == ECLSOCK_EAI(EAI_NONAME) || r == ECLSOCK_EAI(EAI_AGAIN)
                || r == ECLSOCK_EAI(EAI_FAIL) || r == ECLSOCK_EAI(EAI_NODATA),
                "unknown host gave %s", eclsock_err_name(r));
  ck_assert_ptr_null(ai);
  ck_assert_str_ne(eclsock_err_name(r), "UNKNOWN");
}
END_TEST

/* -- Numeric text ----------------------------------------------------------- */

START_TEST(test_numeric_v4_v6)
{
  struct sockaddr_in s4;
  struct sockaddr_in6 s6;
  char host[NI_MAXHOST];
  int port = -1;
  memset(&s4, 0, sizeof s4);
  s4.sin_family = AF_INET;
  s4.sin_port = htons(8080);
  ck_assert_int_eq(inet_pton(AF_INET, "10.1.2.3", &s4.sin_addr), 1);
  ck_assert_int_eq(eclsock_addr_numeric((struct sockaddr *)&s4, sizeof s4, host,
                                        sizeof host, &port), 0);
  ck_assert_str_eq(host, "10.1.2.3");
  ck_assert_int_eq(port, 8080);
  memset(&s6, 0, sizeof s6);
  s6.sin6_family = AF_INET6;
  s6.sin6_port = htons(443);
  ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr), 1);
  ck_assert_int_eq(eclsock_addr_numeric((struct sockaddr *)&s6, sizeof s6, host,
                                        sizeof host, &port), 0);
  ck_assert_str_eq(host, "2001:db8::1");
  ck_assert_int_eq(port, 443);
  ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:192.0.2.7", &s6.sin6_addr), 1);
  ck_assert_int_eq(eclsock_addr_numeric((struct sockaddr *)&s6, sizeof s6, host,
                                        sizeof host, &port), 0);
  ck_assert_str_eq(host, "::ffff:192.0.2.7");
  /* a link-local address keeps its scope ("%lo" or "%1", by the system) */
  ck_assert_int_eq(inet_pton(AF_INET6, "fe80::1", &s6.sin6_addr), 1);
  s6.sin6_scope_id = 1;
  s6.sin6_port = htons(7);
  ck_assert_int_eq(eclsock_addr_numeric((struct sockaddr *)&s6, sizeof s6, host,
                                        sizeof host, &port), 0);
  ck_assert_msg(strncmp(host, "fe80::1%", 8) == 0 && host[8], "scoped: %s", host);
  ck_assert_int_eq(port, 7);
  /* no room for the text: the resolver's overflow code */
  ck_assert_int_eq(eclsock_addr_numeric((struct sockaddr *)&s4, sizeof s4, host,
                                        4, &port), ECLSOCK_EAI(EAI_OVERFLOW));
}
END_TEST

START_TEST(test_numeric_unix)
{
  struct sockaddr_un su;
  char host[NI_MAXHOST], small[5];
  int port = -1;
  socklen_t len;
  memset(&su, 0, sizeof su);
  su.sun_family = AF_UNIX;
  strcpy(su.sun_path, "/tmp/x.sock");
  len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(su.sun_path) + 1);
  ck_assert_int_eq(eclsock_addr_numeric((struct sockaddr *)&su, len, host,
                                        sizeof host, &port), 0);
  ck_assert_str_eq(host, "/tmp/x.sock");
  ck_assert_int_eq(port, 0);
  /* the kernel may give a length without the NUL */
  ck_assert_int_eq(eclsock_addr_numeric((struct sockaddr *)&su, len - 1, host,
                                        sizeof host, &port), 0);
  ck_assert_str_eq(host, "/tmp/x.sock");
  /* truncated to the buffer, still terminated */
  ck_assert_int_eq(eclsock_addr_numeric((struct sockaddr *)&su, len, small,
                                        sizeof small, &port), 0);
  ck_assert_str_eq(small, "/tmp");
  /* unnamed (a socketpair end): empty text */
  port = -1;
  ck_assert_int_eq(eclsock_addr_numeric((struct sockaddr *)&su, sizeof(sa_family_t),
                                        host, sizeof host, &port), 0);
  ck_assert_str_eq(host, "");
  ck_assert_int_eq(port, 0);
}
END_TEST

/* -- Local and peer ---------------------------------------------------------- */

static void
text_of(const eclsock_addr *a, char *host, int *port)
{
  ck_assert_int_eq(eclsock_addr_numeric((const struct sockaddr *)&a->ss, a->len,
                                        host, NI_MAXHOST, port), 0);
}

START_TEST(test_local_peer_tcp)
{
  int lport, l = tu_listener(AF_INET, &lport), c, s;
  eclsock_addr cl, cp, sl, sp;
  char h1[NI_MAXHOST], h2[NI_MAXHOST];
  int p1, p2;
  ck_assert_int_ge(l, 0);
  c = tu_connect(AF_INET, lport);
  s = accept(l, NULL, NULL);
  ck_assert_int_ge(s, 0);
  ck_assert_int_eq(eclsock_addr_local(l, &cl), 0);
  text_of(&cl, h1, &p1);
  ck_assert_str_eq(h1, "127.0.0.1");
  ck_assert_int_eq(p1, lport);
  ck_assert_int_eq(eclsock_addr_local(c, &cl), 0);
  ck_assert_int_eq(eclsock_addr_peer(c, &cp), 0);
  ck_assert_int_eq(eclsock_addr_local(s, &sl), 0);
  ck_assert_int_eq(eclsock_addr_peer(s, &sp), 0);
  ck_assert_int_eq(cl.ss.ss_family, AF_INET);
  /* client's peer = server's local = the listener's port */
  text_of(&cp, h1, &p1);
  text_of(&sl, h2, &p2);
  ck_assert_str_eq(h1, h2);
  ck_assert_int_eq(p1, lport);
  ck_assert_int_eq(p2, lport);
  /* client's local = server's peer, an ephemeral port */
  text_of(&cl, h1, &p1);
  text_of(&sp, h2, &p2);
  ck_assert_str_eq(h1, "127.0.0.1");
  ck_assert_str_eq(h1, h2);
  ck_assert_int_eq(p1, p2);
  ck_assert_int_ne(p1, lport);
  /* the listener has no peer */
  ck_assert_int_eq(eclsock_addr_peer(l, &cp), ENOTCONN);
  close(c);
  close(s);
  close(l);
  ck_assert_int_eq(eclsock_addr_local(l, &cl), EBADF);
  ck_assert_int_eq(eclsock_addr_peer(l, &cl), EBADF);
}
END_TEST

START_TEST(test_local_peer_v6_and_unix)
{
  int lport, l = tu_listener(AF_INET6, &lport), c, sv[2], port;
  eclsock_addr a;
  char host[NI_MAXHOST];
  if (l >= 0) {
    c = tu_connect(AF_INET6, lport);
    ck_assert_int_eq(eclsock_addr_peer(c, &a), 0);
    ck_assert_int_eq(a.ss.ss_family, AF_INET6);
    text_of(&a, host, &port);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, lport);
    close(c);
    close(l);
  }
  tu_socketpair(sv);
  ck_assert_int_eq(eclsock_addr_local(sv[0], &a), 0);
  ck_assert_int_eq(a.ss.ss_family, AF_UNIX);
  text_of(&a, host, &port);
  ck_assert_str_eq(host, "");
  ck_assert_int_eq(port, 0);
  ck_assert_int_eq(eclsock_addr_peer(sv[0], &a), 0);
  ck_assert_int_eq(a.ss.ss_family, AF_UNIX);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

/* A failing getsockname/getpeername leaves the unnamed address, not what
   *A held before (bsd.c read its family after a failure). */
START_TEST(test_local_peer_failure)
{
  eclsock_addr a;
  int fd;
  memset(&a, 0xff, sizeof a);
  a.ss.ss_family = AF_INET6;
  ck_assert_int_eq(eclsock_addr_local(-1, &a), EBADF);
  ck_assert_int_eq(a.ss.ss_family, AF_UNSPEC);
  ck_assert_int_eq((int)a.len, 0);
  fd = open("/dev/null", O_RDONLY);
  ck_assert_int_ge(fd, 0);
  memset(&a, 0xff, sizeof a);
  a.ss.ss_family = AF_INET;
  ck_assert_int_eq(eclsock_addr_peer(fd, &a), ENOTSOCK);
  ck_assert_int_eq(a.ss.ss_family, AF_UNSPEC);
  ck_assert_int_eq((int)a.len, 0);
  close(fd);
}
END_TEST

START_TEST(test_name_of_loopback)
{
  struct sockaddr_in s4;
  char host[NI_MAXHOST];
  memset(&s4, 0, sizeof s4);
  s4.sin_family = AF_INET;
  s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* every resolver configuration here names 127.0.0.1 (/etc/hosts) */
  ck_assert_int_eq(eclsock_addr_name((struct sockaddr *)&s4, sizeof s4, host,
                                     sizeof host), 0);
  ck_assert_int_gt((int)strlen(host), 0);
  ck_assert_msg(strcmp(host, "127.0.0.1") != 0, "a name, not the number");
}
END_TEST

static Suite *
addr_suite(void)
{
  Suite *s = suite_create("addr");
  TCase *tc = tcase_create("resolve");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_resolve_ipv4);
  tcase_add_test(tc, test_resolve_ipv6);
  tcase_add_test(tc, test_resolve_localhost);
  tcase_add_test(tc, test_resolve_passive_and_ports);
  tcase_add_test(tc, test_resolve_unknown_host);
  tcase_add_test(tc, test_name_of_loopback);
  suite_add_tcase(s, tc);
  tc = tcase_create("numeric");
  tcase_add_test(tc, test_numeric_v4_v6);
  tcase_add_test(tc, test_numeric_unix);
  suite_add_tcase(s, tc);
  tc = tcase_create("local-peer");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_local_peer_tcp);
  tcase_add_test(tc, test_local_peer_v6_and_unix);
  tcase_add_test(tc, test_local_peer_failure);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(addr_suite, 0)
