;;;; repl-server.lisp - a Lisp REPL over TCP, written with CLISP's SOCKET
;;;; API: SOCKET-SERVER, SOCKET-STATUS, SOCKET-ACCEPT, SOCKET-STREAM-PEER
;;;; and SOCKET-STREAM-LOCAL.
;;;;
;;;;   *** It EVALUATES WHATEVER IT IS SENT, with the rights of the ***
;;;;   *** account that runs it.  Anyone who can connect owns you.  ***
;;;;
;;;; Run:  ecl -norc -shell examples/repl-server.lisp 7008
;;;; then: clisp -q -x '(with-open-stream (s (socket:socket-connect 7008 "127.0.0.1"))
;;;;         (write-line "(+ 1 2)" s) (force-output s) (read-line s))'
;;;;
;;;; Arguments: PORT (0: any free port; the first line printed says
;;;; which), then --interface ADDR (default 127.0.0.1: only this machine;
;;;; anything else is your own risk) and --max N (stop once N connections
;;;; have come and gone; default never).
;;;;
;;;; One process serves every client: SOCKET-STATUS says which clients
;;;; have input and whether a new one is waiting, so nobody blocks anybody
;;;; (except a form that takes long to evaluate).  Each complete form a
;;;; client sends is evaluated in CL-USER and answered with one line: the
;;;; values, printed readably and separated by spaces (empty for no
;;;; values), or ";; error: ..." .  *STANDARD-OUTPUT* goes to the client.
;;;; One log line per connection gives both addresses.

(require :sock)

(defpackage "REPL-SERVER" (:use "CL" "SOCKET"))
(in-package "REPL-SERVER")

(defparameter *max-pending* 65536 "Most characters of one unfinished form.")

(defparameter *max-clients* 64 "Clients at once; the others are refused.")
(defparameter *idle* 300 "Seconds a silent client keeps its place.")

(defstruct client
  stream
  (last (get-universal-time))
  (text (make-array 0 :element-type 'character :adjustable t :fill-pointer t)))

(defun answer (form stream)
  "Evaluate FORM with output to STREAM and write the one-line answer."
  (let ((values (handler-case (let ((*standard-output* stream)
                                    (*package* (find-package "CL-USER")))
                                (multiple-value-list (eval form)))
                  (error (c) (list :error c)))))
    (let ((*print-pretty* nil) (*print-readably* nil) (*package* (find-package "CL-USER")))
      (if (and (eq (first values) :error) (typep (second values) 'error))
          (format stream "~&;; error: ~A~%" (substitute #\Space #\Newline
                                                         (princ-to-string (second values))))
          (format stream "~&~{~S~^ ~}~%" values)))
    (force-output stream)))

(defun eval-pending (client)
  "Answer every complete form in CLIENT's text; keep the unfinished rest."
  (let ((text (client-text client)) (stream (client-stream client)))
    (loop
      (multiple-value-bind (form end)
          (handler-case (let ((*package* (find-package "CL-USER")))
                          (read-from-string text nil text))
            (end-of-file () (return))              ; unfinished: wait for more
            (reader-error (c)
              (format stream ";; error: ~A~%" (substitute #\Space #\Newline
                                                          (princ-to-string c)))
              (force-output stream)
              (values text (length text))))        ; drop the junk
        (let ((rest (subseq text end)))
          (setf (fill-pointer text) 0)
          (loop for ch across rest do (vector-push-extend ch text)))
        (when (eq form text) (return))             ; only blanks were left
        (answer form stream)))))

(defun read-available (client)
  "Take what CLIENT has sent; :EOF once it is gone."
  (let ((stream (client-stream client)))
    (loop for ch = (read-char-no-hang stream nil :eof)
          do (cond ((eq ch :eof) (return :eof))
                   ((null ch) (return nil))
                   ((>= (length (client-text client)) *max-pending*)
                    (format stream ";; error: form longer than ~D characters~%" *max-pending*)
                    (return :eof))
                   (t (vector-push-extend ch (client-text client)))))))

(defun serve (port &key (interface "127.0.0.1") max)
  "Serve on INTERFACE:PORT until MAX connections have come and gone
\(NIL: forever).  At most *MAX-CLIENTS* at once: the others get the line
\";; busy, try later\" and are closed; a client silent for *IDLE* seconds
is dropped."
  (let ((server (socket-server port :interface interface :backlog 8))
        (clients '())
        (accepted 0))
    (format *error-output* "~&;;; WARNING: this server EVALUATES ANY LISP FORM it is sent, ~
                            with this account's rights.~%~
                            ;;; Anyone who can connect to ~A:~D can run any program here.~%"
            (socket-server-host server) (socket-server-port server))
    (unless (member interface '("127.0.0.1" "::1" "localhost") :test #'string=)
      (format *error-output* ";;; WARNING: ~A is not a loopback address: OTHER MACHINES CAN CONNECT.~%"
              interface))
    (format t "repl-server: listening on ~A:~D~%" (socket-server-host server)
            (socket-server-port server))
    (finish-output)
    (unwind-protect
         (loop while (or clients (null max) (< accepted max))
               do (let* ((listening (or (null max) (< accepted max)))
                         (current clients)
                         (status (socket-status
                                  (append (and listening (list server))
                                          (mapcar (lambda (c) (cons (client-stream c) :input))
                                                  current))
                                  1)))
                    (when (and listening (pop status))
                      (let ((stream (socket-accept server)))
                        (incf accepted)
                        (when (>= (length clients) *max-clients*)
                          (ignore-errors (write-line ";; busy, try later" stream)
                                         (force-output stream))
                          (ignore-errors (close stream :abort t))
                          (format t "connection ~D refused: ~D clients already~%"
                                  accepted *max-clients*)
                          (finish-output)
                          (setf stream nil))
                      (when stream
                        (multiple-value-bind (peer peer-port) (socket-stream-peer stream t)
                          (multiple-value-bind (local local-port) (socket-stream-local stream t)
                            (format t "connection ~D: peer ~A:~D local ~A:~D~%"
                                    accepted peer peer-port local local-port)))
                        (finish-output)
                        (push (make-client :stream stream) clients))))
                    (let ((now (get-universal-time)))
                      (loop for client in current
                            for s in status
                            do (if s
                                   (setf (client-last client) now)
                                   (when (> (- now (client-last client)) *idle*)
                                     (ignore-errors (close (client-stream client) :abort t))
                                     (setf clients (remove client clients))))))
                    (loop for client in current
                          for s in status
                          when (and s (open-stream-p (client-stream client))) ; :INPUT, :EOF or :ERROR
                            do (let ((eof (handler-case (read-available client)
                                            (error () :eof))))
                                 (handler-case (eval-pending client)
                                   (error () (setf eof :eof)))
                                 (when (eq eof :eof)
                                   (ignore-errors (close (client-stream client) :abort t))
                                   (setf clients (remove client clients)))))))
      (dolist (c clients) (ignore-errors (close (client-stream c) :abort t)))
      (socket-server-close server)
      (format t "repl-server: stopped~%"))))

(defun main (args)
  (flet ((option (name) (second (member name args :test #'string=))))
    (if (null args)
        (format *error-output* "usage: repl-server.lisp PORT [--interface ADDR] [--max N] [--max-clients N] [--idle SECONDS]~%")
        (progn
          (let ((m (option "--max-clients")) (i (option "--idle")))
            (when m (setf *max-clients* (parse-integer m)))
            (when i (setf *idle* (parse-integer i))))
          (serve (parse-integer (first args))
               :interface (or (option "--interface") "127.0.0.1")
               :max (let ((m (option "--max"))) (and m (parse-integer m))))))))

(main (cddr (member "-shell" ext:*command-args* :test #'string=)))
