/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * accept-host.c - a C program whose own accept() loop hands every
 * connection to a Lisp handler, each in a host thread of its own.
 *
 *   cc accept-host.c $(pkg-config --cflags --libs ecl-sock) -o accept-host
 *   ./accept-host [handler.lisp [clients]]
 *
 * To stay self-contained it also plays the clients: it starts CLIENTS
 * (default 4) plain C threads that connect over loopback, all at once, and
 * talk to HANDLE-CLIENT from handler.lisp.  The first client sends "boom",
 * which makes the Lisp handler signal an error: the host reports it and
 * goes on serving the others.  Exit status 0 when every client got the
 * answers it expected and exactly that one error came back to C.
 */
#include <ecl-sock.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef EXAMPLE_DIR
#define EXAMPLE_DIR "."
#endif
#define MAX_CLIENTS 64

static struct sockaddr_in server_addr;

/* ---- The host side: one thread per accepted connection ---------------- */

struct connection {
  pthread_t thread;
  int fd;
  int failed;                   /* the Lisp handler reported an error */
};

static void *
serve(void *arg)
{
  struct connection *c = arg;
  cl_object stream, lines;
  if (ecl_sock_thread_attach() != ECL_SOCK_OK) {
    fprintf(stderr, "accept-host: attach: %s\n", ecl_sock_error_message());
    close(c->fd);
    c->failed = 1;
    return NULL;
  }
  /* From here on the stream owns the descriptor. */
  if (ecl_sock_wrap_fd(c->fd, "character", ":utf-8", 0, &stream) != ECL_SOCK_OK) {
    fprintf(stderr, "accept-host: wrap: %s\n", ecl_sock_error_message());
    close(c->fd);
    c->failed = 1;
  } else {
    if (ecl_sock_call("handle-client", 1, &stream, &lines) == ECL_SOCK_OK) {
      printf("accept-host: connection on fd %d done, %ld lines\n", c->fd,
             ECL_FIXNUMP(lines) ? (long)ecl_fixnum(lines) : -1L);
    } else {
      printf("accept-host: the Lisp handler failed on fd %d: %s\n", c->fd,
             ecl_sock_error_message());
      c->failed = 1;
    }
    ecl_sock_call("close", 1, &stream, NULL);   /* closes the descriptor */
  }
  ecl_sock_thread_detach();
  return NULL;
}

/* ---- The clients: plain C, no Lisp ------------------------------------- */

struct client {
  pthread_t thread;
  int index, ok;
};

/* Read one line (without the newline) into BUF; 0 on EOF or error. */
static int
read_line(int fd, char *buf, size_t len)
{
  size_t n = 0;
  while (n + 1 < len) {
    char ch;
    ssize_t r = read(fd, &ch, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return 0;
    if (ch == '\n')
      break;
    buf[n++] = ch;
  }
  buf[n] = 0;
  return 1;
}

static int
send_text(int fd, const char *text)
{
  size_t n = strlen(text);
  while (n) {
    ssize_t w = send(fd, text, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return 0;
    text += w;
    n -= (size_t)w;
  }
  return 1;
}

static void *
client_main(void *arg)
{
  struct client *cl = arg;
  char line[256], expect[256], word[64];
  int fd = socket(AF_INET, SOCK_STREAM, 0), i;
  struct timeval tv = { 20, 0 };      /* never hang on a broken server */
  if (fd < 0 || connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0) {
    perror("accept-host: client connect");
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (!read_line(fd, line, sizeof line) || strcmp(line, "hello 127.0.0.1, this is Lisp")) {
    fprintf(stderr, "accept-host: client %d: bad greeting\n", cl->index);
    close(fd);
    return NULL;
  }
  if (cl->index == 0) {
    /* This client makes the handler fail; it just sees the end. */
    send_text(fd, "boom\n");
    cl->ok = !read_line(fd, line, sizeof line);
    close(fd);
    return NULL;
  }
  for (i = 1; i <= 3; i++) {
    snprintf(word, sizeof word, "client %d says hello #%d\n", cl->index, i);
    snprintf(expect, sizeof expect, "%d: CLIENT %d SAYS HELLO #%d", i, cl->index, i);
    if (!send_text(fd, word) || !read_line(fd, line, sizeof line) || strcmp(line, expect)) {
      fprintf(stderr, "accept-host: client %d: wanted \"%s\"\n", cl->index, expect);
      close(fd);
      return NULL;
    }
  }
  cl->ok = send_text(fd, "quit\n") && read_line(fd, line, sizeof line) && !strcmp(line, "bye");
  close(fd);
  return NULL;
}

int
main(int argc, char **argv)
{
  const char *handler = argc > 1 ? argv[1] : EXAMPLE_DIR "/handler.lisp";
  int nclients = argc > 2 ? atoi(argv[2]) : 4;
  struct connection conns[MAX_CLIENTS];
  struct client clients[MAX_CLIENTS];
  socklen_t len = sizeof server_addr;
  int lfd, i, good = 0, errors = 0;

  if (nclients < 1 || nclients > MAX_CLIENTS) {
    fprintf(stderr, "usage: %s [handler.lisp [clients 1..%d]]\n", argv[0], MAX_CLIENTS);
    return 2;
  }
  cl_boot(argc, argv);
  if (ecl_sock_init() != ECL_SOCK_OK || ecl_sock_load(handler) != ECL_SOCK_OK) {
    fprintf(stderr, "accept-host: %s\n", ecl_sock_error_message());
    cl_shutdown();
    return 1;
  }

  lfd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&server_addr, 0, sizeof server_addr);
  server_addr.sin_family = AF_INET;
  server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0
      || listen(lfd, MAX_CLIENTS) < 0
      || getsockname(lfd, (struct sockaddr *)&server_addr, &len) < 0) {
    perror("accept-host: listen");
    return 1;
  }
  printf("accept-host: listening on 127.0.0.1:%d\n", ntohs(server_addr.sin_port));

  for (i = 0; i < nclients; i++) {
    clients[i].index = i;
    clients[i].ok = 0;
    pthread_create(&clients[i].thread, NULL, client_main, &clients[i]);
  }
  /* The host's own accept loop: Lisp never sees the listening socket. */
  for (i = 0; i < nclients; i++) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR) {
        i--;
        continue;
      }
      perror("accept-host: accept");
      return 1;
    }
    conns[i].fd = fd;
    conns[i].failed = 0;
    pthread_create(&conns[i].thread, NULL, serve, &conns[i]);
  }
  for (i = 0; i < nclients; i++) {
    pthread_join(conns[i].thread, NULL);
    errors += conns[i].failed;
  }
  for (i = 0; i < nclients; i++) {
    pthread_join(clients[i].thread, NULL);
    good += clients[i].ok;
  }
  close(lfd);
  printf("accept-host: %d of %d clients served as expected, %d handler error(s) reported\n",
         good, nclients, errors);
  cl_shutdown();
  return good == nclients && errors == 1 ? 0 : 1;
}
