;;;; sum-client.lisp - ask the sum server (sum-server.lisp) to add two numbers,
;;;; with Allegro's socket API.
;;;; Run:   ecl -norc -shell examples/sum-client.lisp PORT A B [HOST]
;;;; A and B are Lisp numbers: 1, 2/3, 1.5d0, #c(1 2).  HOST defaults to
;;;; "localhost".  Prints the sum the server sends back.

(require :sock)

(defpackage "SUM-CLIENT" (:use "CL" "SOCKET"))
(in-package "SUM-CLIENT")

(defun main (args)
  "ARGS: PORT A B [HOST]."
  (let ((*read-eval* nil))
    (unless (<= 3 (length args) 4)
      (format *error-output* "usage: sum-client.lisp PORT A B [HOST]~%")
      (ext:quit 2))
    (destructuring-bind (port a b &optional (host "localhost")) args
      (handler-case
          (with-open-stream (s (make-socket :remote-host host
                                            :remote-port (parse-integer port)))
            ;; the numbers go as the user wrote them; the server reads them
            (format s "~A ~A~%" a b)
            (force-output s)
            (format t "~S~%" (read s)))
        (excl:socket-error (e)
          (format *error-output* "sum-client: ~A (~S)~%" e
                  (excl:stream-error-identifier e))
          (ext:quit 1))))))

(main (cddr (member "-shell" ext:*command-args* :test #'string=)))
