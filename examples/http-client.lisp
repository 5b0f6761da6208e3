;;;; http-client.lisp - fetch one file over HTTP/0.9, in CLOCC PORT style.
;;;;
;;;; Run:  ecl -norc -shell examples/http-client.lisp 127.0.0.1 8080 /hello.txt
;;;;
;;;; Sends "GET PATH HTTP/0.9" and a blank line, prints the answer's lines
;;;; (without their CR) and exits 0; exits 1 when the server cannot be
;;;; reached or answers nothing.

(require :sock)

(defpackage "HTTP09-CLIENT" (:use "CL" "PORT"))
(in-package "HTTP09-CLIENT")

(defun fetch (host port path &optional (out *standard-output*))
  "Print the lines the HTTP/0.9 server at HOST:PORT sends for PATH; return how many."
  (with-open-stream (sock (open-socket host port))
    (format sock "GET ~A HTTP/0.9~C~C~C~C" path #\Return #\Linefeed #\Return #\Linefeed)
    (finish-output sock)
    (loop for line = (read-line sock nil)
          while line
          count t
          do (write-line (string-right-trim '(#\Return) line) out))))

(defun main (args)
  (if (/= (length args) 3)
      (progn (format *error-output* "usage: http-client.lisp HOST PORT PATH~%") 2)
      (handler-case (if (plusp (fetch (first args) (parse-integer (second args)) (third args))) 0 1)
        (network (c)
          (format *error-output* "http-client: ~A~%" c)
          1))))

(ext:quit (main (cddr (member "-shell" ext:*command-args* :test #'string=))))
