;;;; stream.lisp - soak workload 2 (make soak): 256 MiB through one
;;;; stream while the GC runs in a loop and the reader and the writer are
;;;; interrupted thousands of times.
;;;;
;;;; Owns: the bulk-transfer soak: one loopback TCP stream of octets, a
;;;;   writer thread and a reader thread, a thread calling (ext:gc t) in a
;;;;   loop and a thread sending MP:INTERRUPT-PROCESS (a function that only
;;;;   counts) to the reader and the writer; checksums on both ends, an
;;;;   octet-by-octet comparison on the reading end; MiB/s.
;;;; Must not: run under `make check` (too long), contact another host,
;;;;   assert on speed (MiB/s is printed, never judged).
;;;;
;;;; At least 256 MiB are sent; the writer goes on (same stream) until
;;;; each of the reader and the writer has run 5,000 interrupts: at
;;;; loopback speed 256 MiB take under a second, too short for thousands.
;;;;
;;;; Verdict: FAIL when the reader does not get exactly the octets sent
;;;; (count, checksum of both ends, every octet against the pattern), when
;;;; a thread fails, or when fewer than 5,000 interrupts reached each of
;;;; the reader and the writer within 240 s (then the run did not test
;;;; what it says).

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "SOAK-STREAM" (:use "CL" "HARNESS"))
(in-package "SOAK-STREAM")

(defparameter *mib*
  (or (ignore-errors (parse-integer (ext:getenv "SOAK_MIB"))) 256)
  "MiB sent; $SOAK_MIB overrides, for a short trial.")
(defconstant +chunk+ 65536 "Octets per write-sequence (and per comparison on the reader's side).")
(defconstant +pattern+ (* 1024 1024) "Octets of random pattern the chunks are cut from.")
(defparameter *min-interrupts* 5000
  "Interrupts each of reader and writer must have run: the writer goes on past
*MIB* until they have.")
(defparameter *max-seconds*
  (or (ignore-errors (parse-integer (ext:getenv "SOAK_MAX_SECONDS"))) 240)
  "The writer stops then, even short of *MIN-INTERRUPTS*.")

(deftype octets () '(simple-array (unsigned-byte 8) (*)))

(defun adler (vector start end sum)
  "SUM (an Adler-32 value) continued over VECTOR[START, END): position-sensitive."
  (declare (type octets vector) (fixnum start end) (optimize (speed 3) (safety 0)))
  (let ((a (logand sum #xffff)) (b (ldb (byte 16 16) sum)) (i start))
    (declare (fixnum a b i))
    (loop while (< i end)
          do (let ((stop (min end (+ i 5552))))   ; no fixnum overflow before the MODs
               (declare (fixnum stop))
               (loop while (< i stop)
                     do (setf a (+ a (aref vector i)) b (+ b a))
                        (incf i))
               (setf a (mod a 65521) b (mod b 65521))))
    (logior (ash b 16) a)))

(defun chunk-start (k)
  "Where chunk K starts in the pattern: every chunk is cut at another place,
so a lost, repeated or reordered chunk does not compare equal."
  (mod (* k 4099) +pattern+))

(defun mismatches (got pattern start)
  (declare (type octets got pattern) (fixnum start) (optimize (speed 3) (safety 0)))
  (let ((n 0))
    (declare (fixnum n))
    (dotimes (i +chunk+ n)
      (unless (= (aref got i) (aref pattern (+ start i))) (incf n)))))

(defun read-full (stream buffer)
  "Fill BUFFER from STREAM; the octets read (fewer only at end of file)."
  (let ((n 0))
    (loop while (< n (length buffer))
          do (let ((end (read-sequence buffer stream :start n)))
               (when (= end n) (return))
               (setf n end)))
    n))

(deftest transfer-under-gc-and-interrupts (:timeout 600)
  (let* ((chunks (/ (* *mib* 1024 1024) +chunk+))
         (pattern (random-octets (+ +pattern+ +chunk+)))
         (server (socket:socket-server 0 :interface "127.0.0.1"))
         (port (socket:socket-server-port server))
         (done nil)
         (delivered (vector 0 0)) ; 0: reader, 1: writer; atomic: an
                                     ; interrupt may land inside the last one's INCF
         (sent (make-array 2 :initial-element 0))
         (send-errors 0)
         (gcs 0)
         reader writer gc-loop interrupter)
    (unwind-protect
         (let ((start (get-internal-real-time)))
           (setf reader
                 (spawn "soak reader"
                        (lambda ()
                          (with-open-stream (s (socket:socket-accept
                                                server :element-type '(unsigned-byte 8)))
                            (let ((buffer (make-array +chunk+ :element-type '(unsigned-byte 8)))
                                  (sum 1) (total 0) (bad 0) (k 0))
                              (loop for n = (read-full s buffer)
                                    do (setf sum (adler buffer 0 n sum))
                                       (incf total n)
                                       (cond ((= n +chunk+)
                                              (incf bad (mismatches buffer pattern (chunk-start k))))
                                             ((plusp n) (incf bad n))) ; short or extra
                                       (incf k)
                                    while (= n +chunk+))
                              (list total sum bad))))))
           (setf writer
                 (spawn "soak writer"
                        (lambda ()
                          (with-open-stream (s (socket:socket-connect
                                                port "127.0.0.1" :element-type '(unsigned-byte 8)))
                            (let ((sum 1))
                              ;; at least *MIB*, and on until both threads have run
                              ;; *MIN-INTERRUPTS* interrupts (at most *MAX-SECONDS*)
                              (loop for k from 0
                                    while (or (< k chunks)
                                              (and (< (min (aref delivered 0) (aref delivered 1))
                                                      *min-interrupts*)
                                                   (< (- (get-internal-real-time) start)
                                                      (* *max-seconds* internal-time-units-per-second))))
                                    do (let ((at (chunk-start k)))
                                         (write-sequence pattern s :start at :end (+ at +chunk+))
                                         (setf sum (adler pattern at (+ at +chunk+) sum)))
                                    finally (finish-output s)
                                            (return (list (* k +chunk+) sum))))))))
           (setf gc-loop
                 (spawn "soak gc"
                        (lambda ()
                          (loop until done
                                do (ext:gc t) (incf gcs) (sleep 0.005)))))
           (setf interrupter
                 (spawn "soak interrupter"
                        (lambda ()
                          (let ((targets (vector reader writer))
                                (actions (vector (lambda () (mp:atomic-incf (svref delivered 0)))
                                                 (lambda () (mp:atomic-incf (svref delivered 1))))))
                            (loop until done
                                  do (dotimes (i 2)
                                       ;; one at a time per thread: the next is sent
                                       ;; once the last one has run.  With several
                                       ;; pending, ECL 21.2.1 itself nests its signal
                                       ;; handlers until the stack overflows (SIGSEGV)
                                       ;; or hangs, without any socket: two busy
                                       ;; threads, (ext:gc t) in a loop, 8 pending
                                       ;; interrupts: 1 crash and 1 hang in 3 runs of
                                       ;; 15 s; one pending: 4 clean runs of 15 s.
                                       (when (and (= (aref sent i) (aref delivered i))
                                                  (mp:process-active-p (aref targets i)))
                                         (if (ignore-errors
                                              (mp:interrupt-process (aref targets i) (aref actions i))
                                              t)
                                             (incf (aref sent i))
                                             (incf send-errors))))
                                     (mp:process-yield))))))
           (let* ((w (let ((v (join writer :error-ok t))) (if (eq :error (first v)) v (first v))))
                  (r (let ((v (join reader :error-ok t))) (if (eq :error (first v)) v (first v))))
                  (seconds (/ (- (get-internal-real-time) start) internal-time-units-per-second)))
             (setf done t)
             (join gc-loop)
             (join interrupter)
             (when (integerp (first w))
               (let ((mib (/ (first w) 1024 1024)))
                 (format t "~&  sent ~D octets (~,1F MiB, at least ~D asked) in ~,2F s: ~,1F MiB/s~%"
                         (first w) mib *mib* seconds (/ mib (max 1/1000 seconds)))))
             (format t "~&  full GCs during the transfer: ~D~%" gcs)
             (format t "~&  interrupts sent/run: reader ~D/~D, writer ~D/~D (~D send errors, ~
                        after the peer ended)~%"
                     (aref sent 0) (aref delivered 0) (aref sent 1) (aref delivered 1) send-errors)
             (format t "~&  writer: ~S~%  reader: ~S~%" w r)
             (is (not (eq :error (first w))) "the writer finished")
             (is (not (eq :error (first r))) "the reader finished")
             (when (and (integerp (first w)) (integerp (first r)))
               (destructuring-bind (w-total w-sum) w
                 (destructuring-bind (r-total r-sum r-bad) r
                   (format t "~&  octets: ~D written, ~D read; checksum ~8,'0X written, ~8,'0X read; ~
                              ~D octets differ from the pattern~%"
                           w-total r-total w-sum r-sum r-bad)
                   (is (= w-total r-total) "every octet arrived, no more")
                   (is (>= w-total (* chunks +chunk+)) "at least *MIB* sent")
                   (is (= w-sum r-sum) "same checksum on both ends")
                   (is (zerop r-bad) "every octet is the one sent"))))
             (is (plusp gcs) "the GC ran during the transfer")
             (is (>= (aref delivered 0) *min-interrupts*) "the reader was interrupted often")
             (is (>= (aref delivered 1) *min-interrupts*) "the writer was interrupted often")))
      (setf done t)
      (socket:socket-server-close server))))
