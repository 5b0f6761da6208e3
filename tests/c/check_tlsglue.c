/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_tlsglue.c - Check suite "tlsglue" for src/tlsglue.c: the TLS
 * primitives as Lisp calls them (ECLSOCK::%SSL-MAKE-CONTEXT, %SSL-WRAP,
 * %SSL-STREAM-P, %SSL-PEER-CERTIFICATE, %SSL-DESCRIPTION,
 * %SSL-FREE-CONTEXT, %SSL-COUNTS).
 *
 * Contexts: settings checked by name before anything is made (unknown,
 * repeated or out-of-range settings are type errors and no context is
 * counted), files that cannot be read are SSL-CONFIGURATION-ERROR, a
 * freed context is refused.  Wrap: a socket stream moved onto a session
 * against a server made here with OpenSSL itself in a plain thread (a
 * certificate made for the run): octets both ways, the peer's
 * certificate, the protocol; a refused certificate is SSL-VERIFY-ERROR
 * and closes the descriptor; sessions are counted back to where they
 * were.  Built --without-openssl: every context is SSL-UNAVAILABLE-ERROR.
 * Loads the built sock.fas for the condition classes.
 */
#include "testutil.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_OPENSSL
# include <openssl/ssl.h>
# include <openssl/pem.h>
# include <openssl/x509.h>
# include <openssl/evp.h>
# include <openssl/ec.h>
#endif

static cl_object str(const char *s) { return ecl_make_simple_base_string(s, -1); }
static cl_object fx(cl_fixnum n) { return ecl_make_fixnum(n); }

static long
live(int which)
{
  cl_object n = tu_call("%SSL-COUNTS", "ECLSOCK", 0);
  if (which == 0)
    return ecl_fixnum(n);
  return ecl_fixnum(tu_value2);
}
#define LIVE_SESSIONS live(0)
#define LIVE_CONTEXTS live(1)

static cl_object
settings(const char *text)
{
  return tu_eval(text);
}

/* -- Contexts ------------------------------------------------------------ */

START_TEST(test_context_settings_checked)
{
  long before;
  cl_object e;
  if (!eclsock_tls_available()) {
    e = tu_call_error("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_NIL, ECL_NIL);
    ck_assert(tu_typep(e, "SSL-UNAVAILABLE-ERROR", "ECLSOCK"));
    return;
  }
  before = LIVE_CONTEXTS;
  /* unknown, repeated, out of range, wrong type: type errors, no context */
  e = tu_call_error("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_NIL, settings("'(:verfy 2)"));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = tu_call_error("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_NIL,
                    settings("'(:verify 1 :verify 2)"));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = tu_call_error("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_NIL, settings("'(:verify 3)"));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = tu_call_error("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_NIL,
                    settings("'(:crl-check -1)"));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = tu_call_error("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_NIL,
                    settings("'(:ca-file 42)"));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  e = tu_call_error("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_NIL, settings("'(:verify)"));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  ck_assert_int_eq(LIVE_CONTEXTS, before);
  /* files that cannot be read: the configuration error, with a message */
  e = tu_call_error("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_T,
                    settings("'(:certificate \"/nonexistent/cert.pem\")"));
  ck_assert(tu_typep(e, "SSL-CONFIGURATION-ERROR", "ECLSOCK"));
  ck_assert_msg(strstr(tu_princ(e), "/nonexistent/cert.pem"),
                "report: %s", tu_princ(e));
  e = tu_call_error("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_NIL,
                    settings("'(:ca-file \"/nonexistent/ca.pem\" :verify 2)"));
  ck_assert(tu_typep(e, "SSL-CONFIGURATION-ERROR", "ECLSOCK"));
  ck_assert_int_eq(LIVE_CONTEXTS, before);
}
END_TEST

START_TEST(test_context_lifetime)
{
  long before;
  cl_object ctx, e;
  int sv[2];
  cl_object s;
  if (!eclsock_tls_available())
    return;
  before = LIVE_CONTEXTS;
  ctx = tu_call("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_NIL,
                settings("'(:verify 0 :min-version #x0303 :ciphers \"HIGH\")"));
  ck_assert(ecl_t_of(ctx) == t_foreign);
  ck_assert_int_eq(LIVE_CONTEXTS, before + 1);
  tu_call("%SSL-FREE-CONTEXT", "ECLSOCK", 1, ctx);
  ck_assert_int_eq(LIVE_CONTEXTS, before);
  /* freeing twice does nothing more */
  tu_call("%SSL-FREE-CONTEXT", "ECLSOCK", 1, ctx);
  ck_assert_int_eq(LIVE_CONTEXTS, before);
  /* a freed context cannot start a session */
  tu_socketpair(sv);
  s = tu_call("%WRAP-FD", "ECLSOCK", 6, fx(sv[0]),
              cl_list(2, tu_sym("UNSIGNED-BYTE", "CL"), fx(8)), ECL_NIL, ECL_T, ECL_NIL,
              ECL_NIL);
  e = tu_call_error("%SSL-WRAP", "ECLSOCK", 11, s, ctx, ECL_NIL, ECL_NIL, ECL_NIL,
                    ECL_NIL, ECL_NIL, ECL_NIL, ECL_NIL, ECL_NIL, fx(5));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  ck_assert(cl_funcall(2, tu_sym("TYPE-ERROR-EXPECTED-TYPE", "CL"), e)
            == tu_sym("SSL-CONTEXT", "SOCKET"));
  /* nor can anything but a socket stream be wrapped */
  ctx = tu_call("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_NIL, ECL_NIL);
  e = tu_call_error("%SSL-WRAP", "ECLSOCK", 11, cl_make_string_output_stream(0), ctx,
                    ECL_NIL, ECL_NIL, ECL_NIL, ECL_NIL, ECL_NIL, ECL_NIL, ECL_NIL,
                    ECL_NIL, fx(5));
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  /* a plain stream is no TLS stream */
  ck_assert(Null(tu_call("%SSL-STREAM-P", "ECLSOCK", 1, s)));
  e = tu_call_error("%SSL-PEER-CERTIFICATE", "ECLSOCK", 1, s);
  ck_assert(tu_typep(e, "TYPE-ERROR", "CL"));
  tu_call("%SSL-FREE-CONTEXT", "ECLSOCK", 1, ctx);
  cl_close(1, s);
  close(sv[1]);
}
END_TEST

#ifdef HAVE_OPENSSL

/* -- A server made with OpenSSL itself ---------------------------------- */

static char cert_file[128], key_file[128], dir[64];

/* A self-signed certificate for CN=check.test (P-256 key), as PEM files. */
static void
make_certificate(void)
{
  EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
  EVP_PKEY *key = NULL;
  X509 *x = X509_new();
  X509_NAME *name;
  FILE *f;
  strcpy(dir, "/tmp/check-tlsglue.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(cert_file, sizeof cert_file, "%s/cert.pem", dir);
  snprintf(key_file, sizeof key_file, "%s/key.pem", dir);
  ck_assert(kc && EVP_PKEY_keygen_init(kc) > 0);
  ck_assert(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1) > 0);
  ck_assert(EVP_PKEY_keygen(kc, &key) > 0);
  ck_assert(X509_set_version(x, 2));
  ck_assert(ASN1_INTEGER_set(X509_get_serialNumber(x), 4242));
  ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
  ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600));
  name = X509_get_subject_name(x);
  ck_assert(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       (const unsigned char *)"check.test", -1, -1, 0));
  ck_assert(X509_set_issuer_name(x, name));
  ck_assert(X509_set_pubkey(x, key));
  ck_assert(X509_sign(x, key, EVP_sha256()) > 0);
  f = fopen(cert_file, "w");
  ck_assert(f && PEM_write_X509(f, x));
  fclose(f);
  f = fopen(key_file, "w");
  ck_assert(f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
  EVP_PKEY_CTX_free(kc);
}

static void
remove_certificate(void)
{
  unlink(cert_file);
  unlink(key_file);
  rmdir(dir);
}

struct server { int fd; int accepted; char got[32]; };

/* Accept a TLS session on S->fd, write "hello", read what comes back. */
static void *
serve(void *arg)
{
  struct server *s = arg;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  SSL *ssl;
  int n;
  SSL_CTX_use_certificate_file(ctx, cert_file, SSL_FILETYPE_PEM);
  SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM);
  ssl = SSL_new(ctx);
  SSL_set_fd(ssl, s->fd);
  if (SSL_accept(ssl) == 1) {
    s->accepted = 1;
    SSL_write(ssl, "hello", 5);
    n = SSL_read(ssl, s->got, sizeof s->got - 1);
    if (n > 0)
      s->got[n] = 0;
    SSL_shutdown(ssl);
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(s->fd);
  return NULL;
}

static cl_object
octet_stream(int fd)
{
  return tu_call("%WRAP-FD", "ECLSOCK", 6, fx(fd),
                 cl_list(2, tu_sym("UNSIGNED-BYTE", "CL"), fx(8)), ECL_NIL, ECL_T,
                 ECL_NIL, ECL_NIL);
}

static cl_object
wrap(cl_object s, cl_object ctx, const char *host)
{
  return tu_call("%SSL-WRAP", "ECLSOCK", 11, s, ctx, ECL_NIL, str(host), ECL_NIL,
                 ECL_NIL, ECL_NIL, ECL_NIL, ECL_NIL, ECL_NIL, fx(10));
}

START_TEST(test_wrap_and_talk)
{
  int sv[2];
  pthread_t th;
  struct server srv;
  long sessions = LIVE_SESSIONS;
  cl_object ctx, s, t, v, cert;
  make_certificate();
  tu_socketpair(sv);
  memset(&srv, 0, sizeof srv);
  srv.fd = sv[1];
  ck_assert_int_eq(pthread_create(&th, NULL, serve, &srv), 0);
  ctx = tu_call("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_NIL, settings("'(:verify 0)"));
  s = octet_stream(sv[0]);
  t = wrap(s, ctx, "check.test");
  /* a new stream on the same descriptor; the old one is closed */
  ck_assert(t != s);
  ck_assert(Null(cl_open_stream_p(s)));
  ck_assert_int_eq(eclsock_stream_fd(t), sv[0]);
  ck_assert(tu_call("%SSL-STREAM-P", "ECLSOCK", 1, t) == ECL_T);
  ck_assert_int_eq(LIVE_SESSIONS, sessions + 1);
  /* octets both ways through the session */
  v = ecl_alloc_simple_vector(5, ecl_aet_b8);
  ck_assert(ecl_eql(cl_read_sequence(2, v, t), fx(5)));
  ck_assert(!memcmp(v->vector.self.b8, "hello", 5));
  memcpy(v->vector.self.b8, "world", 5);
  cl_write_sequence(2, v, t);
  cl_finish_output(1, t);
  /* the peer's certificate and the protocol */
  cert = tu_call("%SSL-PEER-CERTIFICATE", "ECLSOCK", 1, t);
  ck_assert(ECL_CONSP(cert));
  ck_assert_msg(strstr(tu_princ(cert), "check.test"), "certificate %s", tu_princ(cert));
  ck_assert_msg(strstr(tu_princ(tu_call("%SSL-DESCRIPTION", "ECLSOCK", 1, t)), "TLS"),
                "description %s", tu_princ(tu_call("%SSL-DESCRIPTION", "ECLSOCK", 1, t)));
  pthread_join(th, NULL);
  ck_assert_int_eq(srv.accepted, 1);
  ck_assert_str_eq(srv.got, "world");
  cl_close(1, t);
  ck_assert(!tu_fd_open(sv[0]));
  ck_assert_int_eq(LIVE_SESSIONS, sessions);
  tu_call("%SSL-FREE-CONTEXT", "ECLSOCK", 1, ctx);
  remove_certificate();
}
END_TEST

START_TEST(test_verify_refused)
{
  int sv[2];
  pthread_t th;
  struct server srv;
  long sessions = LIVE_SESSIONS;
  cl_object ctx, s, e;
  make_certificate();
  tu_socketpair(sv);
  memset(&srv, 0, sizeof srv);
  srv.fd = sv[1];
  ck_assert_int_eq(pthread_create(&th, NULL, serve, &srv), 0);
  /* verification required, and no CA knows the self-signed certificate */
  ctx = tu_call("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_NIL,
                settings("'(:verify 2 :ca-directory \"/nonexistent-ca-dir\")"));
  s = octet_stream(sv[0]);
  e = tu_call_error("%SSL-WRAP", "ECLSOCK", 11, s, ctx, ECL_NIL, str("check.test"),
                    ECL_NIL, ECL_NIL, ECL_NIL, ECL_NIL, ECL_NIL, ECL_NIL, fx(10));
  ck_assert_msg(tu_typep(e, "SSL-VERIFY-ERROR", "ECLSOCK"), "got %s: %s",
                tu_princ(cl_type_of(e)), tu_princ(e));
  /* the verify result says why: a self-signed certificate (18) */
  ck_assert(ecl_eql(cl_funcall(2, tu_sym("SSL-VERIFY-ERROR-RESULT", "ECLSOCK"), e),
                    fx(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)));
  /* the connection is closed and the session freed */
  ck_assert(!tu_fd_open(sv[0]));
  ck_assert_int_eq(LIVE_SESSIONS, sessions);
  pthread_join(th, NULL);
  ck_assert_int_eq(srv.accepted, 0);
  tu_call("%SSL-FREE-CONTEXT", "ECLSOCK", 1, ctx);
  remove_certificate();
}
END_TEST

START_TEST(test_server_context)
{
  long before = LIVE_CONTEXTS;
  cl_object ctx, e;
  char text[400];
  make_certificate();
  snprintf(text, sizeof text, "'(:certificate \"%s\" :key \"%s\")", cert_file, key_file);
  ctx = tu_call("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_T, settings(text));
  ck_assert_int_eq(LIVE_CONTEXTS, before + 1);
  tu_call("%SSL-FREE-CONTEXT", "ECLSOCK", 1, ctx);
  /* a key that is not the certificate's: refused */
  snprintf(text, sizeof text, "'(:certificate \"%s\" :key \"%s\")", cert_file, cert_file);
  e = tu_call_error("%SSL-MAKE-CONTEXT", "ECLSOCK", 2, ECL_T, settings(text));
  ck_assert(tu_typep(e, "SSL-CONFIGURATION-ERROR", "ECLSOCK"));
  ck_assert_int_eq(LIVE_CONTEXTS, before);
  remove_certificate();
}
END_TEST

#endif /* HAVE_OPENSSL */

static Suite *
tlsglue_suite(void)
{
  Suite *s = suite_create("tlsglue");
  TCase *tc = tcase_create("contexts");
  tcase_add_test(tc, test_context_settings_checked);
  tcase_add_test(tc, test_context_lifetime);
  suite_add_tcase(s, tc);
#ifdef HAVE_OPENSSL
  tc = tcase_create("sessions");
  tcase_set_timeout(tc, TU_NET_TIMEOUT);
  tcase_add_test(tc, test_wrap_and_talk);
  tcase_add_test(tc, test_verify_refused);
  tcase_add_test(tc, test_server_context);
  suite_add_tcase(s, tc);
#endif
  return s;
}

TU_MAIN(tlsglue_suite, 1)
