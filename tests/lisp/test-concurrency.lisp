;;;; test-concurrency.lisp - the stream core under threads, timeouts and
;;;; stalled peers (issue 17): what a user sees when one thread closes a
;;;; stream others are blocked on, when a send times out, when a read
;;;; timeout meets pending output, when peers stop reading, and under
;;;; random interleavings of a reader, a writer, flushes and a close.
;;;;
;;;; Owns: those tests, over TCP, Unix-domain sockets and TLS, and their
;;;;   helpers (pairs of every transport, bounded thread joins, waiting for
;;;;   a thread to block in the kernel).
;;;; Must not: wait without a bound (every join here has one: a stream that
;;;;   never wakes fails its test and leaves its thread behind, it does not
;;;;   hang the file); contact another host.
;;;;
;;;; The contract (issue 17): a close from any thread returns within a
;;;; bound, wakes the threads blocked on the stream and frees the TLS
;;;; session and the descriptor once the last has left.  A blocked reader
;;;; then sees end of file; a blocked writer a SOCKET-ERROR :EBADF.  After a
;;;; send timeout the unsent octets are kept, so the peer receives exactly
;;;; what was written.  A read timeout holds while output is pending.  A
;;;; stalled peer costs no sends (ECLSOCK::%SEND-CALLS counts them).
;;;; Loopback only; the TLS certificates come from tests/tls/make-certs.sh.
;;;; Iteration counts (about 1,000 closes and rounds in all) scale with
;;;; $CONCURRENCY_SCALE (e.g. 10 for a long local run).

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "TEST-CONCURRENCY" (:use "CL" "SOCKET" "HARNESS"))
(in-package "TEST-CONCURRENCY")

(eval-when (:compile-toplevel)     ; WITH-SERVER, WITH-PAIR (expanded here)
  (load (merge-pathnames "pairs.lisp" *compile-file-truename*) :verbose nil))

(ffi:clines "#include <sys/syscall.h>" "#include <sys/resource.h>" "#include <unistd.h>")

;;; ------------------------------------------------------------------
;;; Time, threads, the kernel's view of a thread

(defun now () (/ (get-internal-real-time) internal-time-units-per-second 1d0))

(defun scaled (n)
  "N iterations, times $CONCURRENCY_SCALE (default 1; at least 1)."
  (let ((k (ignore-errors (read-from-string (or (ext:getenv "CONCURRENCY_SCALE") "1")))))
    (max 1 (round (* n (if (realp k) k 1))))))

(defun gettid () (ffi:c-inline () () :int "syscall(SYS_gettid)" :one-liner t))

(defun raise-descriptor-limit (want)
  "Raise the soft RLIMIT_NOFILE towards WANT (up to the hard limit); the
limit in force afterwards."
  (ffi:c-inline (want) (:int) :int
    "{ struct rlimit r; getrlimit(RLIMIT_NOFILE, &r);
       if (r.rlim_cur < (rlim_t)#0) {
         r.rlim_cur = (r.rlim_max == RLIM_INFINITY || r.rlim_max > (rlim_t)#0)
                      ? (rlim_t)#0 : r.rlim_max;
         setrlimit(RLIMIT_NOFILE, &r); getrlimit(RLIMIT_NOFILE, &r); }
       @(return) = r.rlim_cur > 1000000 ? 1000000 : (int)r.rlim_cur; }"))

(defun thread-state (tid)
  "The state letter of thread TID of this process (R, S, D ...), or NIL."
  (ignore-errors
   (with-open-file (in (format nil "/proc/self/task/~D/stat" tid))
     (let* ((line (read-line in))
            (p (position #\) line :from-end t)))
       (char line (+ p 2))))))

(defun wait-until-blocked (tid-box &optional (seconds 2))
  "Wait until the thread whose id TID-BOX's car will hold sleeps in the
kernel (state S or D, seen twice 2 ms apart): then it is blocked in the call
it announced.  Bounded; true when seen."
  (loop with end = (+ (now) seconds)
        while (< (now) end)
        do (let ((tid (car tid-box)))
             (when (and tid (member (thread-state tid) '(#\S #\D)))
               (sleep 0.002)
               (when (member (thread-state tid) '(#\S #\D))
                 (return t))))
           (sleep 0.001)))

(defun spawn-announced (name function)
  "SPAWN FUNCTION (of no arguments) in a thread that first stores its
kernel thread id in the car of the returned box.  Values: the process, the box."
  (let ((box (list nil)))
    (values (spawn name (lambda () (setf (car box) (gettid)) (funcall function)))
            box)))

(defun finish-within (process seconds)
  "Wait at most SECONDS for PROCESS (from SPAWN) to end.  Values: its
result list (or NIL) and whether it ended."
  (loop with end = (+ (now) seconds)
        while (and (mp:process-active-p process) (< (now) end))
        do (sleep 0.002))
  (if (mp:process-active-p process)
      (values nil nil)
      (values (mp:process-join process) t)))

(defmacro timed (&body body)
  "Values: BODY's first value (or (:ERROR condition)) and the seconds it took."
  (let ((t0 (gensym)))
    `(let ((,t0 (now)))
       (values (handler-case (progn ,@body) (error (e) (list :error e)))
               (- (now) ,t0)))))

(defmacro deftest-per-transport (name (&key (timeout 60)) function &rest counts)
  "Three tests, NAME-TCP, NAME-UNIX and NAME-TLS, each calling FUNCTION
with its transport and, when COUNTS are given, its iteration count (one
for each transport, in that order, scaled)."
  `(progn
     ,@(loop for transport in '(:tcp :unix :tls)
             for i from 0
             collect `(deftest ,(intern (format nil "~A-~A" name transport)) (:timeout ,timeout)
                        (,function ,transport ,@(and counts `((scaled ,(nth i counts)))))))))

(defun describe-result (r)
  (if (and (consp r) (eq (first r) :error))
      (format nil "~A: ~A" (type-of (second r)) (second r))
      (format nil "~S" r)))

;;; A guard process ends this file after 300 s ($CONCURRENCY_GUARD): a
;;; crash inside the stream core can leave ECL's GC lock held, which stops
;;; the harness's watchdog thread too.  The guard waits for end of file on a
;;; pipe from this process, so it goes quietly when this process ends or
;;; the last test closes the pipe.  All of RUN-PROGRAM's values are kept:
;;; ECL finalizes a collected EXT:EXTERNAL-PROCESS whose child still runs
;;; at every GC, and that finalizer returns two values from inside the
;;; allocation it interrupts, overwriting the arguments of a call from
;;; compiled code to an interpreted function in progress in that thread
;;; (doc/internals.texi, "Finalizers and ECL's values array").
(defvar *guard*
  (multiple-value-list
   (ext:run-program
   "/bin/sh"
   (list "-c" (format nil "timeout ~D cat >/dev/null; [ $? -eq 124 ] && echo 'FAIL: test-concurrency did not end within ~:*~D s (killed by its guard)' && echo '0 passed, 1 failed' && kill -9 ~D"
                      (or (ignore-errors (parse-integer (ext:getenv "CONCURRENCY_GUARD"))) 300)
                      (ext:getpid)))
   :input :stream :output t :error nil :wait nil)))

;;; ------------------------------------------------------------------
;;; Pairs over every transport

(defparameter *scratch* (or (ext:getenv "TEST_BUILDDIR") "/tmp"))
(defparameter *tests-dir* (or (ext:getenv "TEST_SRCDIR") "tests"))
(defparameter *certs* (format nil "~A/tls-certs/" *scratch*))
(defparameter *transports* '(:tcp :unix :tls))

(defun cert (name) (format nil "~A~A" *certs* name))

(multiple-value-bind (s code)
    (ext:run-program "/bin/sh" (list "-c" (format nil "sh '~A/tls/make-certs.sh' '~A'"
                                                  *tests-dir* *certs*))
                     :output nil :error nil :wait t)
  (declare (ignore s))
  (unless (eql code 0) (error "tests/tls/make-certs.sh failed")))

;;; One listener per transport for the whole file, made before any test
;;; counts descriptors.  The TCP listener has a small receive buffer,
;;; which the accepted sockets inherit: a few KiB fill a stalled peer.
(defvar *tcp-server* (socket-server 0 :interface "127.0.0.1" :backlog 128))
(socket-options *tcp-server* :so-rcvbuf 4096)
(defvar *unix-path* (format nil "/tmp/ecl-sock-conc-~D.sock" (ext:getpid)))
(when (probe-file *unix-path*) (delete-file *unix-path*))
(defvar *unix-server* (make-socket :connect :passive :address-family :file
                                   :local-filename *unix-path* :backlog 128 :format :bivalent))
(defvar *client-context* (make-ssl-client-context :ca-file (cert "ca.pem")))
(defvar *server-context* (make-ssl-server-context :certificate (cert "server.pem")
                                                  :key (cert "server.key")))

(defun open-pair (transport)
  "A connected pair over TRANSPORT (:TCP, :UNIX or :TLS): the client stream
and the accepted one, both bivalent (characters and octets), with small
kernel buffers (4 KiB asked) so that a peer that does not read stalls the
writer soon."
  (multiple-value-bind (c s)
      (ecase transport
        (:tcp (let ((c (socket-connect (socket-server-port *tcp-server*) "127.0.0.1" :timeout 5)))
                (values c (socket-accept *tcp-server* :timeout 5))))
        (:unix (let ((c (make-socket :address-family :file :remote-filename *unix-path*
                                     :format :bivalent)))
                 (values c (accept-connection *unix-server*))))
        (:tls (let* ((rc (socket-connect (socket-server-port *tcp-server*) "127.0.0.1" :timeout 5))
                     (rs (socket-accept *tcp-server* :timeout 5))
                     (server (spawn "tls accept"
                                    (lambda () (make-ssl-server-stream rs :context *server-context*))))
                     (c (handler-case (make-ssl-client-stream rc :context *client-context*)
                          (error (e) (close rc) (finish-within server 10) (error e))))
                     (r (multiple-value-list (finish-within server 10))))
                (unless (and (second r) (streamp (first (first r))))
                  (close c)
                  (error "TLS server side failed: ~S" (first r)))
                (values c (first (first r))))))
    (socket-options c :so-sndbuf 4096)
    (socket-options s :so-sndbuf 4096)
    (values c s)))

(defmacro with-transport-pair ((c s transport) &body body)
  "BODY with C and S an OPEN-PAIR over TRANSPORT, both closed afterwards
\(S first: C's close then need not wait for a peer that stopped reading)."
  `(multiple-value-bind (,c ,s) (open-pair ,transport)
     (unwind-protect (progn ,@body)
       (ignore-errors (close ,s))
       (ignore-errors (close ,c)))))

(defun sessions () (values (eclsock::ssl-counts)))

(defun open-socket-count ()
  "How many of this process's descriptors are sockets (pipes that ECL's
RUN-PROGRAM keeps until a GC closes them do not count)."
  (count-if (lambda (path)
              (let ((fd (parse-integer (pathname-name path) :junk-allowed t)))
                (and fd (ignore-errors (eclsock::%local-address fd) t))))
            (ignore-errors (directory "/proc/self/fd/*" :resolve-symlinks nil))))

(defmacro without-leaks ((what) &body body)
  "Run BODY, then check that no descriptor (and no TLS session) is left,
allowing a short while for threads that close last; a leak lists the
descriptors BODY left."
  (let ((fds (gensym)) (ssl (gensym)) (table (gensym)))
    `(let ((,fds (open-fd-count)) (,ssl (sessions)) (,table (fd-table)))
       (multiple-value-prog1 (progn ,@body)
         (loop repeat 100 until (and (<= (open-fd-count) ,fds) (<= (sessions) ,ssl))
               do (sleep 0.02))
         (is (<= (open-fd-count) ,fds)
             (format nil "~A: no descriptor leaked (~D before, ~D after; new: ~S)"
                     ,what ,fds (open-fd-count)
                     (set-difference (fd-table) ,table :test #'equal)))
         (is (<= (sessions) ,ssl)
             (format nil "~A: no TLS session leaked (~D before, ~D after)"
                     ,what ,ssl (sessions)))))))

(defun octets (n &optional (seed 0))
  "N octets of a pattern that differs at every position (SEED shifts it)."
  (declare (fixnum n seed) (optimize (speed 3) (safety 0)))
  (let ((v (make-array n :element-type '(unsigned-byte 8))))
    (dotimes (i n v)
      (declare (fixnum i))
      (setf (aref v i) (logand (+ seed (* 7 i) (floor i 251)) 255)))))

(defun concat (vectors)
  (let ((out (make-array (reduce #'+ vectors :key #'length) :element-type '(unsigned-byte 8)))
        (pos 0))
    (dolist (v vectors out)
      (replace out v :start1 pos)
      (incf pos (length v)))))

(defun read-all (s &key (chunk 65536) (quiet-seconds 3))
  "Every octet S gives until end of file, an error, or QUIET-SECONDS with
nothing arriving (S's read timeout is set to that): values the octets and
how it ended (:EOF, :QUIET or the condition)."
  (let ((out (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0))
        (buf (make-array chunk :element-type '(unsigned-byte 8))))
    (values out
            (handler-case
                (progn
                  (socket-options s :so-rcvtimeo quiet-seconds)
                  (loop
                    (let ((n (ext:read-byte-sequence buf s :interactive t)))
                      (when (zerop n) (return :eof))
                      (loop for i below n do (vector-push-extend (aref buf i) out)))))
              (socket-timeout-error () :quiet)
              (error (e) e)))))

(defun prefix-p (received written)
  "True when RECEIVED is a prefix of WRITTEN."
  (and (<= (length received) (length written))
       (null (mismatch received written :end2 (length received)))))

(defun fill-until-held (c &key (chunk 4096) (max 60))
  "Write CHUNK-octet pieces to C (no explicit flush) until some output is
held in C's buffer because the peer's kernel buffers are full; at most MAX
pieces (that stay under the 64 KiB stream buffer).  The octets written."
  (let ((written '()))
    (loop for i below max
          do (let ((v (octets chunk i)))
               (write-sequence v c)
               (push v written))
             (sleep 0.01)
          until (and (>= i 3) (plusp (eclsock::%stream-pending-output c))
                     (progn (sleep 0.05) (plusp (eclsock::%stream-pending-output c)))))
    (concat (reverse written))))

(defun closed-stream-error-p (e)
  "E is what a writer woken by another thread's close should get: a
SOCKET-ERROR whose code says the stream is closed (:EBADF)."
  (and (typep e 'socket-error) (eq (socket-error-code e) :ebadf)))

;;; ------------------------------------------------------------------
;;; 1. Close while another thread is blocked reading

(defparameter *read-kinds* '(:read-line-nil :read-line-t :read-byte :read-sequence :read-char))

(defun blocked-read (kind s)
  "Do a read of KIND on S, which has nothing to read: what it gave."
  (handler-case
      (ecase kind
        (:read-line-nil (list :value (read-line s nil :eof)))
        (:read-line-t (list :value (read-line s t)))
        (:read-byte (list :value (read-byte s nil :eof)))
        (:read-char (list :value (read-char s nil :eof)))
        (:read-sequence (list :value (read-sequence (make-array 100 :element-type '(unsigned-byte 8)) s))))
    (end-of-file () (list :end-of-file))
    (error (e) (list :error e))))

(defun read-saw-eof-p (kind r)
  (ecase kind
    ((:read-line-nil :read-byte :read-char) (equal r '(:value :eof)))
    (:read-line-t (equal r '(:end-of-file)))
    (:read-sequence (equal r '(:value 0)))))

(defun close-wakes-blocked (transport n who kinds operation ok-p &optional (settle 0))
  "N times: a thread (WHO) does OPERATION of the next of KINDS on the
client stream of a fresh pair, which blocks; once it sleeps in the kernel
(and SETTLE seconds more) this thread closes the stream.  The close must
return within 3 s and the blocked call end with what OK-P accepts."
  (let ((failures 0) (slowest 0))
    (without-leaks (transport)
      (dotimes (i n)
        (let ((kind (nth (mod i (length kinds)) kinds)))
          (with-transport-pair (c s transport)
            (multiple-value-bind (thread box)
                (spawn-announced who (lambda () (funcall operation kind c)))
              (wait-until-blocked box)
              (sleep (+ settle (random 0.003)))
              (multiple-value-bind (closed seconds) (timed (close c))
                (multiple-value-bind (r ended) (finish-within thread 3)
                  (setf slowest (max slowest seconds))
                  (unless (and (< seconds 3) ended (funcall ok-p kind (first r)))
                    (incf failures)
                    (when (<= failures 5)
                      (format t "~&  ~A ~A #~D: close ~A after ~,3F s; the ~A ~A~%"
                              transport kind i (describe-result closed) seconds who
                              (if ended (describe-result (first r)) "still blocked after 3 s"))))
                  (unless ended
                    (close s)           ; let it go, if that can
                    (return)))))))))
    (format t "~&  ~A: ~D closes of a stream with a blocked ~A, ~D wrong; slowest close ~,3F s~%"
            transport n who failures slowest)
    failures))

(defun close-wakes-readers (transport n)
  (let ((wrong (close-wakes-blocked transport n "reader" *read-kinds* #'blocked-read #'read-saw-eof-p)))
    (is (zerop wrong) "every close returned within 3 s and the reader saw end of file")))

(deftest-per-transport close-wakes-blocked-reader () close-wakes-readers 150 150 80)

;;; ------------------------------------------------------------------
;;; 2. Close while another thread is blocked writing to a full socket

(defparameter *write-kinds* '(:write-sequence :force-output :finish-output))

(defvar *big* (octets (* 4 1024 1024)))
(defvar *piece* (octets 4096))

(defun blocked-write (kind c)
  "Write to C, whose peer does not read, until the write blocks (KIND says
in which call); what that gave."
  (let ((piece *piece*))
    (handler-case
        (ecase kind
          (:write-sequence
           (write-sequence *big* c)
           (list :value :all-written))
          ((:force-output :finish-output)
           (loop repeat 1024
                 do (write-sequence piece c)
                    (if (eq kind :force-output) (force-output c) (finish-output c)))
           (list :value :all-written)))
      (error (e) (list :error e)))))

(defun close-wakes-writers (transport n)
  (let ((wrong (close-wakes-blocked transport n "writer" *write-kinds* #'blocked-write
                                    (lambda (kind r)
                                      (declare (ignore kind))
                                      (and (eq (first r) :error) (closed-stream-error-p (second r))))
                                    0.01)))
    (is (zerop wrong) "every close returned within 3 s and the writer got a SOCKET-ERROR :EBADF")))

(deftest-per-transport close-wakes-blocked-writer () close-wakes-writers 45 45 30)

;;; ------------------------------------------------------------------
;;; 3. Close while another thread waits in SOCKET-STATUS or POLLER-WAIT

(defun close-wakes-waiter (transport n how)
  "HOW :STATUS or :POLLER: a thread waits (10 s) for input on the client
stream; another closes it.  The wait must end within 3 s (with a value or a
SOCKET-ERROR), the process live."
  (let ((failures 0) (results (make-hash-table :test 'equal)))
    (without-leaks (transport)
      (dotimes (i n)
        (with-transport-pair (c s transport)
          (let* ((poller (and (eq how :poller) (make-poller))))
            (unwind-protect
                 (progn
                   (when poller (poller-add poller c :input))
                   (multiple-value-bind (waiter box)
                       (spawn-announced "waiter"
                                        (lambda ()
                                          (handler-case
                                              (if poller
                                                  (poller-wait poller 10)
                                                  (socket-status (cons c :input) 10))
                                            (socket-error (e) (list :socket-error (socket-error-code e)))
                                            (error (e) (list :error (type-of e))))))
                     (wait-until-blocked box)
                     (sleep (random 0.003))
                     (multiple-value-bind (closed seconds) (timed (close c))
                       (multiple-value-bind (r ended) (finish-within waiter 3)
                         (let ((key (if ended
                                        (let ((v (first r)))
                                          ;; the stream itself printed as :THE-STREAM
                                          ;; (a poller answers ((stream . status)))
                                          (format nil "~S" (subst-if :the-stream #'streamp v)))
                                        "still waiting after 3 s")))
                           (incf (gethash key results 0)))
                         (unless (and ended (< seconds 3))
                           (incf failures)
                           (when (<= failures 3)
                             (format t "~&  ~A ~A #~D: close ~A after ~,3F s; waiter ~A~%"
                                     transport how i (describe-result closed) seconds
                                     (if ended (first r) "still waiting after 3 s"))))
                         (unless ended (close s) (return))))))
              (when poller (poller-close poller)))))))
    (format t "~&  ~A ~A: ~D closes during a wait, ~D wrong; the waits returned:~%"
            transport how n failures)
    (maphash (lambda (k v) (format t "~&    ~D x ~A~%" v k)) results)
    (is (zerop failures) "every wait ended within 3 s of the close")))

(defun close-wakes-socket-status (transport n) (close-wakes-waiter transport n :status))
(defun close-wakes-poller-wait (transport n) (close-wakes-waiter transport n :poller))
(deftest-per-transport close-wakes-socket-status () close-wakes-socket-status 30 30 20)
(deftest-per-transport close-wakes-poller-wait () close-wakes-poller-wait 30 30 20)

;;; ------------------------------------------------------------------
;;; 4. A closed stream: closing again, using it after another thread closed it

(defun uses-of-closed-stream (c)
  "Every use of the closed stream C, each as (name . what it gave)."
  (flet ((try (name f)
           (cons name (handler-case (list :returned (funcall f))
                        (error (e) (list :error e))))))
    (list (try "read-line" (lambda () (read-line c nil :eof)))
          (try "read-byte" (lambda () (read-byte c nil :eof)))
          (try "read-sequence" (lambda () (read-sequence (make-array 4 :element-type '(unsigned-byte 8)) c)))
          (try "write-line+force-output" (lambda () (write-line "after close" c) (force-output c)))
          (try "write-byte+finish-output" (lambda () (write-byte 1 c) (finish-output c)))
          (try "write-sequence" (lambda () (write-sequence (octets 100000) c))))))

(defun closed-use-checks (transport)
  (without-leaks (transport)
    (with-transport-pair (c s transport)
      (write-line "pending" c)             ; some output held at close
      (let ((closer (spawn "closer" (lambda () (close c)))))
        (multiple-value-bind (r ended) (finish-within closer 3)
          (is ended "the other thread's close returned")
          (is (equal r '(t)) (format nil "close returned ~S" r))))
      (is (not (open-stream-p c)) "the stream is closed")
      (multiple-value-bind (r seconds) (timed (close c))
        (is (< seconds 3) "a second close returns at once")
        (is (not (and (consp r) (eq (first r) :error)))
            (format nil "a second close signals nothing: ~A" (describe-result r))))
      (dolist (use (uses-of-closed-stream c))
        (destructuring-bind (name how value) use
          (is (and (eq how :error) (typep value '(or stream-error socket-error)))
              (format nil "~A on ~A closed by another thread gave ~A" name transport
                      (if (eq how :error) (describe-result (list :error value)) value)))))
      ;; the peer sees the held line, then end of file
      (is (equal (read-line s nil :eof) "pending") "close sent the held output")
      (is (eq (read-line s nil :eof) :eof) "then end of file"))))

(deftest-per-transport closed-stream-twice-and-used () closed-use-checks)

;;; ------------------------------------------------------------------
;;; 5. No holes: after a send timeout the unsent octets are kept

(defun send-timeout-keeps-octets (transport)
  (without-leaks (transport)
    (with-transport-pair (c s transport)
      (socket-options c :so-sndtimeo 0.5)
      (let* ((first-write (octets 200000 1))
             (second-write (octets 30000 2))
             (third-write (octets 70000 3))
             (e1 (handler-case (progn (write-sequence first-write c) (finish-output c) nil)
                   (error (e) e))))
        (is (typep e1 'socket-timeout-error)
            (format nil "200,000 octets to a peer that does not read: ~A"
                    (describe-result (list :error e1))))
        ;; a later write while the peer still does not read: allowed; it
        ;; may time out again (the kept octets go first)
        (let ((e2 (handler-case (progn (write-sequence second-write c) nil) (error (e) e))))
          (is (or (null e2) (typep e2 'socket-timeout-error))
              (format nil "the second write: ~A" (and e2 (describe-result (list :error e2))))))
        ;; now the peer reads everything
        (let ((reader (spawn "peer reads" (lambda () (multiple-value-list (read-all s))))))
          (let ((e3 (handler-case (progn (write-sequence third-write c) (finish-output c)
                                         (close c) nil)
                      (error (e) e))))
            (is (null e3) (format nil "writes once the peer reads: ~A"
                                  (and e3 (describe-result (list :error e3))))))
          (multiple-value-bind (r ended) (finish-within reader 20)
            (is ended "the peer's reader finished")
            (destructuring-bind (&optional received how) (first r)
              (let ((written (concat (list first-write second-write third-write))))
                (format t "~&  ~A: wrote ~D octets (200,000 timed out), the peer received ~D (~A)~%"
                        transport (length written) (length received) how)
                (is (and received (prefix-p received written))
                    (format nil "what the peer received is a prefix of what was written ~
                                 (first difference at ~S)"
                            (and received (mismatch received written))))
                (is (and received (= (length received) (length written)))
                    "the peer received every octet written, the timed-out ones too")))))))))

(deftest-per-transport send-timeout-keeps-unsent-octets () send-timeout-keeps-octets)

;;; ------------------------------------------------------------------
;;; 6. A read timeout holds while output is pending to a peer that does
;;; not read

(defun read-timeout-with-pending-output (transport)
  (without-leaks (transport)
    (with-transport-pair (c s transport)
      (socket-options c :so-rcvtimeo 0.5)
      (fill-until-held c)
      (write-line "and a request" c)
      (is (plusp (eclsock::%stream-pending-output c)) "output is held for the stalled peer")
      (let ((reader (spawn "read-line" (lambda ()
                                         (let ((t0 (now)))
                                           (handler-case (list :value (read-line c nil :eof)
                                                               (- (now) t0))
                                             (error (e) (list :error e (- (now) t0)))))))))
        (multiple-value-bind (r ended) (finish-within reader 5)
          (let ((r (first r)))
            (format t "~&  ~A: read-line with :so-rcvtimeo 0.5 and held output: ~A~%"
                    transport (if ended (format nil "~A after ~,3F s"
                                                (describe-result (butlast r)) (third r))
                                  "no answer after 5 s"))
            (is ended "read-line returned within 5 s")
            (is (and ended (eq (first r) :error) (typep (second r) 'socket-timeout-error))
                "read-line signalled SOCKET-TIMEOUT-ERROR")
            (is (and ended (< (third r) 3)) "within 3 s (the bound is 0.5 s)")))
        (unless (finish-within reader 0)
          (close s)                     ; frees the stuck flush, if it can
          (finish-within reader 3))))))

(deftest-per-transport read-timeout-with-pending-output () read-timeout-with-pending-output)

;;; ------------------------------------------------------------------
;;; 7. Stalled peers cost no sends

(defun sends-over (seconds)
  "How many send-family system calls the module makes in SECONDS."
  (let ((n0 (eclsock::%send-calls)))
    (sleep seconds)
    (- (eclsock::%send-calls) n0)))

(deftest one-stalled-peer-costs-no-sends (:timeout 60)
  (without-leaks (:tcp)
    (with-transport-pair (c s :tcp)
      (let* ((written (fill-until-held c))
             (line (format nil "held line~%")))
        (write-line "held line" c)      ; ECL's own flush after it only holds
        (sleep 0.2)
        (let ((held (eclsock::%stream-pending-output c))
              (sends (sends-over 1)))
          (format t "~&  one stalled peer, ~D octets held: ~D sends in 1 s~%" held sends)
          (is (plusp held) "output is held")
          (is (<= sends 2) (format nil "at most 2 sends in 1 s while the peer is stalled, not ~D" sends)))
        ;; the peer reads: every held octet arrives
        (let* ((expected (concat (list written (map '(vector (unsigned-byte 8)) #'char-code line))))
               (got (make-array (length expected) :element-type '(unsigned-byte 8))))
          (socket-options s :so-rcvtimeo 5)
          (let ((n (handler-case (read-sequence got s) (error (e) (format t "~&  read: ~A~%" e) 0))))
            (is (= n (length expected))
                (format nil "the peer received all ~D octets (~D)" (length expected) n))
            (is (null (mismatch got expected :end1 n :end2 n)) "in order, intact")))))))

(defun bounded (seconds function)
  "Call FUNCTION in a thread; values its result list and whether it ended
within SECONDS (when not, it is left running)."
  (finish-within (spawn "bounded" function) seconds))

(defun write-held (c data)
  "Write DATA to C in pieces under the size that skips the stream's buffer,
then a line: no explicit flush, so what the peer cannot take is held."
  (loop for start from 0 below (length data) by 4096
        do (write-sequence data c :start start :end (min (length data) (+ start 4096))))
  (write-line "end" c))

(deftest thousand-stalled-peers-cost-no-sends (:timeout 120)
  (let ((limit (raise-descriptor-limit 4096)) (n 1000))
    (if (< limit (+ (open-fd-count) (* 2 n) 50))
        (format t "~&  skipped: the descriptor limit is ~D, 1000 pairs need ~D~%"
                limit (+ (open-fd-count) (* 2 n) 50))
        (without-leaks (:tcp)
          (let ((pairs '()) (per 24576))
            (unwind-protect
                 (progn
                   (dotimes (i n)
                     (multiple-value-bind (c s) (open-pair :tcp)
                       (push (list c s (octets per i)) pairs)))
                   (setf pairs (nreverse pairs))
                   ;; each writer writes more than its peer's buffers take,
                   ;; no explicit flush: the rest is held for the flusher
                   (is (nth-value 1 (bounded 30 (lambda ()
                                                  (loop for (c nil data) in pairs
                                                        do (write-held c data)))))
                       "the writes (held output, no explicit flush) returned")
                   (sleep 0.5)
                   (let ((held (count-if (lambda (p) (plusp (eclsock::%stream-pending-output (first p))))
                                         pairs))
                         (sends (sends-over 1)))
                     (format t "~&  ~D stalled peers, ~D streams hold output: ~D sends in 1 s (~,2F a stream)~%"
                             n held sends (/ sends n))
                     (is (> held (* 0.9 n)) "(nearly) every stream holds output")
                     (is (<= sends (* 2 n)) "at most ~2 sends per stalled stream in 1 s"))
                   ;; every peer reads: every held octet arrives
                   (let ((t0 (now)))
                     (multiple-value-bind (r ended)
                         (bounded 60
                                  (lambda ()
                                    (loop for (nil s data) in pairs
                                          count (let* ((expected (concat (list data (map '(vector (unsigned-byte 8))
                                                                                         #'char-code (format nil "end~%")))))
                                                       (got (make-array (length expected) :element-type '(unsigned-byte 8))))
                                                  (socket-options s :so-rcvtimeo 5)
                                                  (let ((k (handler-case (read-sequence got s) (error () 0))))
                                                    (not (and (= k (length expected)) (null (mismatch got expected)))))))))
                       (format t "~&  the peers read ~D x ~D octets in ~,2F s; ~A incomplete~%"
                               n (+ per 4) (- (now) t0) (if ended (first r) "(not finished in 60 s)"))
                       (is (and ended (eql 0 (first r))) "every held octet arrived at every peer"))))
              (loop for (c s) in pairs do (ignore-errors (close s)) (ignore-errors (close c)))))))))

;;; ------------------------------------------------------------------
;;; 8. Random interleavings: a reader, a writer, flushes, a close

(defun interleaving (transport state)
  "One round: C gets a reader thread (reading what S sends) and a writer
thread (writing numbered chunks, flushing at random); a close comes from
a random thread at a random moment.  S's side reads everything C sent.
Values: whether everything ended within bounds, and whether what S got is a
prefix of what was written (a problem description when not)."
  (with-transport-pair (c s transport)
    (let* ((written (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0))
           (lock (mp:make-lock))
           (closer (random 4 state))   ; 0 main, 1 reader, 2 writer, 3 own thread
           (delay (random 0.01 state))
           (t0 (now))
           (close-it (lambda () (ignore-errors (close c))))
           (peer (spawn "peer" (lambda ()
                                 (let ((feeder (spawn "feeder"
                                                      (lambda ()
                                                        (ignore-errors
                                                         (loop repeat 50
                                                               do (write-line "from the peer" s)
                                                                  (force-output s)
                                                                  (sleep 0.0005)))))))
                                   (prog1 (multiple-value-list (read-all s :quiet-seconds 5))
                                     (finish-within feeder 5))))))
           (reader (spawn "reader"
                          (lambda ()
                            (handler-case
                                (loop for line = (read-line c nil nil)
                                      while line
                                      do (when (and (= closer 1) (> (- (now) t0) delay))
                                           (funcall close-it))
                                         (when (zerop (random 8))
                                           (force-output c)))
                              (error () nil)))))
           (writer (spawn "writer"
                          (lambda ()
                            (let ((state (make-random-state t)))
                              (handler-case
                                  (loop for k from 0 below 400
                                        do (let ((v (octets (1+ (random 3000 state)) k)))
                                             ;; recorded first: a write that fails may have sent part
                                             (mp:with-lock (lock)
                                               (loop for x across v do (vector-push-extend x written)))
                                             (write-sequence v c)
                                             (case (random 6 state)
                                               (0 (force-output c))
                                               (1 (finish-output c)))
                                             (when (and (= closer 2) (> (- (now) t0) delay))
                                               (funcall close-it))))
                                (error () nil))))))
           (own (and (= closer 3)
                     (spawn "closer" (lambda () (sleep delay) (funcall close-it))))))
      (when (= closer 0)
        (sleep delay)
        (funcall close-it))
      (let ((ok t))
        (loop for p in (list writer reader own)
              for name in '("writer" "reader" "closer")
              when (and p (not (nth-value 1 (finish-within p 5))))
                do (setf ok nil)
                   (format t "~&  ~A round: the ~A did not finish in 5 s (closer ~[main~;reader~;writer~;own thread~] after ~,1F ms)~%"
                           transport name closer (* 1000 delay)))
        ;; a round whose reader or writer finished before the close time
        (funcall close-it)
        (multiple-value-bind (r ended) (finish-within peer 10)
          (unless ended (setf ok nil))
          (let ((received (first (first r))))
            (values ok
                    (cond ((not ended) "the peer did not finish")
                          ((prefix-p received written) t)
                          (t (let ((m (mismatch received written)))
                               (format nil "received ~D of ~D written (closer ~[main~;reader~;writer~;own thread~] ~
                                            after ~,1F ms), first difference at ~D: received ~{~D~^ ~}..., written ~{~D~^ ~}..."
                                       (length received) (length written) closer (* 1000 delay) m
                                       (coerce (subseq received m (min (length received) (+ m 12))) 'list)
                                       (coerce (subseq written m (min (length written) (+ m 12))) 'list))))))))))))

(defun random-interleavings (transport n)
  (let ((state (make-random-state t)) (hung 0) (holes 0) (t0 (now)))
    (without-leaks (transport)
      (dotimes (i n)
        (multiple-value-bind (ok prefix) (interleaving transport state)
          (unless ok (incf hung))
          (unless (eq prefix t)
            (incf holes)
            (when (<= holes 3) (format t "~&  ~A round ~D: ~A~%" transport i prefix))))))
    (format t "~&  ~A: ~D random rounds in ~,1F s: ~D not finished in time, ~D not a prefix~%"
            transport n (- (now) t0) hung holes)
    (is (zerop hung) "every thread of every round finished within its bound")
    (is (zerop holes) "the peer always received a prefix of what was written")))

(deftest-per-transport random-interleavings (:timeout 90) random-interleavings 150 150 80)

;;; ------------------------------------------------------------------
;;; 9. Streams dropped without close: on the flusher's list, in a poller

(defun drop-streams (n transport poller)
  "Open N pairs in a thread that then ends; each client holds output for a
peer that does not read (and is in POLLER when given).  Returns the server
sides (kept: the peers) and how many of the pairs' streams own an open
descriptor (not a count of the process's sockets: a stream an earlier test
dropped may be finalized at any time)."
  (first (join (spawn "dropper"
                      (lambda ()
                        (let ((servers '()) (clients '()))
                          (dotimes (i n)
                            (multiple-value-bind (c s) (open-pair transport)
                              (fill-until-held c)
                              (write-line "held" c)
                              (when poller (poller-add poller c :input))
                              (push c clients)
                              (push s servers)))
                          (prog1 (list servers
                                       (count-if #'eclsock::%stream-fd (append clients servers)))
                            (setf clients nil))))))))

(defun collect-garbage-until (predicate)
  (loop repeat 30
        until (funcall predicate)
        do (ext:gc t) (make-list 1000) (sleep 0.1)))

(defun settled-socket-count ()
  "The socket count once the finalizers of streams an earlier test dropped
have run (it stops changing across collections)."
  (loop with last = -1
        repeat 10
        for now = (progn (ext:gc t) (make-list 1000) (sleep 0.05) (open-socket-count))
        until (= now last)
        do (setf last now)
        finally (return now)))

(defun dropped-streams (transport with-poller)
  (let* ((n 10) (errors '()) (fds (settled-socket-count)) (ssl (sessions))
         (poller (and with-poller (make-poller))))
    (destructuring-bind (servers opened) (drop-streams n transport poller)
      (is (= opened (* 2 n)) (format nil "the pairs were open (~D streams with a descriptor)" opened))
      (handler-bind ((error (lambda (e) (push e errors))))
        ;; the peers read: the held output drains, and then the dropped
        ;; streams are garbage (the flusher let go of them)
        (let ((readers (mapcar (lambda (s) (spawn "peer" (lambda () (read-all s :quiet-seconds 2))))
                               servers)))
          (dolist (r readers) (finish-within r 10)))
        (when poller
          (let ((r (timed (poller-wait poller 0.1))))
            (format t "~&  poller-wait with dropped streams: ~A~%" (describe-result r))))
        (when poller (poller-close poller))
        (setf poller nil)
        (mapc #'close servers)
        (collect-garbage-until (lambda () (<= (open-socket-count) fds))))
      (let ((released (- (+ fds (* 2 n)) (open-socket-count))))
        (format t "~&  ~A~:[~; in a poller~]: finalizers and closes released ~D of ~D descriptors; ~D TLS sessions left of ~D~%"
                transport with-poller released (* 2 n) (- (sessions) ssl) n)
        (is (>= released (* 1.8 n)) "(nearly) every dropped stream was closed by its finalizer")
        (is (<= (- (sessions) ssl) (* 0.2 n)) "(nearly) every dropped TLS session was freed"))
      (is (null errors) (format nil "no error signalled: ~S" errors)))))

(deftest dropped-streams-holding-output-tcp (:timeout 60)
  (dropped-streams :tcp nil))
(deftest dropped-streams-holding-output-tls (:timeout 60)
  (dropped-streams :tls nil))
(deftest dropped-streams-in-a-poller-tcp (:timeout 60)
  (dropped-streams :tcp t))

;;; ------------------------------------------------------------------
;;; 10. Finalizers leave the interrupted thread's values alone
;;;
;;; ECL runs a finalizer inside the allocation that found it due, in the
;;; thread that allocated, and passes the arguments of a call from compiled
;;; code to an interpreted function in that thread's values array, which
;;; the callee reads one by one while it allocates: a finalizer that writes
;;; the array (anything in it returning two values) changes an argument.
;;; The module's finalizers (streams, descriptor owners, TLS contexts) keep
;;; the array (src/eclcompat.c).  A control with a finalizer that returns
;;; three values shows that the check sees the damage on this ECL.

(defun calls-with-finalizers (drop rounds)
  "ROUNDS times: DROP (which leaves objects with finalizers for the GC),
then 2,000 calls from here (compiled) to an interpreted function of three
arguments.  Values: how many calls saw a wrong argument, and how many."
  (let ((f (coerce '(lambda (a b c) (list a b c)) 'function))
        (wrong 0) (calls 0))
    (dotimes (i rounds)
      (funcall drop)
      (dotimes (k 2000)
        (incf calls)
        (unless (equal (funcall f 'x 'y 'z) '(x y z))
          (incf wrong))))
    (values wrong calls)))

(defun drop-module-objects ()
  "Leave one of each of the module's objects that have a finalizer for the
GC: an open and a closed server, a poller, a TLS context and a connected
pair of streams, none closed."
  (socket-server 0 :interface "127.0.0.1")
  (socket-server-close (socket-server 0 :interface "127.0.0.1"))
  (make-poller)
  (make-ssl-client-context :ca-file (cert "ca.pem"))
  (let ((c (socket-connect (socket-server-port *tcp-server*) "127.0.0.1" :timeout 5)))
    (socket-accept *tcp-server* :timeout 5)
    (write-line "held" c))
  nil)

(defun drop-values-writers ()
  "The control: objects whose finalizer returns three values."
  (dotimes (i 8)
    (ext:set-finalizer (make-list 4) #'values-finalizer)))

(defun values-finalizer (x) (values x x x))

(deftest finalizers-keep-callers-arguments (:timeout 120)
  ;; the module's objects first (the control's dropped lists would still
  ;; be finalized in the next phase); settled: earlier objects finalized
  (let ((fds (settled-socket-count)))
    (multiple-value-bind (wrong calls2) (calls-with-finalizers #'drop-module-objects (scaled 300))
      (collect-garbage-until (lambda () (<= (open-socket-count) fds)))
      (multiple-value-bind (control calls) (calls-with-finalizers #'drop-values-writers (scaled 300))
        (format t "~&  control (finalizers returning three values): ~D of ~D calls saw a wrong argument~%"
                control calls)
        (format t "~&  the module's objects dropped: ~D of ~D calls saw a wrong argument; ~D sockets left~%"
                wrong calls2 (- (open-socket-count) fds))
        (when (zerop control)
          (format t "~&  (this ECL kept the arguments even in the control: the check proves little here)~%"))
        (is (zerop wrong) "no call saw its argument changed by the module's finalizers")
        (is (<= (open-socket-count) fds) "the finalizers closed every dropped socket")))))

;;; Last: the listeners and the guard go.
(deftest listeners-close ()
  (ignore-errors (close (first *guard*)))
  (socket-server-close *tcp-server*)
  (close *unix-server*)
  (is (not (probe-file *unix-path*)) "the Unix socket file is gone"))
