;;;; echo-server.lisp - a line echo server, one process per connection,
;;;; in CLOCC PORT style.
;;;;
;;;; Run:  ecl -norc -shell examples/echo-server.lisp 7007
;;;; then: ecl -norc -shell examples/echo-client.lisp 127.0.0.1 7007
;;;;
;;;; Arguments: PORT (0: any free port; the first line printed says
;;;; which), then --interface ADDR (default 127.0.0.1) and --max N (stop
;;;; after N connections; default never).  Each client gets its lines
;;;; back until it closes; clients are served at the same time.

(require :sock)

(defpackage "ECHO-SERVER" (:use "CL" "PORT"))
(in-package "ECHO-SERVER")

(defvar *log-lock* (make-lock :name "log"))

(defun log-line (control &rest args)
  (with-lock (*log-lock*)
    (format t "~?~%" control args)
    (finish-output)))

(defun echo (sock)
  "Send every line read from SOCK back, until the peer closes; then close SOCK."
  (let ((peer "?") (lines 0))
    (handler-case
        (multiple-value-bind (host port) (socket-host/port sock)
          (setf peer (format nil "~A:~D" host port))
          (log-line "~A connected" peer)
          (loop for line = (read-line sock nil)
                while line
                do (write-line line sock)
                   (finish-output sock)
                   (incf lines))
          (log-line "~A closed after ~D line~:P" peer lines))
      (error (c) (log-line "~A dropped after ~D line~:P: ~A" peer lines c)))
    (ignore-errors (close sock :abort t))))

(defun serve (port &key (interface "127.0.0.1") max)
  (let ((server (open-socket-server port :interface interface))
        (clients '()))
    (unwind-protect
         (progn
           (multiple-value-bind (host port) (socket-server-host/port server)
             (log-line "echo-server: listening on ~A:~D" host port))
           (loop for n from 1
                 while (or (null max) (<= n max))
                 do (push (make-process (format nil "echo ~D" n) #'echo (socket-accept server))
                          clients)))
      (socket-server-close server)
      (process-wait "clients" (lambda () (notany #'process-active-p clients)))
      (log-line "echo-server: stopped"))))

(defun main (args)
  (flet ((option (name)
           (second (member name args :test #'string=))))
    (if (null args)
        (format *error-output* "usage: echo-server.lisp PORT [--interface ADDR] [--max N]~%")
        (serve (parse-integer (first args))
               :interface (or (option "--interface") "127.0.0.1")
               :max (let ((m (option "--max"))) (and m (parse-integer m)))))))

(main (cddr (member "-shell" ext:*command-args* :test #'string=)))
