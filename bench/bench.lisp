;;;; bench.lisp - the Lisp side of `make bench`.
;;;;
;;;; (bench:main "client" IMPL WORKLOAD N) runs one workload over loopback
;;;; and prints one line: its rate in units per second.  IMPL is
;;;; "ecl-sock" (the SOCKET package of sock.fas) or "sb-bsd-sockets" (ECL's
;;;; contrib streams: SOCKET-MAKE-STREAM with :BUFFERING :FULL).  The client
;;;; starts its server as a second ECL process (ext:run-program, the same
;;;; files loaded, role "server"), reads the port from it, does the timed
;;;; part and waits for the server to exit.  Workloads, sizes and units are
;;;; those of bench/cbench.c:
;;;;
;;;;   bulk N    N MiB: WRITE-SEQUENCE of 64 KiB (UNSIGNED-BYTE 8) vectors,
;;;;             the server READ-SEQUENCEs them and answers one octet  (MiB)
;;;;   rtt N     N round trips: WRITE-LINE of 63 characters + FORCE-OUTPUT,
;;;;             the server READ-LINE, WRITE-LINE, FORCE-OUTPUT, the client
;;;;             READ-LINE                                            (trips)
;;;;   text N    the server WRITE-LINEs N lines of 80 characters (then one
;;;;             FORCE-OUTPUT); the client READ-LINEs them            (lines)
;;;;   multi N   N requests on one connection: the client FORMATs a
;;;;             request line and FORCE-OUTPUTs, the server READ-LINEs it and
;;;;             answers 4 header lines (WRITE-LINE, FORMAT ~%) and a short
;;;;             body (WRITE-STRING) then FORCE-OUTPUT; the client READ-LINEs
;;;;             the 5 lines.  Prints the median and the 99th percentile of
;;;;             the request times, in microseconds            ("med p99")
;;;;   octets N  N round trips of cl-postgres's shape on (UNSIGNED-BYTE 8)
;;;;             streams: the client writes a request of 65 octets (type,
;;;;             4-octet length, 60 octets) with WRITE-BYTE and one
;;;;             FORCE-OUTPUT; the server reads it with READ-BYTE and answers
;;;;             1,005 octets (type, length, then 100 times 6 WRITE-BYTEs
;;;;             and a 4-octet WRITE-SEQUENCE), FORCE-OUTPUT; the client
;;;;             reads them the same way (READ-BYTE, 4-octet READ-SEQUENCE)
;;;;                                                                  (trips)
;;;;   cycles N  connect, the server accepts and closes, the client reads
;;;;             end of file and closes                              (cycles)
;;;;   mux N     $MUX_IDLE (default 1000) idle connections and an active
;;;;             one; the server calls SOCKET-STATUS over all of them before
;;;;             every round trip (ecl-sock only: sb-bsd-sockets has no
;;;;             readiness call)
;;;;   pmux N    the same on a poller (SOCKET:POLLER-WAIT): the streams
;;;;             registered once, one wait per round trip
;;;;
;;;;
;;;; (bench:main "client" "formats-alone" "multi" N) times only the two
;;;; FORMAT calls of each multi request, into a null stream (no server).
;;;;
;;;; (bench:memory SIZES) measures the memory of idle connections held in
;;;; a poller: a child ECL process opens the largest of SIZES connections,
;;;; this one accepts them and registers them, and at each size prints the
;;;; Lisp heap in use (after a full GC) and the RSS, before and after the
;;;; registrations, and the cost per connection between sizes.
;;;;
;;;; A benchmark, not a test: nothing here asserts a time.  A transfer that
;;;; comes out wrong exits with status 1.
;;;;
;;;; Environment: BENCH_ECL (the ecl program), SOCK_FAS and BENCH_FAS (the
;;;; compiled module and this file, compiled), which the server loads too.

(defpackage "BENCH"
  (:use "CL")
  (:export "MAIN" "MEMORY"))

(in-package "BENCH")

(defconstant +chunk+ 65536)
(defconstant +rtt-line+ 63)             ; characters, newline not counted
(defconstant +text-line+ 80)
(defparameter *mux-idle*
  (let ((n (ext:getenv "MUX_IDLE")))
    (or (and n (parse-integer n :junk-allowed t)) 1000)))
(defconstant +server-limit+ 600)        ; seconds before a server gives up

(ffi:clines "#include <time.h>" "#include <unistd.h>")

(defun now ()
  "Monotonic time in seconds."
  (ffi:c-inline () () :double
    "{ struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
       @(return) = ts.tv_sec + ts.tv_nsec * 1e-9; }"))

(defun heap-in-use ()
  "Octets of the Boehm heap in use (heap size minus free octets)."
  (ffi:c-inline () () :unsigned-long
    "GC_get_heap_size() - GC_get_free_bytes()" :one-liner t))

(defun rss-kib ()
  "The resident set size of this process, KiB (/proc/self/status)."
  (with-open-file (in "/proc/self/status")
    (loop for line = (read-line in nil) while line
          when (eql 0 (search "VmRSS:" line))
            return (parse-integer line :start 6 :junk-allowed t))))

(defun full-gc ()
  (dotimes (i 3) (ext:gc t)))

(defun memory (sizes)
  "Print the memory per idle connection held in a poller at each of SIZES
\(a list of increasing counts), then quit."
  (let* ((sizes (sort (copy-list sizes) #'<))
         (total (car (last sizes)))
         (server (socket:socket-server 0 :interface "127.0.0.1" :backlog 1024))
         (port (socket:socket-server-port server))
         (streams '())
         (rows '()))
    (multiple-value-bind (out code process)
        (ext:run-program (env "BENCH_ECL")
                         (list "-norc" "-eval" "(setq *load-verbose* nil)"
                               "-eval" (format nil "(load ~S)" (env "SOCK_FAS"))
                               "-eval" (format nil "(defvar *c* (loop repeat ~D collect (socket:socket-connect ~D \"127.0.0.1\")))"
                                               total port)
                               "-eval" "(read-line *standard-input* nil)"
                               "-eval" "(ext:quit 0)")
                         :input :stream :output nil :error nil :wait nil)
      (declare (ignore code))
      (socket:with-poller (p)
        (full-gc)
        (push (list 0 (heap-in-use) (rss-kib) (heap-in-use) (rss-kib)) rows)
        (dolist (k sizes)
          (let ((fresh (loop repeat (- k (length streams))
                             collect (socket:socket-accept server :timeout 60))))
            (setf streams (append fresh streams))
            (full-gc)
            (let ((heap (heap-in-use)) (rss (rss-kib)))
              (dolist (s fresh) (socket:poller-add p s))
              (full-gc)
              (push (list k heap rss (heap-in-use) (rss-kib)) rows))))
        (unless (null (socket:poller-wait p 0))
          (fail "memory: an idle connection was ready")))
      (mapc #'close streams)
      (close out)
      (ext:external-process-wait process t))
    (socket:socket-server-close server)
    (setf rows (nreverse rows))
    (format t "~&connections  heap KiB  RSS KiB  (streams only: heap KiB, RSS KiB)~%")
    (dolist (r (rest rows))
      (destructuring-bind (k heap0 rss0 heap rss) r
        (format t "~11D ~9D ~8D  (~D, ~D)~%" k (round heap 1024) rss (round heap0 1024) rss0)))
    (loop for (a b) on (rest rows) while b
          do (destructuring-bind (k1 h01 r01 h1 r1) a
               (declare (ignore r01))
               (destructuring-bind (k2 h02 r02 h2 r2) b
                 (declare (ignore r02))
                 (let ((n (- k2 k1)))
                   (format t "~&~D -> ~D: per connection ~D octets of Lisp heap, ~D octets of RSS; ~
                              of which the poller's registration ~D octets of heap~%"
                           k1 k2 (round (- h2 h1) n) (round (* 1024 (- r2 r1)) n)
                           (round (- (- h2 h02) (- h1 h01)) n))))))
    (finish-output)
    (ext:quit 0)))

(defun arm-watchdog (seconds)
  "Let the kernel end this process after SECONDS (SIGALRM)."
  (ffi:c-inline (seconds) (:int) :void "alarm(#0)" :one-liner t))

(defun fail (control &rest args)
  (format *error-output* "~&bench: ~?~%" control args)
  (finish-output *error-output*)
  (ext:quit 1))

;;; ------------------------------------------------------------------
;;; The two implementations behind one small interface.  A connection is
;;; a stream plus whatever must be closed with it.

(defstruct impl
  name
  server                ; () -> server object
  port                  ; (server) -> port
  accept                ; (server element-type) -> (values stream handle)
  connect               ; (port element-type) -> (values stream handle)
  close-conn            ; (stream handle)
  close-server)         ; (server)

(defparameter *ecl-sock*
  (make-impl
   :name "ecl-sock"
   :server (lambda () (socket:socket-server 0 :interface "127.0.0.1" :backlog 1024))
   :port #'socket:socket-server-port
   :accept (lambda (server et)
             (values (socket:socket-accept server :element-type et) nil))
   :connect (lambda (port et)
              (values (socket:socket-connect port "127.0.0.1" :element-type et) nil))
   :close-conn (lambda (stream handle) (declare (ignore handle)) (close stream))
   :close-server #'socket:socket-server-close))

(defun bsd-stream (socket et)
  (sb-bsd-sockets:socket-make-stream socket :input t :output t
                                            :element-type et :buffering :full))

(defparameter *sb-bsd*
  (make-impl
   :name "sb-bsd-sockets"
   :server (lambda ()
             (let ((s (make-instance 'sb-bsd-sockets:inet-socket
                                     :type :stream :protocol :tcp)))
               (setf (sb-bsd-sockets:sockopt-reuse-address s) t)
               (sb-bsd-sockets:socket-bind s #(127 0 0 1) 0)
               (sb-bsd-sockets:socket-listen s 1024)
               s))
   :port (lambda (s) (nth-value 1 (sb-bsd-sockets:socket-name s)))
   :accept (lambda (server et)
             (let ((s (sb-bsd-sockets:socket-accept server)))
               (values (bsd-stream s et) s)))
   :connect (lambda (port et)
              (let ((s (make-instance 'sb-bsd-sockets:inet-socket
                                      :type :stream :protocol :tcp)))
                (sb-bsd-sockets:socket-connect s #(127 0 0 1) port)
                (values (bsd-stream s et) s)))
   :close-conn (lambda (stream handle)
                 (declare (ignore stream))
                 (sb-bsd-sockets:socket-close handle))
   :close-server #'sb-bsd-sockets:socket-close))

(defun find-impl (name)
  (cond ((string= name "ecl-sock") *ecl-sock*)
        ((string= name "sb-bsd-sockets") *sb-bsd*)
        (t (fail "unknown implementation ~A" name))))

(defmacro with-accepted ((stream impl server et) &body body)
  (let ((h (gensym)))
    `(multiple-value-bind (,stream ,h) (funcall (impl-accept ,impl) ,server ,et)
       (unwind-protect (progn ,@body)
         (funcall (impl-close-conn ,impl) ,stream ,h)))))

(defmacro with-connected ((stream impl port et) &body body)
  (let ((h (gensym)))
    `(multiple-value-bind (,stream ,h) (funcall (impl-connect ,impl) ,port ,et)
       (unwind-protect (progn ,@body)
         (funcall (impl-close-conn ,impl) ,stream ,h)))))

(defun octets (n &optional (fill 120))
  (make-array n :element-type '(unsigned-byte 8) :initial-element fill))

(defun make-line (n)
  (let ((s (make-string n)))
    (dotimes (i n s)
      (setf (char s i) (code-char (+ 97 (mod i 26)))))))

;;; ------------------------------------------------------------------
;;; Servers

(defun serve-bulk (impl server n)
  (with-accepted (s impl server '(unsigned-byte 8))
    (let ((buf (octets +chunk+ 0))
          (want (* n 1048576)))
      (loop while (plusp want)
            do (let ((k (read-sequence buf s :end (min +chunk+ want))))
                 (when (zerop k) (fail "bulk: early end of file"))
                 (decf want k)))
      (write-byte 107 s)
      (force-output s))))

(defun echo-lines (s)
  "Answer every line read from S with the same line until end of file."
  (loop for line = (read-line s nil nil)
        while line
        do (write-line line s)
           (force-output s)))

(defun serve-rtt (impl server n)
  (declare (ignore n))
  (with-accepted (s impl server 'character)
    (echo-lines s)))

(defun serve-text (impl server n)
  (with-accepted (s impl server 'character)
    (let ((line (make-line +text-line+)))
      (dotimes (i n)
        (write-line line s))
      (force-output s))))

(defparameter *multi-body*
  (format nil "hello, world~%")
  "The body of every multi-line answer (written with WRITE-STRING).")

(defun serve-multi (impl server n)
  (declare (ignore n))
  (with-accepted (s impl server 'character)
    (loop for request = (read-line s nil nil)
          while request
          do (write-line "HTTP/1.0 200 OK" s)
             (write-line "Content-Type: text/plain" s)
             (format s "Content-Length: ~D~%" (length *multi-body*))
             (terpri s)
             (write-string *multi-body* s)
             (force-output s))))

;;; The octets workload: messages of cl-postgres's shape (a type octet,
;;; a 4-octet big-endian length that counts itself, the body), octet by
;;; octet, with a 4-octet sequence after every 6 octets in the answer.
(defconstant +octets-request+ 60)
(defconstant +octets-groups+ 100)

(defun write-u32 (n s)
  (loop for shift from 24 downto 0 by 8
        do (write-byte (ldb (byte 8 shift) n) s)))

(defun read-u32 (s)
  (let ((n 0))
    (dotimes (i 4 n)
      (setf n (logior (ash n 8) (read-byte s))))))

(defun write-answer (s quad)
  (write-byte 68 s)
  (write-u32 (+ 4 (* +octets-groups+ 10)) s)
  (dotimes (g +octets-groups+)
    (dotimes (k 6) (write-byte (+ g k) s))
    (write-sequence quad s))
  (force-output s))

(defun read-answer (s quad)
  "Read one answer; true when it has the expected shape."
  (and (eql (read-byte s nil nil) 68)
       (= (read-u32 s) (+ 4 (* +octets-groups+ 10)))
       (let ((ok t))
         (dotimes (g +octets-groups+ ok)
           (dotimes (k 6)
             (unless (eql (read-byte s) (+ g k)) (setf ok nil)))
           (unless (= (read-sequence quad s) 4) (setf ok nil))))))

(defun serve-octets (impl server n)
  (declare (ignore n))
  (with-accepted (s impl server '(unsigned-byte 8))
    (let ((quad (octets 4 9)))
      (loop for type = (read-byte s nil nil)
            while type
            do (let ((len (read-u32 s)))
                 (dotimes (i (- len 4)) (read-byte s)))
               (write-answer s quad)))))

(defun client-octets (impl port n)
  (with-connected (s impl port '(unsigned-byte 8))
    (let ((quad (octets 4 9))
          (t0 (now)))
      (dotimes (i n)
        (write-byte 81 s)
        (write-u32 (+ 4 +octets-request+) s)
        (dotimes (k +octets-request+) (write-byte (logand k 255) s))
        (force-output s)
        (unless (read-answer s quad)
          (fail "octets: bad answer")))
      (/ n (- (now) t0)))))

(defun serve-cycles (impl server n)
  (dotimes (i n)
    (with-accepted (s impl server 'character)
      s)))

(defun serve-mux (impl server n)
  (declare (ignore n))
  (unless (eq impl *ecl-sock*)
    (fail "mux: only ecl-sock has SOCKET-STATUS"))
  ;; (stream :input . status) elements: SOCKET-STATUS stores into them
  (let ((entries (loop repeat (1+ *mux-idle*)
                       collect (list* (socket:socket-accept server) :input nil))))
    (unwind-protect
         (loop
           (socket:socket-status entries)
           (dolist (e entries)
             (let ((status (cddr e)))
               (when status                ; most are NIL: idle
                 (let ((line (and (eq status :input) (read-line (car e) nil nil))))
                   (unless line (return-from serve-mux))
                   (write-line line (car e))
                   (force-output (car e)))))))
      (dolist (e entries) (close (car e))))))

(defun serve-pmux (impl server n)
  (declare (ignore n))
  (unless (eq impl *ecl-sock*)
    (fail "pmux: only ecl-sock has a poller"))
  (let ((streams (loop repeat (1+ *mux-idle*) collect (socket:socket-accept server))))
    (unwind-protect
         (socket:with-poller (p)
           (dolist (s streams) (socket:poller-add p s))
           (loop
             (dolist (r (socket:poller-wait p))
               (let* ((s (car r))
                      (line (and (eq (cdr r) :input) (read-line s nil nil))))
                 (unless line (return-from serve-pmux))
                 (write-line line s)
                 (force-output s)))))
      (mapc #'close streams))))

;;; ------------------------------------------------------------------
;;; Clients (timed)

(defun client-bulk (impl port n)
  (with-connected (s impl port '(unsigned-byte 8))
    (let ((buf (octets +chunk+))
          (t0 (now)))
      (dotimes (i (* n (/ 1048576 +chunk+)))
        (write-sequence buf s))
      (force-output s)
      (unless (eql (read-byte s nil nil) 107)
        (fail "bulk: no answer"))
      (/ n (- (now) t0)))))

(defun round-trips (s n)
  (let ((line (make-line +rtt-line+))
        (t0 (now)))
    (dotimes (i n)
      (write-line line s)
      (force-output s)
      (let ((back (read-line s nil nil)))
        (unless (and back (= (length back) +rtt-line+))
          (fail "rtt: bad echo ~S" back))))
    (/ n (- (now) t0))))

(defun client-rtt (impl port n)
  (with-connected (s impl port 'character)
    (round-trips s n)))

(defun client-text (impl port n)
  (let ((t0 (now))
        (count 0))
    (with-connected (s impl port 'character)
      (loop for line = (read-line s nil nil)
            while line
            do (unless (= (length line) +text-line+)
                 (fail "text: line of ~D characters" (length line)))
               (incf count)))
    (unless (= count n)
      (fail "text: ~D lines, expected ~D" count n))
    (/ n (- (now) t0))))

(defun client-multi (impl port n)
  "Returns the median and 99th percentile request times, in microseconds."
  (let ((times (make-array n :element-type 'double-float)))
    (with-connected (s impl port 'character)
      (dotimes (i n)
        (let ((t0 (now)))
          (format s "GET /~D HTTP/1.0~%" i)
          (force-output s)
          (dotimes (k 5)
            (unless (read-line s nil nil)
              (fail "multi: early end of file")))
          (setf (aref times i) (- (now) t0)))))
    (setf times (sort times #'<))
    (list (* 1d6 (aref times (floor n 2)))
          (* 1d6 (aref times (min (1- n) (floor (* 99 n) 100)))))))

(defun client-cycles (impl port n)
  (let ((t0 (now)))
    (dotimes (i n)
      (with-connected (s impl port 'character)
        (unless (eq (read-char s nil :eof) :eof)
          (fail "cycles: expected end of file"))))
    (/ n (- (now) t0))))

(defun client-mux (impl port n)
  (let ((idle (loop repeat *mux-idle*
                    collect (socket:socket-connect port "127.0.0.1"))))
    (unwind-protect
         (with-connected (s impl port 'character)
           (round-trips s n))
      (mapc #'close idle))))

;;; TLS: ecl-sock only (the contrib has no TLS); certificates in
;;; $BENCH_CERTS.  The same work as cbench's tlsbulk and tlshs.

(defun cert-file (name)
  (format nil "~A/~A" (env "BENCH_CERTS") name))

(defun server-context ()
  (socket:make-ssl-server-context :certificate (cert-file "server.pem")
                                  :key (cert-file "server.key")))

(defun client-context ()
  (socket:make-ssl-client-context :ca-file (cert-file "ca.pem")))

(defun check-ecl-sock (impl what)
  (unless (eq impl *ecl-sock*)
    (fail "~A: only ecl-sock has TLS" what)))

(defun serve-tlsbulk (impl server n)
  (check-ecl-sock impl "tlsbulk")
  (let* ((ctx (server-context))
         (s (socket:make-ssl-server-stream
             (socket:socket-accept server :element-type '(unsigned-byte 8)) :context ctx))
         (buf (octets +chunk+)))
    (unwind-protect
         (let ((want (* n 1048576)) (got 0))
           (loop while (< got want)
                 do (let ((k (read-sequence buf s)))
                      (when (zerop k) (return))
                      (incf got k)))
           (write-byte 107 s)
           (force-output s))
      (close s))))

(defun client-tlsbulk (impl port n)
  (check-ecl-sock impl "tlsbulk")
  (let* ((ctx (client-context))
         (s (socket:make-ssl-client-stream
             (socket:socket-connect port "127.0.0.1" :element-type '(unsigned-byte 8))
             :context ctx :server-name "localhost"))
         (buf (octets +chunk+)))
    (unwind-protect
         (let ((t0 (now)))
           (dotimes (i (* n (/ 1048576 +chunk+)))
             (write-sequence buf s))
           (force-output s)
           (unless (eql (read-byte s nil nil) 107)
             (fail "tlsbulk: no answer"))
           (/ n (- (now) t0)))
      (close s))))

(defun serve-tlshs (impl server n)
  (check-ecl-sock impl "tlshs")
  (let ((ctx (server-context)))
    (dotimes (i n)
      (let ((s (socket:make-ssl-server-stream
                (socket:socket-accept server :element-type '(unsigned-byte 8)) :context ctx)))
        (write-byte 107 s)
        (close s)))))

(defun client-tlshs (impl port n)
  (check-ecl-sock impl "tlshs")
  (let ((ctx (client-context))
        (t0 (now)))
    (dotimes (i n)
      (let ((s (socket:make-ssl-client-stream
                (socket:socket-connect port "127.0.0.1" :element-type '(unsigned-byte 8))
                :context ctx :server-name "localhost")))
        (unless (eql (read-byte s nil nil) 107)
          (fail "tlshs: no answer"))
        (close s)))
    (/ n (- (now) t0))))

(defun workload (name)
  (or (cdr (assoc name '(("bulk" serve-bulk client-bulk)
                         ("rtt" serve-rtt client-rtt)
                         ("text" serve-text client-text)
                         ("multi" serve-multi client-multi)
                         ("cycles" serve-cycles client-cycles)
                         ("octets" serve-octets client-octets)
                         ("mux" serve-mux client-mux)
                         ("tlsbulk" serve-tlsbulk client-tlsbulk)
                         ("tlshs" serve-tlshs client-tlshs)
                         ("pmux" serve-pmux client-mux))
                  :test #'string=))
      (fail "unknown workload ~A" name)))

;;; ------------------------------------------------------------------
;;; The FORMAT calls of the multi workload alone

(defun formats-alone (n)
  "The two FORMAT calls of one multi request (the client's request line
and the server's Content-Length line), N times, into a null output
stream: no buffer, no system call, nothing any stream could make cheaper.
Returns the median and 99th percentile of the pair's time, in
microseconds, as CLIENT-MULTI does for the whole request."
  (let ((null (make-broadcast-stream))
        (times (make-array n :element-type 'double-float)))
    (dotimes (i n)
      (let ((t0 (now)))
        (format null "GET /~D HTTP/1.0~%" i)
        (format null "Content-Length: ~D~%" (length *multi-body*))
        (setf (aref times i) (- (now) t0))))
    (setf times (sort times #'<))
    (list (* 1d6 (aref times (floor n 2)))
          (* 1d6 (aref times (min (1- n) (floor (* 99 n) 100)))))))

;;; ------------------------------------------------------------------
;;; Roles

(defun env (name)
  (or (ext:getenv name) (fail "~A is not set" name)))

(defun start-server (impl-name workload-name n)
  "Start the server process; returns the process and the port it listens on."
  (multiple-value-bind (out code process)
      (ext:run-program (env "BENCH_ECL")
                       (list "-norc"
                             "-eval" "(setq *load-verbose* nil)"
                             "-eval" "(require :sb-bsd-sockets)"
                             "-eval" (format nil "(load ~S)" (env "SOCK_FAS"))
                             "-eval" (format nil "(load ~S)" (env "BENCH_FAS"))
                             "-eval" (format nil "(bench:main \"server\" ~S ~S ~D)"
                                             impl-name workload-name n))
                       :input nil :output :stream :error nil :wait nil)
    (declare (ignore code))
    ;; the server's first line that starts with "PORT " names its port
    (let ((line (loop for l = (read-line out nil nil)
                      while (and l (not (eql (search "PORT " l) 0)))
                      finally (return l))))
      (unless line
        (fail "the server did not start"))
      (values process (parse-integer line :start 5)))))

(defun main (role impl-name workload-name n)
  "Run ROLE (\"client\" or \"server\") of WORKLOAD-NAME with implementation
IMPL-NAME and size N, then quit.  The client prints the rate."
  (let ((impl (if (string= impl-name "formats-alone") nil (find-impl impl-name)))
        (fns (workload workload-name)))
    (cond ((string= impl-name "formats-alone")
           (format t "~{~,1F~^ ~}~%" (formats-alone n))
           (finish-output)
           (ext:quit 0))
          ((string= role "server")
           (arm-watchdog +server-limit+)
           (let ((server (funcall (impl-server impl))))
             (format t "PORT ~D~%" (funcall (impl-port impl) server))
             (finish-output)
             (funcall (first fns) impl server n)
             (funcall (impl-close-server impl) server)
             (ext:quit 0)))
          ((string= role "client")
           (multiple-value-bind (process port)
               (start-server impl-name workload-name n)
             (let ((rate (funcall (second fns) impl port n)))
               (multiple-value-bind (status code) (ext:external-process-wait process t)
                 (unless (and (eq status :exited) (eql code 0))
                   (fail "the server ended ~S ~S" status code)))
               (if (consp rate)
                   (format t "~{~,1F~^ ~}~%" rate)
                   (format t "~,1F~%" rate))
               (finish-output)
               (ext:quit 0))))
          (t (fail "unknown role ~A" role)))))
