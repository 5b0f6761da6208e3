/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * tls.c - the transport under the socket stream's buffers: the plain
 * descriptor or a TLS session (OpenSSL).
 *
 * Owns: the eclsock_tp_* calls the stream's buffers make (with no session
 * they are the os.c calls), OpenSSL contexts (SSL_CTX) and sessions (SSL),
 * the handshake, close_notify, certificate checks and the peer's
 * certificate as Lisp data, and the live counters of sessions and
 * contexts (for leak tests).
 * A session's I/O goes through our own BIO, whose reads and writes are
 * os.c's non-waiting calls (MSG_NOSIGNAL: a vanished peer is EPIPE, never
 * SIGPIPE), so OpenSSL never blocks and never sees EINTR; when it wants to
 * read or write, the wait is the module's one wait (eclsock_tm_wait),
 * bounded by the socket's SO_RCVTIMEO/SO_SNDTIMEO or by the handshake's
 * deadline, and Lisp interrupts run there.  Each OpenSSL call runs with
 * interrupts deferred and under the session's lock (a reader thread and a
 * writer thread may share a stream; OpenSSL wants one caller at a time).
 * Must not: signal (error codes go up, with a message kept in the
 * session), make system calls itself, or buffer plaintext (the stream's
 * buffers are the only ones).
 */
#include "internal.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long live_sessions, live_contexts;

long eclsock_tls_live_sessions(void)
{ return __atomic_load_n(&live_sessions, __ATOMIC_RELAXED); }
long eclsock_tls_live_contexts(void)
{ return __atomic_load_n(&live_contexts, __ATOMIC_RELAXED); }

/* How long close_notify on socket-stream-shutdown may wait for room. */
#define SHUTDOWN_SECONDS 5.0

#ifdef HAVE_OPENSSL
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>

struct eclsock_tls {
  SSL *ssl;
  int fd;
  int io_err;                   /* errno of the BIO's last failed call */
  int eof;                      /* input ended (close_notify or truncation) */
  int truncated;                /* 1 truncated, 2 already reported */
  int failed;                   /* fatal error: no close_notify */
  int wpending;                 /* a write returned WANT_*: bytes committed */
  long verify;                  /* verify result when verification failed */
  pthread_mutex_t lock;
  char msg[256];
};

int eclsock_tls_available(void) { return 1; }

/* -- The BIO: OpenSSL's I/O through os.c, never waiting -------------------- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int
bio_write(BIO *bio, const char *p, int n)
{
  eclsock_tls *t = BIO_get_data(bio);
  size_t sent = 0;
  int code;
  BIO_clear_retry_flags(bio);
  code = eclsock_os_send_nowait(t->fd, (const unsigned char *)p, (size_t)n, &sent);
  if (sent)
    return (int)sent;
  if (code) {
    t->io_err = code;
    return -1;
  }
  BIO_set_retry_write(bio);
  return -1;
}

static int
bio_read(BIO *bio, char *p, int n)
{
  eclsock_tls *t = BIO_get_data(bio);
  size_t got = 0;
  int code;
  BIO_clear_retry_flags(bio);
  code = eclsock_os_recv_nowait(t->fd, (unsigned char *)p, (size_t)n, &got);
  if (code == EAGAIN || code == EWOULDBLOCK) {
    BIO_set_retry_read(bio);
    return -1;
  }
  if (code) {
    t->io_err = code;
    return -1;
  }
  return (int)got;
}

static long
bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
  (void)bio; (void)num; (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
bio_create(BIO *bio)
{
  BIO_set_init(bio, 1);
  return 1;
}

static void
make_bio_method(void)
{
  /* No atexit cleanup: ECL's exit runs finalizers (of contexts, of
     streams) after atexit handlers registered later than its own, and
     they must find the library still there. */
  OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_LOAD_SSL_STRINGS
                   | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                               "ecl-sock socket");
  if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read)
      && BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
    bio_method = m;
}

/* -- Errors ------------------------------------------------------------------ */

/* Keep OpenSSL's reason for the last error in T->msg (PREFIX first). */
static void
keep_message(eclsock_tls *t, const char *prefix)
{
  unsigned long e = ERR_peek_last_error();
  char buf[200];
  if (e) {
    const char *r = ERR_reason_error_string(e);
    if (r)
      snprintf(buf, sizeof buf, "%s", r);
    else
      ERR_error_string_n(e, buf, sizeof buf);
  } else {
    snprintf(buf, sizeof buf, "unknown TLS error");
  }
  snprintf(t->msg, sizeof t->msg, "%s%s", prefix, buf);
}

/* The error code for a failed call whose SSL_get_error was ERR, in the
   handshake (HS) or after it.  Called under the lock.  Returns 1 for an
   end of file without close_notify after the handshake (truncation). */
static int
classify(eclsock_tls *t, int err, int hs, int *truncation)
{
  unsigned long e = ERR_peek_last_error();
  int reason = e ? ERR_GET_REASON(e) : 0;
  *truncation = 0;
  if (t->io_err && (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL)) {
    t->failed = 1;
    return t->io_err;
  }
  t->failed = 1;
  if ((err == SSL_ERROR_SYSCALL && !e) || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    if (hs) {
      snprintf(t->msg, sizeof t->msg,
               "the peer closed the connection during the TLS handshake");
      return ECLSOCK_ETLSHANDSHAKE;
    }
    *truncation = 1;
    return 0;
  }
  if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    long v = SSL_get_verify_result(t->ssl);
    t->verify = v;
    snprintf(t->msg, sizeof t->msg, "certificate verify failed: %s",
             X509_verify_cert_error_string(v));
    return ECLSOCK_ETLSVERIFY;
  }
  keep_message(t, hs ? "TLS handshake failed: " : "TLS error: ");
  return hs ? ECLSOCK_ETLSHANDSHAKE : ECLSOCK_ETLS;
}

/* -- Calling OpenSSL: interrupts deferred, one caller at a time ------------- */

#define CALL_BEGIN(env, t)                      \
  do {                                          \
    ecl_disable_interrupts_env(env);            \
    pthread_mutex_lock(&(t)->lock);             \
    ERR_clear_error();                          \
    (t)->io_err = 0;                            \
  } while (0)
#define CALL_END(env, t)                        \
  do {                                          \
    pthread_mutex_unlock(&(t)->lock);           \
    ecl_enable_interrupts_env(env);             \
  } while (0)

/* Wait for what OpenSSL wants (ERR is WANT_READ or WANT_WRITE).  *DL is
   computed from the socket's OPT timeout on the first wait of a call. */
static int
wait_for(eclsock_tls *t, int err, eclsock_deadline *dl, int *have_dl, int opt)
{
  if (!*have_dl) {
    *dl = eclsock_os_sock_deadline(t->fd, opt);
    *have_dl = 1;
  }
  return eclsock_tm_wait(t->fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, *dl);
}

/* -- The transport ------------------------------------------------------------ */

int
eclsock_tp_recv(eclsock_tls *t, int fd, unsigned char *p, size_t n, int flags,
                size_t *got)
{
  const cl_env_ptr env = ecl_process_env();
  eclsock_deadline dl = ECLSOCK_NO_DEADLINE;
  int have_dl = 0;
  if (!t)
    return eclsock_os_recv(fd, p, n, flags, got);
  *got = 0;
  if (t->eof)
    return 0;
  for (;;) {
    size_t k = 0;
    int r, err = SSL_ERROR_NONE, code = 0, trunc = 0;
    CALL_BEGIN(env, t);
    r = SSL_read_ex(t->ssl, p, n, &k);
    if (!r) {
      err = SSL_get_error(t->ssl, 0);
      if (err == SSL_ERROR_ZERO_RETURN)
        t->eof = 1;
      else if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        code = classify(t, err, !SSL_is_init_finished(t->ssl), &trunc);
        if (trunc)
          t->eof = t->truncated = 1;
      }
    }
    CALL_END(env, t);
    if (r) {
      *got = k;
      return 0;
    }
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (flags & MSG_DONTWAIT)
        return EAGAIN;
      if ((code = wait_for(t, err, &dl, &have_dl, SO_RCVTIMEO)))
        return code;
      continue;
    }
    return code;                /* 0 at end of file */
  }
}

int
eclsock_tp_send_all(eclsock_tls *t, int fd, const unsigned char *p, size_t n,
                    size_t *sent)
{
  const cl_env_ptr env = ecl_process_env();
  eclsock_deadline dl = ECLSOCK_NO_DEADLINE;
  int have_dl = 0, code = 0;
  size_t done = 0;
  if (!t)
    return eclsock_os_send_all(fd, p, n, sent);
  while (done < n) {
    size_t k = 0;
    int r, err = SSL_ERROR_NONE, trunc;
    CALL_BEGIN(env, t);
    r = SSL_write_ex(t->ssl, p + done, n - done, &k);
    if (!r) {
      err = SSL_get_error(t->ssl, 0);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        t->wpending = 1;
      else
        code = classify(t, err, !SSL_is_init_finished(t->ssl), &trunc);
    } else {
      t->wpending = 0;
    }
    CALL_END(env, t);
    if (r) {
      done += k;
      continue;
    }
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if ((code = wait_for(t, err, &dl, &have_dl, SO_SNDTIMEO)))
        break;
      continue;
    }
    if (!code)
      code = EPIPE;
    break;
  }
  if (sent)
    *sent = done;
  return code;
}

int
eclsock_tp_send_nowait(eclsock_tls *t, int fd, const unsigned char *p, size_t n,
                       size_t *sent)
{
  if (!t)
    return eclsock_os_send_nowait(fd, p, n, sent);
  *sent = 0;
  while (*sent < n) {
    size_t k = 0;
    int r, err, code = 0, trunc;
    pthread_mutex_lock(&t->lock);
    ERR_clear_error();
    t->io_err = 0;
    r = SSL_write_ex(t->ssl, p + *sent, n - *sent, &k);
    if (r) {
      t->wpending = 0;
    } else {
      err = SSL_get_error(t->ssl, 0);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        t->wpending = 1;
      else
        code = classify(t, err, !SSL_is_init_finished(t->ssl), &trunc);
    }
    pthread_mutex_unlock(&t->lock);
    if (!r)
      return code;              /* 0: the socket takes no more now */
    *sent += k;
  }
  return 0;
}

int
eclsock_tp_pending(eclsock_tls *t)
{
  const cl_env_ptr env = ecl_process_env();
  int n;
  if (!t)
    return 0;
  ecl_disable_interrupts_env(env);
  pthread_mutex_lock(&t->lock);
  n = SSL_pending(t->ssl) > 0;
  pthread_mutex_unlock(&t->lock);
  ecl_enable_interrupts_env(env);
  return n;
}

int
eclsock_tp_write_pending(eclsock_tls *t)
{
  return t && t->wpending;
}

/* Send close_notify, waiting at most until DL for room (DL 0: not at all). */
static void
send_close_notify(eclsock_tls *t, eclsock_deadline dl, int defer)
{
  const cl_env_ptr env = ecl_process_env();
  if (t->failed || !SSL_is_init_finished(t->ssl))
    return;
  for (;;) {
    int r, err;
    if (defer)
      CALL_BEGIN(env, t);
    else {
      pthread_mutex_lock(&t->lock);
      ERR_clear_error();
    }
    r = SSL_shutdown(t->ssl);
    err = r < 0 ? SSL_get_error(t->ssl, r) : SSL_ERROR_NONE;
    if (defer)
      CALL_END(env, t);
    else
      pthread_mutex_unlock(&t->lock);
    if (r >= 0 || !defer || (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ))
      return;
    if (eclsock_tm_wait(t->fd, err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, dl))
      return;
  }
}

int
eclsock_tp_shutdown(eclsock_tls *t, int fd, int how)
{
  if (t && how != SHUT_RD)
    send_close_notify(t, eclsock_tm_deadline(SHUTDOWN_SECONDS), 1);
  return eclsock_os_shutdown(fd, how);
}

/* Read and drop what has arrived and was never read (TLS 1.3 session
   tickets a client never reads, a peer's close_notify), without waiting
   and at most DRAIN_MAX octets: closing a socket with unread input makes
   the kernel reset the connection, and a reset can discard the end of
   what we sent that the peer has not read yet. */
#define DRAIN_MAX 65536
static void
drain_input(int fd)
{
  unsigned char buf[4096];
  size_t total = 0, got;
  while (total < DRAIN_MAX && eclsock_os_recv_nowait(fd, buf, sizeof buf, &got) == 0
         && got > 0)
    total += got;
}

void
eclsock_tp_close(eclsock_tls *t, int notify)
{
  if (!t)
    return;
  if (notify) {
    send_close_notify(t, 0.0, 0);   /* one try, never a wait */
    drain_input(t->fd);
  }
  SSL_free(t->ssl);
  pthread_mutex_destroy(&t->lock);
  free(t);
  __atomic_sub_fetch(&live_sessions, 1, __ATOMIC_RELAXED);
}

int
eclsock_tp_take_truncation(eclsock_tls *t)
{
  if (t && t->truncated == 1) {
    t->truncated = 2;
    return 1;
  }
  return 0;
}

const char *
eclsock_tls_message(eclsock_tls *t)
{
  return (t && t->msg[0]) ? t->msg : NULL;
}

long
eclsock_tls_verify_result(eclsock_tls *t)
{
  return t ? (t->verify ? t->verify : SSL_get_verify_result(t->ssl)) : 0;
}

/* -- Contexts ------------------------------------------------------------------ */

static int
password_cb(char *buf, int size, int rwflag, void *userdata)
{
  const char *pw = userdata;
  size_t n;
  (void)rwflag;
  if (!pw)
    return 0;
  n = strlen(pw);
  if (n > (size_t)size)
    n = (size_t)size;
  memcpy(buf, pw, n);
  return (int)n;
}

static int
verify_mode(int verify, int server)
{
  switch (verify) {
  case 0: return SSL_VERIFY_NONE;
  case 1: return SSL_VERIFY_PEER;
  default: return SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
  }
}

static int
config_error(char *msg, size_t len, const char *what, const char *arg)
{
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  snprintf(msg, len, "%s%s%s%s%s", what, arg ? " " : "", arg ? arg : "",
           r ? ": " : "", r ? r : "");
  ERR_clear_error();
  return ECLSOCK_ETLSCONFIG;
}

int
eclsock_tls_ctx_new(const struct eclsock_tls_opts *o, void **out, char *msg,
                    size_t msglen)
{
  SSL_CTX *ctx;
  int code = 0;
  *out = NULL;
  pthread_once(&bio_once, make_bio_method);   /* first: OpenSSL's init */
  ERR_clear_error();
  ctx = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
  if (!ctx)
    return config_error(msg, msglen, "cannot make a TLS context", NULL);
  __atomic_add_fetch(&live_contexts, 1, __ATOMIC_RELAXED);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                   | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  /* TLS 1.2 is the floor unless the caller names an older method */
  if (!SSL_CTX_set_min_proto_version(ctx, o->min_version ? o->min_version
                                     : TLS1_2_VERSION)
      || (o->max_version && !SSL_CTX_set_max_proto_version(ctx, o->max_version)))
    code = config_error(msg, msglen, "unsupported TLS method", NULL);
  if (!code && o->password) {
    SSL_CTX_set_default_passwd_cb(ctx, password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)o->password);
  } else if (!code) {
    /* never prompt on the terminal for an encrypted key */
    SSL_CTX_set_default_passwd_cb(ctx, password_cb);
  }
  if (!code && o->certificate
      && SSL_CTX_use_certificate_chain_file(ctx, o->certificate) != 1)
    code = config_error(msg, msglen, "cannot load the certificate", o->certificate);
  if (!code && (o->key || o->certificate)
      && SSL_CTX_use_PrivateKey_file(ctx, o->key ? o->key : o->certificate,
                                     SSL_FILETYPE_PEM) != 1)
    code = config_error(msg, msglen, "cannot load the private key",
                        o->key ? o->key : o->certificate);
  if (!code && (o->key || o->certificate) && SSL_CTX_check_private_key(ctx) != 1)
    code = config_error(msg, msglen, "the key does not match the certificate",
                        o->certificate);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);   /* o->password dies */
  if (!code && !o->server && SSL_CTX_set_default_verify_paths(ctx) != 1)
    code = config_error(msg, msglen, "cannot load the system CA store", NULL);
  if (!code && (o->ca_file || o->ca_directory)
      && SSL_CTX_load_verify_locations(ctx, o->ca_file, o->ca_directory) != 1)
    code = config_error(msg, msglen, "cannot load CA certificates from",
                        o->ca_file ? o->ca_file : o->ca_directory);
  if (!code && o->ciphers && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1)
    code = config_error(msg, msglen, "no usable cipher in", o->ciphers);
  if (!code && o->ciphersuites && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1)
    code = config_error(msg, msglen, "no usable cipher suite in", o->ciphersuites);
  if (!code && o->crl_file) {
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    if (X509_load_crl_file(X509_STORE_add_lookup(st, X509_LOOKUP_file()),
                           o->crl_file, X509_FILETYPE_PEM) <= 0)
      code = config_error(msg, msglen, "cannot load the CRL file", o->crl_file);
  }
  if (!code && o->crl_check)
    X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx), o->crl_check == 2
                         ? X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL
                         : X509_V_FLAG_CRL_CHECK);
  if (code) {
    eclsock_tls_ctx_free(ctx);
    return code;
  }
  if (o->server && o->prefer_server_order)
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (o->server) {
    static const unsigned char sid[] = "ecl-sock";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
  }
  SSL_CTX_set_verify(ctx, verify_mode(o->verify, o->server), NULL);
  if (o->max_depth >= 0)
    SSL_CTX_set_verify_depth(ctx, o->max_depth);
  *out = ctx;
  return 0;
}

void
eclsock_tls_ctx_free(void *ctx)
{
  if (ctx) {
    SSL_CTX_free(ctx);
    __atomic_sub_fetch(&live_contexts, 1, __ATOMIC_RELAXED);
  }
}

/* -- Sessions ------------------------------------------------------------------ */

int
eclsock_tls_new(void *ctx, int fd, int server, const char *host, int verify,
                int max_depth, int min_version, int max_version,
                const char *ciphers, const char *ciphersuites,
                eclsock_tls **out, char *msg, size_t msglen)
{
  eclsock_tls *t;
  BIO *bio;
  *out = NULL;
  ERR_clear_error();
  pthread_once(&bio_once, make_bio_method);
  if (!bio_method)
    return config_error(msg, msglen, "cannot make the socket BIO", NULL);
  t = calloc(1, sizeof *t);
  if (!t)
    return ENOMEM;
  t->fd = fd;
  t->ssl = SSL_new(ctx);
  bio = t->ssl ? BIO_new(bio_method) : NULL;
  if (!bio) {
    if (t->ssl)
      SSL_free(t->ssl);
    free(t);
    return config_error(msg, msglen, "cannot make a TLS session", NULL);
  }
  __atomic_add_fetch(&live_sessions, 1, __ATOMIC_RELAXED);
  pthread_mutex_init(&t->lock, NULL);
  BIO_set_data(bio, t);
  SSL_set_bio(t->ssl, bio, bio);
  if (server)
    SSL_set_accept_state(t->ssl);
  else
    SSL_set_connect_state(t->ssl);
  if (verify >= 0)
    SSL_set_verify(t->ssl, verify_mode(verify, server), NULL);
  if (max_depth >= 0)
    SSL_set_verify_depth(t->ssl, max_depth);
  if ((min_version && !SSL_set_min_proto_version(t->ssl, min_version))
      || (max_version && !SSL_set_max_proto_version(t->ssl, max_version))) {
    eclsock_tp_close(t, 0);
    return config_error(msg, msglen, "unsupported TLS method", NULL);
  }
  if (ciphers && SSL_set_cipher_list(t->ssl, ciphers) != 1) {
    eclsock_tp_close(t, 0);
    return config_error(msg, msglen, "no usable cipher in", ciphers);
  }
  if (ciphersuites && SSL_set_ciphersuites(t->ssl, ciphersuites) != 1) {
    eclsock_tp_close(t, 0);
    return config_error(msg, msglen, "no usable cipher suite in", ciphersuites);
  }
  if (!server && host && *host) {
    X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
    /* an address is checked against the IP SANs and sent as no SNI (RFC
       6066); a name is checked against DNS SANs and sent as SNI */
    if (!X509_VERIFY_PARAM_set1_ip_asc(vp, host)) {
      X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (!X509_VERIFY_PARAM_set1_host(vp, host, 0)
          || !SSL_set_tlsext_host_name(t->ssl, host)) {
        eclsock_tp_close(t, 0);
        return config_error(msg, msglen, "bad server name", host);
      }
    }
  }
  *out = t;
  return 0;
}

int
eclsock_tls_handshake(eclsock_tls *t, eclsock_deadline dl)
{
  const cl_env_ptr env = ecl_process_env();
  for (;;) {
    int r, err = SSL_ERROR_NONE, code = 0, trunc;
    CALL_BEGIN(env, t);
    r = SSL_do_handshake(t->ssl);
    if (r != 1) {
      err = SSL_get_error(t->ssl, r);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
        code = classify(t, err, 1, &trunc);
    }
    CALL_END(env, t);
    if (r == 1)
      return 0;
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
      return code;
    code = eclsock_tm_wait(t->fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, dl);
    if (code) {
      t->failed = 1;
      if (code == ECLSOCK_ETIMEOUT) {
        snprintf(t->msg, sizeof t->msg, "the TLS handshake timed out");
        code = ECLSOCK_ETLSTIMEOUT;
      }
      return code;
    }
  }
}

/* -- Certificates as Lisp data ------------------------------------------------ */

static cl_object
utf8_string(const unsigned char *p, int n)
{
  cl_object v = ecl_alloc_simple_vector(n, ecl_aet_b8);
  memcpy(v->vector.self.b8, p, n);
  return cl_funcall(2, eclsock_sym("%UTF8-DECODE"), v);
}

static cl_object
name_alist(X509_NAME *name)
{
  cl_object l = ECL_NIL;
  int i;
  for (i = X509_NAME_entry_count(name) - 1; i >= 0; i--) {
    X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    const char *sn = nid == NID_undef ? "UNDEF" : OBJ_nid2sn(nid);
    unsigned char *u = NULL;
    int n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
    if (n >= 0) {
      l = ecl_cons(ecl_cons(ecl_make_simple_base_string(sn, -1), utf8_string(u, n)), l);
      OPENSSL_free(u);
    }
  }
  return l;
}

static cl_object
time_list(const ASN1_TIME *a)
{
  struct tm tm;
  if (!a || !ASN1_TIME_to_tm(a, &tm))
    return ECL_NIL;
  return cl_list(6, ecl_make_fixnum(tm.tm_sec), ecl_make_fixnum(tm.tm_min),
                 ecl_make_fixnum(tm.tm_hour), ecl_make_fixnum(tm.tm_mday),
                 ecl_make_fixnum(tm.tm_mon + 1), ecl_make_fixnum(tm.tm_year + 1900));
}

static cl_object
alt_names(X509 *x)
{
  GENERAL_NAMES *gs = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  cl_object l = ECL_NIL;
  int i;
  if (!gs)
    return ECL_NIL;
  for (i = sk_GENERAL_NAME_num(gs) - 1; i >= 0; i--) {
    GENERAL_NAME *g = sk_GENERAL_NAME_value(gs, i);
    if (g->type == GEN_DNS) {
      l = ecl_cons(ecl_cons(ecl_make_simple_base_string("DNS", -1),
                            utf8_string(ASN1_STRING_get0_data(g->d.dNSName),
                                        ASN1_STRING_length(g->d.dNSName))), l);
    } else if (g->type == GEN_IPADD) {
      int n = ASN1_STRING_length(g->d.iPAddress);
      const unsigned char *p = ASN1_STRING_get0_data(g->d.iPAddress);
      char buf[64];
      if (n == 4)
        snprintf(buf, sizeof buf, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
      else if (n == 16) {
        int k, o = 0;
        for (k = 0; k < 16; k += 2)
          o += snprintf(buf + o, sizeof buf - o, "%s%x", k ? ":" : "",
                        (p[k] << 8) | p[k + 1]);
      } else
        continue;
      l = ecl_cons(ecl_cons(ecl_make_simple_base_string("IP Address", -1),
                            ecl_make_simple_base_string(buf, -1)), l);
    }
  }
  GENERAL_NAMES_free(gs);
  return l;
}

static cl_object
cert_info(X509 *x)
{
  cl_object serial = ECL_NIL, pem = ECL_NIL;
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), NULL);
  BIO *mem;
  if (bn) {
    char *hex = BN_bn2hex(bn);
    if (hex) {
      serial = ecl_make_simple_base_string(hex, -1);
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  mem = BIO_new(BIO_s_mem());
  if (mem) {
    char *p;
    long n;
    if (PEM_write_bio_X509(mem, x) && (n = BIO_get_mem_data(mem, &p)) > 0)
      pem = ecl_make_simple_base_string(p, n);
    BIO_free(mem);
  }
  return cl_list(8, ecl_make_fixnum(X509_get_version(x) + 1), serial,
                 name_alist(X509_get_subject_name(x)),
                 name_alist(X509_get_issuer_name(x)),
                 time_list(X509_get0_notBefore(x)), time_list(X509_get0_notAfter(x)),
                 alt_names(x), pem);
}

cl_object
eclsock_tls_peer_certificate(eclsock_tls *t)
{
  const cl_env_ptr env = ecl_process_env();
  X509 *volatile x;
  volatile cl_object info = ECL_NIL;
  ecl_disable_interrupts_env(env);
  pthread_mutex_lock(&t->lock);
  x = SSL_get1_peer_certificate(t->ssl);
  pthread_mutex_unlock(&t->lock);
  ecl_enable_interrupts_env(env);
  if (!x)
    return ECL_NIL;
  ECL_UNWIND_PROTECT_BEGIN(env) {
    info = cert_info(x);
  } ECL_UNWIND_PROTECT_EXIT {
    X509_free(x);
  } ECL_UNWIND_PROTECT_END;
  return info;
}

cl_object
eclsock_tls_description(eclsock_tls *t)
{
  const char *v = SSL_get_version(t->ssl), *c = SSL_get_cipher_name(t->ssl);
  return cl_list(2, ecl_make_simple_base_string(v ? v : "", -1),
                 ecl_make_simple_base_string(c ? c : "", -1));
}

#else  /* !HAVE_OPENSSL: the plain transport only */

struct eclsock_tls { int unused; };

int eclsock_tls_available(void) { return 0; }

int
eclsock_tp_recv(eclsock_tls *t, int fd, unsigned char *p, size_t n, int flags,
                size_t *got)
{
  (void)t;
  return eclsock_os_recv(fd, p, n, flags, got);
}

int
eclsock_tp_send_all(eclsock_tls *t, int fd, const unsigned char *p, size_t n,
                    size_t *sent)
{
  (void)t;
  return eclsock_os_send_all(fd, p, n, sent);
}

int
eclsock_tp_send_nowait(eclsock_tls *t, int fd, const unsigned char *p, size_t n,
                       size_t *sent)
{
  (void)t;
  return eclsock_os_send_nowait(fd, p, n, sent);
}

int eclsock_tp_pending(eclsock_tls *t) { (void)t; return 0; }
int eclsock_tp_write_pending(eclsock_tls *t) { (void)t; return 0; }
int eclsock_tp_shutdown(eclsock_tls *t, int fd, int how)
{ (void)t; return eclsock_os_shutdown(fd, how); }
void eclsock_tp_close(eclsock_tls *t, int notify) { (void)t; (void)notify; }
int eclsock_tp_take_truncation(eclsock_tls *t) { (void)t; return 0; }
const char *eclsock_tls_message(eclsock_tls *t) { (void)t; return NULL; }
long eclsock_tls_verify_result(eclsock_tls *t) { (void)t; return 0; }

int
eclsock_tls_ctx_new(const struct eclsock_tls_opts *o, void **ctx, char *msg,
                    size_t msglen)
{
  (void)o;
  *ctx = NULL;
  snprintf(msg, msglen, "ecl-sock was built without OpenSSL (--without-openssl)");
  return ECLSOCK_ENOTLS;
}

void eclsock_tls_ctx_free(void *ctx) { (void)ctx; }

int
eclsock_tls_new(void *ctx, int fd, int server, const char *host, int verify,
                int max_depth, int min_version, int max_version,
                const char *ciphers, const char *ciphersuites,
                eclsock_tls **out, char *msg, size_t msglen)
{
  (void)ctx; (void)fd; (void)server; (void)host; (void)verify; (void)max_depth;
  (void)min_version; (void)max_version; (void)ciphers; (void)ciphersuites;
  *out = NULL;
  snprintf(msg, msglen, "ecl-sock was built without OpenSSL (--without-openssl)");
  return ECLSOCK_ENOTLS;
}

int eclsock_tls_handshake(eclsock_tls *t, eclsock_deadline dl)
{ (void)t; (void)dl; return ECLSOCK_ENOTLS; }
cl_object eclsock_tls_peer_certificate(eclsock_tls *t) { (void)t; return ECL_NIL; }
cl_object eclsock_tls_description(eclsock_tls *t) { (void)t; return ECL_NIL; }

#endif
