;;;; test-robust.lisp - robustness of the core: IPv6, bulk data both ways,
;;;; pipelining, full duplex on one stream, socket-status above fd 1023,
;;;; peers that vanish, interrupts and kills of blocked threads, descriptor
;;;; leaks, data under GC pressure, close that never hangs, finalizers.
;;;;
;;;; Every test asserts what a user sees (octets, lines, conditions,
;;;; statuses, the process's descriptor count).  Servers accept with a
;;;; timeout so that no thread outlives a failed test for long.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "TEST-ROBUST" (:use "CL" "SOCKET" "HARNESS"))
(in-package "TEST-ROBUST")

;;; ------------------------------------------------------------------
;;; Helpers

(deftype octets () '(simple-array (unsigned-byte 8) (*)))
(defconstant +chunk+ 65536 "Octets per write-sequence / read-sequence call.")
(defparameter +octet+ '(unsigned-byte 8))

(defun adler (vector start end sum)
  "Adler-32 of VECTOR[START,END) continuing from SUM (start with 1); the
same function as HARNESS:CHECKSUM, fast enough for 256 MiB."
  (declare (type octets vector) (fixnum start end sum)
           (optimize (speed 3) (safety 0)))
  (let ((a (logand sum #xffff)) (b (ash sum -16)))
    (declare (fixnum a b))
    (loop while (< start end)
          do (let ((stop (min end (+ start 5000))))
               (declare (fixnum stop))
               (loop for i of-type fixnum from start below stop
                     do (setf a (+ a (aref vector i)) b (+ b a)))
               (setf a (mod a 65521) b (mod b 65521) start stop)))
    (logior (ash b 16) a)))

(defun fresh-octets (n)
  "N random octets (compiled: HARNESS:RANDOM-OCTETS is slow for megabytes)."
  (declare (fixnum n) (optimize (speed 3)))
  (let ((v (make-array n :element-type '(unsigned-byte 8)))
        (state (make-random-state t)))
    (loop for i of-type fixnum from 0 below n by 3
          do (let ((r (random #x1000000 state)))
               (declare (fixnum r))
               (setf (aref v i) (ldb (byte 8 0) r))
               (when (< (+ i 1) n) (setf (aref v (+ i 1)) (ldb (byte 8 8) r)))
               (when (< (+ i 2) n) (setf (aref v (+ i 2)) (ldb (byte 8 16) r)))))
    v))

(defun wait-until (predicate &optional (seconds 5))
  "Poll PREDICATE every 10 ms for up to SECONDS; its last value."
  (loop repeat (* seconds 100)
        until (funcall predicate) do (sleep 0.01))
  (funcall predicate))

(defvar *log* '())
(defvar *log-lock* (mp:make-lock :name "log"))
(defun note (x) (mp:with-lock (*log-lock*) (push x *log*)))
(defun noted-p (x) (mp:with-lock (*log-lock*) (member x *log* :test #'equal)))

(defun fd-of (stream) (values (ext:stream-handles stream)))

(defun soft-fd-limit ()
  "The soft RLIMIT_NOFILE of this process, from /proc/self/limits."
  (with-open-file (in "/proc/self/limits")
    (loop for line = (read-line in nil) while line
          when (and (> (length line) 14) (string= "Max open files" line :end2 14))
            return (let ((v (read-from-string line t nil :start 26)))
                     (if (integerp v) v most-positive-fixnum)))))

(defmacro with-server ((srv) &body body)
  "Run BODY with SRV bound to a loopback server, closed afterwards."
  `(let ((,srv (socket-server 0 :interface "127.0.0.1")))
     (unwind-protect (progn ,@body) (socket-server-close ,srv))))

(defun connected-pair (srv &rest accept-args)
  "A client stream connected to SRV and the server's end of it."
  (let* ((c (socket-connect (socket-server-port srv) "127.0.0.1" :timeout 10
                            :element-type (getf accept-args :element-type 'character)))
         (s (apply #'socket-accept srv :timeout 10 accept-args)))
    (values c s)))

(defun octet-echo (srv)
  "A thread that accepts one octet connection on SRV and echoes every octet
until end of file; its values are the octet count and checksum it saw."
  (spawn "octet-echo"
         (lambda ()
           (with-open-stream (s (socket-accept srv :element-type +octet+ :timeout 10))
             (let ((buf (make-array +chunk+ :element-type +octet+)) (n 0) (sum 1))
               (loop for k = (read-sequence buf s)
                     while (plusp k)
                     do (incf n k)
                        (setf sum (adler buf 0 k sum))
                        (write-sequence buf s :end k))
               (finish-output s)
               (values n sum))))))

(defun send-octets (stream data total)
  "Write TOTAL octets taken from DATA in +CHUNK+ pieces (all of DATA in
order when it is that long; else each piece from an offset that moves, so
the stream is not periodic); shut down output.
Values: TOTAL and the checksum of what was written."
  (let ((sum 1) (sent 0) (room (- (length data) +chunk+)))
    (loop for i from 0
          while (< sent total)
          do (let* ((k (min +chunk+ (- total sent)))
                    (off (if (>= (length data) total) sent (mod (* i 4099) room))))
               (write-sequence data stream :start off :end (+ off k))
               (setf sum (adler data off (+ off k) sum))
               (incf sent k)))
    (finish-output stream)
    (socket-stream-shutdown stream :output)
    (values sent sum)))

(defun receive-octets (stream)
  "Read STREAM to end of file in +CHUNK+ pieces: octet count and checksum."
  (let ((buf (make-array +chunk+ :element-type +octet+)) (n 0) (sum 1))
    (loop for k = (read-sequence buf stream)
          while (plusp k)
          do (incf n k) (setf sum (adler buf 0 k sum)))
    (values n sum)))

;;; ------------------------------------------------------------------
;;; 1. Echo over IPv6 ::1 and over IPv4

(defun echo-over (interface host)
  (let* ((srv (socket-server 0 :interface interface))
         (port (socket-server-port srv))
         (lines (list "hello" "" "mit Umlauten: äöü ß" "λ → ✓" (make-string 5000 :initial-element #\x)))
         (th (spawn "echo"
                    (lambda ()
                      (with-open-stream (s (socket-accept srv :timeout 10))
                        (loop for l = (read-line s nil) while l
                              do (write-line l s) (force-output s))
                        (values (socket-stream-peer s t)
                                (nth-value 1 (socket-stream-local s t))))))))
    (unwind-protect
         (progn
           (is (equal (socket-server-host srv) interface) "server bound where asked")
           (with-open-stream (c (socket-connect port host :timeout 10))
             (is (equal (socket-stream-peer c t) host) "client sees the server's address")
             (is (equal (nth-value 1 (socket-stream-peer c t)) port))
             (dolist (l lines)
               (write-line l c)
               (force-output c)
               (is (equal (read-line c) l) (format nil "line ~S echoed" (subseq l 0 (min 20 (length l))))))
             (socket-stream-shutdown c :output)
             (is (eq (read-line c nil :eof) :eof) "end of file after the server closes")))
      (is (equal (join th) (list host port)) "server sees the client's address, on its own port")
      (socket-server-close srv))))

(deftest echo-ipv6 (:timeout 30)
  (echo-over "::1" "::1"))

(deftest echo-ipv4 (:timeout 30)
  (echo-over "127.0.0.1" "127.0.0.1"))

;;; ------------------------------------------------------------------
;;; 2. 16 MiB of random octets both ways at once

(deftest sixteen-mib-both-ways (:timeout 60)
  (let* ((total (* 16 1024 1024))
         (data (fresh-octets total))
         (srv (socket-server 0 :interface "127.0.0.1"))
         (echo (octet-echo srv))
         (fds (open-fd-count)))
    (unwind-protect
         (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1"
                                              :element-type +octet+ :timeout 10))
           (let ((writer (spawn "writer" (lambda () (send-octets c data total)))))
             (multiple-value-bind (got got-sum) (receive-octets c)
               (destructuring-bind (sent sent-sum) (join writer)
                 (is (= sent total) "writer wrote everything")
                 (is (= got total) "client got every octet back")
                 (is (= got-sum sent-sum) "echoed checksum exact")
                 (is (equal (join echo) (list sent sent-sum))
                     "server got every octet, checksum exact")))))
      (socket-server-close srv))
    (is (= (open-fd-count) (- fds 1)) "client and server descriptors released")))

;;; ------------------------------------------------------------------
;;; 3. Pipelined requests

(deftest pipelined-1000-lines (:timeout 30)
  (let* ((srv (socket-server 0 :interface "127.0.0.1"))
         (th (spawn "answerer"
                    (lambda ()
                      ;; no force-output: answers go out when the server
                      ;; next waits for input, and at close
                      (with-open-stream (s (socket-accept srv :timeout 10))
                        (loop for n from 0
                              for l = (read-line s nil)
                              while l
                              do (write-line (format nil "answer ~D to ~A" n (reverse l)) s)
                              finally (return n)))))))
    (unwind-protect
         (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1" :timeout 10))
           (dotimes (i 1000)
             (write-line (format nil "request ~D" i) c))
           (finish-output c)
           (let ((answers (loop repeat 1000 collect (read-line c nil :eof))))
             (is (equal answers
                        (loop for i below 1000
                              collect (format nil "answer ~D to ~A" i
                                              (reverse (format nil "request ~D" i)))))
                 "1000 answers, in order"))
           (socket-stream-shutdown c :output)
           (is (eq (read-line c nil :eof) :eof))
           (is (equal (join th) '(1000)) "server read 1000 requests"))
      (socket-server-close srv))))

;;; ------------------------------------------------------------------
;;; 4. A reader and a writer thread on one character stream

(defun duplex-line (i)
  (format nil "~D ~A ~A" i (make-string (mod (* i 7) 300) :initial-element (code-char (+ 945 (mod i 24))))
          (if (evenp i) "even ✓" "odd")))

(deftest full-duplex-one-stream (:timeout 60)
  (let* ((n 20000)
         (srv (socket-server 0 :interface "127.0.0.1"))
         (echo (spawn "line-echo"
                      (lambda ()
                        (with-open-stream (s (socket-accept srv :timeout 10))
                          (loop for l = (read-line s nil) while l
                                count t do (write-line l s)))))))
    (unwind-protect
         (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1" :timeout 10))
           (let* ((writer (spawn "writer"
                                 (lambda ()
                                   (dotimes (i n) (write-line (duplex-line i) c))
                                   (socket-stream-shutdown c :output)
                                   :written)))
                  (reader (spawn "reader"
                                 (lambda ()
                                   (loop for i from 0
                                         for l = (read-line c nil)
                                         while l
                                         unless (equal l (duplex-line i))
                                           return (list :mismatch i l)
                                         finally (return i))))))
             (is (equal (join writer) '(:written)))
             (is (equal (join reader) (list n)) "reader got every line, exact and in order")
             (is (equal (join echo) (list n)) "echo saw every line")))
      (socket-server-close srv))))

;;; ------------------------------------------------------------------
;;; 5. socket-status with 2000 descriptors open (fds above 1023)

(deftest status-above-fd-1023 (:timeout 90)
  (let* ((pairs 1000)
         (fds (open-fd-count))
         (need (+ fds (* 2 pairs) 50))
         (limit (soft-fd-limit)))
    (when (< limit need)
      (error "RLIMIT_NOFILE soft limit is ~D, this test needs ~D descriptors: ~
              tests/lisp/run-test could not raise it (raise the hard limit)" limit need))
    (let ((srv (socket-server 0 :interface "127.0.0.1" :backlog 16))
          (clients '()) (servers '()))
      (unwind-protect
           (progn
             (dotimes (i pairs)
               (multiple-value-bind (c s) (connected-pair srv)
                 (push c clients) (push s servers)))
             (setf clients (nreverse clients) servers (nreverse servers))
             (is (>= (open-fd-count) (+ fds (* 2 pairs))) "2000 descriptors open")
             (let* ((low (first clients))
                    (has-data (nth 997 clients)) (idle (nth 998 clients)) (eof (nth 999 clients))
                    (pending nil))
               (is (> (fd-of has-data) 1023) "a stream above fd 1023")
               (is (> (fd-of eof) 1023))
               (write-line "data" (nth 997 servers)) (finish-output (nth 997 servers))
               (write-line "data" (first servers)) (finish-output (first servers))
               (close (nth 999 servers))
               (sleep 0.1)
               (is (equal (multiple-value-list
                           (socket-status (list (cons has-data :input) (cons idle :input)
                                                (cons eof :input) (cons low :input))
                                          1))
                          '((:input nil :eof :input) 3))
                   "input statuses")
               (is (equal (multiple-value-list (socket-status (list has-data idle eof) 1))
                          '((:io :output :append) 3))
                   ":io statuses")
               ;; every client at once, direction :input, no waiting
               (let ((st (socket-status (mapcar (lambda (c) (cons c :input)) clients) 0)))
                 (is (= (length st) pairs))
                 (is (equal (loop for s in st for i from 0 when s collect (list i s))
                            '((0 :input) (997 :input) (999 :eof)))
                     "only the three streams with news are ready"))
               ;; the destructive (stream direction . x) form
               (let ((l (list (list has-data :input) (list idle :output))))
                 (is (eq (socket-status l 0) l))
                 (is (equal (mapcar #'cddr l) '(:input :output))))
               ;; a server with a connection waiting, above 1023 as well
               (setf pending (socket-connect (socket-server-port srv) "127.0.0.1" :timeout 10))
               (unwind-protect
                    (progn
                      (is (eq (socket-status srv 5) t) "server with a pending connection")
                      ;; a wait with no timeout, woken by data on a high fd
                      (let ((later (spawn "later"
                                          (lambda ()
                                            (sleep 0.3)
                                            (write-line "late" (nth 998 servers))
                                            (finish-output (nth 998 servers))))))
                        (read-line has-data) (read-line low) (close eof)
                        (let ((st (socket-status (mapcar (lambda (c) (cons c :input))
                                                         (remove eof clients)))))
                          (is (equal (loop for s in st for i from 0 when s collect (list i s))
                                     '((998 :input)))
                              "a wait without timeout wakes for fd > 1023"))
                        (join later)))
                 (close pending))))
        (mapc #'close clients)
        (mapc #'close servers)
        (socket-server-close srv)))
    (is (= (open-fd-count) fds) "every descriptor released")))

;;; ------------------------------------------------------------------
;;; 6. The peer vanishes while we write megabytes

(defun write-until-error (stream limit)
  "Write up to LIMIT octets; the SOCKET-ERROR signalled (or NIL) and the
octets written before it."
  (let ((buf (make-array +chunk+ :element-type +octet+ :initial-element 42))
        (written 0))
    (handler-case
        (progn
          (loop while (< written limit)
                do (write-sequence buf stream)
                   (incf written +chunk+))
          (finish-output stream)
          (values nil written))
      (socket-error (e) (values e written)))))

(defun peer-vanishes (how)
  (let* ((fds (open-fd-count))
         (srv (socket-server 0 :interface "127.0.0.1"))
         (th (spawn "vanisher"
                    (lambda ()
                      (let ((s (socket-accept srv :element-type +octet+ :timeout 10)))
                        ;; the first octet first: the client's connect has
                        ;; returned, so the reset or close reaches its writes
                        ;; (a reset before that may be the outcome of the
                        ;; connect itself, read from SO_ERROR)
                        (read-byte s)
                        (when (eq how :reset) (socket-options s :so-linger 0))
                        (close s)
                        how)))))
    (unwind-protect
         (let ((c (socket-connect (socket-server-port srv) "127.0.0.1"
                                  :element-type +octet+ :timeout 10)))
           (multiple-value-bind (e written) (write-until-error c (* 256 1024 1024))
             (is (typep e 'connection-reset-error) (format nil "~S: a connection-reset-error" how))
             (when e
               (is (member (socket-error-code e) '(:epipe :econnreset)) "code :EPIPE or :ECONNRESET")
               (is (eq (stream-error-stream e) c) "the stream is in the condition")
               (let ((report (princ-to-string e)))
                 (is (and (search (format nil "(~A): " (socket-error-code e)) report)
                          (search (format nil "-> 127.0.0.1:~D" (socket-server-port srv)) report))
                     (format nil "the report names the errno and the peer's address: ~A" report)))
               (is (< written (* 256 1024 1024)) "error came before the loop ended"))
             (is (typep (nth-value 1 (ignore-errors (write-sequence (make-array 10 :element-type +octet+) c)
                                                    (finish-output c)))
                        'socket-error)
                 "writing again signals again")
             (is (eq (close c) t) "close returns T")
             (is (null (ext:stream-handles c)) "closed stream has no descriptor")))
      (is (equal (join th) (list how)))
      (socket-server-close srv))
    (is (= (open-fd-count) fds) "no descriptor leaked")))

(deftest peer-resets-mid-write (:timeout 60)
  (peer-vanishes :reset))

(deftest peer-closes-mid-write (:timeout 60)
  (peer-vanishes :close))

(deftest peer-vanishes-under-blocked-reader (:timeout 30)
  ;; a reset reaches a thread blocked in read-line as a condition; an
  ;; orderly close as end of file
  (dolist (how '(:reset :close))
    (with-server (srv)
      (let ((fds (open-fd-count)))
        (multiple-value-bind (c s) (connected-pair srv)
          (let* ((started nil)
                 (reader (spawn "reader"
                                (lambda ()
                                  (setf started t)
                                  (handler-case (read-line c nil :eof)
                                    (socket-error (e)
                                      (list (type-of e) (socket-error-code e)
                                            (eq (stream-error-stream e) c))))))))
            (wait-until (lambda () started))
            (sleep 0.2)
            (when (eq how :reset) (socket-options s :so-linger 0))
            (close s)
            (is (equal (first (join reader))
                       (if (eq how :reset)
                           '(connection-reset-error :econnreset t)
                           :eof))
                (format nil "blocked reader sees the peer's ~(~A~)" how))
            (is (eq (close c) t))))
        (is (= (open-fd-count) fds) "no descriptor leaked")))))

;;; ------------------------------------------------------------------
;;; 7. Interrupts and kills of threads blocked in socket-accept / read-line

(deftest interrupt-blocked-accept (:timeout 60)
  (setf *log* '())
  (with-server (srv)
    (let* ((started nil)
           (th (spawn "acceptor"
                      (lambda ()
                        (setf started t)
                        (with-open-stream (s (socket-accept srv :timeout 30))
                          (read-line s))))))
      (wait-until (lambda () started))
      (sleep 0.3)
      (dotimes (i 3)
        (mp:interrupt-process th (let ((i i)) (lambda () (note (list :in-accept i)))))
        (is (wait-until (lambda () (noted-p (list :in-accept i)))) "the interrupt function ran"))
      (sleep 0.2)
      (is (mp:process-active-p th) "still waiting in socket-accept")
      (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1" :timeout 10))
        (write-line "after the interrupts" c)
        (finish-output c)
        (is (equal (join th) '("after the interrupts" nil)) "accept then completed normally")))))

(deftest interrupt-blocked-read-line (:timeout 60)
  (setf *log* '())
  (with-server (srv)
    (multiple-value-bind (c s) (connected-pair srv)
      (unwind-protect
           (let* ((started nil)
                  (th (spawn "reader" (lambda () (setf started t) (read-line s)))))
             (wait-until (lambda () started))
             (write-string "half a " c) (finish-output c) ; a partial line is buffered
             (sleep 0.3)
             (dotimes (i 3)
               (mp:interrupt-process th (let ((i i)) (lambda () (note (list :in-read i)))))
               (is (wait-until (lambda () (noted-p (list :in-read i)))) "the interrupt function ran"))
             (is (mp:process-active-p th) "still waiting in read-line")
             (write-line "line" c) (finish-output c)
             (is (equal (join th) '("half a line" nil)) "read-line completed, no octet lost"))
        (close c) (close s)))))

(deftest interrupt-throws-out-of-accept (:timeout 60)
  (setf *log* '())
  (with-server (srv)
    (let* ((fds (open-fd-count))
           (started nil)
           (th (spawn "acceptor"
                      (lambda ()
                        (catch 'escape
                          (unwind-protect
                               (progn (setf started t)
                                      (socket-accept srv :timeout 30)
                                      :accepted)
                            (note :cleanup)))))))
      (wait-until (lambda () started))
      (sleep 0.3)
      (mp:interrupt-process th (lambda () (throw 'escape :thrown)))
      (is (equal (join th) '(:thrown)) "the throw unwound socket-accept")
      (is (noted-p :cleanup) "unwind-protect cleanup ran")
      (is (= (open-fd-count) fds) "no descriptor leaked")
      ;; the server still works
      (multiple-value-bind (c s) (connected-pair srv)
        (write-line "still serving" c) (finish-output c)
        (is (equal (read-line s) "still serving"))
        (close c) (close s)))))

(deftest interrupt-returns-out-of-read-line (:timeout 60)
  (setf *log* '())
  (with-server (srv)
    (multiple-value-bind (c s) (connected-pair srv)
      (unwind-protect
           (let* ((escape nil)
                  (th (spawn "reader"
                             (lambda ()
                               (block reading
                                 (setf escape (lambda () (return-from reading :escaped)))
                                 (unwind-protect (read-line s)
                                   (note :cleanup)))))))
             (wait-until (lambda () escape))
             (sleep 0.3)
             (mp:interrupt-process th escape)
             (is (equal (join th) '(:escaped)) "return-from unwound read-line")
             (is (noted-p :cleanup) "unwind-protect cleanup ran")
             ;; the stream is still usable afterwards
             (write-line "next" c) (finish-output c)
             (is (equal (read-line s) "next") "stream usable after the unwind")
             (write-line "back" s) (finish-output s)
             (is (equal (read-line c) "back")))
        (close c) (close s)))))

(deftest kill-blocked-read-line (:timeout 60)
  (setf *log* '())
  (with-server (srv)
    (let ((fds (open-fd-count)))
      (multiple-value-bind (c s) (connected-pair srv)
        (let* ((started nil)
               (th (mp:process-run-function
                    "doomed" (lambda ()
                               (setf started t)
                               (unwind-protect (read-line s)
                                 (note :killed))))))
          (wait-until (lambda () started))
          (sleep 0.3)
          (mp:process-kill th)
          (mp:process-join th)
          ;; ECL's process-join can return a moment before the process
          ;; stops counting as active
          (is (wait-until (lambda () (not (mp:process-active-p th)))) "the thread ended")
          (is (noted-p :killed) "its unwind-protect ran")
          (is (eq (close s) t)) (is (eq (close c) t))
          (is (= (open-fd-count) fds) "no descriptor leaked"))))))

;;; A writer blocked in send (the peer does not read yet): interrupts run
;;; and the data still arrives exact; a kill ends the writer and leaves the
;;; stream usable by others (its output lock is released).

(deftest interrupt-blocked-send (:timeout 60)
  (setf *log* '())
  (with-server (srv)
    (multiple-value-bind (c s) (connected-pair srv :element-type +octet+)
      (unwind-protect
           (let* ((data (fresh-octets (* 1024 1024)))
                  (total (* 16 1024 1024))
                  (started nil)
                  (writer (spawn "writer" (lambda () (setf started t) (send-octets c data total)))))
             (wait-until (lambda () started))
             (sleep 0.3)                ; the peer does not read: the writer blocks
             (dotimes (i 5)
               (mp:interrupt-process writer (let ((i i)) (lambda () (note (list :in-send i)))))
               (is (wait-until (lambda () (noted-p (list :in-send i)))) "the interrupt function ran"))
             (is (mp:process-active-p writer) "the writer is still sending")
             (multiple-value-bind (n sum) (receive-octets s)
               (is (equal (join writer) (list n sum)) "every octet arrived, exact")
               (is (= n total))))
        (close c) (close s)))))

(deftest kill-blocked-writer (:timeout 60)
  (setf *log* '())
  (with-server (srv)
    (let ((fds (open-fd-count)))
      (multiple-value-bind (c s) (connected-pair srv :element-type +octet+)
        (let* ((zeros (make-array +chunk+ :element-type +octet+ :initial-element 0))
               (started nil)
               (writer (mp:process-run-function
                        "doomed writer"
                        (lambda ()
                          (setf started t)
                          (unwind-protect
                               (loop repeat 1000 do (write-sequence zeros c))
                            (note :writer-unwound))))))
          (wait-until (lambda () started))
          (sleep 0.3)
          (mp:process-kill writer)
          (mp:process-join writer)
          (is (noted-p :writer-unwound) "the killed writer unwound")
          (is (wait-until (lambda () (not (mp:process-active-p writer)))) "the writer ended")
          ;; another thread can still write: the output lock was released
          (let* ((marker (make-array 1000 :element-type +octet+ :initial-element 255))
                 (other (spawn "other writer"
                               (lambda ()
                                 (write-sequence marker c)
                                 (finish-output c)
                                 (socket-stream-shutdown c :output)
                                 :sent)))
                 (buf (make-array +chunk+ :element-type +octet+))
                 (tail '()))
            (loop for k = (read-sequence buf s)
                  while (plusp k)
                  do (setf tail (append (last tail 1000) (coerce (subseq buf 0 k) 'list))))
            (is (equal (join other) '(:sent)) "a write after the kill completes")
            (is (equal (last tail 1000) (coerce marker 'list)) "its octets arrive last, whole"))
          (close c) (close s)
          (is (= (open-fd-count) fds) "no descriptor leaked"))))))

(deftest kill-blocked-accept (:timeout 30)
  (setf *log* '())
  (with-server (srv)
    (let* ((fds (open-fd-count))
           (started nil)
           (th (mp:process-run-function
                "doomed acceptor"
                (lambda ()
                  (setf started t)
                  (unwind-protect (socket-accept srv :timeout 30)
                    (note :acceptor-unwound))))))
      (wait-until (lambda () started))
      (sleep 0.3)
      (mp:process-kill th)
      (mp:process-join th)
      (is (noted-p :acceptor-unwound))
      (is (wait-until (lambda () (not (mp:process-active-p th)))) "the acceptor ended")
      (is (= (open-fd-count) fds) "no descriptor leaked")
      (multiple-value-bind (c s) (connected-pair srv)
        (write-line "served" c) (finish-output c)
        (is (equal (read-line s) "served") "the server still accepts")
        (close c) (close s)))))

;;; A connect that blocks: a server with backlog 1 that does not accept
;;; drops further SYNs, so the next connect waits (the kernel retries).

(defun fill-backlog (srv)
  "Connections that fill SRV's accept queue (backlog 1): a list of streams."
  (loop repeat 2
        collect (socket-connect (socket-server-port srv) "127.0.0.1" :timeout 5)))

(deftest connect-timeout-and-interrupts (:timeout 60)
  (setf *log* '())
  (let ((srv (socket-server 0 :interface "127.0.0.1" :backlog 1))
        (held '()))
    (unwind-protect
         (let ((fds (open-fd-count))
               (port (socket-server-port srv)))
           (setf held (fill-backlog srv))
           (setf fds (+ fds (length held)))
           ;; the timeout bounds a connect that gets no answer
           (let* ((t0 (get-internal-real-time))
                  (e (handler-case (progn (close (socket-connect port "127.0.0.1" :timeout 0.5)) nil)
                       (socket-error (e) e)))
                  (secs (/ (- (get-internal-real-time) t0) internal-time-units-per-second)))
             (is (typep e 'socket-timeout-error) "a blocked connect times out")
             (is (and e (eq (socket-error-code e) :etimedout)))
             (is (<= 0.45 secs 3) (format nil "after its timeout (~,2F s)" secs))
             (is (= (open-fd-count) fds) "the timed-out connect leaked nothing"))
           ;; a throw from an interrupt unwinds a blocked connect
           (let* ((started nil)
                  (th (spawn "connector"
                             (lambda ()
                               (catch 'escape
                                 (unwind-protect
                                      (progn (setf started t)
                                             (socket-connect port "127.0.0.1" :timeout 30)
                                             :connected)
                                   (note :connect-cleanup)))))))
             (wait-until (lambda () started))
             (sleep 0.3)
             (mp:interrupt-process th (lambda () (throw 'escape :thrown)))
             (is (equal (join th) '(:thrown)) "the throw unwound socket-connect")
             (is (noted-p :connect-cleanup))
             (is (= (open-fd-count) fds) "no descriptor leaked"))
           ;; interrupts run in a blocked connect, which then completes
           (let* ((started nil)
                  (th (spawn "connector"
                             (lambda ()
                               (setf started t)
                               (with-open-stream (c (socket-connect port "127.0.0.1" :timeout 30))
                                 (write-line "connected at last" c)
                                 (finish-output c)
                                 :connected)))))
             (wait-until (lambda () started))
             (sleep 0.3)
             (dotimes (i 3)
               (mp:interrupt-process th (let ((i i)) (lambda () (note (list :in-connect i)))))
               (is (wait-until (lambda () (noted-p (list :in-connect i)))) "the interrupt function ran"))
             (is (mp:process-active-p th) "still connecting")
             ;; make room: the kernel's next SYN retry gets through
             (let ((accepted (loop repeat 2 collect (socket-accept srv :timeout 5))))
               (mapc #'close accepted))
             (is (equal (join th) '(:connected)) "the connect completed")
             (with-open-stream (s (socket-accept srv :timeout 10))
               (is (equal (read-line s) "connected at last")))))
      (mapc #'close held)
      (socket-server-close srv))))

;;; ------------------------------------------------------------------
;;; 8. Descriptor leaks over many cycles

(deftest no-leak-over-cycles (:timeout 90)
  (with-server (srv)
    (let ((fds (open-fd-count)))
      (dotimes (i 1000)
        (multiple-value-bind (c s) (connected-pair srv)
          (write-line "ping" c) (finish-output c)
          (unless (equal (read-line s) "ping") (is nil "ping arrived"))
          (close c) (close s)))
      (is (= (open-fd-count) fds) "1000 connect/accept/close cycles")
      ;; refused connects: a port nobody listens on any more
      (let* ((gone (socket-server 0 :interface "127.0.0.1"))
             (dead-port (socket-server-port gone))
             (refused 0))
        (socket-server-close gone)
        (dotimes (i 200)
          (handler-case (close (socket-connect dead-port "127.0.0.1" :timeout 5))
            (connection-refused-error () (incf refused))))
        (is (= refused 200) "200 connects refused")
        (is (= (open-fd-count) fds) "refused connects leak nothing"))
      ;; accept timeouts
      (let ((timeouts 0))
        (dotimes (i 200)
          (handler-case (close (socket-accept srv :timeout 0.001))
            (socket-timeout-error (e)
              (when (eq (socket-error-code e) :etimedout) (incf timeouts)))))
        (is (= timeouts 200) "200 accept timeouts")
        (is (= (open-fd-count) fds) "accept timeouts leak nothing")))))

;;; ------------------------------------------------------------------
;;; 9. 256 MiB through one connection while another thread allocates hard

(defvar *sink* nil)

(deftest quarter-gib-under-gc (:timeout 120)
  (let* ((total (* 256 1024 1024))
         (data (fresh-octets (* 2 1024 1024)))
         (srv (socket-server 0 :interface "127.0.0.1"))
         (done nil)
         (gcs0 (nth-value 1 (si::gc-stats t)))
         (allocator (spawn "allocator"
                           (lambda ()
                             (loop for i from 0
                                   until done
                                   do (setf *sink* (if (evenp i)
                                                       (make-list 20000 :initial-element i)
                                                       (make-array 50000 :initial-element i)))
                                   finally (return i)))))
         (receiver (spawn "receiver"
                          (lambda ()
                            (with-open-stream (s (socket-accept srv :element-type +octet+ :timeout 10))
                              (receive-octets s)))))
         (start (get-internal-real-time)))
    (unwind-protect
         (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1"
                                              :element-type +octet+ :timeout 10))
           (multiple-value-bind (sent sum) (send-octets c data total)
             (let ((got (join receiver)))
               (setf done t)
               (let ((rounds (first (join allocator)))
                     (gcs (- (nth-value 1 (si::gc-stats t)) gcs0))
                     (secs (/ (- (get-internal-real-time) start) internal-time-units-per-second)))
                 (format t "~&  256 MiB in ~,2F s (~,1F MiB/s) with ~D allocation rounds, ~D GCs~%"
                         secs (/ 256 (max secs 1/1000)) rounds gcs)
                 (is (= sent total))
                 (is (equal got (list total sum)) "received count and checksum exact")
                 (is (plusp gcs) "collections happened during the transfer")))))
      (setf done t)
      (socket-server-close srv))))

;;; ------------------------------------------------------------------
;;; 10. Closing a stream whose peer vanished, with output still buffered

(defun close-with-unsent-output (octets-pending how)
  (let ((fds (open-fd-count)))
    (with-server (srv)
      (multiple-value-bind (c s) (connected-pair srv)
        (when (eq how :reset) (socket-options s :so-linger 0))
        (close s)
        (sleep 0.1)
        (when (eq how :close)          ; provoke the reset
          (write-line "x" c) (ignore-errors (finish-output c)) (sleep 0.1))
        ;; small enough to stay in the stream's output buffer
        (write-string (make-string octets-pending :initial-element #\z) c)
        (let ((result :unset))
          (handler-case (setf result (close c))
            (error (e) (setf result e)))
          (is (eq result t) (format nil "close with ~D octets pending (~S) returns T" octets-pending how))
          (is (null (ext:stream-handles c)) "the stream is closed"))))
    (is (= (open-fd-count) fds) "descriptor released")))

(deftest close-after-peer-vanished (:timeout 30)
  (close-with-unsent-output 10 :reset)
  (close-with-unsent-output 1500 :reset)
  (close-with-unsent-output 10 :close)
  (close-with-unsent-output 1500 :close))

;;; ------------------------------------------------------------------
;;; 11. A reader thread is never stuck sending another thread's output

;;; The stream sends pending output before a blocking read (the peer may
;;; wait for it).  When the peer is itself blocked sending to us and does
;;; not read, that send must not block the reader, or neither side moves.
(deftest reader-not-stuck-in-pending-output (:timeout 60)
  (let* ((data (fresh-octets (* 1024 1024)))
         (big (* 8 1024 1024))
         (srv (socket-server 0 :interface "127.0.0.1")))
    ;; small kernel buffers, so that pending output cannot all fit
    (socket-options srv :so-rcvbuf 8192)
    (let ((server (spawn "talker"
                         (lambda ()
                           ;; answers 8 MiB before reading the request
                           (with-open-stream (s (socket-accept srv :element-type +octet+ :timeout 10))
                             (loop for i below (floor big +chunk+)
                                   do (write-sequence data s :start i :end (+ i +chunk+)))
                             (finish-output s)
                             (receive-octets s))))))
      (unwind-protect
           (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1"
                                                :element-type +octet+ :timeout 10))
             (socket-options c :so-sndbuf 8192)
             (let* ((state nil)
                    (writer (spawn "writer"
                                   (lambda ()
                                     ;; small writes: they stay in the stream's buffer
                                     (dotimes (i 60)
                                       (write-sequence data c :start (* i 1000) :end (* (1+ i) 1000)))
                                     (setf state :written)
                                     (wait-until (lambda () (eq state :read)) 30)
                                     (finish-output c)
                                     (socket-stream-shutdown c :output)
                                     :done)))
                    (got 0) (sum 1))
               (wait-until (lambda () state))
               (let ((buf (make-array +chunk+ :element-type +octet+)))
                 (loop while (< got big)
                       do (let ((k (read-sequence buf c)))
                            (when (zerop k) (return))
                            (setf sum (adler buf 0 k sum))
                            (incf got k))))
               (setf state :read)
               (is (= got big) "the reader got the whole answer")
               (is (= sum (let ((s 1))
                            (loop for i below (floor big +chunk+)
                                  do (setf s (adler data i (+ i +chunk+) s)))
                            s))
                   "answer checksum exact")
               (is (equal (join writer) '(:done)))
               (is (equal (join server) (list 60000 (adler data 0 60000 1)))
                   "the buffered request arrived whole")))
        (socket-server-close srv)))))

;;; The same wait (output pending that does not fit, the peer neither
;;; reads nor writes yet) is interruptible, and the output still arrives
;;; whole once the peer reads.
(deftest reader-waiting-to-send-is-interruptible (:timeout 60)
  (setf *log* '())
  (let ((data (fresh-octets 60000))
        (srv (socket-server 0 :interface "127.0.0.1")))
    (socket-options srv :so-rcvbuf 8192)
    (unwind-protect
         (multiple-value-bind (c s) (connected-pair srv :element-type +octet+)
           (unwind-protect
                (progn
                  (socket-options c :so-sndbuf 8192)
                  (dotimes (i 60)         ; small writes stay buffered
                    (write-sequence data c :start (* i 1000) :end (* (1+ i) 1000)))
                  (let* ((started nil)
                         (reader (spawn "reader" (lambda () (setf started t) (read-byte c)))))
                    (wait-until (lambda () started))
                    (sleep 0.3)
                    (dotimes (i 3)
                      (mp:interrupt-process reader (let ((i i)) (lambda () (note (list :waiting i)))))
                      (is (wait-until (lambda () (noted-p (list :waiting i)))) "the interrupt function ran"))
                    (is (mp:process-active-p reader) "the reader still waits")
                    (let ((got (make-array 60000 :element-type +octet+)))
                      (is (= (read-sequence got s) 60000) "the pending output arrived")
                      (is (= (adler got 0 60000 1) (adler data 0 60000 1)) "exact"))
                    (write-byte 7 s) (finish-output s)
                    (is (equal (join reader) '(7)) "then the read completed")))
             (close c) (close s)))
      (socket-server-close srv))))

;;; ------------------------------------------------------------------
;;; 12. Close never hangs and wakes the stream's other threads

;;; A thread blocked in read-line on a stream that another thread closes
;;; wakes up (end of file or a socket error) instead of waiting for the peer.
(deftest close-wakes-blocked-reader (:timeout 30)
  (with-server (srv)
    (let ((fds (open-fd-count)))
      (multiple-value-bind (c s) (connected-pair srv)
        (let ((reader (spawn "reader"
                             (lambda ()
                               (handler-case (list :line (read-line c nil :eof))
                                 (error (e) (list :error (type-of e))))))))
          (sleep 0.3)
          (let ((start (get-internal-real-time)))
            (is (eq (close c) t) "close returns T")
            (let ((result (first (join reader)))
                  (elapsed (/ (- (get-internal-real-time) start)
                              internal-time-units-per-second)))
              (is (< elapsed 5) "the reader woke up promptly")
              (is (or (equal result '(:line :eof)) (eq (first result) :error))
                  "the reader saw end of file or an error")))
          ;; the peer sees the connection end too
          (is (eq (read-line s nil :eof) :eof) "the peer reads end of file")
          (close s)))
      (is (= (open-fd-count) fds) "descriptors released"))))

;;; Output the peer never reads: close gives up after a bounded wait,
;;; drops what is left, releases the descriptor and signals nothing.
(deftest close-with-output-peer-never-reads (:timeout 60)
  (with-server (srv)
    (let ((fds (open-fd-count)))
      (multiple-value-bind (c s) (connected-pair srv)
        ;; fill the kernel's buffers: writes end in a timeout once full
        (socket-options c :so-sndtimeo 0.2)
        (is (typep (handler-case
                       (loop repeat 10000
                             do (write-string (make-string 65536 :initial-element #\x) c)
                                (finish-output c))
                     (socket-error (e) e))
                   'socket-timeout-error)
            "the peer's window filled up")
        ;; now some output stays in the stream's own buffer
        (write-string "pending" c)
        (let ((start (get-internal-real-time)))
          (is (eq (close c) t) "close returns T")
          (let ((elapsed (/ (- (get-internal-real-time) start)
                            internal-time-units-per-second)))
            (is (< elapsed 15) "close gave up after a bounded wait")))
        (is (null (ext:stream-handles c)) "the stream is closed")
        (close s))
      ;; the flusher watched the stalled stream with an epoll set and a pipe
      ;; of its own, which it closes as soon as the close has woken it
      (loop repeat 100 until (= (open-fd-count) fds) do (sleep 0.02))
      (is (= (open-fd-count) fds) "descriptors released"))))

;;; ------------------------------------------------------------------
;;; 12. Streams dropped without close are closed by their finalizers
;;; (last in the file: a finalizer that runs late cannot disturb another
;;; test's descriptor count)

(defun open-and-drop (srv n)
  "Open N connections in a thread that then ends, so no stack keeps them;
half of each side has unsent buffered output.  Returns the descriptor
count while they were all open."
  (first (join (spawn "dropper"
                      (lambda ()
                        (let ((streams '()))
                          (dotimes (i n)
                            (multiple-value-bind (c s) (connected-pair srv)
                              (when (evenp i)
                                (write-line "never flushed" c)
                                (write-line "never flushed either" s))
                              (push c streams) (push s streams)))
                          ;; the descriptor count while all are alive
                          (open-fd-count)))))))

(deftest finalizers-close-dropped-streams (:timeout 60)
  (with-server (srv)
    (let ((fds (open-fd-count)) (n 50) (errors '()))
      (is (eql (open-and-drop srv n) (+ fds (* 2 n))) "100 descriptors were open")
      (handler-bind ((error (lambda (e) (push e errors))))
        (loop repeat 8
              until (<= (open-fd-count) fds)
              do (ext:gc t)
                 (make-list 1000)       ; finalizers run at allocations
                 (sleep 0.1)))
      (let ((released (- (+ fds (* 2 n)) (open-fd-count))))
        (format t "~&  finalizers released ~D of ~D descriptors~%" released (* 2 n))
        (is (>= released 80) "most dropped streams closed by their finalizers"))
      (is (null errors) "no error signalled from GC"))))

(deftest finalizers-close-dropped-servers (:timeout 60)
  (let* ((fds (open-fd-count)) (n 20) (errors '())
         (open-count (first (join (spawn "server dropper"
                                         (lambda ()
                                           (let ((servers (loop repeat n collect
                                                            (socket-server 0 :interface "127.0.0.1"))))
                                             (prog1 (open-fd-count)
                                               (setf servers nil)))))))))
    (is (eql open-count (+ fds n)) "20 servers were listening")
    (handler-bind ((error (lambda (e) (push e errors))))
      (loop repeat 8
            until (<= (open-fd-count) fds)
            do (ext:gc t) (make-list 1000) (sleep 0.1)))
    (let ((released (- (+ fds n) (open-fd-count))))
      (format t "~&  finalizers released ~D of ~D servers~%" released n)
      (is (>= released 16) "most dropped servers closed by their finalizers"))
    (is (null errors) "no error signalled from GC")))
