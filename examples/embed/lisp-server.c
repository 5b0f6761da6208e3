/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * lisp-server.c - a C program that starts a server written in Lisp with
 * the CLISP-style SOCKET API (server.lisp), served from a Lisp thread,
 * and talks to it from C over loopback.
 *
 *   cc lisp-server.c $(pkg-config --cflags --libs ecl-sock) -o lisp-server
 *   ./lisp-server [server.lisp]
 *
 * The C side stores a value over one connection, reads it back over a
 * second one, then stops the server and waits for its thread.  Exit
 * status 0 when every answer was the expected one.
 */
#include <ecl-sock.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef EXAMPLE_DIR
#define EXAMPLE_DIR "."
#endif

static int
connect_to(int port)
{
  struct sockaddr_in a;
  struct timeval tv = { 20, 0 };      /* never hang on a broken server */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("lisp-server: connect");
    if (fd >= 0)
      close(fd);
    return -1;
  }
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/* Send COMMAND (a line) and compare the one-line answer with EXPECT. */
static int
ask(int fd, const char *command, const char *expect)
{
  char line[256];
  size_t n = strlen(command), got = 0;
  const char *p = command;
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      perror("lisp-server: send");
      return 0;
    }
    p += w;
    n -= (size_t)w;
  }
  while (got + 1 < sizeof line) {
    ssize_t r = read(fd, line + got, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    if (line[got] == '\n')
      break;
    got++;
  }
  line[got] = 0;
  printf("lisp-server: %.*s -> %s\n", (int)strcspn(command, "\n"), command, line);
  if (strcmp(line, expect)) {
    fprintf(stderr, "lisp-server: wanted \"%s\"\n", expect);
    return 0;
  }
  return 1;
}

int
main(int argc, char **argv)
{
  const char *file = argc > 1 ? argv[1] : EXAMPLE_DIR "/server.lisp";
  cl_object port, done;
  int fd, ok = 1;

  cl_boot(argc, argv);
  if (ecl_sock_init() != ECL_SOCK_OK || ecl_sock_load(file) != ECL_SOCK_OK
      || ecl_sock_call("start-server", 0, NULL, &port) != ECL_SOCK_OK) {
    fprintf(stderr, "lisp-server: %s\n", ecl_sock_error_message());
    cl_shutdown();
    return 1;
  }
  printf("lisp-server: the Lisp server listens on 127.0.0.1:%ld\n", (long)ecl_fixnum(port));

  if ((fd = connect_to((int)ecl_fixnum(port))) < 0)
    return 1;
  ok &= ask(fd, "SET greeting hello from C\n", "OK");
  ok &= ask(fd, "GET greeting\n", "hello from C");
  ok &= ask(fd, "FROB\n", "ERROR unknown command FROB");
  ok &= ask(fd, "QUIT\n", "BYE");
  close(fd);

  if ((fd = connect_to((int)ecl_fixnum(port))) < 0)
    return 1;
  ok &= ask(fd, "GET greeting\n", "hello from C");    /* kept across connections */
  ok &= ask(fd, "GET missing\n", "NONE");
  ok &= ask(fd, "STOP\n", "STOPPED");
  close(fd);

  if (ecl_sock_call("wait-server", 0, NULL, &done) != ECL_SOCK_OK || Null(done)) {
    fprintf(stderr, "lisp-server: wait-server: %s\n", ecl_sock_error_message());
    ok = 0;
  }
  /* The server closed its socket: nobody listens any more. */
  if ((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)ecl_fixnum(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
      fprintf(stderr, "lisp-server: the server still accepts connections\n");
      ok = 0;
    }
    close(fd);
  }
  printf("lisp-server: %s\n", ok ? "all answers as expected" : "FAILED");
  cl_shutdown();
  return ok ? 0 : 1;
}
