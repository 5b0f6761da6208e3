;;;; test-allegro.lisp - the Allegro face: MAKE-SOCKET, ACCEPT-CONNECTION,
;;;; accessors, address helpers, datagrams over IPv4, IPv6 and Unix
;;;; sockets, Unix stream sockets by file name, EXCL:SOCKET-ERROR and its
;;;; identifiers, socket options, MP:WITH-TIMEOUT and
;;;; MP:WAIT-FOR-INPUT-AVAILABLE, printing, a program written the Allegro
;;;; way loaded from a file, a second Lisp process, and the sum example.
;;;;
;;;; Loopback only, kernel-chosen ports, servers that stop by themselves.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "TEST-ALLEGRO" (:use "CL" "SOCKET" "HARNESS"))
(in-package "TEST-ALLEGRO")

;;; ------------------------------------------------------------------
;;; Helpers

(defun octets (string)
  (map '(vector (unsigned-byte 8)) #'char-code string))

(defun text (octets &optional (end (length octets)))
  (map 'string #'code-char (subseq octets 0 end)))

(defun srcdir (relative)
  "A file of the source tree, e.g. \"lisp/allegro-program.lisp\" under tests/."
  (format nil "~A/~A" (or (ext:getenv "TEST_SRCDIR") "tests") relative))

(defun temp-name (tag)
  "A fresh file name for a Unix socket, in the build tree's test directory."
  (format nil "~A/acl-~A-~D-~D.sock" (or (ext:getenv "TEST_BUILDDIR") "/tmp")
          tag (random 1000000 (make-random-state t)) (get-universal-time)))

(defun file-exists-p (name)
  (probe-file name))

(defun wait-until (predicate &optional (seconds 5))
  "Call PREDICATE every 10 ms for up to SECONDS until it returns true; that
value, or NIL."
  (loop repeat (* seconds 100)
        do (let ((v (funcall predicate)))
             (when v (return v))
             (sleep 0.01))))

(defun identifier-of (thunk)
  "The EXCL:STREAM-ERROR-IDENTIFIER of the EXCL:SOCKET-ERROR THUNK signals."
  (handler-case (progn (funcall thunk) :no-error)
    (excl:socket-error (e) (excl:stream-error-identifier e))))

(defun closed-port ()
  "A loopback port nobody listens on (it was just released)."
  (let* ((p (make-socket :connect :passive :local-host "127.0.0.1"))
         (port (local-port p)))
    (close p)
    port))

(defun ecl-program ()
  (or (ext:getenv "ECL") "ecl"))

(defun run-lisp (script &rest args)
  "Start another ECL on SCRIPT (with our sock.fas) and ARGS; return its
output stream and process."
  (multiple-value-bind (stream code process)
      (ext:run-program (ecl-program)
                       (list* "-norc" "-eval"
                              (format nil "(load ~S)" (ext:getenv "SOCK_FAS"))
                              "-shell" script args)
                       :input nil :output :stream :error :output :wait nil)
    (declare (ignore code))
    (values stream process)))

(defun read-line-matching (stream prefix)
  "The first line of STREAM that starts with PREFIX (others, such as ECL's
;;; Loading messages, are skipped), or NIL at end of file."
  (loop for line = (read-line stream nil)
        while line
        when (and (>= (length line) (length prefix))
                  (string= prefix line :end2 (length prefix)))
          return line))

(defun process-exit-code (process &optional (seconds 20))
  "Wait up to SECONDS for PROCESS to exit; its exit code (NIL if it did not)."
  (loop repeat (* seconds 10)
        do (multiple-value-bind (status code) (ext:external-process-status process)
             (unless (member status '(:running :stopped))
               (return code)))
           (sleep 0.1)
        finally (ext:terminate-process process t)
                (return nil)))

(defun connected (passive &rest keys)
  "An active socket connected to PASSIVE (by host name) and the accepted one."
  (let ((c (apply #'make-socket :remote-host "localhost"
                  :remote-port (local-port passive) keys)))
    (values c (accept-connection passive))))

;;; ------------------------------------------------------------------
;;; Streams, passive sockets, accessors

(deftest exchange-with-second-lisp ()
  ;; the other Lisp listens on a kernel-chosen port and prints it
  (multiple-value-bind (out process) (run-lisp (srcdir "lisp/allegro-peer.lisp"))
    (unwind-protect
         (let* ((line (read-line-matching out "PORT "))
                (port (and line (parse-integer line :start 5))))
           (is port "the peer printed its port")
           (when port
             (let ((s (make-socket :remote-host "localhost" :remote-port port)))
               (unwind-protect
                    (let ((*read-eval* nil))
                      (format s "(:numbers ~S)~%" '(1 2 3/4 0.5d0))
                      (force-output s)
                      (is (equal (read s) '(:peer-got (:numbers (1 2 3/4 0.5d0)) :sum 4.25d0)))
                      (format s "(:bye ~S)~%" "from the first Lisp")
                      (force-output s))
                 (close s)))
             (is (equal (read-line-matching out "PEER READ ")
                        "PEER READ (:BYE \"from the first Lisp\")"))
             (is (eql (process-exit-code process) 0) "the peer exits by itself")))
      (close out)
      (when (eq (ext:external-process-status process) :running)
        (ext:terminate-process process t)))))

(defun sum-server (passive clients)
  "Serve CLIENTS connections on PASSIVE, each in its own thread: read two
numbers, answer their sum."
  (let ((workers
          (loop repeat clients
                collect (let ((s (accept-connection passive)))
                          (mp:process-run-function
                           "sum worker"
                           (lambda ()
                             (unwind-protect
                                  (let ((*read-eval* nil))
                                    (format s "~S~%" (+ (read s) (read s)))
                                    (force-output s))
                               (close s))))))))
    (mapc #'mp:process-join workers)
    clients))

(deftest sum-server-several-clients ()
  (let* ((passive (make-socket :connect :passive :local-host "127.0.0.1" :backlog 16))
         (pairs '((1 2) (1/2 1/3) (1.5 2.25) (#c(1 2) #c(3 -1)) (100000000000000000000 1)
                  (-7 7) (2.5d0 1)))
         (server (mp:process-run-function "sum server" #'sum-server passive (length pairs)))
         (clients
           (loop for (a b) in pairs
                 collect (let ((a a) (b b))
                           (spawn "sum client"
                                  (lambda ()
                                    (let ((s (make-socket :remote-host "localhost"
                                                          :remote-port (local-port passive))))
                                      (unwind-protect
                                           (progn (format s "~S ~S~%" a b)
                                                  (force-output s)
                                                  (let ((*read-eval* nil)) (read s)))
                                        (close s)))))))))
    (unwind-protect
         (loop for (a b) in pairs
               for c in clients
               do (is (equal (join c) (list (+ a b))) (format nil "~S + ~S" a b)))
      (is (eql (mp:process-join server) (length pairs)))
      (close passive))))

(deftest accept-without-waiting ()
  (let ((passive (make-socket :connect :passive :local-host "127.0.0.1")))
    (unwind-protect
         (progn
           (is (null (accept-connection passive :wait nil)) "nothing pending: NIL at once")
           (is (plusp (local-port passive)) "the kernel chose a port")
           (let ((c (make-socket :remote-host "127.0.0.1" :remote-port (local-port passive))))
             (unwind-protect
                  (let ((s (wait-until (lambda () (accept-connection passive :wait nil)))))
                    (is (socket-stream-p s) "a pending connection is accepted")
                    (when s
                      (is (= (remote-port s) (local-port c)))
                      (is (= (local-port s) (remote-port c) (local-port passive)))
                      (close s)))
               (close c))))
      (close passive))))

(deftest accessors-and-formats ()
  (let ((passive (make-socket :connect :passive :local-host "127.0.0.1"
                              :format :bivalent)))
    (unwind-protect
         (multiple-value-bind (c s) (connected passive :format :binary)
           (unwind-protect
                (progn
                  (is (eq (socket-connect c) :active))
                  (is (eq (socket-connect passive) :passive))
                  (is (eq (socket-connect s) :active))
                  (is (equal (mapcar #'socket-type (list c s passive)) '(:stream :stream :stream)))
                  (is (eq (socket-format c) :binary))
                  (is (eq (socket-format passive) :bivalent))
                  (is (eq (socket-format s) :bivalent))
                  (is (equal (stream-element-type c) '(unsigned-byte 8)))
                  (is (eq (socket-address-family c) :internet))
                  (is (= (remote-host c) (local-host s) (dotted-to-ipaddr "127.0.0.1")))
                  (is (= (local-host passive) (dotted-to-ipaddr "127.0.0.1")))
                  (is (= (socket-os-fd c) (values (ext:stream-handles c))))
                  (let ((fd (socket-os-fd passive)))
                    (is (and (integerp fd) (/= fd (socket-os-fd c))
                             (member (princ-to-string fd)
                                     (directory "/proc/self/fd/*" :resolve-symlinks nil)
                                     :key #'pathname-name :test #'equal))
                        (format nil "the passive socket's own open descriptor: ~S" fd)))
                  ;; a bivalent stream takes octets and characters
                  (write-sequence (octets "AB") c)
                  (force-output c)
                  (is (eql (read-byte s) 65))
                  (is (eql (read-char s) #\B))
                  ;; CLISP's accept works on an Allegro passive socket too
                  (let ((c2 (make-socket :remote-host "127.0.0.1" :remote-port (local-port passive))))
                    (with-open-stream (s2 (socket-accept passive :timeout 5))
                      (is (= (remote-port s2) (local-port c2))))
                    (close c2)))
             (close c)
             (close s))
           ;; the addresses are still known after close
           (is (= (remote-port c) (local-port passive)))
           (is (null (socket-os-fd c))))
      (close passive))
    (is (null (socket-os-fd passive)) "closed passive socket has no descriptor")))

(deftest internet6-streams ()
  (let ((passive (make-socket :connect :passive :address-family :internet6 :local-host "::1")))
    (unwind-protect
         (progn
           (is (equal (ipaddr-to-dotted (local-host passive)) "::1"))
           (let ((c (make-socket :address-family :internet6 :remote-host "::1"
                                 :remote-port (local-port passive)))
                 (s (accept-connection passive)))
             (unwind-protect
                  (progn
                    (is (ipaddr-equalp (remote-host c) "::1"))
                    (is (ipaddr-equalp (remote-host s) "::1"))
                    (is (= (remote-port s) (local-port c)))
                    (is (eq (socket-address-family c) :internet))
                    (format c "~S~%" '(six)) (force-output c)
                    (is (equal (read s) '(six)))
                    ;; switch the format of a live stream
                    (set-socket-format s :binary)
                    (is (eq (socket-format s) :binary))
                    (write-sequence (octets "AB") c) (force-output c)
                    (is (equal (list (read-byte s) (read-byte s)) '(65 66)))
                    (set-socket-format s :text)
                    (write-line "back to text" c) (force-output c)
                    (is (equal (read-line s) "back to text")))
               (close c)
               (close s)))
           ;; "localhost" has no IPv6 address here (/etc/hosts): a clear error
           (unless (ignore-errors (lookup-hostname "localhost" :all t :ipv6 t)
                                  (some #'ipv6-address-p (lookup-hostname "localhost" :all t)))
             (signals host-not-found-error
               (make-socket :address-family :internet6 :remote-host "localhost"
                            :remote-port (local-port passive)))))
      (close passive))))

(deftest active-from-a-local-port ()
  (let ((passive (make-socket :connect :passive :local-host "127.0.0.1"))
        (port nil))
    (unwind-protect
         (let ((c (loop repeat 5               ; another process may take the port first
                        do (setf port (closed-port))
                           (handler-case
                               (return (make-socket :remote-host "127.0.0.1"
                                                    :remote-port (local-port passive)
                                                    :local-host "127.0.0.1" :local-port port))
                             (address-in-use-error () nil))))
               (s (accept-connection passive)))
           (is (= (local-port c) port) "connected from the asked-for port")
           (is (= (remote-port s) port) "the peer sees that port")
           (is (eq (identifier-of (lambda ()
                                    (make-socket :remote-host "127.0.0.1"
                                                 :remote-port (local-port passive)
                                                 :local-host "192.0.2.1")))
                   :address-not-available)
               "a local address this host lacks")
           (close c)
           (close s))
      (close passive))))

(deftest printing ()
  (let* ((passive (make-socket :connect :passive :local-host "127.0.0.1"))
         (port (local-port passive))
         (*print-hostname-in-stream* nil))
    (let ((text (prin1-to-string passive)))
      (is (search "passive" text))
      (is (search (format nil "127.0.0.1/~D" port) text) text))
    (multiple-value-bind (c s) (connected passive)
      (let ((text (prin1-to-string c)))
        (is (search (format nil "~D" port) text) text)
        (is (search (format nil "~D" (local-port c)) text) text))
      (close c)
      (close s)
      (is (search "CLOSED" (string-upcase (prin1-to-string c)))))
    (close passive)
    (is (search "closed" (prin1-to-string passive)))))

(deftest shutdown-halves ()
  (let ((passive (make-socket :connect :passive :local-host "127.0.0.1")))
    (unwind-protect
         (multiple-value-bind (c s) (connected passive)
           (unwind-protect
                (progn
                  (write-line "last words" c)
                  (shutdown c :direction :output)
                  (is (equal (read-line s) "last words") "pending output went first")
                  (is (eq (read-line s nil :eof) :eof) "then end of file")
                  (write-line "reply" s)
                  (force-output s)
                  (is (equal (read-line c) "reply") "the other half still works")
                  (shutdown c :direction :input)
                  (is (null (socket-os-fd c)) "both halves shut down: closed")
                  (signals type-error (shutdown s :direction :sideways)))
             (close c)
             (close s)))
      (close passive))))

;;; ------------------------------------------------------------------
;;; Addresses

(deftest address-helpers ()
  (is (= (dotted-to-ipaddr "127.0.0.1") #x7f000001))
  (is (equal (ipaddr-to-dotted #x7f000001) "127.0.0.1"))
  (is (equal (multiple-value-list (ipaddr-to-dotted #xc0a80102 :values t)) '(192 168 1 2)))
  (is (null (dotted-to-ipaddr "not an address" :errorp nil)))
  (signals error (dotted-to-ipaddr "300.1.2.3"))
  (is (= (dotted-to-ipaddr "::ffff:10.1.2.3") #x0a010203) "IPv4-mapped gives the integer")
  (let ((a (dotted-to-ipaddr "::1")))
    (is (ipv6-address-p a))
    (is (equal (ipaddr-to-dotted a) "::1"))
    (is (ipaddr-equalp a "0:0:0:0:0:0:0:1"))
    (is (not (ipaddr-equalp a "::2"))))
  (is (equal (ipaddr-to-dotted (dotted-to-ipaddr "2001:db8:0:0:1:0:0:1")) "2001:db8::1:0:0:1"))
  (is (dotted-address-p "10.0.0.1"))
  (is (not (dotted-address-p "localhost")))
  (is (= (lookup-hostname "localhost") #x7f000001))
  (is (= (lookup-hostname "127.0.0.1") #x7f000001))
  (is (= (lookup-hostname #x7f000001) #x7f000001))
  (is (equal (ipaddr-to-hostname #x7f000001) "localhost"))
  (is (= (lookup-port "http" "tcp") 80))
  (is (= (lookup-port 8080 "tcp") 8080))
  (let ((e (signals socket-error (lookup-port "no-such-service-here" "tcp"))))
    (is (and e (search "no-such-service-here" (princ-to-string e)))
        (format nil "the report names the service: ~A" e)))
  (is (typep (signals socket-error (lookup-hostname "no-such-host.invalid"))
             'host-not-found-error)))

;;; ------------------------------------------------------------------
;;; Datagrams

(defun datagram-round-trip (local-host)
  (let* ((a (make-socket :type :datagram :local-host local-host))
         (b (make-socket :type :datagram :remote-host local-host
                         :remote-port (local-port a))))
    (unwind-protect
         (progn
           (is (eq (socket-type a) :datagram))
           (is (eq (socket-connect b) :active))
           ;; b -> a, to b's default destination, into a fresh buffer
           (is (= (send-to b (octets "ping") 4) 4))
           (multiple-value-bind (buf n host port) (receive-from a 100)
             (is (= n 4))
             (is (equal (text buf n) "ping"))
             (is (ipaddr-equalp host (dotted-to-ipaddr local-host)) (format nil "~S" host))
             (is (= port (local-port b)))
             ;; a -> b, to the sender, into the caller's buffer
             (is (= (send-to a "pong, and more" 14 :remote-host host :remote-port port) 14))
             (let ((mine (make-array 64 :element-type '(unsigned-byte 8) :initial-element 0)))
               (multiple-value-bind (buf2 n2 host2 port2) (receive-from b 8 :buffer mine)
                 (is (eq buf2 mine) "the caller's buffer is filled and returned")
                 (is (= n2 8) "the datagram is cut at SIZE")
                 (is (equal (text mine 8) "pong, an"))
                 (is (zerop (aref mine 8)) "nothing past SIZE is written")
                 (is (= port2 (local-port a)))
                 (is (ipaddr-equalp host2 (local-host a))))))
           ;; :extract gives just what came
           (send-to b (octets "xyz") 3)
           (let ((got (receive-from a 100 :extract t)))
             (is (equal (text got) "xyz"))
             (is (= (length got) 3))))
      (close a)
      (close b))))

(deftest datagram-ipv4 ()
  (let ((fds (open-fd-count)))
    (datagram-round-trip "127.0.0.1")
    (is (= fds (open-fd-count)) "no descriptor left open")))

(deftest datagram-strings ()
  (let* ((a (make-socket :type :datagram :local-host "127.0.0.1"))
         (b (make-socket :type :datagram :local-host "127.0.0.1"
                         :remote-host "127.0.0.1" :remote-port (local-port a))))
    (unwind-protect
         (progn
           (is (= (send-to b (format nil "caf~C!" (code-char 233)) 4) 5)
               "a string goes as UTF-8: 4 characters, 5 octets")
           (is (equalp (receive-from a 16 :extract t) #(99 97 102 195 169)))
           (send-to b "text" 4)
           (let ((s (make-string 8 :initial-element #\.)))
             (multiple-value-bind (buf n) (receive-from a 8 :buffer s)
               (is (eq buf s))
               (is (= n 4))
               (is (equal s "text....") "one character per octet, the rest untouched"))))
      (close a)
      (close b))))

(deftest datagram-ipv6 ()
  (datagram-round-trip "::1")
  (let ((wild (make-socket :type :datagram :address-family :internet6)))
    (is (equal (ipaddr-to-dotted (local-host wild)) "::") "an :INTERNET6 socket is bound to ::")
    (close wild))
  (let ((a (make-socket :type :datagram :address-family :internet6 :local-host "::1")))
    (unwind-protect
         (progn
           (let ((b (make-socket :type :datagram :remote-host "::1" :remote-port (local-port a))))
             (send-to b "six" 3)
             (multiple-value-bind (buf n host) (receive-from a 10 :extract t)
               (is (equal (text buf) "six"))
               (is (= n 3))
               (is (equal (ipaddr-to-dotted host) "::1")))
             (close b)))
      (close a))))

(deftest datagram-unix ()
  (let* ((path-a (temp-name "dga"))
         (path-b (temp-name "dgb"))
         (a (make-socket :type :datagram :address-family :file :local-filename path-a))
         (b (make-socket :type :datagram :address-family :file :local-filename path-b
                         :remote-filename path-a)))
    (unwind-protect
         (progn
           (is (equal (local-filename a) path-a))
           (is (eq (socket-address-family b) :file))
           (send-to b "over a file" 11)
           (multiple-value-bind (buf n from) (receive-from a 64 :extract t)
             (is (equal (text buf) "over a file"))
             (is (= n 11))
             (is (equal from path-b) "the sender's file name"))
           (send-to a (octets "back") 4 :remote-filename path-b)
           (is (equal (text (receive-from b 64 :extract t)) "back")))
      (close a)
      (close b)
      (ignore-errors (delete-file path-a))
      (ignore-errors (delete-file path-b)))))

(deftest datagram-waits-end ()
  (let ((a (make-socket :type :datagram :local-host "127.0.0.1"))
        (fds (open-fd-count)))
    (is (eq (mp:with-timeout (0.2 :nothing-came) (receive-from a 10)) :nothing-came))
    (let ((b (make-socket :type :datagram :remote-host "127.0.0.1" :remote-port (local-port a))))
      (send-to b "still works" 11)
      (is (equal (text (receive-from a 64 :extract t)) "still works")
          "the socket is usable after an interrupted receive")
      (close b))
    ;; MP:WAIT-FOR-INPUT-AVAILABLE on a datagram socket
    (is (null (mp:wait-for-input-available a :timeout 0.1)))
    (let ((b (make-socket :type :datagram :remote-host "127.0.0.1" :remote-port (local-port a))))
      (send-to b "wake" 4)
      (is (equal (mp:wait-for-input-available (list a) :timeout 5) (list a)))
      (receive-from a 10)
      (close b))
    ;; closing the socket wakes a thread blocked in RECEIVE-FROM with an error
    (let ((reader (spawn "reader" (lambda () (receive-from a 10)))))
      (sleep 0.2)
      (close a)
      (let ((result (join reader :error-ok t)))
        (is (and (eq (first result) :error) (typep (second result) 'socket-error))
            (format nil "~S" result))))
    (is (= (open-fd-count) (1- fds)) "no descriptor left open")))

(deftest datagram-bad-input ()
  (let ((a (make-socket :type :datagram :local-host "127.0.0.1")))
    (signals error (send-to a "no destination" 3))
    (signals error (receive-from a 10 :buffer (make-array 4 :element-type '(unsigned-byte 8))))
    (signals type-error (send-to a (vector 1 2 3) 3 :remote-host "127.0.0.1" :remote-port 9))
    (signals error (send-to a "abc" 10 :remote-host "127.0.0.1" :remote-port 9))
    (signals type-error (receive-from a 4 :buffer (vector 0 0 0 0)))
    (signals host-not-found-error (send-to a "v6" 2 :remote-host "::1" :remote-port 9))
    (let ((e (signals socket-error
               (send-to a (make-array 70000 :element-type '(unsigned-byte 8)) 70000
                        :remote-host "127.0.0.1" :remote-port 9))))
      (when e (is (eq (socket-error-code e) :emsgsize) "too big for one datagram")))
    (close a)
    (is (null (close a)) "closing again is harmless")
    (let ((e (signals socket-error (send-to a "x" 1 :remote-host "127.0.0.1" :remote-port 9))))
      (is (and e (eq (socket-error-code e) :ebadf) (search "(EBADF)" (princ-to-string e)))
          (format nil "a send on the closed socket: EBADF, and the report says so: ~A" e)))))

;;; ------------------------------------------------------------------
;;; Unix-domain stream sockets

(deftest unix-stream-by-file-name ()
  (let* ((path (temp-name "stream"))
         (fds (open-fd-count))
         (passive (make-socket :connect :passive :address-family :file :local-filename path)))
    (unwind-protect
         (progn
           (is (file-exists-p path) "the socket file exists")
           (is (equal (local-filename passive) path))
           (is (eq (socket-address-family passive) :file))
           (is (search path (prin1-to-string passive)))
           (is (eq (identifier-of (lambda () (make-socket :connect :passive :address-family :file
                                                          :local-filename path)))
                   :address-in-use)
               "the file name is taken")
           (let ((c (make-socket :address-family :file :remote-filename path))
                 (s (accept-connection passive)))
             (unwind-protect
                  (progn
                    (is (equal (remote-filename c) path))
                    (is (eq (socket-address-family c) :file))
                    (format c "~S~%" '(over "a unix socket"))
                    (force-output c)
                    (is (equal (read s) '(over "a unix socket")))
                    (format s "~S~%" :ok)
                    (force-output s)
                    (is (eq (read c) :ok)))
               (close c)
               (close s))))
      (close passive))
    (is (not (file-exists-p path)) "closing the passive socket removes its file")
    (is (= fds (open-fd-count)) "no descriptor left open")))

(deftest unix-connect-waits-for-a-full-queue ()
  ;; a listener with backlog 0 whose queue is full: a connect waits (it
  ;; does not fail with EAGAIN), is cut short by mp:with-timeout without a
  ;; leak, and goes through once the server accepts
  (let* ((path (temp-name "full"))
         (passive (make-socket :connect :passive :address-family :file
                               :local-filename path :backlog 0))
         (early (list (make-socket :address-family :file :remote-filename path)))
         (fds (open-fd-count)))
    (unwind-protect
         (progn
           ;; fill the queue: later connects are the ones that must wait
           (loop repeat 3
                 do (let ((c (mp:with-timeout (0.3 nil)
                               (make-socket :address-family :file :remote-filename path))))
                      (if c (push c early) (return))))
           (let ((start (get-internal-real-time)))
             (is (eq (mp:with-timeout (0.4 :timed-out)
                       (make-socket :address-family :file :remote-filename path))
                     :timed-out)
                 "the connect waited until the timeout")
             (is (>= (/ (- (get-internal-real-time) start) internal-time-units-per-second) 0.35)))
           (is (= fds (open-fd-count)) "the abandoned connect left no descriptor")
           ;; a server accepting in a while lets a waiting connect through
           (let* ((acceptor (spawn "acceptor"
                                   (lambda ()
                                     (sleep 0.3)
                                     (loop repeat (1+ (length early))
                                           do (close (accept-connection passive)))
                                     :accepted)))
                  (c (mp:with-timeout (10 nil)
                       (make-socket :address-family :file :remote-filename path))))
             (is c "the connect went through once the queue moved")
             (when c (push c early))
             (is (equal (join acceptor) '(:accepted)))))
      (mapc #'close early)
      (close passive))))

(deftest unix-name-too-long ()
  (let* ((long (format nil "/tmp/~A" (make-string 200 :initial-element #\x)))
         (fds (open-fd-count)))
    (dolist (thunk (list (lambda () (make-socket :connect :passive :address-family :file
                                                 :local-filename long))
                         (lambda () (make-socket :address-family :file :remote-filename long))
                         (lambda () (make-socket :type :datagram :address-family :file
                                                 :local-filename long))))
      (let ((e (signals excl:socket-error (funcall thunk))))
        (when e
          (is (eq (socket-error-code e) :enametoolong))
          (is (search "too long" (princ-to-string e)) (princ-to-string e)))))
    (is (= fds (open-fd-count)) "no descriptor left open")))

;;; ------------------------------------------------------------------
;;; Conditions

(deftest identifiers-from-loopback ()
  ;; connection refused
  (let ((port (closed-port)))
    (is (eq (identifier-of (lambda () (make-socket :remote-host "127.0.0.1" :remote-port port)))
            :connection-refused)))
  ;; address in use
  (let ((p (make-socket :connect :passive :local-host "127.0.0.1")))
    (is (eq (identifier-of (lambda () (make-socket :connect :passive :local-host "127.0.0.1"
                                                   :local-port (local-port p))))
            :address-in-use))
    (close p))
  ;; an address this host does not have (bind only: nothing is sent)
  (is (eq (identifier-of (lambda () (make-socket :connect :passive :local-host "192.0.2.1")))
          :address-not-available))
  (let ((passive (make-socket :connect :passive :local-host "127.0.0.1")))
    ;; connection reset: the peer closes with SO_LINGER 0
    (multiple-value-bind (c s) (connected passive)
      (socket-options s :so-linger 0)
      (close s)
      (is (eq (identifier-of (lambda () (read-line c))) :connection-reset))
      (close c))
    ;; broken pipe: the kernel's write side is shut (under the stream)
    (multiple-value-bind (c s) (connected passive)
      (socket-stream-shutdown (socket-os-fd c) :output)
      (let ((e (handler-case (progn (write-line "x" c) (force-output c) nil)
                 (excl:socket-error (e) e))))
        (is e "writing after the write side is shut fails")
        (when e
          (is (eq (excl:stream-error-identifier e) :broken-pipe))
          (is (eql (excl:stream-error-code e) 32) "EPIPE")
          (is (eq (stream-error-stream e) c))))
      (close c :abort t)
      (close s))
    ;; shutdown: writing after SHUTDOWN :OUTPUT
    (multiple-value-bind (c s) (connected passive)
      (shutdown c :direction :output)
      (is (eq (identifier-of (lambda () (write-line "late" c) (force-output c))) :shutdown))
      (close c)
      (close s))
    ;; connection timed out: a read with SO_RCVTIMEO and nothing to read
    (multiple-value-bind (c s) (connected passive)
      (socket-options c :so-rcvtimeo 0.2)
      (is (eq (identifier-of (lambda () (read-char c))) :connection-timed-out))
      (close c)
      (close s))
    (close passive))
  ;; unknown: an error with no Allegro identifier (file name too long)
  (is (eq (identifier-of (lambda () (make-socket :address-family :file
                                                 :remote-filename (make-string 300 :initial-element #\y))))
          :unknown)))

(deftest identifiers-loopback-cannot-provoke ()
  ;; Unreachable networks, resets by routers and a lack of buffers do not
  ;; happen on loopback; this checks the mapping errno -> identifier that
  ;; every C failure goes through (ECLSOCK::%SIGNAL-SOCKET-ERROR, which C
  ;; calls with the errno keyword).
  (loop for (code errno id class)
          in '((:ehostunreach 113 :host-unreachable host-unreachable-error)
               (:enetunreach 101 :network-unreachable network-unreachable-error)
               (:enetdown 100 :network-down network-unreachable-error)
               (:enetreset 102 :network-reset connection-reset-error)
               (:econnaborted 103 :connection-aborted connection-reset-error)
               (:enobufs 105 :no-buffer-space socket-error)
               (:ehostdown 112 :host-down host-unreachable-error))
        do (let ((e (handler-case (eclsock::%signal-socket-error "connect" code errno "m" "h" 1 nil)
                      (excl:socket-error (e) e))))
             (is (typep e class) (format nil "~S is a ~S" code class))
             (is (typep e 'stream-error))
             (is (eq (excl:stream-error-identifier e) id) (format nil "~S -> ~S" code id))
             (is (eql (excl:stream-error-code e) errno))
             (is (equal (excl:stream-error-action e) "connect")))))

(deftest excl-package ()
  (is (eq 'excl:socket-error 'socket:socket-error) "one class, two names")
  (is (subtypep 'excl:socket-error 'stream-error))
  (let ((exported '()))
    (do-external-symbols (s "EXCL") (push (symbol-name s) exported))
    (is (equal (sort exported #'string<)
               '("SOCKET-ERROR" "STREAM-ERROR-ACTION" "STREAM-ERROR-CODE"
                 "STREAM-ERROR-IDENTIFIER"))
        "EXCL holds just Allegro's socket condition names"))
  (is (eq (find-package "ACL-SOCKET") (find-package "SOCKET")))
  (is (eq (excl:stream-error-identifier (make-condition 'end-of-file :stream *standard-input*))
          :unknown)))

;;; ------------------------------------------------------------------
;;; Options

(deftest nodelay-and-keepalive-really-set ()
  (let ((passive (make-socket :connect :passive :local-host "127.0.0.1"
                              :nodelay t :keepalive t)))
    (unwind-protect
         (progn
           (multiple-value-bind (c s) (connected passive :nodelay t :keepalive t)
             ;; SOCKET-OPTIONS reads with getsockopt
             (is (equal (multiple-value-list (socket-options c :tcp-nodelay :so-keepalive)) '(t t)))
             (is (equal (multiple-value-list (socket-options s :tcp-nodelay :so-keepalive)) '(t t))
                 "accepted sockets get the passive socket's options")
             (socket-control c :nodelay nil)
             (is (equal (multiple-value-list (socket-options c :tcp-nodelay :so-keepalive)) '(nil t))
                 "socket-control changes only what it is given")
             (set-socket-options c :keepalive nil)
             (is (null (socket-options c :so-keepalive)))
             (signals error (socket-control c :output-chunking t))
             (close c)
             (close s))
           (multiple-value-bind (c s) (connected passive)
             (is (equal (multiple-value-list (socket-options c :tcp-nodelay :so-keepalive)) '(t nil))
                 "keepalive off unless asked for; nodelay on by default")
             (close c)
             (close s))
           (multiple-value-bind (c s) (connected passive :nodelay nil)
             (is (equal (multiple-value-list (socket-options c :tcp-nodelay)) '(nil))
                 ":nodelay nil turns Nagle's algorithm back on")
             (close c)
             (close s)))
      (close passive)))
  (let ((passive (make-socket :connect :passive :local-host "127.0.0.1" :nodelay nil)))
    (unwind-protect
         (multiple-value-bind (c s) (connected passive)
           (is (eq (socket-options c :tcp-nodelay) t) "connected: on by default")
           (is (eq (socket-options s :tcp-nodelay) nil)
               "accepted from a passive socket made with :nodelay nil: off")
           (close c)
           (close s))
      (close passive))))

(deftest make-socket-bad-input ()
  (let ((fds (open-fd-count)))
    (signals type-error (make-socket :type :raw))
    (signals type-error (make-socket :connect :sideways))
    (signals type-error (make-socket :format :octets))
    (signals type-error (make-socket :address-family :appletalk))
    (signals type-error (make-socket :connect :passive :backlog -1))
    (signals error (make-socket :remote-port 80))
    (signals error (make-socket :remote-host "127.0.0.1"))
    (signals error (make-socket :address-family :file))
    (signals type-error (make-socket :remote-host 3.5 :remote-port 80))
    (signals type-error (make-socket :remote-host "127.0.0.1" :remote-port 70000))
    (let ((p (make-socket :connect :passive)))
      (is (eql (local-host p) 0) "the default is every IPv4 interface")
      (close p)
      (signals error (accept-connection p))
      (is (null (close p)) "closing again is harmless"))
    (is (= fds (open-fd-count)) "no descriptor left open")))

;;; ------------------------------------------------------------------
;;; MP:WITH-TIMEOUT and MP:WAIT-FOR-INPUT-AVAILABLE

(deftest with-timeout-basics ()
  (is (equal (multiple-value-list (mp:with-timeout (5 :late) (values 1 2))) '(1 2))
      "body's values when in time")
  (is (eq (mp:with-timeout (0.2 :late) (sleep 5) :done) :late))
  (is (eq (mp:with-timeout (nil :late) :no-limit) :no-limit))
  (let ((cleaned nil))
    (is (eq (mp:with-timeout (0.2 :late)
              (unwind-protect (sleep 5) (setf cleaned t)))
            :late))
    (is cleaned "the body's unwind-protect ran"))
  ;; nested: the inner one fires first, the outer body goes on
  (is (equal (mp:with-timeout (3 :outer)
               (list (mp:with-timeout (0.1 :inner) (sleep 5)) :after))
             '(:inner :after)))
  ;; the outer one fires while the inner one waits longer
  (is (eq (mp:with-timeout (0.2 :outer) (mp:with-timeout (5 :inner) (sleep 5))) :outer))
  ;; many bodies that finish just in time: no late interrupt afterwards
  (loop repeat 30 do (mp:with-timeout (0.02 :late) (sleep 0.015)))
  (is (eq (catch :probe (sleep 0.3) :quiet) :quiet) "nothing fires after its body ended")
  (signals type-error (mp:with-timeout (:soon :late) 1))
  ;; in another thread
  (is (equal (join (spawn "timed" (lambda () (mp:with-timeout (0.1 :late) (sleep 5)))))
             '(:late)))
  ;; the timer thread goes away when there is nothing to time
  (flet ((timer-thread-p ()
           (find "mp:with-timeout timer" (mp:all-processes)
                 :key #'mp:process-name :test #'equal)))
    (mp:with-timeout (5 :late) :quick)
    (is (timer-thread-p) "a timer thread serves WITH-TIMEOUT")
    (is (wait-until (lambda () (not (timer-thread-p))) 6) "and leaves when idle")))

(deftest with-timeout-around-socket-calls ()
  (let* ((fds (open-fd-count))
         (passive (make-socket :connect :passive :local-host "127.0.0.1")))
    (unwind-protect
         (progn
           (is (eq (mp:with-timeout (0.2 :no-one) (accept-connection passive)) :no-one))
           (multiple-value-bind (c s) (connected passive)
             (is (eq (mp:with-timeout (0.2 :nothing) (read-line c)) :nothing))
             (write-line "after the timeout" s)
             (force-output s)
             (is (equal (read-line c) "after the timeout") "the stream still works")
             (close c)
             (close s)))
      (close passive))
    (is (= fds (open-fd-count)) "no descriptor left open")))

(deftest with-timeout-many-threads ()
  ;; eight threads, each timing out reads on its own connection while the
  ;; others' timers come and go; every timeout hits only its own thread
  (let* ((fds (open-fd-count))
         (passive (make-socket :connect :passive :local-host "127.0.0.1" :backlog 16)))
    (unwind-protect
         (let* ((pairs (loop repeat 8 collect (multiple-value-list (connected passive))))
                (threads
                  (loop for (c s) in pairs
                        for i from 0
                        collect (let ((c c) (s s) (i i))
                                  (spawn "timed reader"
                                         (lambda ()
                                           (let ((results '()))
                                             (dotimes (k 5)
                                               (push (mp:with-timeout ((if (= k 3) 10 (+ 0.05 (* 0.01 i)))
                                                                       :late)
                                                       (read-line c))
                                                     results)
                                               (when (= k 2)
                                                 (write-line (format nil "line ~D" i) s)
                                                 (force-output s)))
                                             (sleep 0.3)   ; a stray interrupt would land here
                                             (nreverse results))))))))
           (loop for th in threads
                 for i from 0
                 do (is (equal (join th)
                               (list (list :late :late :late (format nil "line ~D" i) :late)))
                        (format nil "thread ~D" i)))
           (loop for (c s) in pairs do (close c) (close s)))
      (close passive))
    (is (= fds (open-fd-count)) "no descriptor left open")))

(defun silent-listener ()
  "A passive socket whose accept queue is full: further connects hang.
Returns it and the connection that fills the queue."
  (let* ((p (make-socket :connect :passive :local-host "127.0.0.1" :backlog 0))
         (filler (make-socket :remote-host "127.0.0.1" :remote-port (local-port p))))
    ;; with backlog 0 Linux queues one connection; make sure of a second
    (values p (list filler
                    (ignore-errors
                     (mp:with-timeout (0.3 nil)
                       (make-socket :remote-host "127.0.0.1" :remote-port (local-port p))))))))

(deftest with-timeout-connect-never-answers ()
  (multiple-value-bind (p fillers) (silent-listener)
    (unwind-protect
         (let ((fds (open-fd-count))
               (start (get-internal-real-time)))
           (is (eq (mp:with-timeout (0.5 :timed-out)
                     (with-pending-connect
                       (make-socket :remote-host "127.0.0.1" :remote-port (local-port p))))
                   :timed-out))
           (let ((elapsed (/ (- (get-internal-real-time) start) internal-time-units-per-second)))
             (is (<= 0.45 elapsed 3) (format nil "timed out after ~,2F s" elapsed)))
           (is (= fds (open-fd-count)) "the interrupted connect closed its descriptor"))
      (mapc (lambda (s) (when s (close s))) fillers)
      (close p))))

(deftest wait-for-input-available ()
  (let ((passive (make-socket :connect :passive :local-host "127.0.0.1")))
    (unwind-protect
         (multiple-value-bind (c1 s1) (connected passive)
           (multiple-value-bind (c2 s2) (connected passive)
             (unwind-protect
                  (progn
                    (is (null (mp:wait-for-input-available (list s1 s2 passive) :timeout 0.1))
                        "nothing to read: NIL after the timeout")
                    (write-line "two" c2)
                    (force-output c2)
                    (is (equal (mp:wait-for-input-available (list s1 s2) :timeout 5) (list s2)))
                    ;; a thread writes later; we wait without a timeout
                    (let ((writer (spawn "writer" (lambda () (sleep 0.2)
                                                    (write-line "one" c1) (force-output c1)))))
                      (read-line s2)
                      (is (equal (mp:wait-for-input-available (list s1 s2)) (list s1)))
                      (join writer))
                    ;; a pending connection makes the passive socket ready
                    (let ((c3 (make-socket :remote-host "127.0.0.1" :remote-port (local-port passive))))
                      (is (equal (mp:wait-for-input-available (list s2 passive) :timeout 5)
                                 (list passive)))
                      (close (accept-connection passive))
                      (close c3))
                    ;; a single stream, and end of file counts as input
                    (close c2)
                    (is (equal (mp:wait-for-input-available s2 :timeout 5) (list s2)))
                    (is (null (mp:wait-for-input-available '()))))
               (mapc #'close (list c1 s1 c2 s2)))))
      (close passive))))

;;; ------------------------------------------------------------------
;;; Allegro code, unchanged

(deftest allegro-program-from-file ()
  (load (srcdir "lisp/allegro-program.lisp") :verbose nil)
  (let ((try-connect (find-symbol "TRY-CONNECT" "ACL-PROGRAM"))
        (echo-once (find-symbol "ECHO-ONCE" "ACL-PROGRAM")))
    (is (equal (funcall echo-once "allegro style") "allegro style"))
    (let ((port (closed-port)))
      (is (equal (funcall try-connect port 5) '(:error :connection-refused 111))))
    (multiple-value-bind (p fillers) (silent-listener)
      (unwind-protect
           (let ((fds (open-fd-count)))
             (is (eq (funcall try-connect (local-port p) 0.5) :timed-out))
             (is (= fds (open-fd-count)) "no descriptor leaked"))
        (mapc (lambda (s) (when s (close s))) fillers)
        (close p)))))

(deftest sum-example-end-to-end ()
  (let ((server-script (srcdir "../examples/sum-server.lisp"))
        (client-script (srcdir "../examples/sum-client.lisp")))
    (multiple-value-bind (out server) (run-lisp server-script "0" "--max" "3")
      (unwind-protect
           (let* ((line (read-line-matching out "sum-server listening on port "))
                  (port (and line (parse-integer line :start 29))))
             (is port "the server printed its port")
             (when port
               (loop for (a b expected) in '(("1" "2" "3") ("1.5" "2.25" "3.75")
                                             ("#c(1 2)" "#c(3 -1)" "#C(4 1)"))
                     do (multiple-value-bind (cout client)
                            (run-lisp client-script (princ-to-string port) a b)
                          (let ((answer (loop for l = (read-line cout nil)
                                              while (and l (search ";;;" l))
                                              finally (return l))))
                            (is (equal answer expected) (format nil "~A + ~A = ~S" a b answer)))
                          (is (eql (process-exit-code client) 0))
                          (close cout)))
               ;; wrong arguments: a usage line and exit code 2
               (multiple-value-bind (sout bad) (run-lisp server-script "0" "3")
                 (is (read-line-matching sout "usage: sum-server.lisp") "a usage line")
                 (is (eql (process-exit-code bad) 2))
                 (close sout))
               ;; a client that finds no server says so and exits 1
               (multiple-value-bind (cout client)
                   (run-lisp client-script (princ-to-string (closed-port)) "1" "2")
                 (is (read-line-matching cout "sum-client: ") "an error message")
                 (is (eql (process-exit-code client) 1))
                 (close cout))
               (is (equal (read-line-matching out "sum-server served")
                          "sum-server served 3 clients, bye"))
               (is (eql (process-exit-code server) 0) "the server stops by itself")))
        (close out)
        (when (eq (ext:external-process-status server) :running)
          (ext:terminate-process server t))))))

;;; ------------------------------------------------------------------
;;; The core's close protocol on this face's objects: passive sockets
;;; (TCP and :FILE) and datagram sockets

(defparameter *kinds*
  (list (cons "passive" (lambda () (make-socket :connect :passive :local-host "127.0.0.1")))
        (cons "passive file" (lambda () (make-socket :connect :passive :address-family :file
                                                     :local-filename (temp-name "owner"))))
        (cons "datagram" (lambda () (make-socket :type :datagram :local-host "127.0.0.1")))
        (cons "datagram file" (lambda () (make-socket :type :datagram :address-family :file
                                                      :local-filename (temp-name "owner-dg")))))
  "Each kind of descriptor-owning object this face makes: name and maker.")

(defun fd-open-p (fd)
  "True when descriptor number FD is open in this process."
  (and (si::file-kind (format nil "/proc/self/fd/~D" fd) nil) t))

(deftest close-protocol-each-kind ()
  (let ((before (open-fd-count)))
    (loop for (name . make) in *kinds*
          do (let* ((s (funcall make))
                    (fd (socket-os-fd s)))
               (is (fd-open-p fd))
               (is (eq (close s) t) (format nil "~A: the first close returns T" name))
               (is (not (fd-open-p fd)) (format nil "~A: its descriptor is closed" name))
               (is (null (socket-os-fd s)) (format nil "~A: no descriptor once closed" name))
               (is (search "closed" (prin1-to-string s)) (format nil "~A prints closed" name))
               ;; the freed number goes to the next socket; closing again
               ;; must leave that one alone
               (let ((next (make-socket :type :datagram :local-host "127.0.0.1")))
                 (is (eql (socket-os-fd next) fd) (format nil "~A: number reused" name))
                 (is (null (close s)) (format nil "~A: the second close returns NIL" name))
                 (is (fd-open-p fd) (format nil "~A: the second close closed nothing" name))
                 (is (close next)))))
    (is (<= (open-fd-count) before) "no descriptor left open")))

(deftest closed-by-many-threads-at-once ()
  ;; eight threads close one object at once: exactly one close returns T
  (dotimes (round 10)
    (loop for (name . make) in *kinds*
          do (let* ((s (funcall make))
                    (fd (socket-os-fd s))
                    (go nil)
                    (closers (loop repeat 8
                                   collect (spawn "closer"
                                                  (lambda ()
                                                    (loop until go do (mp:process-yield))
                                                    (close s))))))
               (setf go t)
               (let ((results (mapcar (lambda (p) (first (join p))) closers)))
                 (is (= 1 (count t results)) (format nil "~A: one close was it: ~S" name results))
                 (is (= 7 (count nil results)) (format nil "~A: the others returned NIL" name)))
               (is (not (fd-open-p fd)) (format nil "~A: its descriptor is closed" name))))))

(deftest passive-closed-while-another-thread-accepts ()
  (let* ((before (open-fd-count))
         (passive (make-socket :connect :passive :local-host "127.0.0.1"))
         (acceptor (spawn "accept" (lambda () (accept-connection passive))))
         (waiter (spawn "wait" (lambda () (mp:wait-for-input-available passive :timeout 30)))))
    (sleep 0.2)
    (is (mp:process-active-p acceptor) "it waits for a connection")
    (close passive)
    (let ((r (join acceptor :error-ok t)))
      (is (and (eq (first r) :error) (typep (second r) 'excl:socket-error))
          (format nil "the acceptor woke with an error: ~S" r)))
    (is (equal (join waiter) (list (list passive)))
        "MP:WAIT-FOR-INPUT-AVAILABLE ends: a closed socket is ready (reading fails at once)")
    (is (= (open-fd-count) before) "no descriptor left open")))

(deftest dropped-sockets-are-finalized ()
  ;; the core's one finalizer closes dropped passive and datagram sockets
  (let* ((table (fd-table)) (before (length table)))
    (drop-from-thread (lambda ()
                        (dotimes (i 10)
                          (make-socket :connect :passive :local-host "127.0.0.1")
                          (make-socket :type :datagram :local-host "127.0.0.1"))))
    (is (>= (open-fd-count) (+ before 10)) "dropped sockets hold descriptors until collected")
    (let ((left (finalize-dropped table)))   ; nearly all: FINALIZE-DROPPED says why
      (is (<= left 5) (format nil "at least 15 of 20 dropped sockets finalized (~D left)" left)))))
