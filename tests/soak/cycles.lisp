;;;; cycles.lisp - soak workload 1 (make soak): 100,000 connection cycles
;;;; in one ECL process.
;;;;
;;;; Owns: the connection-cycle soak: connect, accept, one line each way,
;;;;   close both, over 127.0.0.1 with a kernel-chosen port; the open
;;;;   descriptor count (/proc/self/fd) and the RSS (/proc/self/status
;;;;   VmRSS) sampled every 10,000 cycles; cycles per second.
;;;; Must not: run under `make check` (too long), contact another host,
;;;;   assert on speed (cycles/s is printed, never judged).
;;;;
;;;; Verdict: FAIL when a line comes back wrong, when the descriptor count
;;;; at the end exceeds the one before the first cycle by more than 2 or
;;;; differs from the one after the warm-up by more than 2, or when the final RSS exceeds 1.5 x the RSS at 10,000 cycles (the
;;;; first 10,000 are the warm-up: ECL's heap and the stream buffers grow
;;;; to their working size).

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "SOAK-CYCLES" (:use "CL" "HARNESS"))
(in-package "SOAK-CYCLES")

(defparameter *cycles*
  (or (ignore-errors (parse-integer (ext:getenv "SOAK_CYCLES"))) 100000)
  "Connection cycles; $SOAK_CYCLES (a multiple of *EVERY*) overrides, for a short trial.")
(defparameter *every* 10000 "Cycles between two samples.")
(defparameter *rss-factor* 3/2 "Final RSS may be at most this times the RSS after the warm-up.")
(defparameter *fd-slack* 2 "Descriptors the count may differ by at the end.")

(defun rss-kib ()
  "This process's resident set size in KiB (VmRSS of /proc/self/status)."
  (with-open-file (in "/proc/self/status")
    (loop for line = (read-line in nil)
          while line
          do (when (eql 0 (search "VmRSS:" line))
               (return (parse-integer line :start 6 :junk-allowed t))))))

(defun one-cycle (server i)
  "Connect to SERVER, accept, send a line each way, close both; true when
both lines arrived intact."
  (let* ((client (socket:socket-connect (socket:socket-server-port server) "127.0.0.1"))
         (peer (socket:socket-accept server))
         (ok nil))
    (unwind-protect
         (let ((line (format nil "cycle ~D" i)))
           (write-line line client)
           (finish-output client)
           (when (equal (read-line peer) line)
             (write-line "ok" peer)
             (finish-output peer)
             (setf ok (equal (read-line client) "ok"))))
      ;; the accepting side closes first: the TIME_WAIT entry stays on the
      ;; server's side and the client's ephemeral ports are free again at once
      (close peer)
      (close client))
    ok))

(deftest connection-cycles (:timeout 900)
  (let ((server (socket:socket-server 0 :interface "127.0.0.1"))
        (bad 0)
        (samples '()))
    (unwind-protect
         (let* ((fd0 (progn (ext:gc t) (open-fd-count))) ; compiling left some to finalize
                (rss0 (rss-kib))
                (start (get-internal-real-time)))
           (format t "~&  cycles: ~D, sample every ~D~%" *cycles* *every*)
           (format t "~&  ~8@A ~6@A ~10@A ~10@A~%" "cycle" "fds" "RSS KiB" "cycles/s")
           (format t "~&  ~8D ~6D ~10D ~10@A~%" 0 fd0 rss0 "-")
           (finish-output)
           (let ((mark start))
             (loop for i from 1 to *cycles*
                   do (unless (one-cycle server i) (incf bad))
                      (when (zerop (mod i *every*))
                        (let* ((now (get-internal-real-time))
                               (rate (/ *every* (max 1/1000 (/ (- now mark)
                                                               internal-time-units-per-second))))
                               (sample (list i (open-fd-count) (rss-kib))))
                          (setf mark now)
                          (push sample samples)
                          (format t "~&  ~8D ~6D ~10D ~10,1F~%"
                                  (first sample) (second sample) (third sample) rate)
                          (finish-output)))))
           (let* ((seconds (/ (- (get-internal-real-time) start)
                              internal-time-units-per-second))
                  (samples (reverse samples))
                  (warm (third (first samples)))
                  (final (car (last samples)))
                  (fd-final (second final))
                  (rss-final (third final)))
             (format t "~&  ~D cycles in ~,1F s: ~,1F cycles/s~%" *cycles* seconds
                     (/ *cycles* (max 1/1000 seconds)))
             (format t "~&  descriptors: ~D before, ~D after (allowed: +-~D)~%"
                     fd0 fd-final *fd-slack*)
             (format t "~&  RSS: ~D KiB at start, ~D KiB after the warm-up (~D cycles), ~
                        ~D KiB at the end: x~,2F (allowed: x~,2F)~%"
                     rss0 warm *every* rss-final (/ rss-final warm) *rss-factor*)
             (format t "~&  lines wrong: ~D~%" bad)
             (is (zerop bad) "every line came back intact")
             (is (<= fd-final (+ fd0 *fd-slack*)) "no descriptor leaked")
             (is (<= (abs (- fd-final (second (first samples)))) *fd-slack*)
                 "the descriptor count stays flat after the warm-up")
             (is (<= rss-final (* *rss-factor* warm)) "RSS bounded after the warm-up")))
      (socket:socket-server-close server))))
