;;;; flood.lisp - soak workload 3 (make soak): a flood of 2,000 idle
;;;; loopback connections against each example server.
;;;;
;;;; Owns: the flood soak of examples/http-server.lisp, echo-server.lisp,
;;;;   sum-server.lisp and repl-server.lisp, each started as a child ECL
;;;;   process the way a user starts it (ecl -norc -shell ..., port 0,
;;;;   --max-clients 32 --idle 2, under `timeout` so it ends even if this
;;;;   process dies), then stopped.
;;;; Must not: run under `make check` (tests/lisp/test-examples.lisp holds
;;;;   the short floods of the HTTP and echo examples), contact another host.
;;;;
;;;; Per server: a normal client is served before the flood; 2,000 idle
;;;; connections are opened in 4 waves of 500, and after each wave a normal
;;;; client must be served (it retries on the server's busy answer, at most
;;;; 60 times, 0.1 s apart: the 32 slots free up as idle clients are
;;;; dropped after 2 s; the HTTP and echo servers, on the poller, have no
;;;; slots and must answer at the first try); the answers the flood connections got are counted
;;;; (busy line, end of file, nothing); after the flood is released a normal
;;;; client must be served at its first try; the server must still run.
;;;; The whole file is skipped (exit 77, reason printed) when the soft limit
;;;; of descriptors cannot hold the flood (run-soak raises it to the hard one).

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "SOAK-FLOOD" (:use "CL" "HARNESS"))
(in-package "SOAK-FLOOD")

(defparameter *flood* 2000 "Idle connections held at once.")
(defparameter *waves* 4)
(defparameter *tries* 60 "Tries of a normal client during the flood (each bounded by 2 + 2 s).")

;;; ------------------------------------------------------------------
;;; The server, a child process

;; START-EXAMPLE (the harness's) runs each server under `timeout -k 5 600`,
;; so that it ends even if this process dies; STOP relies on it.
(setf *example-time-limit* 600)

(defun listening-port (p)
  "The port at the end of P's first line that says \"listening\"."
  (loop repeat 400
        do (let ((line (find "listening" (program-output p) :test #'search)))
             (when line
               (let ((end (length (string-right-trim " " line))))
                 (return (parse-integer line :start (1+ (position-if-not #'digit-char-p line
                                                                          :end end :from-end t))
                                             :end end))))
             (sleep 0.05))
        finally (error "no \"listening\" line; output: ~S" (program-output p))))

(defun running-p (p) (eq :running (ext:external-process-status (program-process p))))

(defun stop (p)
  "SIGTERM to `timeout`, which passes it on to the server and sends it a
SIGKILL 5 s later if it still runs (a SIGKILL to `timeout` would leave the
server running, holding the output pipe); `timeout`'s exit code: 143 when
the SIGTERM ended the server, 137 when it had to be killed."
  (ext:terminate-process (program-process p))
  (ext:external-process-wait (program-process p) t)
  (mp:process-join (program-reader p))
  (nth-value 1 (ext:external-process-status (program-process p))))

;;; ------------------------------------------------------------------
;;; Clients

(defun first-line (stream seconds)
  "STREAM's first line (a trailing CR removed), :EOF, or NIL after SECONDS of silence."
  (let ((status (socket:socket-status (cons stream :input) seconds)))
    (if (member status '(:input :eof :io))
        (let ((line (ignore-errors (mp:with-timeout (seconds nil) (read-line stream nil :eof)))))
          (if (stringp line) (string-right-trim '(#\Return) line) line))
        nil)))

(defun ask (port request)
  "A normal client: send REQUEST, return the first line of the answer."
  (handler-case
      (with-open-stream (s (socket:socket-connect port "127.0.0.1" :timeout 2))
        (write-string request s)
        (finish-output s)
        (first-line s 2))
    (socket:socket-error (c) (list :error (princ-to-string c)))))

(defun served (port server &optional (tries *tries*))
  "Ask until the answer is the expected one: the number of tries it took, or
NIL; the second value lists the other answers seen."
  (let ((others '()))
    (loop for try from 1 to tries
          for answer = (ask port (getf server :request))
          do (when (equal answer (getf server :answer))
               (return-from served (values try (nreverse others))))
             (push answer others)
             (sleep 0.1))
    (values nil (nreverse others))))

(defun flood (port n)
  "Open N idle connections to PORT: the streams, and how many connects failed."
  (let ((streams '()) (failed 0))
    (dotimes (i n)
      (handler-case (push (socket:socket-connect port "127.0.0.1" :timeout 5) streams)
        (socket:socket-error () (incf failed))))
    (values streams failed)))

(defun tally (streams busy)
  "What the flood connections got so far: (busy eof other silent others),
OTHERS the distinct other first lines."
  (let ((busy-n 0) (eof 0) (other 0) (silent 0) (others '()))
    (dolist (s streams)
      (let ((line (first-line s 0)))
        (cond ((null line) (incf silent))
              ((eq line :eof) (incf eof))
              ((equal line busy) (incf busy-n))
              (t (incf other) (pushnew line others :test #'equal)))))
    (list busy-n eof other silent others)))

;;; ------------------------------------------------------------------
;;; The workload

(defun flood-server (name server)
  (let* ((began (get-internal-real-time))
         (p (apply #'start-example (getf server :script)
                   (append (list "0") (getf server :args)
                           (list "--max-clients" "32" "--idle" "2"))))
         (idle '()))
    (unwind-protect
         (let ((port (listening-port p)) (failed 0) (during '()))
           (format t "~&  ~A on port ~D~%" name port)
           (is (eql 1 (served port server 1)) "served before the flood")
           (dotimes (wave *waves*)
             (multiple-value-bind (streams f) (flood port (floor *flood* *waves*))
               (setf idle (nconc streams idle))
               (incf failed f))
             (multiple-value-bind (tries others) (served port server)
               (push tries during)
               (format t "~&  wave ~D: ~D idle connections held; a normal client served ~
                          at try ~A~@[ (before: ~{~S~^, ~})~]~%"
                       (1+ wave) (length idle) tries
                       (remove-duplicates others :test #'equal))
               (finish-output)))
           (setf during (nreverse during))
           (destructuring-bind (busy eof other silent others) (tally idle (getf server :busy))
             (format t "~&  ~A: ~D connections opened, ~D failed to connect; the flood got ~
                        ~D busy answers, ~D closed by the server (idle), ~D other~@[ ~S~], ~
                        ~D still held~%"
                     name (length idle) failed busy eof other others silent)
             (is (= (length idle) *flood*) "every flood connection was opened")
             (if (getf server :busy)
                 (is (plusp busy) "clients over the cap were told busy")
                 (is (every (lambda (tries) (eql tries 1)) during)
                     "on the poller: a normal client is served at its first try in every wave")))
           (mapc (lambda (s) (close s :abort t)) idle)
           (setf idle '())
           (sleep 1)
           (multiple-value-bind (after others) (served port server 1)
             (let ((alive (running-p p))
                   (exhausted (find-if (lambda (l) (search "STORAGE-EXHAUSTED" (string-upcase l)))
                                       (program-output p))))
               (format t "~&  ~A: served during the flood: ~D of ~D waves (tries ~{~A~^, ~}); ~
                          served after: ~:[NO~;yes, first try~]~@[ ~S~]; still running: ~:[NO~;yes~]~
                          ~@[; log: ~A~]~%"
                       name (count-if #'integerp during) *waves* during after others alive exhausted)
               (is (every #'integerp during) "a normal client is served during every wave")
               (is (eql 1 after) "a normal client is served at once after the flood")
               (is alive "the server still runs")
               (is (not exhausted) "no storage exhaustion"))))
      (mapc (lambda (s) (close s :abort t)) idle)
      (let ((code (stop p)))
        (format t "~&  ~A stopped: ~:[exit code ~A~;SIGTERM ended it~*~]; ~,1F s in all~%"
                name (member code (quote (15 143))) (if (member code (quote (9 137))) "SIGKILL: SIGTERM did not end it in 5 s" code)
                (/ (- (get-internal-real-time) began) internal-time-units-per-second))))))

(defparameter *servers*
  (list (list :name "http-server"
              :script "http-server.lisp"
              :args (list (namestring (truename (example-file "www/"))))
              :request (format nil "GET /hello.txt~C~C" #\Return #\Linefeed)
              :answer "Hello from ecl-sock."
              :busy nil)                ; on the poller: never busy
        (list :name "echo-server" :script "echo-server.lisp" :args '()
              :request (format nil "soak ping~%") :answer "soak ping"
              :busy nil)                ; on the poller: never busy
        (list :name "sum-server" :script "sum-server.lisp" :args '()
              :request (format nil "1 2~%") :answer "3"
              :busy "(:error \"busy, try later\")")
        (list :name "repl-server" :script "repl-server.lisp" :args '()
              :request (format nil "(+ 1 2)~%") :answer "3"
              :busy ";; busy, try later")))

(deftest flood-http-server (:timeout 300) (flood-server "http-server" (first *servers*)))
(deftest flood-echo-server (:timeout 300) (flood-server "echo-server" (second *servers*)))
(deftest flood-sum-server (:timeout 300) (flood-server "sum-server" (third *servers*)))
(deftest flood-repl-server (:timeout 300) (flood-server "repl-server" (fourth *servers*)))

;;; The flood needs *FLOOD* descriptors here, plus room for the rest.
(let* ((text (with-output-to-string (out)
               (ext:run-program "/bin/sh" '("-c" "ulimit -Sn") :output out)))
       (limit (parse-integer text :junk-allowed t))
       (room (and limit (- limit (open-fd-count)))))
  (when (or (null room) (< room (+ *flood* 100)))
    (skip-test-file
     (format nil "~D idle connections need ~D descriptors; the soft limit (~A) leaves ~A ~
                  and the hard limit is too low to raise it"
             *flood* (+ *flood* 100) (string-trim '(#\Newline) text) room))))
