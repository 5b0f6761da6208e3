/* -*- mode: c; c-basic-offset: 2; indent-tabs-mode: nil -*- */
/*
 * check_embed_sigpipe.c - a host that turned off ECL's SIGPIPE trap
 * (ecl_set_option(ECL_OPT_TRAP_SIGPIPE, 0) before cl_boot), so SIGPIPE
 * keeps its default action: kill the process.  Writing to a vanished peer
 * through a Lisp socket stream must still give a Lisp condition (reported
 * to C as ECL_SOCK_ELISP), never the signal.
 */
#include <ecl-sock.h>
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What the API answers before cl_boot (recorded in main). */
static int preboot_init, preboot_attach, preboot_call, preboot_load, preboot_wrap;
static const char *preboot_version;

START_TEST(test_before_boot)
{
  ck_assert_int_eq(preboot_init, ECL_SOCK_ENOTHREAD);
  ck_assert_int_eq(preboot_attach, ECL_SOCK_ENOTHREAD);
  ck_assert_int_eq(preboot_call, ECL_SOCK_ENOTHREAD);
  ck_assert_int_eq(preboot_load, ECL_SOCK_ENOTHREAD);
  ck_assert_int_eq(preboot_wrap, ECL_SOCK_ENOTHREAD);
  ck_assert_str_eq(preboot_version, ECL_SOCK_VERSION);
}
END_TEST

static void
setup(void)
{
  ck_assert_int_eq(ecl_sock_init(), ECL_SOCK_OK);
}

/* Without this the test proves nothing. */
START_TEST(test_sigpipe_is_default)
{
  struct sigaction sa;
  ck_assert_int_eq(sigaction(SIGPIPE, NULL, &sa), 0);
  ck_assert(sa.sa_handler == SIG_DFL);
}
END_TEST

static void
write_to_vanished_peer(const char *elttype, int flags, const char *function)
{
  int sv[2];
  cl_object s;
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], elttype, NULL, flags, &s), ECL_SOCK_OK);
  close(sv[1]);
  ck_assert_int_eq(ecl_sock_call(function, 1, &s, NULL), ECL_SOCK_ELISP);
  /* Still here, with the reason in words. */
  ck_assert_msg(strstr(ecl_sock_error_message(), "ERROR") != NULL,
                "message: %s", ecl_sock_error_message());
  ck_assert_msg(strstr(ecl_sock_error_message(), "pipe") != NULL
                || strstr(ecl_sock_error_message(), "PIPE") != NULL
                || strstr(ecl_sock_error_message(), "reset") != NULL,
                "message: %s", ecl_sock_error_message());
  ck_assert_int_eq(ecl_sock_call("close", 1, &s, NULL), ECL_SOCK_OK);
}

static cl_object
eval_text(const char *text)
{
  cl_object form, v = ECL_NIL, str = ecl_make_simple_base_string((char *)text, -1);
  ck_assert_int_eq(ecl_sock_call("read-from-string", 1, &str, &form), ECL_SOCK_OK);
  ck_assert_msg(ecl_sock_call("eval", 1, &form, &v) == ECL_SOCK_OK, "%s: %s", text,
                ecl_sock_error_message());
  return v;
}

START_TEST(test_text_write_to_vanished_peer)
{
  eval_text("(defun cl-user::write-much (s)"
            "  (dotimes (i 1000) (write-line (make-string 200 :initial-element #\\x) s))"
            "  (finish-output s))");
  write_to_vanished_peer(NULL, 0, "write-much");
}
END_TEST

START_TEST(test_octet_unbuffered_write_to_vanished_peer)
{
  eval_text("(defun cl-user::write-octets (s)"
            "  (dotimes (i 100)"
            "    (write-sequence (make-array 1000 :element-type '(unsigned-byte 8)"
            "                                     :initial-element 7) s)))");
  write_to_vanished_peer("(unsigned-byte 8)", ECL_SOCK_UNBUFFERED, "write-octets");
}
END_TEST

/* The error is a SOCKET-ERROR that Lisp code can handle itself. */
START_TEST(test_lisp_handles_epipe)
{
  int sv[2];
  cl_object s, v = ECL_NIL;
  eval_text("(defun cl-user::write-or-report (s)"
            "  (handler-case (progn (dotimes (i 100) (write-line \"data\" s) (finish-output s)) :no-error)"
            "    (socket:socket-error (e) (socket:socket-error-identifier e))))");
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ck_assert_int_eq(ecl_sock_wrap_fd(sv[0], NULL, NULL, 0, &s), ECL_SOCK_OK);
  close(sv[1]);
  ck_assert_int_eq(ecl_sock_call("write-or-report", 1, &s, &v), ECL_SOCK_OK);
  ck_assert_msg(v == ecl_make_keyword("BROKEN-PIPE") || v == ecl_make_keyword("CONNECTION-RESET"),
                "identifier %s", ECL_SYMBOLP(v) ? (char *)ecl_symbol_name(v)->base_string.self : "?");
  ck_assert_int_eq(ecl_sock_call("close", 1, &s, NULL), ECL_SOCK_OK);
}
END_TEST

int
main(int argc, char **argv)
{
  Suite *su = suite_create("embed-sigpipe");
  TCase *tc = tcase_create("sigpipe");
  SRunner *sr;
  int failed;
  preboot_version = ecl_sock_version();
  preboot_init = ecl_sock_init();
  preboot_attach = ecl_sock_thread_attach();
  preboot_call = ecl_sock_call("list", 0, NULL, NULL);
  preboot_load = ecl_sock_load("/dev/null");
  {
    cl_object s;
    preboot_wrap = ecl_sock_wrap_fd(0, NULL, NULL, 0, &s);
  }
  ecl_set_option(ECL_OPT_TRAP_SIGPIPE, 0);
  cl_boot(argc, argv);
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_before_boot);
  tcase_add_test(tc, test_sigpipe_is_default);
  tcase_add_test(tc, test_text_write_to_vanished_peer);
  tcase_add_test(tc, test_octet_unbuffered_write_to_vanished_peer);
  tcase_add_test(tc, test_lisp_handles_epipe);
  suite_add_tcase(su, tc);
  sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  cl_shutdown();
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
