;;;; echo-server.lisp - a line echo server, one process per connection,
;;;; in CLOCC PORT style.
;;;;
;;;; Run:  ecl -norc -shell examples/echo-server.lisp 7007
;;;; then: ecl -norc -shell examples/echo-client.lisp 127.0.0.1 7007
;;;;
;;;; Arguments: PORT (0: any free port; the first line printed says
;;;; which), then --interface ADDR (default 127.0.0.1) and --max N (stop
;;;; after N connections; default never), --max-clients N (clients served
;;;; at once, default 64: the others get the line "busy, try later" and
;;;; are closed) and --idle SECONDS (a client silent that long is dropped,
;;;; default 300).  Each client gets its lines back until it closes;
;;;; clients are served at the same time.  A process that cannot be made
;;;; (storage exhausted) refuses that client only; the listener goes on.

(require :sock)

(defpackage "ECHO-SERVER" (:use "CL" "PORT"))
(in-package "ECHO-SERVER")

(defvar *log-lock* (make-lock :name "log"))
(defvar *active-lock* (make-lock :name "active clients"))
(defvar *active* 0 "Client processes running now.")

(defun count-active (delta)
  (with-lock (*active-lock*) (incf *active* delta)))

(defun refuse (sock why)
  "Tell SOCK the server is busy and close it, without waiting for the client."
  (ignore-errors (write-line "busy, try later" sock) (finish-output sock))
  (ignore-errors (close sock :abort t))
  (log-line "refused: ~A" why))

(defun log-line (control &rest args)
  (with-lock (*log-lock*)
    (format t "~?~%" control args)
    (finish-output)))

(defun echo (sock idle)
  "Send every line read from SOCK back, until the peer closes or stays
silent for IDLE seconds; then close SOCK."
  (let ((peer "?") (lines 0))
    (handler-case
        (multiple-value-bind (host port) (socket-host/port sock)
          (setf peer (format nil "~A:~D" host port))
          (log-line "~A connected" peer)
          (loop for line = (with-timeout (idle :idle) (read-line sock nil))
                while (stringp line)
                do (write-line line sock)
                   (finish-output sock)
                   (incf lines))
          (log-line "~A closed after ~D line~:P" peer lines))
      (serious-condition (c) (log-line "~A dropped after ~D line~:P: ~A" peer lines c)))
    (ignore-errors (close sock :abort t))
    (count-active -1)))

(defun serve (port &key (interface "127.0.0.1") max (max-clients 64) (idle 300))
  (let ((server (open-socket-server port :interface interface))
        (clients '()))
    (unwind-protect
         (progn
           (multiple-value-bind (host port) (socket-server-host/port server)
             (log-line "echo-server: listening on ~A:~D" host port))
           (loop for n from 1
                 while (or (null max) (<= n max))
                 do (let ((sock (socket-accept server)))
                      (cond ((>= (count-active 0) max-clients)
                             (refuse sock (format nil "~D clients already" max-clients)))
                            (t
                             (count-active 1)
                             (handler-case
                                 (push (make-process (format nil "echo ~D" n) #'echo sock idle)
                                       clients)
                               (serious-condition (c) ; e.g. STORAGE-EXHAUSTED
                                 (count-active -1)
                                 (refuse sock c)))
                             (setf clients (remove-if-not #'process-active-p clients)))))))
      (socket-server-close server)
      (process-wait "clients" (lambda () (notany #'process-active-p clients)))
      (log-line "echo-server: stopped"))))

(defun main (args)
  (flet ((option (name)
           (second (member name args :test #'string=))))
    (if (null args)
        (format *error-output* "usage: echo-server.lisp PORT [--interface ADDR] [--max N] [--max-clients N] [--idle SECONDS]~%")
        (serve (parse-integer (first args))
               :interface (or (option "--interface") "127.0.0.1")
               :max (let ((m (option "--max"))) (and m (parse-integer m)))
               :max-clients (parse-integer (or (option "--max-clients") "64"))
               :idle (read-from-string (or (option "--idle") "300"))))))

(main (cddr (member "-shell" ext:*command-args* :test #'string=)))
