;;;; test-port.lisp - the PORT package: CLOCC PORT's net, process and
;;;; condition names, their failure cases, and a PORT program loaded from a
;;;; file with (in-package :port).

(eval-when (:compile-toplevel :load-toplevel :execute)
  (require :sock))

(defpackage "TEST-PORT" (:use "CL" "HARNESS"))
(in-package "TEST-PORT")

;;; PORT's names clash with SOCKET's (SOCKET-ACCEPT, SOCKET-SERVER ...), so
;;; this file says port: everywhere instead of using both packages.

(defun loopback-server (&optional (port 0))
  (port:open-socket-server port :interface "127.0.0.1"))

(defun server-port (server)
  (nth-value 1 (port:socket-server-host/port server)))

(defun elapsed (start)
  (/ (- (get-internal-real-time) start) internal-time-units-per-second))

(defun network-p (c) (and (typep c 'port:network) t))

;;; ------------------------------------------------------------------
;;; The package

(defparameter *port-names*
  '("RESOLVE-HOST-IPADDR" "IPADDR-TO-DOTTED" "DOTTED-TO-IPADDR" "IPADDR-CLOSURE"
    "HOSTENT" "HOSTENT-NAME" "HOSTENT-ALIASES" "HOSTENT-ADDR-LIST" "HOSTENT-ADDR-TYPE"
    "SOCKET" "OPEN-SOCKET" "SOCKET-HOST/PORT" "SOCKET-STRING" "SET-SOCKET-STREAM-FORMAT"
    "SOCKET-SERVER" "OPEN-SOCKET-SERVER" "SOCKET-ACCEPT" "SOCKET-SERVER-CLOSE"
    "SOCKET-SERVER-HOST/PORT" "SOCKET-SERVICE-PORT" "SERVENT" "SERVENT-NAME"
    "SERVENT-ALIASES" "SERVENT-PORT" "SERVENT-PROTO" "SERVENT-P"
    "NETWORK" "NET-PROC" "NET-HOST" "NET-PORT" "NET-MESG" "NET-ARGS"
    "TIMEOUT" "LOGIN" "NET-PATH"
    "CODE" "CODE-PROC" "CODE-MESG" "CODE-ARGS" "CASE-ERROR" "NOT-IMPLEMENTED"
    "+THREADS-P+" "MAKE-PROCESS" "PROCESS-WAIT" "PROCESS-WAIT-WITH-TIMEOUT"
    "WITH-TIMEOUT" "Y-OR-N-P-TIMEOUT" "MAYBE-Y-OR-N-P" "WITHOUT-SCHEDULING"
    "PROCESS-YIELD" "KILL-PROCESS" "INTERRUPT-PROCESS" "RESTART-PROCESS"
    "PROCESSP" "PROCESS-NAME" "PROCESS-ACTIVE-P" "PROCESS-WHOSTATE"
    "CURRENT-PROCESS" "ALL-PROCESSES" "SHOW-PROCESSES"
    "MAKE-LOCK" "GET-LOCK" "GIVEUP-LOCK" "WITH-LOCK"))

(defun defined-p (symbol)
  (or (fboundp symbol) (boundp symbol) (find-class symbol nil)
      (si::get-sysprop symbol 'si::deftype-definition)))

(deftest package-shape ()
  (let ((port (find-package "PORT")))
    (is (eq port (find-package "ORG.CONS.CLOCC/SDS/PORT")) "nickname")
    (is (equal (package-use-list port) (list (find-package "CL"))) "uses only CL")
    (let ((exported '()))
      (do-external-symbols (s port) (push (symbol-name s) exported))
      (is (null (set-difference *port-names* exported :test #'string=)) "exports PORT's names")
      (is (null (set-difference exported *port-names* :test #'string=)) "and nothing else"))
    (dolist (name *port-names*)
      (let ((s (find-symbol name port)))
        (is (defined-p s) (format nil "~A is defined" name))
        (is (or (documentation s 'function) (documentation s 'type)
                (documentation s 'variable) (documentation s 'structure))
            (format nil "~A has a docstring" name))))))

;;; ------------------------------------------------------------------
;;; Addresses

(deftest dotted-and-ipaddr ()
  (is (= (port:dotted-to-ipaddr "127.0.0.1") 2130706433))
  (is (= (port:dotted-to-ipaddr "255.255.255.255") #xffffffff))
  (is (= (port:dotted-to-ipaddr "0.0.0.0") 0))
  (is (string= (port:ipaddr-to-dotted 2130706433) "127.0.0.1"))
  (is (string= (port:ipaddr-to-dotted #x0a000102) "10.0.1.2"))
  (let ((dotted (port:ipaddr-to-dotted 1)))
    (is (and (typep dotted 'simple-string) (string= dotted "0.0.0.1")) (format nil "~S" dotted)))
  (let ((state (make-random-state t)))
    (dotimes (i 200)
      (let ((n (random (expt 2 32) state)))
        (is (= n (port:dotted-to-ipaddr (port:ipaddr-to-dotted n))) "round trip")))))

(deftest dotted-junk ()
  (dolist (junk `("1.2.3" "300.1.1.1" "1.2.3.4.5" "" "a.b.c.d" " 1.2.3.4" "1.2.3.4 "
                  "1..2.3" "-1.2.3.4" "+1.2.3.4" "01.2.3.4" "1.2.3.256" "1.2.3.4." "localhost"
                  ,(format nil "1.2.3.4~C" (code-char 0)) "１.2.3.4"))
    (let ((c (signals parse-error (port:dotted-to-ipaddr junk))))
      (when c
        (is (search (prin1-to-string junk) (princ-to-string c))
            (format nil "message quotes ~S" junk)))))
  (signals type-error (port:dotted-to-ipaddr 12))
  (signals type-error (port:ipaddr-to-dotted -1))
  (signals type-error (port:ipaddr-to-dotted (expt 2 32)))
  (signals type-error (port:ipaddr-to-dotted "1.2.3.4")))

(deftest resolve-names-and-addresses ()
  (let ((he (port:resolve-host-ipaddr "localhost")))
    (is (typep he 'port:hostent))
    (is (string-equal (port:hostent-name he) "localhost"))
    (is (member "127.0.0.1" (port:hostent-addr-list he) :test #'string=))
    (is (= (port:hostent-addr-type he) 2))
    (is (listp (port:hostent-aliases he))))
  ;; an address gives back the canonical name (the reverse lookup's)
  (let ((he (port:resolve-host-ipaddr "127.0.0.1")))
    (is (string-equal (port:hostent-name he) "localhost") "reverse lookup")
    (is (equal (port:hostent-addr-list he) '("127.0.0.1")))
    (is (= (port:hostent-addr-type he) 2)))
  (is (equalp (port:resolve-host-ipaddr 2130706433)
              (port:resolve-host-ipaddr "127.0.0.1")) "integer = dotted")
  (let ((he (port:resolve-host-ipaddr "::1")))
    (is (= (port:hostent-addr-type he) 10))
    (is (equal (port:hostent-addr-list he) '("::1"))))
  ;; an address nobody has a name for keeps the address as its name
  (let ((he (port:resolve-host-ipaddr "192.0.2.77")))  ; TEST-NET-1: never named
    (is (string= (port:hostent-name he) "192.0.2.77")))
  (signals type-error (port:resolve-host-ipaddr 'localhost))
  (signals type-error (port:resolve-host-ipaddr -1)))

(deftest resolve-unknown-host ()
  (dolist (host '("no-such-host.invalid" ""))
    (let ((c (signals port:network (port:resolve-host-ipaddr host))))
      (when c
        (is (typep c 'socket:host-not-found-error) "also the core's class")
        (is (typep c 'socket:socket-error))
        (is (eq (port:net-proc c) 'port:resolve-host-ipaddr))
        (is (string= (port:net-host c) host))
        (is (search "RESOLVE-HOST-IPADDR" (princ-to-string c)))))))

(deftest ipaddr-closure ()
  (multiple-value-bind (by-hostent by-key) (port:ipaddr-closure "localhost")
    (is (hash-table-p by-hostent))
    (is (eq (hash-table-test by-key) 'equalp))
    (let ((he (gethash "localhost" by-key)))
      (is (typep he 'port:hostent))
      (is (equalp he (gethash "127.0.0.1" by-key)) "the address leads to the same entry")
      (is (member "localhost" (gethash he by-hostent) :test #'equalp))
      (is (member "127.0.0.1" (gethash he by-hostent) :test #'equalp))))
  (signals port:network (port:ipaddr-closure "no-such-host.invalid")))

;;; ------------------------------------------------------------------
;;; Sockets

(deftest open-accept-text ()
  (let* ((server (loopback-server))
         (port (server-port server)))
    (unwind-protect
         (progn
           (is (typep server 'port:socket-server))
           (is (equal (multiple-value-list (port:socket-server-host/port server))
                      (list "127.0.0.1" port)))
           (let ((th (spawn "server"
                            (lambda ()
                              (with-open-stream (s (port:socket-accept server))
                                (list (typep s 'port:socket)
                                      (stream-element-type s)
                                      (read-line s)
                                      (progn (write-line "pong" s) (finish-output s))
                                      (multiple-value-list (port:socket-host/port s))))))))
             (with-open-stream (c (port:open-socket "localhost" port))
               (is (typep c 'port:socket))
               (is (not (typep (make-string-output-stream) 'port:socket)))
               (is (and (input-stream-p c) (output-stream-p c)))
               (write-line "ping" c)
               (finish-output c)
               (is (equal (read-line c) "pong"))
               (multiple-value-bind (rhost rport lhost lport) (port:socket-host/port c)
                 (is (equal (list rhost rport lhost) (list "127.0.0.1" port "127.0.0.1")))
                 (is (typep lport '(integer 1 65535)))
                 (let ((result (first (join th))))
                   (is (eq (first result) t) "accepted stream is a PORT:SOCKET")
                   (is (equal (third result) "ping"))
                   (is (equal (fifth result) (list "127.0.0.1" lport "127.0.0.1" port))
                       "server side sees the mirror image"))
                 (is (string= (port:socket-string c)
                              (format nil "#<SOCKET [local: 127.0.0.1:~D] [peer: \"127.0.0.1\":~D]>"
                                      lport port)))))))
      (port:socket-server-close server))))

(deftest open-accept-binary-and-integer-host ()
  (let* ((server (loopback-server))
         (port (server-port server))
         (th (spawn "server"
                    (lambda ()
                      (with-open-stream (s (port:socket-accept server :bin t :wait 10))
                        (list (stream-element-type s)
                              (loop repeat 4 collect (read-byte s))))))))
    (unwind-protect
         (with-open-stream (c (port:open-socket (port:dotted-to-ipaddr "127.0.0.1") port t))
           (is (equal (stream-element-type c) '(unsigned-byte 8)))
           (dolist (b '(0 1 254 255)) (write-byte b c))
           (finish-output c)
           (is (equal (join th) '(((unsigned-byte 8) (0 1 254 255))))))
      (port:socket-server-close server))))

(deftest accept-wait-returns-nil ()
  (let ((server (loopback-server)))
    (unwind-protect
         (let ((start (get-internal-real-time)))
           (is (null (port:socket-accept server :wait 0.3)) "NIL after the wait")
           (let ((took (elapsed start)))
             (is (<= 0.25 took 3) (format nil "waited ~,2F s" took)))
           (setf start (get-internal-real-time))
           (is (null (port:socket-accept server :wait 0)) "WAIT 0 polls")
           (is (< (elapsed start) 1))
           ;; a connection that is there is returned even with a short wait
           (with-open-stream (c (port:open-socket "127.0.0.1" (server-port server)))
             (declare (ignorable c))
             (let ((s (port:socket-accept server :wait 5)))
               (is (typep s 'port:socket))
               (when s (close s))))
           (signals type-error (port:socket-accept server :wait -1)))
      (port:socket-server-close server))
    (port:socket-server-close server)   ; twice: harmless
    (signals error (port:socket-accept server :wait 0))))

(deftest refused-connection ()
  (let* ((server (loopback-server))
         (port (server-port server)))
    (port:socket-server-close server)
    (let ((c (signals port:network (port:open-socket "127.0.0.1" port))))
      (when c
        (is (typep c 'socket:connection-refused-error) "still the core's class")
        (is (typep c 'ext:os-error))
        (is (eq (socket:socket-error-code c) :econnrefused))
        (is (eq (port:net-proc c) 'port:open-socket))
        (is (string= (port:net-host c) "127.0.0.1"))
        (is (eql (port:net-port c) port))
        (is (search "OPEN-SOCKET] connect 127.0.0.1" (princ-to-string c)))))
    ;; handlers written for SOCKET catch it too
    (is (eq :caught (handler-case (port:open-socket "127.0.0.1" port)
                      (socket:socket-error () :caught))))))

(define-condition later-core-error (socket:connection-reset-error) ()
  (:documentation "Stands for a SOCKET-ERROR subclass the core might add later."))

(deftest any-core-class-becomes-network ()
  ;; every class of the core, and one it does not have yet, comes out of a
  ;; PORT call as PORT:NETWORK and as itself
  (dolist (class '(socket:socket-error socket:connection-reset-error
                   socket:socket-timeout-error later-core-error))
    (let ((c (handler-case
                 (eclsock::with-port-errors (port:open-socket "h" 7)
                   (error class :code :eio :syscall "test" :message "test"))
               (error (e) e))))
      (is (typep c 'port:network) (format nil "~S is a NETWORK" class))
      (is (typep c class) (format nil "~S is still itself" class))
      (is (eq (port:net-proc c) 'port:open-socket))
      (is (equal (port:net-host c) "h"))
      (is (eql (port:net-port c) 7))
      (is (eq (socket:socket-error-code c) :eio))))
  (is (typep (handler-case (eclsock::with-port-errors (port:open-socket)
                             (error 'socket:socket-timeout-error :code :etimedout))
               (error (e) e))
             'port:timeout)
      "a timeout is a PORT:TIMEOUT"))

(deftest unknown-host-connection ()
  (let ((c (signals port:network (port:open-socket "no-such-host.invalid" 80))))
    (when c
      (is (typep c 'socket:host-not-found-error))
      (is (string= (port:net-host c) "no-such-host.invalid"))))
  (signals type-error (port:open-socket "127.0.0.1" 70000))
  (signals type-error (port:open-socket :localhost 80)))

(deftest server-address-in-use ()
  (let* ((server (loopback-server))
         (port (server-port server)))
    (unwind-protect
         (let ((c (signals port:network (loopback-server port))))
           (when c
             (is (typep c 'socket:address-in-use-error))
             (is (eq (port:net-proc c) 'port:open-socket-server))))
      (port:socket-server-close server))))

(deftest default-interface-is-port-s ()
  ;; PORT binds all interfaces; *PORT-SERVER-INTERFACE* confines it
  (let ((eclsock::*port-server-interface* "127.0.0.1"))
    (let ((server (port:open-socket-server)))
      (unwind-protect
           (is (equal (port:socket-server-host/port server) "127.0.0.1"))
        (port:socket-server-close server))))
  (is (equal eclsock::*port-server-interface* "0.0.0.0")))

(deftest stream-format ()
  (let* ((server (loopback-server))
         (th (spawn "server"
                    (lambda ()
                      (with-open-stream (s (port:socket-accept server :wait 10))
                        (let ((b (read-byte s)))
                          (port:set-socket-stream-format s :text)
                          (list b (read-line s))))))))
    (unwind-protect
         (with-open-stream (c (port:open-socket "127.0.0.1" (server-port server)))
           (is (eq (port:set-socket-stream-format c :binary) :binary))
           (is (equal (stream-element-type c) '(unsigned-byte 8)))
           (write-byte 42 c)
           (port:set-socket-stream-format c 'character)
           (is (eq (stream-element-type c) 'character))
           (write-line "text again" c)
           (finish-output c)
           (is (equal (join th) '((42 "text again"))))
           (signals type-error (port:set-socket-stream-format c :sideways)))
      (port:socket-server-close server)))
  (signals type-error (port:set-socket-stream-format (make-string-output-stream) :binary)))

(deftest service-port ()
  (let ((http (port:socket-service-port "http")))
    (is (port:servent-p http))
    (is (typep http 'port:servent))
    (is (= (port:servent-port http) 80))
    (is (string= (port:servent-name http) "http"))
    (is (string= (port:servent-proto http) "tcp"))
    (is (member "www" (port:servent-aliases http) :test #'string-equal))
    (is (equalp http (port:socket-service-port "WWW")) "by alias, any case")
    (is (equalp http (port:socket-service-port 80)) "by number"))
  (let ((echo (port:socket-service-port "echo" "udp")))
    (is (= (port:servent-port echo) 7))
    (is (string= (port:servent-proto echo) "udp")))
  (let ((all (port:socket-service-port)))
    (is (> (length all) 10))
    (is (every #'port:servent-p all))
    (is (find "http" all :key #'port:servent-name :test #'string=)))
  (let ((c (signals error (port:socket-service-port "no-such-service"))))
    (when c (is (search "no-such-service" (princ-to-string c)))))
  (signals error (port:socket-service-port "http" "no-such-proto")))

(deftest no-descriptor-leaks ()
  (let ((before (open-fd-count)))
    (dotimes (i 30)
      (let* ((server (loopback-server))
             (port (server-port server)))
        (with-open-stream (c (port:open-socket "127.0.0.1" port))
          (let ((s (port:socket-accept server :wait 5)))
            (write-line "x" c) (finish-output c)
            (read-line s)
            (close s)))
        (port:socket-accept server :wait 0)
        (port:socket-server-close server)
        (handler-case (port:open-socket "127.0.0.1" port) (port:network () nil))))
    (is (<= (open-fd-count) before) (format nil "~D fds before, ~D after" before (open-fd-count)))))

(deftest unexported-helpers ()
  ;; CLOCC's internal WAIT-FOR-STREAM and OPEN-UNIX-SOCKET, which PORT
  ;; code calls with port::
  (let ((server (loopback-server)))
    (unwind-protect
         (with-open-stream (c (port:open-socket "127.0.0.1" (server-port server)))
           (with-open-stream (s (port:socket-accept server :wait 5))
             (let ((start (get-internal-real-time)))
               (is (null (port::wait-for-stream s 0.3)) "NIL on timeout")
               (is (<= 0.25 (elapsed start) 3)))
             (write-line "x" c)
             (finish-output c)
             (is (eq (port::wait-for-stream s 5) :input))
             (is (equal (read-line s) "x"))
             (close c)
             (is (eq (port::wait-for-stream s 5) :eof))))
      (port:socket-server-close server)))
  (let* ((path (format nil "~A/port-unix.sock" (or (ext:getenv "TEST_BUILDDIR") "/tmp")))
         (server (progn (when (probe-file path) (delete-file path))
                        ;; the core's Unix listener, under a CLISP server object
                        (eclsock::make-server (eclsock::%listen-unix path 1)))))
    (unwind-protect
         (let ((th (spawn "unix server"
                          (lambda ()
                            (with-open-stream (s (socket:socket-accept server :timeout 10))
                              (read-line s))))))
           (with-open-stream (c (port::open-unix-socket path))
             (write-line "over unix" c)
             (finish-output c))
           (let ((result (join th)))
             (is (equal (first result) "over unix") (format nil "server read ~S" result))))
      (socket:socket-server-close server)
      (when (probe-file path) (delete-file path))))
  (signals port:network (port::open-unix-socket "/nonexistent/ecl-sock.sock"))
  (signals port:not-implemented (port::open-unix-socket "/tmp/x.sock" :kind :datagram)))

;;; ------------------------------------------------------------------
;;; Conditions

(deftest condition-classes ()
  (let ((*package* (find-package "TEST-PORT")))
    (condition-checks)))

(defun condition-checks ()
  (let ((c (make-condition 'port:network :proc 'fetch :host "example.org" :port 80
                                         :mesg "gave up after ~D tries" :args '(3))))
    (is (typep c 'error))
    (is (string= (princ-to-string c) "[FETCH] example.org:80 gave up after 3 tries"))
    (is (equal (list (port:net-proc c) (port:net-host c) (port:net-port c)
                     (port:net-mesg c) (port:net-args c))
               '(fetch "example.org" 80 "gave up after ~D tries" (3)))))
  (let ((c (make-condition 'port:timeout :proc 'fetch :host "h" :port 1 :time 5)))
    (is (typep c 'port:network))
    (is (search "[timeout 5 sec]" (princ-to-string c))))
  (is (subtypep 'port:login 'port:network))
  (is (subtypep 'port:net-path 'port:network))
  (is (subtypep 'port:case-error 'port:code))
  (is (subtypep 'port:not-implemented 'port:code))
  (is (subtypep 'port:code 'error))
  (let ((c (make-condition 'port:not-implemented :proc 'frob)))
    (is (eq (port:code-proc c) 'frob))
    (is (search (lisp-implementation-type) (princ-to-string c))))
  (let ((c (make-condition 'port:case-error :proc 'dispatch :args '(x 3 :a :b))))
    (is (string= (princ-to-string c) "[DISPATCH] `X' evaluated to `3', not one of [`:A' `:B']")))
  (let ((c (make-condition 'port:code :proc 'p :mesg "m ~A" :args '(1))))
    (is (string= (princ-to-string c) "[P] m 1"))
    (is (equal (port:code-mesg c) "m ~A"))
    (is (equal (port:code-args c) '(1)))))

;;; ------------------------------------------------------------------
;;; Processes

(deftest process-basics ()
  (is (eq port:+threads-p+ t))
  (let* ((box (list nil))
         (p (port:make-process "worker" (lambda (a b) (setf (car box) (list a b (port:current-process))))
                               1 2)))
    (is (port:processp p))
    (is (not (port:processp "worker")))
    (is (equal (port:process-name p) "worker"))
    (mp:process-join p)
    (is (equal (butlast (car box)) '(1 2)))
    (is (eq (third (car box)) p) "CURRENT-PROCESS inside is the process")
    ;; ECL marks a thread inactive a moment after PROCESS-JOIN returns
    (port:process-wait-with-timeout 5 "exit" (lambda () (not (port:process-active-p p))))
    (is (not (port:process-active-p p)))
    (is (equal (port:process-whostate p) "Done")))
  (is (member (port:current-process) (port:all-processes)))
  (port:process-yield))

(deftest process-wait-and-whostate ()
  (let* ((flag nil)
         (p (port:make-process "waiter"
                               (lambda () (port:process-wait "Waiting for flag" (lambda () flag))
                                 :woke))))
    (sleep 0.2)
    (is (port:process-active-p p))
    (is (equal (port:process-whostate p) "Waiting for flag"))
    (let ((out (with-output-to-string (s) (port:show-processes :stream s))))
      (is (search "waiter" out))
      (is (search "Waiting for flag" out))
      (is (search "Whostate" out)))
    (setf flag t)
    (is (eq (mp:process-join p) :woke))
    (port:process-wait-with-timeout 5 "exit" (lambda () (not (port:process-active-p p))))
    (is (not (port:process-active-p p)))))

(deftest process-wait-with-timeout ()
  (let ((start (get-internal-real-time)))
    (is (null (port:process-wait-with-timeout 0.3 "never" (constantly nil))))
    (is (<= 0.25 (elapsed start) 3)))
  (is (eq t (port:process-wait-with-timeout 5 "now" #'identity t)))
  (let ((x 0))
    (port:make-process "setter" (lambda () (sleep 0.1) (setf x 1)))
    (is (eq t (port:process-wait-with-timeout 5 "x" (lambda (y) (= x y)) 1)))))

(deftest kill-and-interrupt ()
  (let* ((seen nil)
         (p (port:make-process "sleeper" (lambda () (sleep 30)))))
    (sleep 0.1)
    (port:interrupt-process p (lambda (tag) (setf seen (list tag (port:current-process)))) :hi)
    (port:process-wait-with-timeout 5 "seen" (lambda () seen))
    (is (equal seen (list :hi p)) "the function ran inside the process")
    (is (port:process-active-p p) "and the process carried on")
    (let ((start (get-internal-real-time)))
      (port:kill-process p)
      (port:process-wait-with-timeout 5 "dead" (lambda () (not (port:process-active-p p))))
      (is (not (port:process-active-p p)))
      (is (< (elapsed start) 5)))))

(deftest restart-process ()
  (let* ((starts 0)
         (p (port:make-process "restartable"
                               (lambda (step) (incf starts step) (sleep 30))
                               1)))
    (port:process-wait-with-timeout 5 "start" (lambda () (= starts 1)))
    (port:restart-process p)
    (port:process-wait-with-timeout 5 "restart" (lambda () (= starts 2)))
    (is (= starts 2) "the function ran again with its arguments")
    (is (port:process-active-p p))
    (port:kill-process p))
  (let* ((foreign (mp:process-run-function "foreign" (lambda () (sleep 30))))
         (c (signals port:not-implemented (port:restart-process foreign))))
    (when c
      (is (search "MAKE-PROCESS" (princ-to-string c)))
      (is (eq (port:code-proc c) 'port:restart-process)))
    (mp:process-kill foreign)))

(deftest with-timeout-cases ()
  (is (equal (multiple-value-list (port:with-timeout (5 :late) (values 1 2))) '(1 2))
      "body in time: its values")
  (let ((start (get-internal-real-time)))
    (is (eq (port:with-timeout (0.3 :late) (sleep 10) :early) :late))
    (is (< (elapsed start) 3)))
  (is (eq (port:with-timeout (nil :late) :body) :body) "NIL: no limit")
  ;; a blocking accept is cut short, and the server still works after
  (let ((server (loopback-server)))
    (unwind-protect
         (progn
           (is (eq (port:with-timeout (0.3 :late) (port:socket-accept server)) :late))
           (with-open-stream (c (port:open-socket "127.0.0.1" (server-port server)))
             (declare (ignorable c))
             (let ((s (port:socket-accept server :wait 5)))
               (is s "accept works after the interrupted one")
               (when s (close s)))))
      (port:socket-server-close server)))
  ;; a body that finishes at once costs no waiting
  (let ((start (get-internal-real-time)))
    (dotimes (i 50) (port:with-timeout (5 :late) :now))
    (is (< (elapsed start) 1) (format nil "50 quick bodies took ~,2F s" (elapsed start))))
  ;; and no timer thread is left behind (it leaves after 2 s idle)
  (flet ((timer-left-p ()
           (notany (lambda (p) (search "with-timeout" (princ-to-string (mp:process-name p))))
                   (mp:all-processes))))
    (loop repeat 50 until (timer-left-p) do (sleep 0.1))
    (is (timer-left-p) "the timer thread left")))

(deftest y-or-n-p-variants ()
  (let ((*query-io* (make-two-way-stream (make-string-input-stream (format nil "y~%"))
                                         (make-broadcast-stream))))
    (is (eq t (port:y-or-n-p-timeout 5 nil "Continue?"))))
  ;; no answer ever comes: a socket that is never written to
  (let ((server (loopback-server)))
    (unwind-protect
         (with-open-stream (c (port:open-socket "127.0.0.1" (server-port server)))
           (let ((out (make-string-output-stream)))
             (let ((*query-io* (make-two-way-stream c out)))
               (is (eq :default (port:y-or-n-p-timeout 0.3 :default "Continue?"))))
             (is (search "[Timed out] YES" (get-output-stream-string out)))))
      (port:socket-server-close server)))
  (is (eq t (port:maybe-y-or-n-p t)))
  (is (null (port:maybe-y-or-n-p nil)))
  (let ((*query-io* (make-two-way-stream (make-string-input-stream (format nil "n~%"))
                                         (make-broadcast-stream))))
    (is (null (port:maybe-y-or-n-p :ask "Really?")))))

(deftest locks ()
  (let* ((lock (port:make-lock :name "counter"))
         (count 0)
         (workers (loop for i below 4
                        collect (port:make-process
                                 (format nil "adder ~D" i)
                                 (lambda ()
                                   (dotimes (j 2000)
                                     (if (evenp j)
                                         (port:with-lock (lock) (incf count))
                                         (progn (port:get-lock lock)
                                                (incf count)
                                                (port:giveup-lock lock)))))))))
    (mapc #'mp:process-join workers)
    (is (= count 8000)))
  (is (equal (multiple-value-list (port:without-scheduling (values 1 2))) '(1 2)))
  (is (eq :nested (port:without-scheduling (port:without-scheduling :nested)))))

;;; ------------------------------------------------------------------
;;; A PORT program, loaded from a file as a PORT user would

(defparameter *program* "
;; An echo service written against CLOCC PORT only.
(defun echo-serve (server clients)
  (loop repeat clients
        for sock = (socket-accept server :wait 10)
        while sock
        collect (make-process \"echo\"
                              (lambda (s)
                                (with-open-stream (s s)
                                  (loop for line = (read-line s nil)
                                        while line
                                        do (write-line (string-upcase line) s)
                                           (finish-output s))
                                  (multiple-value-list (socket-host/port s))))
                              sock)))

(defun echo-run (lines)
  (let* ((server (open-socket-server))
         (port (nth-value 1 (socket-server-host/port server)))
         (result nil)
         (done nil)
         (worker (make-process \"acceptor\"
                               (lambda () (setf result (echo-serve server 1) done t)))))
    (declare (ignorable worker))
    (unwind-protect
         (with-open-stream (sock (open-socket (hostent-name (resolve-host-ipaddr \"127.0.0.1\"))
                                              port))
           (list (loop for line in lines
                       do (write-line line sock) (finish-output sock)
                       collect (read-line sock))
                 (socket-string sock)
                 (progn (close sock)
                        (process-wait-with-timeout 10 \"acceptor\" (lambda () done))
                        result)))
      (socket-server-close server))))
")

(deftest port-program-from-file ()
  (let ((file (format nil "~A/port-program.lisp" (or (ext:getenv "TEST_BUILDDIR") "/tmp"))))
    (with-open-file (out file :direction :output :if-exists :supersede)
      (write-string *program* out))
    (let ((*package* (find-package "PORT")))
      (load file :verbose nil))
    ;; The program's own names are in PORT; it binds what PORT binds, kept
    ;; on loopback here by the ecl-sock knob (the code is unchanged).
    (let* ((run (find-symbol "ECHO-RUN" "PORT"))
           (result (let ((eclsock::*port-server-interface* "127.0.0.1"))
                     (funcall run '("hello" "port")))))
      (is (equal (first result) '("HELLO" "PORT")))
      (is (search "[peer: \"127.0.0.1\":" (second result)))
      (let ((worker (first (third result))))
        (is (port:processp worker))
        (when (port:processp worker)
          (let ((addresses (mp:process-join worker)))
            (is (equal (first addresses) "127.0.0.1"))
            (is (equal (third addresses) "127.0.0.1"))))))
    (dolist (name '("ECHO-RUN" "ECHO-SERVE"))
      (unintern (find-symbol name "PORT") "PORT"))))

;;; ------------------------------------------------------------------
;;; PORT's servers are the core's: its close protocol and finalizer

(deftest server-closed-while-another-thread-accepts ()
  (let* ((before (open-fd-count))
         (server (loopback-server))
         (acceptor (spawn "accept" (lambda () (port:socket-accept server)))))
    (sleep 0.2)
    (is (mp:process-active-p acceptor) "it waits for a connection")
    (port:socket-server-close server)
    (let ((r (join acceptor :error-ok t)))
      (is (and (eq (first r) :error) (network-p (second r))
               (eq (socket:socket-error-code (second r)) :ebadf))
          (format nil "the acceptor woke with PORT:NETWORK, code :EBADF: ~S" r)))
    (is (null (port:socket-server-close server)) "closing again is harmless")
    (is (<= (open-fd-count) before) "no descriptor left open")))

(deftest dropped-servers-are-finalized ()
  (let ((table (fd-table)))
    (drop-from-thread (lambda () (dotimes (i 20) (loopback-server))))
    (let ((left (finalize-dropped table)))   ; nearly all: FINALIZE-DROPPED says why
      (is (<= left 5) (format nil "at least 15 of 20 dropped servers finalized (~D left)" left)))))
