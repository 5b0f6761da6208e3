;;;; test-clisp.lisp - the CLISP face: SOCKET-SERVER, SOCKET-CONNECT & co.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "TEST-CLISP" (:use "CL" "SOCKET" "HARNESS"))
(in-package "TEST-CLISP")

(deftest echo-ipv4 ()
  (let* ((srv (socket-server 0 :interface "127.0.0.1"))
         (port (socket-server-port srv))
         (th (spawn "server" (lambda ()
                               (with-open-stream (s (socket-accept srv))
                                 (write-line (read-line s) s)
                                 (force-output s)
                                 :done)))))
    (unwind-protect
         (with-open-stream (c (socket-connect port "127.0.0.1"))
           (write-line "hello" c)
           (force-output c)
           (is (equal (read-line c) "hello")))
      (is (equal (join th) '(:done)))
      (socket-server-close srv))))
