;;;; echo-client.lisp - send standard input to an echo server line by line
;;;; and print what comes back, in CLOCC PORT style.
;;;;
;;;; Run:  printf 'hello\nworld\n' | ecl -norc -shell examples/echo-client.lisp 127.0.0.1 7007

(require :sock)

(defpackage "ECHO-CLIENT" (:use "CL" "PORT"))
(in-package "ECHO-CLIENT")

(defun main (args)
  (if (/= (length args) 2)
      (progn (format *error-output* "usage: echo-client.lisp HOST PORT~%") 2)
      (handler-case
          (with-open-stream (sock (open-socket (first args) (parse-integer (second args))))
            (loop for line = (read-line *standard-input* nil)
                  while line
                  do (write-line line sock)
                     (finish-output sock)
                     (write-line (or (read-line sock nil) (return 1)))
                  finally (return 0)))
        (network (c)
          (format *error-output* "echo-client: ~A~%" c)
          1))))

(ext:quit (main (cddr (member "-shell" ext:*command-args* :test #'string=))))
