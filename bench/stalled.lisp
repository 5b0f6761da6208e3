;;;; stalled.lisp - `make bench`: what stalled peers cost (issue 17).
;;;;
;;;; Owns: one measurement in one ECL process.  STALLED_PEERS (default
;;;; 1000) connections whose peer never reads hold output (each writer
;;;; wrote more than the peer's small buffers take, then WRITE-LINE: the
;;;; rest waits in the stream for the flusher); one more connection does
;;;; line round trips (an echo thread on one end, WRITE-LINE + FORCE-OUTPUT
;;;; and READ-LINE on the other) for RTT_SECONDS (default 3).  Printed:
;;;; the CPU time the process uses per second (getrusage, user + system)
;;;; while only the stalled peers exist, the round-trip rate and the CPU
;;;; per second with and without the stalled peers, their ratios, and the
;;;; send system calls per second (ECLSOCK::%SEND-CALLS).
;;;; Must not: assert anything (a benchmark, not a test); contact another host.
;;;;
;;;; Run by `make bench` (compiled first, like bench.lisp): see bench/local.mk.

(defpackage "BENCH-STALLED" (:use "CL" "SOCKET") (:export "MAIN"))
(in-package "BENCH-STALLED")

(ffi:clines "#include <sys/resource.h>")

(defun cpu-seconds ()
  "User + system CPU seconds this process has used (getrusage)."
  (ffi:c-inline () () :double
    "{ struct rusage u; getrusage(RUSAGE_SELF, &u);
       @(return) = u.ru_utime.tv_sec + u.ru_stime.tv_sec
                   + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6; }"))

(defun now () (/ (get-internal-real-time) internal-time-units-per-second 1d0))

(defun env-number (name default)
  (let ((v (ext:getenv name)))
    (or (and v (ignore-errors (parse-integer v))) default)))

(defun pair (server)
  (let ((c (socket-connect (socket-server-port server) "127.0.0.1" :timeout 5)))
    (values c (socket-accept server :timeout 5))))

(defun stall (server n)
  "N pairs whose client holds output for a peer that does not read."
  (let ((data (make-array 24576 :element-type '(unsigned-byte 8) :initial-element 65))
        (pairs '()))
    (dotimes (i n pairs)
      (multiple-value-bind (c s) (pair server)
        (socket-options c :so-sndbuf 4096)
        (loop for start from 0 below (length data) by 4096
              do (write-sequence data c :start start :end (+ start 4096)))
        (write-line "held" c)
        (push (cons c s) pairs)))))

(defun measure (seconds thunk)
  "Run THUNK for about SECONDS; values its result, CPU seconds per second
and send calls per second."
  (let ((c0 (cpu-seconds)) (s0 (eclsock::%send-calls)) (t0 (now)))
    (let ((r (funcall thunk seconds)))
      (let ((dt (- (now) t0)))
        (values r (/ (- (cpu-seconds) c0) dt) (/ (- (eclsock::%send-calls) s0) dt))))))

(defun round-trips (c seconds)
  "Round trips per second on C (its peer echoes lines) for SECONDS."
  (let ((line (make-string 63 :initial-element #\x))
        (end (+ (now) seconds)) (n 0) (t0 (now)))
    (loop while (< (now) end)
          do (dotimes (i 100)
               (write-line line c)
               (force-output c)
               (unless (equal (read-line c nil nil) line)
                 (error "bad echo")))
             (incf n 100))
    (/ n (- (now) t0))))

(defun idle (seconds) (sleep seconds) nil)

(defun main ()
  (let* ((n (env-number "STALLED_PEERS" 1000))
         (seconds (env-number "RTT_SECONDS" 3))
         (server (socket-server 0 :interface "127.0.0.1" :backlog 256)))
    (socket-options server :so-rcvbuf 4096)
    (multiple-value-bind (c s) (pair server)
      (let ((echo (mp:process-run-function
                   "echo" (lambda ()
                            (ignore-errors
                             (loop for l = (read-line s nil nil)
                                   while l do (write-line l s) (force-output s)))))))
        (round-trips c 0.5)             ; warm up
        (multiple-value-bind (rate0 cpu0 sends0) (measure seconds (lambda (sec) (round-trips c sec)))
          (let ((pairs (stall server n)))
            (sleep 1)
            (multiple-value-bind (none cpu-idle sends-idle) (measure 2 #'idle)
              (declare (ignore none))
              (multiple-value-bind (rate1 cpu1 sends1) (measure seconds (lambda (sec) (round-trips c sec)))
                (format t "~&stalled peers: ~D, each holding ~D octets (of 24580 written)~%"
                        n (if pairs (eclsock::%stream-pending-output (car (first pairs))) 0))
                (format t "~&~42A ~12A ~12A ~8A~%" "" "no stalled" "stalled" "ratio")
                (format t "~&~42A ~12D ~12D ~8,2F~%" "line round trips/s (63 chars)"
                        (round rate0) (round rate1) (/ rate1 rate0))
                (format t "~&~42A ~12,3F ~12,3F ~8,2F~%" "CPU s/s while doing round trips"
                        cpu0 cpu1 (if (plusp cpu0) (/ cpu1 cpu0) 0))
                (format t "~&~42A ~12D ~12D~%" "send calls/s while doing round trips"
                        (round sends0) (round sends1))
                (format t "~&~42A ~12A ~12,3F~%" "CPU s/s with only the stalled peers" "-" cpu-idle)
                (format t "~&~42A ~12A ~12D~%" "send calls/s with only the stalled peers" "-" (round sends-idle))
                (format t "~&targets (issue 17): ~~0 CPU for the stalled peers; round trips >= 0.9 x~%")
                (loop for (a . b) in pairs do (close b) (close a))))))
        (close c) (close s)
        (mp:process-join echo)
        (socket-server-close server)))))
