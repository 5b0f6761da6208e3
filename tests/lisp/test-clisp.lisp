;;;; test-clisp.lisp - the CLISP face: SOCKET-SERVER, SOCKET-CONNECT & co.
;;;;
;;;; Every function of CLISP's SOCKET API (and the EXT names CLISP socket
;;;; code uses), checked as a user sees it: values, printed forms, what
;;;; arrives on the wire, the conditions bad input gets, and that nothing
;;;; blocks past its timeout.  Loopback only; every server is closed by the
;;;; test that made it; waits that a regression could turn into hangs run
;;;; in a thread under a deadline (BOUNDED) so that they fail instead.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "TEST-CLISP" (:use "CL" "SOCKET" "HARNESS"))
(in-package "TEST-CLISP")

;;; ------------------------------------------------------------------
;;; Helpers

(eval-when (:compile-toplevel)     ; WITH-SERVER, WITH-PAIR (expanded here)
  (load (merge-pathnames "pairs.lisp" *compile-file-truename*) :verbose nil))

(defun seconds-since (t0)
  (/ (- (get-internal-real-time) t0) internal-time-units-per-second 1.0))

(defmacro timed (&body body)
  "Values: the list of BODY's values (or the error it signalled) and the
seconds it took."
  (let ((t0 (gensym)))
    `(let ((,t0 (get-internal-real-time)))
       (values (handler-case (multiple-value-list (progn ,@body))
                 (error (e) e))
               (seconds-since ,t0)))))

(defun call-bounded (seconds function)
  "FUNCTION's values as a list (or (:ERROR condition)) when it returns within
SECONDS; :HUNG when it does not (its thread is then asked to stop)."
  (let ((p (spawn "bounded" function)))
    (loop repeat (ceiling (* seconds 50))
          while (mp:process-active-p p) do (sleep 0.02))
    (cond ((mp:process-active-p p)
           (ignore-errors (mp:process-kill p))
           :hung)
          (t (join p :error-ok t)))))

(defmacro bounded ((seconds) &body body)
  `(call-bounded ,seconds (lambda () ,@body)))

(defun octets (&rest list)
  (make-array (length list) :element-type '(unsigned-byte 8) :initial-contents list))

(defun read-octets (stream n)
  "N octets from STREAM (fewer at end of file)."
  (let* ((v (make-array n :element-type '(unsigned-byte 8)))
         (got (read-sequence v stream)))
    (subseq v 0 got)))

(defun send-octets (stream &rest list)
  (write-sequence (apply #'octets list) stream)
  (force-output stream))

(defun wait-input (stream &optional (seconds 3))
  "Wait until STREAM has input (or EOF); its status in direction :INPUT."
  (values (socket-status (cons stream :input) seconds)))

(defun free-port ()
  "A loopback port nobody listens on (a server's, after it closed)."
  (let ((srv (socket-server 0 :interface "127.0.0.1")))
    (prog1 (socket-server-port srv) (socket-server-close srv))))

(defun fd-count ()
  "OPEN-FD-COUNT, tried again when a descriptor closed while it listed them
\(a finalizer of an earlier test may close one at any time)."
  (loop repeat 20
        do (handler-case (return (open-fd-count))
             (error () (sleep 0.01)))
        finally (return (open-fd-count))))

(defun contains (string part)
  (and (stringp string) (search part string)))

(defun error-text (condition)
  (princ-to-string condition))

;;; ------------------------------------------------------------------
;;; The seed test: a line each way

(deftest echo-ipv4 ()
  (let* ((srv (socket-server 0 :interface "127.0.0.1"))
         (port (socket-server-port srv))
         (th (spawn "server" (lambda ()
                               (with-open-stream (s (socket-accept srv))
                                 (write-line (read-line s) s)
                                 (force-output s)
                                 :done)))))
    (unwind-protect
         (with-open-stream (c (socket-connect port "127.0.0.1"))
           (write-line "hello" c)
           (force-output c)
           (is (equal (read-line c) "hello")))
      (is (equal (join th) '(:done)))
      (socket-server-close srv))))

;;; ------------------------------------------------------------------
;;; SOCKET-SERVER

(deftest server-port-zero-gives-real-port ()
  (with-server (srv 0 :interface "127.0.0.1")
    (let ((port (socket-server-port srv)))
      (is (typep port '(integer 1 65535)) "a real port")
      (is (equal (socket-server-host srv) "127.0.0.1"))
      ;; the port is the one the kernel bound: a client reaches it there
      (with-open-stream (c (socket-connect port "127.0.0.1"))
        (is (= port (nth-value 1 (socket-stream-peer c t))))
        (with-open-stream (s (socket-accept srv :timeout 5))
          (is (= port (nth-value 1 (socket-stream-local s t))))))))
  ;; NIL and no argument also let the kernel choose
  (with-server (srv)
    (is (plusp (socket-server-port srv)))
    (is (equal (socket-server-host srv) "0.0.0.0") "default: all IPv4 interfaces"))
  (with-server (srv nil)
    (is (plusp (socket-server-port srv)))))

(deftest server-interfaces ()
  (with-server (srv 0 :interface "::1")
    (is (equal (socket-server-host srv) "::1"))
    (with-open-stream (c (socket-connect (socket-server-port srv) "::1"))
      (with-open-stream (s (socket-accept srv :timeout 5))
        (is (equal (socket-stream-peer c t) "::1"))
        (write-line "six" c) (force-output c)
        (is (equal (read-line s) "six")))))
  ;; a socket stream as interface: bind where that stream's peer sees us
  (with-pair (c s :host "::1")
    (with-server (srv 0 :interface s)
      (is (equal (socket-server-host srv) "::1"))
      (with-open-stream (c2 (socket-connect (socket-server-port srv) "::1"))
        (is (socket-stream-p c2))))
    ;; CLISP's old (socket-server stream): same, with a deprecation warning
    (let ((warned nil))
      (handler-bind ((warning (lambda (w) (setf warned t) (muffle-warning w))))
        (with-server (srv s)
          (is (equal (socket-server-host srv) "::1"))))
      (is warned "(socket-server stream) warns")))
  (with-pair (c s)
    (with-server (srv 0 :interface c)
      (is (equal (socket-server-host srv) "127.0.0.1")))))

(deftest server-backlog ()
  ;; backlog 3 queues four connections that nobody accepts yet (CLISP's
  ;; default, 1, would hold two; see connect-timeout for a full queue)
  (with-server (srv 0 :interface "127.0.0.1" :backlog 3)
    (let ((clients '()))
      (unwind-protect
           (progn
             (dotimes (i 4)
               (push (socket-connect (socket-server-port srv) "127.0.0.1" :timeout 3) clients))
             (is (= 4 (length clients)))
             (dotimes (i 4)
               (close (socket-accept srv :timeout 3))))
        (mapc #'close clients))))
  (signals type-error (socket-server 0 :backlog -1))
  (signals type-error (socket-server 0 :backlog "5")))

(deftest server-bad-arguments ()
  (let ((before (fd-count)))
    (signals type-error (socket-server -1))
    (signals type-error (socket-server 65536))
    (signals type-error (socket-server "80"))
    (signals type-error (socket-server 0 :interface 42.5))
    (signals type-error (socket-server 0 :interface :localhost))
    (is (<= (fd-count) before) "no descriptor leaked")))

(deftest server-interface-errors ()
  (let ((before (fd-count)))
    (let ((c (signals host-not-found-error (socket-server 0 :interface "no-such-host.invalid"))))
      (when c
        (is (typep c 'ext:os-error))
        (is (contains (error-text c) "no-such-host.invalid"))))
    ;; TEST-NET-1: a valid address that is not ours
    (let ((c (signals address-not-available-error (socket-server 0 :interface "192.0.2.1"))))
      (when c
        (is (eq (socket-error-code c) :eaddrnotavail))
        (is (eq (ext:os-error-code c) :eaddrnotavail))))
    (is (<= (fd-count) before) "no descriptor leaked"))
  ;; a name is resolved; the server reports the address it bound
  (with-server (srv 0 :interface "localhost")
    (is (member (socket-server-host srv) '("127.0.0.1" "::1") :test #'equal)
        (socket-server-host srv))))

(deftest server-print-and-close ()
  (let* ((srv (socket-server 0 :interface "127.0.0.1"))
         (port (socket-server-port srv)))
    (is (socket-server-p srv))
    (is (not (socket-server-p 42)))
    (is (equal (prin1-to-string srv) (format nil "#<SOCKET-SERVER 127.0.0.1:~D>" port)))
    (is (null (socket-server-close srv)) "close returns NIL")
    (is (equal (prin1-to-string srv) (format nil "#<CLOSED SOCKET-SERVER 127.0.0.1:~D>" port)))
    (is (null (socket-server-close srv)) "a second close is harmless and returns NIL")
    (is (equal (socket-server-host srv) "127.0.0.1") "host readable when closed")
    (is (= (socket-server-port srv) port) "port readable when closed")
    ;; the port is free again
    (with-server (again port :interface "127.0.0.1")
      (is (= (socket-server-port again) port)))
    (signals type-error (socket-server-close 42))))

(deftest dropped-servers-are-closed ()
  ;; a server nobody closes is closed by its finalizer
  (let ((before (fd-count)))
    (dotimes (i 50)
      (socket-server 0 :interface "127.0.0.1"))
    (dotimes (i 3)
      (si:gc t)
      (sleep 0.05))
    (let ((after (fd-count)))
      (is (<= after (+ before 5)) (format nil "~D descriptors before, ~D after" before after)))))

(deftest address-in-use ()
  (with-server (srv 0 :interface "127.0.0.1")
    (let* ((before (fd-count))
           (c (signals address-in-use-error
                (socket-server (socket-server-port srv) :interface "127.0.0.1"))))
      (when c
        (is (eq (socket-error-code c) :eaddrinuse))
        (is (typep c 'ext:os-error))
        (is (eq (ext:os-error-code c) :eaddrinuse))
        (is (eql (socket-error-port c) (socket-server-port srv)))
        (is (contains (error-text c) (princ-to-string (socket-server-port srv)))
            "the report names the port"))
      (is (<= (fd-count) before) "no descriptor leaked"))))

;;; ------------------------------------------------------------------
;;; SOCKET-WAIT

(deftest socket-wait-pending-and-timeouts ()
  (with-server (srv 0 :interface "127.0.0.1")
    ;; nothing pending: every timeout form gives NIL after about 0.1 s
    (dolist (args (list '(0.1) '(1/10) '(0.1d0) '((0 100000)) '((0 . 100000)) '(0 100000)))
      (multiple-value-bind (result seconds) (timed (apply #'socket-wait srv args))
        (is (equal result '(nil)) (format nil "~S gives NIL" args))
        (is (and (>= seconds 0.09) (< seconds 1.5))
            (format nil "~S waits about 0.1 s (~,3F)" args seconds))))
    (multiple-value-bind (result seconds) (timed (socket-wait srv 0))
      (is (equal result '(nil)) "0 polls")
      (is (< seconds 0.5)))
    ;; a connection is pending: T at once, also without a timeout
    (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1"))
      (is (eq (socket-wait srv 3) t))
      (is (equal (bounded (3) (socket-wait srv)) '(t)) "no timeout: returns when pending")
      (with-open-stream (s (socket-accept srv :timeout 0))
        (is (socket-stream-p s)))
      (is (null (socket-wait srv 0)) "accepted: nothing pending any more")))
  ;; a wait in another thread wakes up when a client connects
  (with-server (srv 0 :interface "127.0.0.1")
    (let ((th (spawn "waiter" (lambda () (socket-wait srv 5)))))
      (sleep 0.1)
      (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1"))
        (is (equal (join th) '(t)))))))

(deftest socket-wait-bad-timeouts ()
  (with-server (srv 0 :interface "127.0.0.1")
    (signals type-error (socket-wait srv -1))
    (signals type-error (socket-wait srv "x"))
    (signals type-error (socket-wait srv '(1 2 3)))
    (signals type-error (socket-wait srv 0 -5))
    (signals type-error (socket-wait srv '(x . 1))))
  (signals type-error (socket-wait 42 0)))

(deftest closed-server-errors ()
  (let ((srv (socket-server 0 :interface "127.0.0.1")))
    (socket-server-close srv)
    (let ((c (signals error (socket-wait srv 0))))
      (is (not (typep c 'socket-timeout-error)))
      (is (contains (error-text c) "SOCKET-WAIT"))
      (is (contains (string-downcase (error-text c)) "closed"))
      (is (and (typep c 'socket-error) (eq (socket-error-code c) :ebadf))
          "a socket-error :EBADF, made through the one constructor"))
    (let ((c (signals error (socket-accept srv :timeout 0))))
      (is (not (typep c 'socket-timeout-error)))
      (is (contains (error-text c) "SOCKET-ACCEPT"))
      (is (contains (string-downcase (error-text c)) "closed")))
    (signals error (socket-status srv 0)))
  ;; closing a server wakes the threads waiting on it, with the same error
  (dolist (waiter (list (lambda (srv) (socket-accept srv))
                        (lambda (srv) (socket-accept srv :timeout 5))
                        (lambda (srv) (socket-wait srv))))
    (let* ((srv (socket-server 0 :interface "127.0.0.1"))
           (closer (spawn "closer" (lambda () (sleep 0.2) (socket-server-close srv)))))
      (let ((result (bounded (3) (funcall waiter srv))))
        (is (and (consp result) (eq (first result) :error)
                 (not (typep (second result) 'socket-timeout-error))
                 (contains (string-downcase (error-text (second result))) "closed"))
            (format nil "~S" result)))
      (join closer))))

;;; ------------------------------------------------------------------
;;; SOCKET-ACCEPT

(deftest accept-timeout ()
  (with-server (srv 0 :interface "127.0.0.1")
    (let ((before (fd-count)))
      (multiple-value-bind (c seconds) (timed (socket-accept srv :timeout 0.2))
        (is (typep c 'socket-timeout-error) "a timeout signals SOCKET-TIMEOUT-ERROR")
        (is (and (>= seconds 0.18) (< seconds 2)) (format nil "waited ~,3F s" seconds))
        (when (typep c 'socket-timeout-error)
          (is (eq (socket-error-code c) :etimedout))
          (is (typep c 'ext:os-error))
          (is (eq (ext:os-error-code c) :etimedout))
          (is (typep c 'socket-error))))
      (dolist (form (list '(0 200000) '(0 . 200000) 1/5))
        (multiple-value-bind (c seconds) (timed (socket-accept srv :timeout form))
          (is (typep c 'socket-timeout-error) (format nil "~S" form))
          (is (and (>= seconds 0.18) (< seconds 2)) (format nil "~S waited ~,3F s" form seconds))))
      (is (typep (timed (socket-accept srv :timeout 0)) 'socket-timeout-error) "0 polls")
      (signals type-error (socket-accept srv :timeout -1))
      (signals type-error (socket-accept srv :timeout "1"))
      (is (<= (fd-count) before) "no descriptor leaked"))
    ;; the server still works after timeouts
    (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1"))
      (with-open-stream (s (socket-accept srv :timeout 2))
        (write-line "still" c) (force-output c)
        (is (equal (read-line s) "still"))))))

(deftest accept-element-type-and-format ()
  (with-pair (c s :accept (:element-type '(unsigned-byte 8)))
    (is (equal (stream-element-type s) '(unsigned-byte 8)))
    (write-string "AB" c) (force-output c)
    (is (eql (read-byte s) 65))
    (is (eql (read-byte s) 66))
    (write-byte 7 s) (force-output s)
    (is (eql (read-byte c) 7))
    (signals error (read-char s))
    (signals error (write-char #\x s)))
  ;; the server side's external format is used on the wire
  (with-pair (c s :accept (:external-format :dos) :connect (:element-type '(unsigned-byte 8)))
    (write-line "hi" s) (force-output s)
    (is (equalp (read-octets c 4) (octets 104 105 13 10))))
  ;; CLISP also takes (SIGNED-BYTE n) and :BUFFERED T
  (with-pair (c s :connect (:element-type '(signed-byte 8) :buffered t)
                  :accept (:element-type '(unsigned-byte 8)))
    (is (equal (stream-element-type c) '(signed-byte 8)))
    (send-octets s 255 1)
    (is (eql (read-byte c) -1))
    (is (eql (read-byte c) 1))
    (write-byte -2 c) (force-output c)
    (is (eql (read-byte s) 254)))
  (with-server (srv 0 :interface "127.0.0.1")
    (signals type-error (socket-accept srv :element-type 'fixnum :timeout 0))))

;;; ------------------------------------------------------------------
;;; SOCKET-CONNECT

(deftest connect-hosts ()
  ;; default host "localhost", to a server on all interfaces
  (with-server (srv)
    (with-open-stream (c (socket-connect (socket-server-port srv)))
      (with-open-stream (s (socket-accept srv :timeout 5))
        (is (equal (socket-stream-host c) "localhost"))
        (is (eql (socket-stream-port c) (socket-server-port srv)))
        (write-line "via localhost" c) (force-output c)
        (is (equal (read-line s) "via localhost")))))
  (with-pair (c s :host "::1")
    (is (equal (socket-stream-host c) "::1"))
    (is (equal (socket-stream-local c t) "::1"))
    (write-line "via ::1" s) (force-output s)
    (is (equal (read-line c) "via ::1"))))

(deftest connect-refused ()
  (let* ((port (free-port))
         (before (fd-count))
         (c (signals connection-refused-error (socket-connect port "127.0.0.1"))))
    (when c
      (is (eq (socket-error-code c) :econnrefused))
      (is (eql (socket-error-errno c) 111))
      (is (typep c 'ext:os-error))
      (is (eq (ext:os-error-code c) :econnrefused))
      (is (typep c 'stream-error))
      (is (equal (socket-error-host c) "127.0.0.1"))
      (is (eql (socket-error-port c) port))
      (is (contains (error-text c) "127.0.0.1") "the report names the host")
      (is (contains (error-text c) (princ-to-string port)) "the report names the port"))
    (is (<= (fd-count) before) "no descriptor leaked")))

(deftest connect-unknown-host ()
  (let ((c (signals host-not-found-error (socket-connect 80 "no-such-host.invalid"))))
    (when c
      (is (typep c 'ext:os-error))
      (is (equal (socket-error-host c) "no-such-host.invalid"))
      (is (contains (error-text c) "no-such-host.invalid")))))

(deftest connect-bad-arguments ()
  (let ((before (fd-count)))
    (signals type-error (socket-connect -1 "127.0.0.1"))
    (signals type-error (socket-connect 65536 "127.0.0.1"))
    (signals type-error (socket-connect "80" "127.0.0.1"))
    (signals type-error (socket-connect 80 42.5))
    (signals type-error (socket-connect 80 'localhost))
    (signals type-error (socket-connect 80 "127.0.0.1" :timeout -1))
    (signals type-error (socket-connect 80 "127.0.0.1" :element-type 'fixnum))
    (is (<= (fd-count) before) "no descriptor leaked")))

(deftest connect-timeout ()
  ;; A listener with backlog 0 whose accept queue is full drops further
  ;; SYNs, so a connect to it hangs until its timeout.
  (with-server (srv 0 :interface "127.0.0.1" :backlog 0)
    (let ((port (socket-server-port srv))
          (fillers '()))
      (unwind-protect
           (progn
             (handler-case (dotimes (i 3)
                             (push (socket-connect port "127.0.0.1" :timeout 0.3) fillers))
               (socket-timeout-error () nil))
             (is (plusp (length fillers)) "the queue takes a first connection")
             (let ((before (fd-count)))
               (dolist (form (list 0.3 '(0 300000) '(0 . 300000) 3/10))
                 (multiple-value-bind (c seconds)
                     (timed (socket-connect port "127.0.0.1" :timeout form))
                   (is (typep c 'socket-timeout-error) (format nil "~S: ~A" form c))
                   (is (and (>= seconds 0.25) (< seconds 2))
                       (format nil "~S waited ~,3F s" form seconds))
                   (when (typep c 'socket-error)
                     (is (eq (socket-error-code c) :etimedout))
                     (is (eq (ext:os-error-code c) :etimedout))
                     (is (eql (socket-error-port c) port)))))
               (is (<= (fd-count) before) "no descriptor leaked")))
        (mapc #'close fillers)))))

;;; ------------------------------------------------------------------
;;; SOCKET-STATUS

(deftest status-single-stream ()
  (with-pair (c s)
    (is (equal (multiple-value-list (socket-status c 0)) '(:output 1))
        "fresh idle connection: :OUTPUT")
    (is (equal (multiple-value-list (socket-status (cons c :input) 0)) '(nil 0)))
    (is (eq (socket-status (cons c :output) 0) :output))
    (is (eq (socket-status (cons c :io) 0) :output))
    (write-line "data" s) (force-output s)
    (is (eq (wait-input c) :input))
    (is (equal (multiple-value-list (socket-status c 0)) '(:io 1)) "peer wrote: :IO")
    (is (equal (read-line c) "data"))
    (is (eq (socket-status c 0) :output) "read it all: :OUTPUT again")
    (socket-stream-shutdown s :output)
    (is (eq (wait-input c) :eof) "(s . :input) at EOF: :EOF")
    (is (eq (socket-status c 0) :append) "peer shut its output: :APPEND"))
  (with-pair (c s)
    (close s)
    (is (eq (wait-input c) :eof))
    (is (eq (socket-status c 0) :append) "peer closed: :APPEND"))
  ;; timeout forms, on an idle input direction
  (with-pair (c s)
    (dolist (args (list '(0.1) '((0 100000)) '((0 . 100000)) '(0 100000) '(1/10)))
      (multiple-value-bind (result seconds)
          (timed (multiple-value-list (apply #'socket-status (cons c :input) args)))
        (is (equal result '((nil 0))) (format nil "~S" args))
        (is (and (>= seconds 0.09) (< seconds 1.5)) (format nil "~S waited ~,3F s" args seconds))))
    (signals type-error (socket-status c -1))
    (signals type-error (socket-status c "x"))
    (signals type-error (socket-status c '(1 2 3)))))

(deftest status-server ()
  (with-server (srv 0 :interface "127.0.0.1")
    (is (equal (multiple-value-list (socket-status srv 0)) '(nil 0)))
    (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1"))
      (is (equal (multiple-value-list (socket-status srv 3)) '(t 1))
          "pending connection: T")
      (close (socket-accept srv :timeout 1)))))

(deftest status-lists ()
  (with-server (srv 0 :interface "127.0.0.1")
    (with-pair (a b)
      (with-pair (c d)
        ;; a fresh list, one status per element
        (let ((arg (list (cons a :input) c srv)))
          (multiple-value-bind (statuses count) (socket-status arg 0)
            (is (equal statuses '(nil :output nil)))
            (is (eql count 1))
            (is (not (eq statuses arg)) "a fresh list")))
        (write-line "to a" b) (force-output b)
        (is (eq (wait-input a) :input))
        (with-open-stream (x (socket-connect (socket-server-port srv) "127.0.0.1"))
          (is (eq (socket-wait srv 3) t))
          ;; CLISP's non-consing form: statuses stored into the same list
          (let* ((arg (list (list a :input) (list c :output) (cons srv nil))))
            (multiple-value-bind (result count) (socket-status arg 0)
              (is (eq result arg) "the same list comes back")
              (is (eql count 3))
              (is (eq (cddr (first arg)) :input))
              (is (eq (cddr (second arg)) :output))
              (is (eq (cdr (third arg)) t))
              (is (eq (first (first arg)) a))
              (is (eq (second (first arg)) :input)))
            ;; and it can be passed again
            (read-line a)
            (multiple-value-bind (result count) (socket-status arg 0)
              (is (eq result arg))
              (is (eql count 2))
              (is (null (cddr (first arg))) "nothing more on a")))
          (close (socket-accept srv :timeout 1)))))
    ;; list of plain streams with an infinite timeout: returns when one is ready
    (with-pair (a b)
      (with-pair (c d)
        (write-line "x" d) (force-output d)
        (is (equal (bounded (3) (socket-status (list (cons a :input) (cons c :input))))
                   '((nil :input) 1)))))
    (signals type-error (socket-status nil 0))
    (signals type-error (socket-status '(42 . 43) 0))
    ;; other streams are not sockets
    (let ((e (signals type-error (socket-status (make-string-input-stream "x") 0))))
      (when e
        (is (not (typep (type-error-datum e) (type-error-expected-type e)))
            "the expected type excludes the datum")))))

(deftest status-buffered-input ()
  (with-pair (c s)
    (write-string (format nil "one~%two~%") s) (force-output s)
    (is (eq (wait-input c) :input))
    (is (equal (read-line c) "one"))
    ;; "two" now sits in C's buffer, the socket itself is empty: a wait
    ;; without timeout must see it and return at once
    (multiple-value-bind (result seconds)
        (timed (bounded (3) (multiple-value-list (socket-status (cons c :input) nil))))
      (is (equal result '(((:input 1)))) (format nil "~S" result))
      (is (< seconds 0.5)))
    (is (equal (bounded (3) (multiple-value-list (socket-status c nil))) '((:io 1))))
    (is (equal (bounded (3) (multiple-value-list (socket-status (list c) nil))) '(((:io) 1))))
    (is (equal (read-line c) "two"))))

(deftest status-timeout-with-unsent-output ()
  ;; A peer that stops reading: the kernel's buffers fill up and output
  ;; stays in the stream.  SOCKET-STATUS must still return by its timeout
  ;; (a server polling many clients must not hang on one slow client).
  (with-pair (c s :connect (:element-type '(unsigned-byte 8))
                  :accept (:element-type '(unsigned-byte 8)))
    (socket-options c :so-sndbuf 4096 :so-sndtimeo 0.2)
    (socket-options s :so-rcvbuf 4096)
    (let ((chunk (make-array 65536 :element-type '(unsigned-byte 8) :initial-element 1)))
      (is (typep (nth-value 0 (ignore-errors
                               (handler-case (dotimes (i 100 :never-full)
                                               (write-sequence chunk c)
                                               (force-output c))
                                 (socket-timeout-error (e) e))))
                 'socket-timeout-error)
          "the peer's buffers are full"))
    (socket-options c :so-sndtimeo 0)
    (write-sequence (octets 1 2 3) c)             ; stays in C's buffer
    (multiple-value-bind (result seconds) (timed (bounded (3) (socket-status c 0.1)))
      (is (equal result '((nil 0))) (format nil "not writable: NIL, got ~S" result))
      (is (< seconds 1) (format nil "returned after ~,3F s" seconds)))
    (multiple-value-bind (result seconds)
        (timed (bounded (3) (socket-status (list (cons c :output) (cons s :input)) 0.1)))
      (is (equal result '(((nil :input) 1))) (format nil "list: ~S" result))
      (is (< seconds 1) (format nil "returned after ~,3F s" seconds)))
    ;; let close C fail fast instead of waiting for S to read
    (close s)
    (setf s nil)
    (clear-output c)))

(deftest status-closed-stream ()
  (let (c)
    (with-pair (a b)
      (setf c a))
    (let ((e (signals error (socket-status c 0))))
      (is (not (typep e 'type-error)) "a clear error, not a confusing type error")
      ;; the same condition as every other failure, with the table's errno
      (is (and (typep e 'socket-error) (eq (socket-error-code e) :ebadf)
               (eq (eclsock::%error-name (socket-error-errno e)) :ebadf))
          (format nil "a socket-error :EBADF with EBADF's errno: ~S" e)))
    (signals error (socket-status (list c) 0))
    (signals error (socket-status (cons c :input) 0))))

;;; ------------------------------------------------------------------
;;; SOCKET-STREAM-HOST/PORT/PEER/LOCAL

(deftest stream-addresses ()
  (with-server (srv 0 :interface "127.0.0.1")
    (let ((port (socket-server-port srv)))
      (with-open-stream (c (socket-connect port "127.0.0.1"))
        (with-open-stream (s (socket-accept srv :timeout 5))
          ;; creation arguments; accepted streams carry the server's
          (is (equal (socket-stream-host c) "127.0.0.1"))
          (is (eql (socket-stream-port c) port))
          (is (equal (socket-stream-host s) "127.0.0.1"))
          (is (eql (socket-stream-port s) port))
          ;; getpeername / getsockname, resolved and not
          (multiple-value-bind (host p) (socket-stream-peer c)
            (is (eql p port))
            (is (and (contains host "127.0.0.1 (") (contains host "localhost")
                     (eql (char host (1- (length host))) #\)))
                (format nil "resolved peer ~S" host)))
          (is (equal (multiple-value-list (socket-stream-peer c t)) (list "127.0.0.1" port)))
          (let ((client-port (nth-value 1 (socket-stream-local c t))))
            (is (typep client-port '(integer 1 65535)))
            (is (equal (multiple-value-list (socket-stream-peer s t))
                       (list "127.0.0.1" client-port)))
            (is (equal (multiple-value-list (socket-stream-local s t)) (list "127.0.0.1" port)))
            (is (contains (socket-stream-local c) "127.0.0.1 ("))
            ;; a raw descriptor works too
            (let ((fd (ext:stream-handles c)))
              (is (equal (multiple-value-list (socket-stream-peer fd t)) (list "127.0.0.1" port)))
              (is (equal (multiple-value-list (socket-stream-local fd t))
                         (list "127.0.0.1" client-port))))))
        (close c)
        (signals error (socket-stream-peer c))
        (signals error (socket-stream-local c t))))
    (signals type-error (socket-stream-host 42))
    (signals type-error (socket-stream-peer "127.0.0.1"))))

;;; ------------------------------------------------------------------
;;; SOCKET-STREAM-SHUTDOWN

(deftest shutdown-output ()
  (with-pair (c s)
    (write-line "last words" c)                     ; still buffered: sent first
    (is (null (socket-stream-shutdown c :output)))
    (is (not (output-stream-p c)) "no longer an output stream")
    (is (input-stream-p c))
    (is (open-stream-p c))
    (is (equal (bounded (3) (read-line s)) '("last words" nil)))
    (is (equal (bounded (3) (read-line s nil :eof)) '(:eof t)) "the peer reads EOF")
    (write-line "answer" s) (force-output s)
    (is (equal (read-line c) "answer") "input still works")
    (signals error (progn (write-line "more" c) (force-output c)))))

(deftest shutdown-input ()
  (with-pair (c s)
    (is (null (socket-stream-shutdown c :input)))
    (is (not (input-stream-p c)))
    (is (output-stream-p c))
    (is (eq (read-char c nil :eof) :eof))
    (write-line "out still works" c) (force-output c)
    (is (equal (read-line s) "out still works")))
  (with-pair (c s)
    (is (null (socket-stream-shutdown c :io)))
    (is (equal (bounded (3) (read-char s nil :eof)) '(:eof)) "the peer reads EOF")
    (signals type-error (socket-stream-shutdown c :sideways))
    (signals type-error (socket-stream-shutdown c nil))
    (close c)
    (signals error (socket-stream-shutdown c :output))))

;;; ------------------------------------------------------------------
;;; SOCKET-OPTIONS

(defun check-boolean-option (stream option)
  (let ((old (socket-options stream option)))
    (is (member old '(nil t)) (format nil "~S reads a boolean: ~S" option old))
    (is (eq (socket-options stream option (not old)) old)
        (format nil "setting ~S returns the old value" option))
    (is (eq (socket-options stream option) (not old))
        (format nil "~S reads back the new value" option))
    (socket-options stream option old)
    (is (eq (socket-options stream option) old))))

(deftest options-booleans ()
  (with-pair (c s)
    (dolist (option '(:so-keepalive :so-reuseaddr :so-broadcast :so-oobinline
                      :so-dontroute :tcp-nodelay))
      (check-boolean-option c option))
    ;; SO_DEBUG needs CAP_NET_ADMIN: either it works or the OS says no
    (handler-case (check-boolean-option c :so-debug)
      (socket-error (e)
        (is (member (socket-error-code e) '(:eacces :eperm)) (error-text e))))
    ;; read-only ones, read as booleans as CLISP does
    (is (eq (socket-options c :so-error) nil))
    (is (eq (socket-options c :so-type) t))
    (is (eq (socket-options c :so-acceptconn) nil))
    ;; the OS refuses to set those: a SOCKET-ERROR, the option unchanged
    (dolist (option '(:so-error :so-type))
      (let ((old (socket-options c option)))
        (signals socket-error (socket-options c option (not old)))
        (is (eq (socket-options c option) old))))))

(deftest options-integers-and-linger ()
  (with-pair (c s)
    (dolist (option '(:so-rcvbuf :so-sndbuf))
      (let ((old (socket-options c option)))
        (is (and (integerp old) (plusp old)) (format nil "~S: ~S" option old))
        (is (eql (socket-options c option 65536) old))
        (is (>= (socket-options c option) 65536) "the kernel may double it")))
    (is (eql (socket-options c :so-rcvlowat) 1))
    (is (eql (socket-options c :so-rcvlowat 2) 1))
    (is (eql (socket-options c :so-rcvlowat) 2))
    (socket-options c :so-rcvlowat 1)
    ;; SO_SNDLOWAT reads; Linux refuses to change it (ENOPROTOOPT)
    (let ((old (socket-options c :so-sndlowat)))
      (is (and (integerp old) (plusp old)))
      (handler-case (progn (is (eql (socket-options c :so-sndlowat old) old))
                           (is (eql (socket-options c :so-sndlowat) old)))
        (socket-error (e)
          (is (eq (socket-error-code e) :enoprotoopt) (error-text e)))))
    (is (null (socket-options c :so-linger)))
    (is (null (socket-options c :so-linger 5)))
    (is (eql (socket-options c :so-linger) 5))
    (is (eql (socket-options c :so-linger nil) 5))
    (is (null (socket-options c :so-linger)))
    (signals type-error (socket-options c :so-linger -1))
    ;; several at once, one value each
    (is (equal (multiple-value-list (socket-options c :so-keepalive :so-linger :so-type))
               '(nil nil t)))
    (multiple-value-bind (keep old-linger) (socket-options c :so-keepalive t :so-linger 3)
      (is (null keep))
      (is (null old-linger)))
    (is (equal (multiple-value-list (socket-options c :so-keepalive :so-linger)) '(t 3)))))

(deftest options-timeouts ()
  (with-pair (c s)
    (dolist (option '(:so-rcvtimeo :so-sndtimeo))
      (is (eql (socket-options c option) 0) (format nil "~S starts at 0" option))
      (is (eql (socket-options c option 0.25) 0) "setting returns the old value")
      (let ((v (socket-options c option)))
        (is (and (realp v) (< (abs (- v 0.25)) 0.01)) (format nil "~S reads back ~S" option v)))
      (let ((old (socket-options c option '(1 500000))))
        (is (< (abs (- old 0.25)) 0.01)))
      (is (< (abs (- (socket-options c option) 1.5)) 0.01) "(sec usec) form")
      (socket-options c option '(0 . 300000))
      (is (< (abs (- (socket-options c option) 0.3)) 0.01) "(sec . usec) form")
      (socket-options c option 0)
      (is (eql (socket-options c option) 0))
      (signals type-error (socket-options c option -1))
      (signals type-error (socket-options c option "x")))))

(deftest options-rcvtimeo-read-times-out ()
  (with-pair (c s)
    (socket-options s :so-rcvtimeo 0.2)
    (dolist (reader (list #'read-char #'read-line #'read-byte))
      (multiple-value-bind (result seconds) (timed (bounded (5) (funcall reader s)))
        (setf result (first result))    ; TIMED's list of BOUNDED's value
        (is (and (consp result) (eq (first result) :error)
                 (typep (second result) 'socket-timeout-error))
            (format nil "~S with nothing arriving: ~S" reader result))
        (is (and (>= seconds 0.15) (< seconds 3)) (format nil "waited ~,3F s" seconds))
        (when (and (consp result) (typep (second result) 'socket-error))
          (is (eq (socket-error-code (second result)) :etimedout))
          (is (eq (stream-error-stream (second result)) s)))))
    ;; the stream still works once data comes
    (write-line "late" c) (force-output c)
    (is (equal (read-line s) "late"))))

(deftest options-errors-and-servers ()
  (with-pair (c s)
    (signals type-error (socket-options c :so-bogus))
    (signals type-error (socket-options c :so-bogus 1))
    (signals type-error (socket-options c 42)))
  (with-server (srv 0 :interface "127.0.0.1")
    (is (eq (socket-options srv :so-acceptconn) t))
    (is (eq (socket-options srv :so-reuseaddr) t))
    (check-boolean-option srv :so-keepalive)
    (socket-server-close srv)
    (signals error (socket-options srv :so-keepalive)))
  (let (c)
    (with-pair (a b) (setf c a))
    (signals error (socket-options c :so-keepalive))))

;;; ------------------------------------------------------------------
;;; EXT:STREAM-HANDLES

(deftest raw-descriptors ()
  ;; CLISP's socket functions also take a socket's descriptor
  (with-pair (c s)
    (let ((fd (ext:stream-handles c)))
      (check-boolean-option fd :so-keepalive)
      (is (eq (socket-status fd 0) :output))
      (write-line "raw" s) (force-output s)
      (is (eq (socket-status (cons fd :input) 3) :input))
      (is (eq (socket-status fd 0) :io))
      (is (null (socket-stream-shutdown fd :output)))
      (is (equal (bounded (3) (read-line s nil :eof)) '(:eof t)) "the peer reads EOF")
      (is (equal (read-line c) "raw") "the stream still reads"))
    (signals type-error (socket-status -1 0))
    (signals type-error (socket-options -1 :so-keepalive))))

(deftest stream-handles ()
  (with-server (srv 0 :interface "127.0.0.1")
    (multiple-value-bind (in out) (ext:stream-handles srv)
      (is (and (typep in '(integer 0)) (eq (socket-options in :so-acceptconn) t))
          (format nil "the listening socket's descriptor: ~S" in))
      (is (null out)))
    (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1"))
      (multiple-value-bind (in out) (ext:stream-handles c)
        (is (typep in '(integer 0)))
        (is (eql in out))
        (is (equal (socket-stream-peer in t) "127.0.0.1") "a real socket descriptor"))))
  (is (eq 'ext:stream-handles 'socket::stream-handles)))

;;; ------------------------------------------------------------------
;;; Streams: the standard operations

(deftest stream-text-io ()
  (with-pair (c s)
    (format c "~A ~D~%" "abc" 42)
    (force-output c)
    (is (equal (multiple-value-list (read-line s)) '("abc 42" nil)))
    (print '(1 "two" #\3 4.5 sym) c)
    (finish-output c)
    (is (equal (read s) '(1 "two" #\3 4.5 sym)))
    (write-line "" c) (finish-output c) (read-line s)   ; the rest of print's line
    (is (null (read-char-no-hang s)) "nothing there: NIL")
    (is (null (listen s)))
    (write-char #\x c) (force-output c)
    (is (eq (wait-input s) :input))
    (is (listen s))
    (is (eql (read-char-no-hang s) #\x))
    (is (null (read-char-no-hang s)))
    (write-string "yz" c) (force-output c)
    (wait-input s)
    (is (eql (peek-char nil s) #\y))
    (is (eql (read-char s) #\y))
    (unread-char #\y s)
    (is (equal (list (read-char s) (read-char s)) '(#\y #\z)))
    (close c)
    (is (eq (wait-input s) :eof))
    (is (eq (read-char-no-hang s nil :eof) :eof))
    (is (eq (read-line s nil :eof) :eof))))

(defun partial-character-cases ()
  "(external-format part rest line) for the tests of part of a character:
a UTF-8 lead octet and the rest of its sequence, a CR and its LF under
CR LF; LINE is what READ-LINE returns once the rest (ending the line) came."
  (list (list :utf-8 (octets 195) (octets 169 10) (format nil "~C" (code-char 233)))
        (list :dos (octets 13) (octets 10) "")))

(deftest read-char-no-hang-incomplete-character ()
  ;; Only part of a character has arrived: there is no character yet, so
  ;; READ-CHAR-NO-HANG returns NIL (and LISTEN is false) instead of
  ;; blocking until the rest comes.
  ;; The part comes with an earlier character (so it is already in the
  ;; buffer when the reader gets to it), or alone into an empty buffer
  ;; (LISTEN's own receive finds it: a single-threaded server that polls
  ;; its clients then blocked in READ-CHAR-NO-HANG until the rest came).
  (dolist (apart '(nil t))
    (dolist (case (partial-character-cases))
      (destructuring-bind (format part rest line) case
        (with-pair (c s :connect (:external-format format)
                        :accept (:element-type '(unsigned-byte 8)))
          (write-sequence (octets 120) s)
          (unless apart (write-sequence part s))
          (force-output s)
          (is (eq (wait-input c) :input))
          (is (eql (read-char-no-hang c) #\x))
          (when apart                   ; no SOCKET-STATUS here: it would read it
            (write-sequence part s) (force-output s)
            (sleep 0.2))                ; loopback: it has arrived
          (let ((result (bounded (2) (list (read-char-no-hang c) (listen c)
                                           (read-char-no-hang c)))))
            (is (equal result '((nil nil nil)))
                (format nil "~S, incomplete character~:[ after another~; alone~]: ~S"
                        format apart result)))
          (write-sequence rest s) (force-output s)
          (is (equal (bounded (2) (read-line c)) (list line nil))))))))

;;; Socket streams in character mode report input to SOCKET-STATUS only
;;; once a whole character has come: with part of one (a UTF-8 lead
;;; octet, a CR under CR LF) it waits for the rest.  It used to answer
;;; :INPUT at once, every time: READ-CHAR-NO-HANG then returned NIL, and a
;;; single-threaded server polling its clients spun until the rest came.
(deftest socket-status-waits-for-a-whole-character ()
  (dolist (case (partial-character-cases))
    (destructuring-bind (format part rest line) case
      (with-pair (c s :connect (:external-format format)
                      :accept (:element-type '(unsigned-byte 8)))
        (write-sequence part s) (force-output s)
        (let ((first (bounded (5) (socket-status (cons c :input) 0.3)))
              (again (bounded (5) (socket-status (cons c :input) 0.3))))
          (is (equal first '(nil 0)) (format nil "~S, part alone: ~S" format first))
          (is (equal again '(nil 0)) (format nil "~S, part buffered: ~S" format again)))
        (is (null (read-char-no-hang c)))
        (write-sequence rest s) (force-output s)
        (is (eq (socket-status (cons c :input) 5) :input) "the rest came: input")
        (is (equal (bounded (2) (read-line c)) (list line nil)))))))

(deftest stream-octet-sequences ()
  (let ((data (random-octets 200000)))
    (with-pair (c s :connect (:element-type '(unsigned-byte 8))
                    :accept (:element-type '(unsigned-byte 8)))
      (let ((writer (spawn "writer" (lambda () (write-sequence data c) (force-output c) :ok)))
            (in (make-array 200000 :element-type '(unsigned-byte 8))))
        (is (eql (read-sequence in s) 200000))
        (is (equal (join writer) '(:ok)))
        (is (equalp in data) "every octet arrives in order")))
    ;; the same on character streams: they take octets too
    (with-pair (c s)
      (let ((small (subseq data 0 1000))
            (in (make-array 1000 :element-type '(unsigned-byte 8))))
        (write-sequence small c) (force-output c)
        (is (eql (read-sequence in s) 1000))
        (is (equalp in small))))))

(deftest stream-bivalent-bytes ()
  (with-pair (c s)
    (write-byte 200 c)
    (write-char #\A c)
    (write-byte 10 c)
    (write-line "text" c)
    (force-output c)
    (is (eql (read-byte s) 200))
    (is (eql (read-char s) #\A))
    (is (eql (read-byte s) 10))
    (is (equal (read-line s) "text"))))

(deftest stream-close ()
  (let (x)
    (with-server (srv 0 :interface "127.0.0.1")
      (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1"))
        (setf x c)
        (with-open-stream (s (socket-accept srv :timeout 5))
          (is (open-stream-p c))
          (write-line "bye" c))               ; not forced: close sends it
        (is (open-stream-p c)))
      (is (not (open-stream-p x)) "with-open-stream closes")
      (with-open-stream (c (socket-connect (socket-server-port srv) "127.0.0.1"))
        (with-open-stream (s (socket-accept srv :timeout 5))
          (write-line "flushed by close" c)
          (close c)
          (is (equal (read-line s) "flushed by close"))
          (is (eq (read-line s nil :eof) :eof)))))
    (is (close x) "closing again is harmless")
    (signals error (read-line x))
    (signals error (read-char x))
    (signals error (read-byte x))
    (signals error (progn (write-line "x" x) (force-output x)))
    (signals error (ext:read-byte-sequence (make-array 4 :element-type '(unsigned-byte 8)) x))
    (is (not (open-stream-p x)))))

;;; ------------------------------------------------------------------
;;; External formats, checked on the wire with an octet peer

(defun format-check (format out-text out-octets in-octets in-lines)
  "A client with external FORMAT writes OUT-TEXT with WRITE-STRING: the
peer must receive OUT-OCTETS; the peer sends IN-OCTETS: the client must read
IN-LINES with READ-LINE."
  (with-pair (c s :connect (:external-format format)
                  :accept (:element-type '(unsigned-byte 8)))
    (write-string out-text c) (force-output c)
    (let ((got (read-octets s (length out-octets))))
      (is (equalp got out-octets) (format nil "~S writes ~S, not ~S" format out-octets got)))
    (is (null (socket-status (cons s :input) 0)) "nothing more on the wire")
    (write-sequence in-octets s) (force-output s)
    (dolist (line in-lines)
      (let ((got (read-line c nil :eof)))
        (is (equal got line) (format nil "~S reads ~S, not ~S" format line got))))))

(defun ascii (string)
  (map '(vector (unsigned-byte 8)) #'char-code string))

(defparameter *crlf* (coerce '(#\Return #\Newline) 'string))

(deftest external-format-dos ()
  (format-check :dos (format nil "abc~%") (octets 97 98 99 13 10)
                (ascii (format nil "x~Ay~A" *crlf* *crlf*)) '("x" "y")))

(deftest external-format-unix ()
  (format-check :unix (format nil "abc~%") (octets 97 98 99 10)
                (ascii (format nil "x~Ay~%" *crlf*))
                (list (format nil "x~C" #\Return) "y")))

(deftest external-format-mac ()
  (format-check :mac (format nil "abc~%") (octets 97 98 99 13)
                (octets 120 13 121 13) '("x" "y")))

(deftest external-format-latin-1-dos ()
  (format-check '(:latin-1 :dos) (format nil "~C~%" (code-char 233)) (octets 233 13 10)
                (octets 233 98 13 10) (list (format nil "~Cb" (code-char 233)))))

(deftest external-format-utf-8 ()
  (let* ((text (format nil "h~Cllo w~Crld ~C" (code-char #xe9) (code-char #xf6)
                       (code-char #x20ac)))
         (wire (octets 104 195 169 108 108 111 32 119 195 182 114 108 100 32 226 130 172 10)))
    (format-check :utf-8 (format nil "~A~%" text) wire wire (list text))))

;;; ------------------------------------------------------------------
;;; EXT names

(deftest ext-read-byte-sequence ()
  (with-pair (c s :connect (:element-type '(unsigned-byte 8)))
    (send-octets s 1 2 3 4 5 6 7 8 9 10)
    (wait-input c)
    (let ((v (make-array 10 :element-type '(unsigned-byte 8) :initial-element 0)))
      (is (eql (ext:read-byte-sequence v c :start 2 :end 6) 6))
      (is (equalp v (octets 0 0 1 2 3 4 0 0 0 0)))
      ;; :no-hang: what is there, at once
      (fill v 0)
      (multiple-value-bind (result seconds) (timed (ext:read-byte-sequence v c :no-hang t))
        (is (equal result '(6)) (format nil "~S" result))
        (is (< seconds 0.5)))
      (is (equalp v (octets 5 6 7 8 9 10 0 0 0 0)))
      (multiple-value-bind (result seconds) (timed (ext:read-byte-sequence v c :start 3 :no-hang t))
        (is (equal result '(3)) "nothing there: returns START")
        (is (< seconds 0.5)))
      ;; :interactive: waits for the first octet only, then takes what is there
      (fill v 0)
      (let ((writer (spawn "writer" (lambda () (sleep 0.2) (send-octets s 11 12 13) :ok))))
        (multiple-value-bind (result seconds)
            (timed (bounded (5) (ext:read-byte-sequence v c :interactive t)))
          (is (equal result '((3))) (format nil "~S" result))
          (is (and (>= seconds 0.15) (< seconds 3)) (format nil "waited ~,3F s" seconds)))
        (join writer))
      (is (equalp (subseq v 0 3) (octets 11 12 13)))
      ;; at EOF: fewer than asked
      (send-octets s 14 15)
      (close s) (setf s nil)
      (is (eql (ext:read-byte-sequence v c) 2))
      (is (equalp (subseq v 0 2) (octets 14 15)))
      ;; bad bounds: an error, nothing read
      (signals error (ext:read-byte-sequence v c :end 11))
      (signals error (ext:read-byte-sequence v c :start 5 :end 2))
      (signals error (ext:read-byte-sequence v c :start -1))))
  ;; on a character stream too
  (with-pair (c s)
    (write-string "AB" s) (force-output s)
    (let ((v (make-array 2 :element-type '(unsigned-byte 8))))
      (is (eql (ext:read-byte-sequence v c) 2))
      (is (equalp v (octets 65 66))))))

(deftest ext-write-byte-sequence ()
  (with-pair (c s :accept (:element-type '(unsigned-byte 8)))
    (let ((v (octets 10 20 30 40 50)))
      (is (equal (multiple-value-list (ext:write-byte-sequence v c :start 1 :end 4))
                 (list v 4)))
      (force-output c)
      (is (equalp (read-octets s 3) (octets 20 30 40)))
      (is (equal (multiple-value-list (ext:write-byte-sequence v c)) (list v 5)))
      (is (eq (nth-value 0 (ext:write-byte-sequence v c :no-hang t)) v))
      (force-output c)
      (is (equalp (read-octets s 10) (concatenate '(vector (unsigned-byte 8)) v v)))
      (signals error (ext:write-byte-sequence v c :start 4 :end 2))
      (signals error (ext:write-byte-sequence v c :end 6))
      (force-output c)
      (is (null (socket-status (cons s :input) 0.1)) "nothing written by the bad calls"))))

(deftest ext-char-sequences ()
  (with-pair (c s)
    (let ((text "hello world"))
      (is (eq (ext:write-char-sequence text c :start 6) text))
      (ext:write-char-sequence text c :end 5)
      (force-output c)
      (let ((in (make-string 10 :initial-element #\-)))
        (is (eql (ext:read-char-sequence in s :start 1 :end 6) 6))
        (is (equal in "-world----"))
        (is (eql (ext:read-char-sequence in s :end 5) 5))
        (is (equal in "hellod----"))))))

(defparameter *socket-names*
  '("SOCKET-ACCEPT" "SOCKET-CONNECT" "SOCKET-OPTIONS" "SOCKET-SERVER"
    "SOCKET-SERVER-CLOSE" "SOCKET-SERVER-HOST" "SOCKET-SERVER-PORT"
    "SOCKET-STATUS" "SOCKET-STREAM-HOST" "SOCKET-STREAM-LOCAL"
    "SOCKET-STREAM-PEER" "SOCKET-STREAM-PORT" "SOCKET-STREAM-SHUTDOWN"
    "SOCKET-WAIT"))

(deftest ext-exports ()
  (dolist (name *socket-names*)
    (multiple-value-bind (sym status) (find-symbol name "EXT")
      (is (eq status :external) (format nil "EXT:~A is external" name))
      (is (eq sym (find-symbol name "SOCKET")) (format nil "EXT:~A is SOCKET:~A" name name))
      (is (fboundp sym))))
  (dolist (name '("READ-BYTE-SEQUENCE" "WRITE-BYTE-SEQUENCE" "READ-CHAR-SEQUENCE"
                  "WRITE-CHAR-SEQUENCE" "STREAM-HANDLES" "OS-ERROR" "OS-ERROR-CODE"))
    (is (eq (nth-value 1 (find-symbol name "EXT")) :external) (format nil "EXT:~A" name)))
  (is (eq (find-package "SOCKET") (find-package "ACL-SOCKET"))))

(deftest ext-names-compile ()
  ;; CLISP code naming EXT:... reads and compiles
  (let* ((dir (or (ext:getenv "TEST_BUILDDIR") "/tmp"))
         (src (format nil "~A/test-clisp-ext-names.lisp" dir)))
    (with-open-file (o src :direction :output :if-exists :supersede)
      (write-string "(in-package \"CL-USER\")
(defun clisp-ext-echo (port)
  (let ((s (ext:socket-connect port \"127.0.0.1\" :element-type '(unsigned-byte 8)))
        (v (make-array 3 :element-type '(unsigned-byte 8))))
    (unwind-protect
         (progn (ext:write-byte-sequence #(1 2 3) s)
                (force-output s)
                (list (ext:read-byte-sequence v s) v))
      (close s))))
" o))
    (multiple-value-bind (fasl warnings-p failure-p)
        (compile-file src :output-file (format nil "~A/test-clisp-ext-names.fas" dir)
                          :verbose nil :print nil)
      (is fasl)
      (is (not warnings-p) "no warnings")
      (is (not failure-p))
      (when fasl
        (load fasl :verbose nil)
        (with-server (srv 0 :interface "127.0.0.1")
          (let ((th (spawn "echo" (lambda ()
                                    (with-open-stream (s (socket-accept srv :timeout 5
                                                                        :element-type '(unsigned-byte 8)))
                                      (write-sequence (reverse (read-octets s 3)) s)
                                      (force-output s)
                                      :echoed)))))
            (is (equalp (funcall (find-symbol "CLISP-EXT-ECHO" "CL-USER") (socket-server-port srv))
                        (list 3 (octets 3 2 1))))
            (is (equal (join th) '(:echoed)))))))
    (is (eq (read-from-string "EXT:READ-BYTE-SEQUENCE") 'ext:read-byte-sequence))
    (is (eq (read-from-string "EXT:SOCKET-CONNECT") 'socket:socket-connect))))

;;; ------------------------------------------------------------------
;;; (SETF STREAM-ELEMENT-TYPE)

(deftest setf-stream-element-type ()
  (with-pair (c s :connect (:external-format :dos) :accept (:external-format :dos))
    (let ((body (octets 0 255 13 10 233 65)))
      ;; the client sends header, body and trailer in one go
      (write-line "POST /x HTTP/1.0" c)
      (format c "Content-Length: ~D~%" (length body))
      (write-line "" c)
      (is (equal (setf (stream-element-type c) '(unsigned-byte 8)) '(unsigned-byte 8)))
      (write-sequence body c)
      (setf (stream-element-type c) 'character)
      (write-line "trailer" c)
      (force-output c)
      (is (eq (wait-input s) :input))
      ;; the server reads the header as text ...
      (is (equal (read-line s) "POST /x HTTP/1.0"))
      (is (equal (read-line s) "Content-Length: 6"))
      (is (equal (read-line s) ""))
      (is (eq (stream-element-type s) 'character))
      ;; ... the body, already in the stream's buffer, as octets ...
      (setf (stream-element-type s) '(unsigned-byte 8))
      (is (equal (stream-element-type s) '(unsigned-byte 8)))
      (is (equalp (read-octets s 6) body) "exact octets, CR LF untouched")
      ;; ... and back to text, with the :DOS format still in force
      (setf (stream-element-type s) 'character)
      (is (eq (stream-element-type s) 'character))
      (is (equal (read-line s) "trailer"))
      ;; the answer, written after switching, too
      (setf (stream-element-type s) '(unsigned-byte 8))
      (write-sequence (octets 1 2 3) s)
      (setf (stream-element-type s) 'character)
      (write-line "ok" s)
      (force-output s)
      (setf (stream-element-type c) '(unsigned-byte 8))
      (is (equalp (read-octets c 7) (octets 1 2 3 111 107 13 10)))))
  (signals error (setf (stream-element-type (make-string-input-stream "x")) '(unsigned-byte 8)))
  (with-pair (c s)
    (signals type-error (setf (stream-element-type c) 'fixnum))))

;;; ------------------------------------------------------------------
;;; Buffering: CLISP programs never call FORCE-OUTPUT

(defun request-loop (c s wait)
  "The server answers each line on S with PRINT and waits for the next with
WAIT (:READ or :STATUS); the client on C sends three requests and reads the
answers.  Nobody calls FORCE-OUTPUT.  Returns the client's answers or :HUNG."
  (let ((server (spawn "server"
                       (lambda ()
                         (loop
                           (when (eq wait :status)
                             (socket-status (cons s :input) nil))
                           (let ((req (read-line s nil :eof)))
                             (when (eq req :eof) (return :done))
                             (print (list :answer req) s)))))))
    (let ((answers (bounded (5)
                     ;; WRITE-STRING: ECL's WRITE-LINE and TERPRI force output
                     (loop for i below 3
                           do (write-string (format nil "req ~D~%" i) c)
                           collect (read c)))))
      (when (eq answers :hung)
        (ignore-errors (socket-stream-shutdown s :io))
        (ignore-errors (socket-stream-shutdown c :io)))
      (close c)
      (is (equal (join server) '(:done)))
      answers)))

(deftest buffered-default-answers-without-force-output ()
  (dolist (wait '(:read :status))
    (with-pair (c s)
      (is (equal (request-loop c s wait)
                 '(((:answer "req 0") (:answer "req 1") (:answer "req 2"))))
          (format nil "server waiting with ~S" wait)))))

(deftest buffered-nil-sends-at-once ()
  (with-pair (c s :connect (:buffered nil) :accept (:buffered nil))
    (write-string "x" c)
    (is (eq (socket-status (cons s :input) 2) :input) "the peer sees it without force-output")
    (is (eql (read-char s) #\x))
    (write-byte 65 s)
    (is (eq (socket-status (cons c :input) 2) :input))
    (is (eql (read-char c) #\A)))
  ;; the default buffers: output leaves on force-output, a read, or at the
  ;; latest after the documented hold (2 ms): held at first (seen at least
  ;; once in ten tries: a try the scheduler stalls past 2 ms sees it sent)
  (with-pair (c s)
    (is (loop repeat 10
              thereis (progn
                        (write-string "y" c)
                        (prog1 (null (socket-status (cons s :input) 0))
                          (force-output c)
                          (is (eq (socket-status (cons s :input) 2) :input))
                          (is (eql (read-char s) #\y)))))
        "buffered by default")
    (write-string "z" c)
    (is (eq (socket-status (cons s :input) 5) :input) "held output arrives by itself")
    (is (eql (read-char s) #\z))))

;;; ------------------------------------------------------------------
;;; Printing and documentation

(deftest stream-print-form ()
  (with-pair (c s)
    (let* ((*print-pretty* t)
           (text (prin1-to-string c))
           (local (format nil "127.0.0.1:~D" (nth-value 1 (socket-stream-local c t))))
           (peer (format nil "127.0.0.1:~D" (nth-value 1 (socket-stream-peer c t)))))
      (is (contains text "SOCKET-STREAM") text)
      (is (contains text local) (format nil "~A names ~A" text local))
      (is (contains text peer) (format nil "~A names ~A" text peer))
      (is (not (contains text "CLOSED")))
      (close c)
      (let ((closed (prin1-to-string c)))
        (is (contains closed "CLOSED") closed)
        (is (contains closed "SOCKET-STREAM") closed))))
  (with-pair (c s :host "::1")
    (let ((*print-pretty* t))
      (is (contains (prin1-to-string c) "::1")))))

(deftest docstrings ()
  (let ((missing '()))
    (do-external-symbols (sym "SOCKET")
      (let ((kinds '()))
        (when (fboundp sym)
          (push 'function kinds))
        (when (or (find-class sym nil) (si::get-sysprop sym 'si::deftype-definition))
          (push 'type kinds))
        (when (boundp sym)
          (push 'variable kinds))
        (when (null kinds)
          (push (list sym :names-nothing) missing))
        (dolist (kind kinds)
          (unless (documentation sym kind)
            (push (list sym kind) missing)))))
    (is (null missing) (format nil "undocumented: ~S" missing))))

(deftest element-type-of-closed-stream ()
  ;; switching a closed stream is a socket error naming the operation
  (with-pair (c s)
    (close c)
    (let ((e (signals socket-error (setf (stream-element-type c) '(unsigned-byte 8)))))
      (when e
        (is (eq (socket-error-code e) :ebadf))
        (is (contains (error-text e) "stream-element-type"))))))

;;; ------------------------------------------------------------------
;;; The core's close protocol on servers (every face's descriptor-owning
;;; object shares it: ECLSOCK::DESCRIPTOR-OWNER)

(defun fd-open-p (fd)
  "True when descriptor number FD is open in this process."
  (and (si::file-kind (format nil "/proc/self/fd/~D" fd) nil) t))

(deftest server-close-protocol ()
  (let* ((before (fd-count))
         (srv (socket-server 0 :interface "127.0.0.1"))
         (fd (ext:stream-handles srv)))
    (is (fd-open-p fd) "the server holds its descriptor")
    (is (null (socket-server-close srv)) "the first close returns NIL")
    (is (not (fd-open-p fd)) "its descriptor is closed")
    (is (search "CLOSED" (prin1-to-string srv)) "it prints as closed")
    ;; the freed number goes to the next socket; a second close of the old
    ;; server must leave that one alone
    (let ((next (socket-server 0 :interface "127.0.0.1")))
      (unwind-protect
           (progn
             (is (eql (ext:stream-handles next) fd) "the next server got the freed number")
             (is (null (socket-server-close srv)) "closing again is harmless")
             (is (fd-open-p fd) "closing again closed nothing")
             (with-open-stream (c (socket-connect (socket-server-port next) "127.0.0.1"
                                                  :timeout 5))
               (with-open-stream (s (socket-accept next :timeout 5))
                 (write-line "still open" c) (finish-output c)
                 (is (equal (read-line s) "still open") "the next server still works"))))
        (socket-server-close next)))
    (signals socket-error (socket-accept srv :timeout 0))
    (is (<= (fd-count) before) "no descriptor left")))

(deftest server-closed-by-many-threads-at-once ()
  ;; eight threads close one server at the same time, while others open
  ;; servers (which may get its number): exactly one descriptor closes
  (dotimes (round 20)
    (let* ((srv (socket-server 0 :interface "127.0.0.1"))
           (go nil)
           (closers (loop repeat 8
                          collect (spawn "closer"
                                         (lambda ()
                                           (loop until go do (mp:process-yield))
                                           (socket-server-close srv)))))
           (openers (loop repeat 2
                          collect (spawn "opener"
                                         (lambda ()
                                           (loop until go do (mp:process-yield))
                                           (socket-server 0 :interface "127.0.0.1"))))))
      (setf go t)
      (is (every (lambda (r) (equal r '(nil))) (mapcar #'join closers)) "every close returned NIL")
      (let ((new (mapcar (lambda (p) (first (join p))) openers)))
        (is (every #'socket-server-p new) "the openers got servers")
        (is (every (lambda (s) (fd-open-p (ext:stream-handles s))) new)
            "no closer closed a new server's descriptor (which may have the old number)")
        (mapc #'socket-server-close new)))))

(deftest server-closed-while-another-thread-accepts ()
  (let* ((before (fd-count))
         (srv (socket-server 0 :interface "127.0.0.1"))
         (waiters (list (spawn "accept" (lambda () (socket-accept srv)))
                        (spawn "wait" (lambda () (socket-wait srv))))))
    (sleep 0.2)
    (is (every #'mp:process-active-p waiters) "both wait for a connection")
    (socket-server-close srv)
    (dolist (w waiters)
      (let ((r (first (bounded (5) (join w :error-ok t)))))
        (is (and (consp r) (eq (first r) :error) (typep (second r) 'socket-error)
                 (eq (socket-error-code (second r)) :ebadf))
            (format nil "the waiter woke with EBADF: ~S" r))))
    (is (<= (fd-count) before) "no descriptor left")))

(deftest dropped-servers-are-finalized-to-the-count ()
  ;; the one finalizer of the core closes dropped servers: back to the
  ;; count, nearly (FINALIZE-DROPPED says why not exactly)
  (let ((before (fd-count)) (table (fd-table)))
    (drop-from-thread (lambda () (dotimes (i 30) (socket-server 0 :interface "127.0.0.1"))))
    (is (>= (fd-count) (+ before 20)) "the dropped servers hold descriptors until collected")
    (let ((left (finalize-dropped table)))
      (is (<= left 7) (format nil "at least 23 of 30 dropped servers finalized (~D left)" left)))))
