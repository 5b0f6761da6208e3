;;;; test-poller.lisp - the poller (MAKE-POLLER, POLLER-ADD ... POLLER-WAIT):
;;;; readiness and statuses as SOCKET-STATUS gives them, buffered input
;;;; and pending output, timeouts in CLISP's forms, bad input (objects
;;;; added twice, never added, closed behind the poller's back, not
;;;; sockets, a closed poller), threads adding and removing while one
;;;; waits, interrupts of a wait, descriptor leaks, idle clocks
;;;; (MAKE-POLLER :IDLE, POLLER-TOUCH); and the one-thread
;;;; example examples/echo-server.lisp holding thousands of
;;;; loopback connections.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "TEST-POLLER" (:use "CL" "SOCKET" "HARNESS"))
(in-package "TEST-POLLER")

;;; ------------------------------------------------------------------
;;; Helpers

(defmacro with-server ((srv) &body body)
  `(let ((,srv (socket-server 0 :interface "127.0.0.1")))
     (unwind-protect (progn ,@body) (socket-server-close ,srv))))

(defun connected-pair (srv)
  "A client stream connected to SRV and the server's end of it."
  (let* ((c (socket-connect (socket-server-port srv) "127.0.0.1" :timeout 10))
         (s (socket-accept srv :timeout 10)))
    (values c s)))

(defmacro with-pair ((c s srv) &body body)
  `(multiple-value-bind (,c ,s) (connected-pair ,srv)
     (unwind-protect (progn ,@body) (close ,c) (close ,s))))

(defun status-of (object ready)
  "The status POLLER-WAIT gave OBJECT in READY (NIL: not listed)."
  (cdr (assoc object ready)))

(defun error-code (c) (and (typep c 'socket-error) (socket-error-code c)))

(defun wait-until (predicate &optional (seconds 5))
  (loop repeat (* seconds 100)
        until (funcall predicate) do (sleep 0.01))
  (funcall predicate))

;;; ------------------------------------------------------------------
;;; Readiness and statuses

(deftest server-and-stream-readiness ()
  (with-server (srv)
    (with-poller (p)
      (is (eq (poller-add p srv) srv) "poller-add returns the object")
      (is (null (poller-wait p 0)) "nothing pending: NIL at once")
      (let ((c (socket-connect (socket-server-port srv) "127.0.0.1" :timeout 10)))
        (unwind-protect
             (progn
               (is (equal (poller-wait p 5) (list (cons srv t))) "a pending connection: T")
               (let ((s (socket-accept srv :timeout 10)))
                 (unwind-protect
                      (progn
                        (poller-add p s)
                        (is (null (poller-wait p 0)) "an idle stream is not listed")
                        (write-line "one" c) (write-line "two" c) (finish-output c)
                        (is (eq (status-of s (poller-wait p 5)) :input))
                        (is (equal (read-line s) "one"))
                        ;; "two" sits in the stream's buffer, not in the kernel
                        (is (equal (poller-wait p 0) (list (cons s :input)))
                            "buffered input counts as ready")
                        (is (equal (read-line s) "two"))
                        (is (null (poller-wait p 0)) "drained: not listed any more")
                        (close c)
                        (is (eq (status-of s (poller-wait p 5)) :eof) "peer closed: :EOF"))
                   (close s))))
          (close c))))))

(deftest part-of-a-character-is-not-input ()
  ;; a UTF-8 lead octet alone is not a character: the poller does not list
  ;; the stream (a loop around POLLER-WAIT would spin on it), until the
  ;; rest comes
  (with-server (srv)
    (with-poller (p)
      (let* ((o (socket-connect (socket-server-port srv) "127.0.0.1" :timeout 10
                                :element-type '(unsigned-byte 8)))
             (in (socket-accept srv :timeout 10 :external-format :utf-8)))
        (unwind-protect
             (progn
               (poller-add p in)
               (write-byte 195 o) (force-output o)
               (is (null (poller-wait p 0.3)) "part alone: not listed")
               (is (null (poller-wait p 0.3)) "part buffered: not listed")
               (write-byte 169 o) (write-byte 10 o) (force-output o)
               (is (eq (status-of in (poller-wait p 5)) :input) "the rest: input")
               (is (equal (read-line in) (string (code-char 233)))))
          (close o) (close in))))))

(deftest statuses-as-socket-status ()
  (with-server (srv)
    (with-pair (c s srv)
      (with-poller (p)
        (poller-add p s :io)
        (is (eq (status-of s (poller-wait p 5)) :output) ":io on an idle stream: :OUTPUT")
        (is (eq (status-of s (poller-wait p 5)) (socket-status (cons s :io))))
        (write-line "x" c) (finish-output c)
        (sleep 0.05)
        (is (eq (status-of s (poller-wait p 5)) :io) "input and room: :IO")
        (is (eq (socket-status (cons s :io)) :io))
        (poller-modify p s :output)
        (is (eq (status-of s (poller-wait p 5)) :output) "modified to :output")
        (poller-modify p s :input)
        (is (eq (status-of s (poller-wait p 5)) :input))
        (read-line s)
        (close c)
        (poller-modify p s :io)
        (is (eq (status-of s (poller-wait p 5)) :append) "peer closed, :io: :APPEND")))))

(deftest timeout-forms ()
  (with-server (srv)
    (with-pair (c s srv)
      (with-poller (p)
        (poller-add p s)
        (dolist (timeout (list 0 0.05 1/20 '(0 50000) '(0 . 50000)))
          (is (null (poller-wait p timeout)) (format nil "~S expires: NIL" timeout)))
        (signals type-error (poller-wait p -1))
        (signals type-error (poller-wait p '(1 2 3)))
        (signals type-error (poller-wait p "soon"))
        ;; data arriving during a long wait ends it
        (let ((th (spawn "writer" (lambda () (sleep 0.2) (write-line "late" c) (finish-output c)))))
          (is (eq (status-of s (poller-wait p 30)) :input) "woken by data within the timeout")
          (join th))))))

(deftest pending-output-is-pushed ()
  (with-server (srv)
    (with-pair (c s srv)
      (with-poller (p)
        (poller-add p s)
        (write-line "unforced answer" s)        ; no force-output
        (is (null (poller-wait p 0.05)) "nothing to read on S")
        (is (eq (socket-status (cons c :input) 5) :input) "the wait sent S's pending output")
        (is (equal (read-line c) "unforced answer"))))))

(deftest datagram-and-raw-descriptor ()
  (let* ((a (make-socket :type :datagram :local-host "127.0.0.1"))
         (b (make-socket :type :datagram :remote-host "127.0.0.1" :remote-port (local-port a))))
    (unwind-protect
         (with-poller (p)
           (poller-add p a)
           (is (null (poller-wait p 0)))
           (send-to b (make-array 3 :element-type '(unsigned-byte 8) :initial-element 7)
                    3 :remote-host "127.0.0.1" :remote-port (local-port a))
           (is (eq (status-of a (poller-wait p 5)) :input) "a datagram waiting: :INPUT")
           (poller-remove p a)
           ;; the same socket as a raw descriptor
           (let ((fd (socket-os-fd a)))
             (poller-add p fd)
             (is (eq (status-of fd (poller-wait p 5)) :input) "raw descriptor: :INPUT")
             (is (eq (poller-remove p fd) t))))
      (close a) (close b))))

;;; ------------------------------------------------------------------
;;; Bad input

(deftest same-object-twice-and-never-added ()
  (with-server (srv)
    (with-pair (c s srv)
      (with-poller (p)
        (poller-add p s)
        (is (eq (error-code (signals socket-error (poller-add p s))) :eexist)
            "added twice: :EEXIST")
        (is (eq (error-code (signals socket-error (poller-add p (socket:socket-os-fd s))))
                :eexist)
            "its descriptor as a raw one: :EEXIST")
        (with-poller (q)
          (is (eq (error-code (signals socket-error (poller-add q s))) :eexist)
              "a stream in another poller: :EEXIST"))
        (is (null (poller-remove p c)) "removing what was never added: NIL")
        (is (null (poller-remove p 12345)) "a raw descriptor never added: NIL")
        (is (eq (error-code (signals socket-error (poller-modify p c :io))) :enoent)
            "modifying what was never added: :ENOENT")
        (is (eq (poller-remove p s) t))
        (is (null (poller-remove p s)) "removed twice: NIL the second time")
        (poller-add p s)                     ; and back
        (write-line "again" c) (finish-output c)
        (is (eq (status-of s (poller-wait p 5)) :input))))))

(deftest not-sockets ()
  (with-poller (p)
    (signals type-error (poller-add p "localhost"))
    (signals type-error (poller-add p -1))
    (signals type-error (poller-add p *standard-output*))
    (signals type-error (poller-add p nil))
    (signals type-error (poller-remove p 'foo))
    (with-server (srv)
      (signals type-error (poller-add p srv :sideways)))
    (signals type-error (poller-wait :not-a-poller 0))
    (signals type-error (poller-close 42))
    (is (null (poller-wait p 0)) "the poller still works")))

(deftest closed-poller ()
  (let ((p (make-poller)))
    (is (eq (poller-close p) t))
    (is (null (poller-close p)) "closing twice: NIL")
    (is (search "CLOSED POLLER" (prin1-to-string p)))
    (is (eq (error-code (signals socket-error (poller-wait p 0))) :ebadf) "wait: :EBADF")
    (with-server (srv)
      (is (eq (error-code (signals socket-error (poller-add p srv))) :ebadf) "add: :EBADF")
      (is (eq (error-code (signals socket-error (poller-remove p srv))) :ebadf)))))

(deftest closed-stream-drops-out ()
  (with-server (srv)
    (with-poller (p)
      (multiple-value-bind (c s) (connected-pair srv)
        (poller-add p s)
        (write-line "unread" c) (finish-output c)
        (is (search "POLLER 1 object" (prin1-to-string p)) (prin1-to-string p))
        (close s)                        ; with input pending, behind the poller's back
        (is (null (poller-wait p 0.05)) "a closed stream is not reported")
        (is (search "POLLER 0 objects" (prin1-to-string p)) "it left by itself")
        (is (null (poller-remove p s)) "removing it after: NIL")
        (signals socket-error (poller-add p s))
        ;; its descriptor number comes back with the next connection
        (multiple-value-bind (c2 s2) (connected-pair srv)
          (poller-add p s2)
          (write-line "fresh" c2) (finish-output c2)
          (is (equal (poller-wait p 5) (list (cons s2 :input))))
          (close c2) (close s2))
        (close c)))))

(deftest server-and-descriptor-closed-behind-the-back ()
  (with-poller (p)
    (let ((srv (socket-server 0 :interface "127.0.0.1")))
      (poller-add p srv)
      (socket-server-close srv)
      (is (null (poller-wait p 0.05)) "a closed server is not reported")
      (is (eq (poller-remove p srv) t) "a closed server can still be removed")
      (is (null (poller-remove p srv)) "and only once"))
    (let ((srv (socket-server 0 :interface "127.0.0.1")))
      (poller-add p srv)
      (socket-server-close srv)
      (let ((srv2 (socket-server 0 :interface "127.0.0.1")))
        (unwind-protect
             (progn
               (poller-add p srv2)             ; likely srv's old descriptor number
               (let ((c (socket-connect (socket-server-port srv2) "127.0.0.1")))
                 (is (equal (poller-wait p 5) (list (cons srv2 t))))
                 (close c)))
          (socket-server-close srv2))))
    ;; a raw descriptor closed by its owner: its number can be added again
    (with-server (srv)
      (multiple-value-bind (c s) (connected-pair srv)
        (let ((fd (socket-os-fd s)))
          (poller-add p fd)
          (close s)
          (multiple-value-bind (c2 s2) (connected-pair srv)
            (when (= (socket-os-fd s2) fd)
              (poller-add p s2)
              (write-line "reused" c2) (finish-output c2)
              (is (eq (status-of s2 (poller-wait p 5)) :input)
                  "the reused number reports the new stream"))
            (close c2) (close s2))
          (close c))))))

(deftest no-descriptor-leak ()
  (let ((before (open-fd-count)))
    (dotimes (i 50)
      (with-poller (p) (poller-wait p 0)))
    (dotimes (i 20)
      (make-poller))                      ; dropped: the finalizer closes it
    (loop repeat 10 do (ext:gc t) (sleep 0.02))
    (is (wait-until (lambda () (<= (open-fd-count) before)))
        (format nil "descriptors back to ~D (now ~D)" before (open-fd-count)))))

;;; ------------------------------------------------------------------
;;; Idle clocks (MAKE-POLLER :IDLE, POLLER-TOUCH)

(defun seconds-since (start)
  (/ (- (get-internal-real-time) start) internal-time-units-per-second))

(deftest idle-clocks ()
  (with-server (srv)
    (let ((p (make-poller :idle 0.3)))
      (unwind-protect
           (with-pair (c s srv)
             (poller-add p s)
             (is (eq (poller-touch p s) s) "poller-touch returns the object")
             (is (null (poller-wait p 0)) "a fresh clock: nothing yet")
             (let* ((start (get-internal-real-time))
                    (got (poller-wait p 5)))
               (is (equal got (list (cons s :idle))) (format nil "the clock ran out: ~S" got))
               (is (<= 0.29 (seconds-since start) 4)
                   (format nil "after its 0.3 s: ~,2F s" (seconds-since start))))
             (is (null (poller-wait p 0.5)) "reported once: the clock has stopped")
             ;; a touch restarts it: the stale first deadline is skipped
             (let ((start (get-internal-real-time)))
               (poller-touch p s)
               (sleep 0.2)
               (poller-touch p s)
               (is (equal (poller-wait p 5) (list (cons s :idle))) "idle after the last touch")
               (is (<= 0.49 (seconds-since start))
                   (format nil "0.3 s after the second touch: ~,2F s" (seconds-since start))))
             ;; TIMEOUT still holds with clocks running
             (poller-touch p s)
             (let ((start (get-internal-real-time)))
               (is (null (poller-wait p 0.1)) "the caller's timeout passes first")
               (is (< (seconds-since start) 0.29) "and ends the wait"))
             (is (equal (poller-wait p 5) (list (cons s :idle))))
             ;; ready when its clock runs out: reported ready, not idle
             (poller-touch p s)
             (write-line "x" c) (finish-output c)
             (sleep 0.4)
             (is (equal (poller-wait p 0) (list (cons s :input))) "ready wins over idle")
             (read-line s)
             (is (null (poller-wait p 0.5)) "and its clock has stopped")
             ;; removed or closed: the clock stops
             (poller-touch p s)
             (poller-remove p s)
             (is (null (poller-wait p 0.6)) "poller-remove stops the clock")
             (with-pair (c2 s2 srv)
               (poller-add p s2)
               (poller-touch p s2)
               (close s2)
               (is (null (poller-wait p 0.6)) "a closed stream's clock is dropped")
               (close c2)))
        (poller-close p))))
  (with-poller (plain)                  ; no :IDLE: no clocks
    (signals simple-error (poller-touch plain 5)))
  (signals type-error (make-poller :idle 0))
  (signals type-error (make-poller :idle "10")))

;;; ------------------------------------------------------------------
;;; Threads and interrupts

(deftest add-and-remove-while-another-thread-waits ()
  (with-server (srv)
    (with-poller (p)
      (multiple-value-bind (c s) (connected-pair srv)
        (multiple-value-bind (c2 s2) (connected-pair srv)
          (poller-add p s2)
          (let ((waiter (spawn "waiter" (lambda () (poller-wait p 30)))))
            (sleep 0.2)
            (is (eq (error-code (signals socket-error (poller-wait p 0))) :ealready)
                "a second waiter: :EALREADY")
            (is (eq (poller-remove p s2) t) "removed while the other thread waits")
            (poller-add p s)                 ; added while it waits
            (write-line "x" c2) (finish-output c2)    ; removed: must not wake it
            (sleep 0.1)
            (write-line "y" c) (finish-output c)
            (is (equal (join waiter) (list (list (cons s :input))))
                "the wait saw the stream added meanwhile, not the removed one"))
          (close c2) (close s2))
        (close c) (close s)))))

(deftest close-while-waiting ()
  (let* ((p (make-poller))
         (waiter (spawn "waiter" (lambda () (poller-wait p)))))
    (sleep 0.2)
    (let ((before (open-fd-count)))
      (poller-close p)
      (let ((r (join waiter :error-ok t)))
        (is (and (eq (first r) :error) (eq (error-code (second r)) :ebadf))
            (format nil "the waiter got :EBADF: ~S" r)))
      (is (wait-until (lambda () (< (open-fd-count) before))) "its descriptors closed"))))

(deftest interrupted-wait ()
  (with-server (srv)
    (with-poller (p)
      (multiple-value-bind (c s) (connected-pair srv)
        (poller-add p s)
        (let* ((log '())
               (lock (mp:make-lock))
               (waiter (spawn "waiter" (lambda () (poller-wait p 60)))))
          (sleep 0.2)
          (dotimes (i 3)
            (mp:interrupt-process waiter (let ((i i))
                                           (lambda () (mp:with-lock (lock) (push i log)))))
            (is (wait-until (lambda () (mp:with-lock (lock) (member i log)))) "the interrupt ran"))
          (is (mp:process-active-p waiter) "still waiting after the interrupts")
          (write-line "z" c) (finish-output c)
          (is (equal (join waiter) (list (list (cons s :input)))) "then the wait completed"))
        ;; an interrupt that throws out of the wait leaves the poller usable
        (read-line s)                   ; first: unread, "z" would end the wait at once
        (let* ((before (open-fd-count))
               (waiter (spawn "waiter" (lambda () (catch 'out (poller-wait p 60))))))
          (sleep 0.2)
          (mp:interrupt-process waiter (lambda () (throw 'out :thrown)))
          (is (equal (join waiter) '(:thrown)) "the throw unwound the wait")
          (is (null (poller-wait p 0)) "the next wait works (no waiter left behind)")
          (is (= (open-fd-count) before) "no descriptor leaked"))
        (close c) (close s)))))

(deftest many-connections-few-ready ()
  ;; 300 registered streams, 3 with data: exactly those 3 come back
  (with-server (srv)
    (with-poller (p)
      (let ((pairs (loop repeat 300 collect (multiple-value-list (connected-pair srv)))))
        (unwind-protect
             (progn
               (dolist (pr pairs) (poller-add p (second pr)))
               (let ((chosen (list (nth 7 pairs) (nth 150 pairs) (nth 299 pairs))))
                 (dolist (pr chosen) (write-line "hi" (first pr)) (finish-output (first pr)))
                 (sleep 0.1)
                 (let ((ready (poller-wait p 5)))
                   (is (= (length ready) 3) (format nil "~D ready" (length ready)))
                   (is (every (lambda (pr) (eq (status-of (second pr) ready) :input)) chosen)))))
          (dolist (pr pairs) (close (first pr)) (close (second pr))))))))

;;; ------------------------------------------------------------------
;;; socket-status over big lists (an epoll set kept across calls)

(deftest socket-status-big-lists ()
  (with-server (srv)
    (let* ((before (open-fd-count))
           (pairs (loop repeat 40 collect (multiple-value-list (connected-pair srv))))
           (servers (mapcar #'second pairs)))
      (unwind-protect
           (progn
             (is (every #'null (socket-status (mapcar (lambda (s) (cons s :input)) servers) 0))
                 "40 idle streams: nothing ready")
             (write-line "a" (first (nth 5 pairs))) (finish-output (first (nth 5 pairs)))
             (let ((st (socket-status (mapcar (lambda (s) (cons s :input)) servers) 5)))
               (is (equal (loop for x in st for i from 0 when x collect (list i x))
                          '((5 :input)))))
             ;; a stream leaves, its descriptor number comes back in a new one
             (let ((old (nth 10 pairs)))
               (close (first old)) (close (second old))
               (let ((new (multiple-value-list (connected-pair srv))))
                 (setf (nth 10 pairs) new
                       servers (mapcar #'second pairs))
                 (write-line "b" (first new)) (finish-output (first new))
                 (let ((st (socket-status (mapcar (lambda (s) (cons s :input)) servers) 5)))
                   (is (equal (loop for x in st for i from 0 when x collect (list i x))
                              '((5 :input) (10 :input)))
                       "the new stream on a reused number is seen"))))
             ;; a shorter list: streams that left it are not reported
             (let ((st (socket-status (mapcar (lambda (s) (cons s :input)) (nthcdr 6 servers)) 0)))
               (is (equal (loop for x in st for i from 6 when x collect (list i x))
                          '((10 :input))))))
        (dolist (pr pairs) (close (first pr)) (close (second pr))))
      (is (wait-until (lambda () (<= (open-fd-count) before)))
          "every descriptor released, the epoll set's too"))))

(deftest socket-status-many-ready ()
  ;; more streams ready at once than one epoll_wait returns (256)
  (with-server (srv)
    (let ((pairs (loop repeat 600 collect (multiple-value-list (connected-pair srv)))))
      (unwind-protect
           (progn
             (dolist (pr pairs) (write-line "x" (first pr)) (finish-output (first pr)))
             (sleep 0.2)
             (multiple-value-bind (st n)
                 (socket-status (mapcar (lambda (pr) (cons (second pr) :input)) pairs) 5)
               (is (= n 600) (format nil "~D of 600 ready" n))
               (is (every (lambda (x) (eq x :input)) st)))
             ;; and the poller, 256 at most per wait, all of them over a few waits
             (with-poller (p)
               (dolist (pr pairs) (poller-add p (second pr)))
               (let ((seen (make-hash-table)))
                 (loop repeat 10
                       do (dolist (r (poller-wait p 1))
                            (setf (gethash (car r) seen) t)
                            (read-line (car r))))
                 (is (= (hash-table-count seen) 600)
                     (format nil "~D of 600 reported" (hash-table-count seen))))))
        (dolist (pr pairs) (close (first pr)) (close (second pr)))))))

;;; ------------------------------------------------------------------
;;; The example: a one-thread echo server holding thousands of connections

(defun srcdir () (or (ext:getenv "TEST_SRCDIR") "tests"))

(defun descriptor-limit ()
  "The soft limit of open descriptors (tests/lisp/run-test raised it to the hard one)."
  (let ((line (with-open-file (in "/proc/self/limits")
                (loop for l = (read-line in nil) while l
                      when (search "Max open files" l) return l))))
    (and line (parse-integer line :start 26 :junk-allowed t))))

(deftest echo-server-thousands (:timeout 300)
  (let* ((limit (or (descriptor-limit) 0))
         (n (min 10000 (- limit 100))))
    (if (< n 2000)
        (format t "~&  SKIP echo-server-thousands: the descriptor limit is ~D; ~
                   2,100 are needed (raise the hard limit: ulimit -Hn)~%" limit)
        (let* ((before nil)
               (out nil)
               (process nil))
          (multiple-value-bind (stream code proc)
              (ext:run-program (or (ext:getenv "ECL") "ecl")
                               (list "-norc" "-load" (format nil "~A/lisp/harness.lisp" (srcdir))
                                     "-shell" (format nil "~A/../examples/echo-server.lisp"
                                                      (srcdir))
                                     "0" "--quiet" "--max" (princ-to-string n))
                               :input nil :output :stream :error :output :wait nil)
            (declare (ignore code))
            ;; counted after the start: ECL's run-program keeps two of its own
            (setf out stream process proc before (open-fd-count)))
          (let* ((line (loop for l = (read-line out nil) while l
                             when (search "listening on " l) return l))
                 (port (and line (parse-integer line :start (1+ (position #\: line :from-end t)))))
                 (conns '()))
            (is port (format nil "the server printed its port: ~S" line))
            (when port
              (unwind-protect
                   (progn
                     (dotimes (i n)
                       (push (socket-connect port "127.0.0.1" :timeout 30) conns))
                     (setf conns (nreverse conns))
                     ;; one at a time for the first hundred ...
                     (let ((ok 0))
                       (loop for c in conns for i below 100
                             do (write-line (format nil "line ~D" i) c) (finish-output c)
                                (when (equal (read-line c nil) (format nil "line ~D" i)) (incf ok)))
                       (is (= ok 100) (format nil "~D of 100 sequential echoes" ok)))
                     ;; ... then every connection at once, answers read afterwards
                     (loop for c in conns for i from 0
                           do (write-line (format nil "all ~D" i) c) (finish-output c))
                     (let ((ok (loop for c in conns for i from 0
                                     count (equal (read-line c nil) (format nil "all ~D" i)))))
                       (is (= ok n) (format nil "~D of ~D echoes" ok n))))
                (mapc #'close conns)))
            (let ((rest (loop for l = (read-line out nil) while l collect l)))
              (is (some (lambda (l) (search (format nil "served ~D connection" n) l)) rest)
                  (format nil "the server's summary: ~S" rest)))
            (multiple-value-bind (status code) (ext:external-process-wait process t)
              (is (and (eq status :exited) (eql code 0)) (format nil "server exit ~S ~S" status code)))
            (is (wait-until (lambda () (<= (open-fd-count) before)))
                (format nil "no descriptor left behind: ~D, was ~D" (open-fd-count) before)))))))

;;; ------------------------------------------------------------------
;;; The core's close protocol on pollers

(deftest poller-close-protocol ()
  (let* ((before (open-fd-count))
         (p (make-poller)))
    (is (> (open-fd-count) before) "the poller holds a descriptor")
    (is (eq (poller-close p) t) "the first close returns T")
    (is (<= (open-fd-count) before) "its descriptor is closed")
    (is (null (poller-close p)) "the second close returns NIL")
    (is (search "CLOSED" (prin1-to-string p)) "it prints as closed")
    (let ((e (signals socket-error (poller-wait p 0))))
      (is (and e (eq (socket-error-code e) :ebadf))))
    (let ((e (signals socket-error (poller-add p 0))))
      (is (and e (eq (socket-error-code e) :ebadf))))))

(deftest poller-closed-by-many-threads-at-once ()
  (dotimes (round 20)
    (let* ((p (make-poller))
           (go nil)
           (closers (loop repeat 8
                          collect (spawn "closer"
                                         (lambda ()
                                           (loop until go do (mp:process-yield))
                                           (poller-close p))))))
      (setf go t)
      (let ((results (mapcar (lambda (c) (first (join c))) closers)))
        (is (= 1 (count t results)) (format nil "one close was it: ~S" results))
        (is (= 7 (count nil results)) "the others returned NIL")))))

(deftest any-face-socket-object-in-a-poller ()
  ;; the poller takes a face's descriptor-owning object as the core's
  ;; descriptor owner (here an Allegro datagram socket), and refuses a closed one
  (with-poller (p)
    (let ((a (make-socket :type :datagram :local-host "127.0.0.1"))
          (b (make-socket :type :datagram :local-host "127.0.0.1")))
      (unwind-protect
           (progn
             (poller-add p a)
             (is (null (poller-wait p 0)))
             (send-to b "x" 1 :remote-host "127.0.0.1" :remote-port (local-port a))
             (is (equal (poller-wait p 5) (list (cons a :input))))
             (is (eq (poller-remove p a) t))
             (close b)
             (let ((e (signals socket-error (poller-add p b))))
               (is (and e (eq (socket-error-code e) :ebadf)) "a closed socket is refused")))
        (close a) (close b)))
    (signals type-error (poller-add p p))))
