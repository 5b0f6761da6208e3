;;;; port.lisp - the PORT package: CLOCC PORT's network and process names.
;;;;
;;;; Code written against CLOCC's PORT (net.lisp, proc.lisp and the
;;;; conditions of ext.lisp) runs unchanged after (require :sock).  The
;;;; names are PORT's, with PORT's lambda lists and values; underneath they
;;;; are ecl-sock's streams and servers and ECL's MP threads.
;;;;
;;;; The conditions and structures are defined in PORT itself (so they
;;;; print as a PORT user expects); everything else is written in ECLSOCK,
;;;; naming the PORT symbols with their prefix, so that no helper of ours
;;;; lands in PORT where a user's (in-package :port) file could clobber it.
;;;;
;;;; Errors: an OS failure inside a PORT call (refused connection, unknown
;;;; host, reset ...) is re-signalled as a class that is both PORT:NETWORK
;;;; and the core's SOCKET-ERROR subclass, so PORT handlers and SOCKET
;;;; handlers both catch it.  What cannot mean anything on ECL signals
;;;; PORT:NOT-IMPLEMENTED with the reason.

;;; ------------------------------------------------------------------
;;; Conditions and structures, in PORT

(in-package "PORT")

(define-condition code (error)
  ((proc :initarg :proc :initform nil :reader code-proc)
   (mesg :initarg :mesg :initform nil :reader code-mesg)
   (args :initarg :args :initform nil :reader code-args))
  (:report (lambda (c out)
             (format out "[~S]~@[ ~?~]" (code-proc c) (code-mesg c) (code-args c))))
  (:documentation "PORT's error in code: PROC names the operator, MESG is a format
control and ARGS its arguments (readers CODE-PROC, CODE-MESG, CODE-ARGS)."))

(setf (documentation 'code-proc 'function) "The operator a CODE condition is about."
      (documentation 'code-mesg 'function) "The format control of a CODE condition's message."
      (documentation 'code-args 'function) "The format arguments of a CODE condition's message.")

(define-condition case-error (code)
  ((mesg :initform "`~S' evaluated to `~S', not one of [~@{`~S'~^ ~}]"))
  (:documentation "A CASE-like dispatch met a value it has no clause for
(PORT's name; ARGS are the form, the value and the expected keys)."))

(define-condition not-implemented (code)
  ((mesg :initform "not implemented for ~A [~A]")
   (args :initform (list (lisp-implementation-type) (lisp-implementation-version))))
  (:documentation "The operation has no meaning on this Lisp (here ECL).  The
message says why; CODE-PROC names the PORT operator."))

(define-condition network (error)
  ((proc :initarg :proc :initform nil :reader net-proc)
   (host :initarg :host :initform "" :reader net-host)
   (port :initarg :port :initform 0 :reader net-port)
   (mesg :initarg :mesg :initform nil :reader net-mesg)
   (args :initarg :args :initform nil :reader net-args))
  (:report (lambda (c out)
             (format out "[~S] ~A:~D~@[ ~?~]" (net-proc c) (net-host c) (net-port c)
                     (net-mesg c) (net-args c))))
  (:documentation "A network failure (PORT).  Readers: NET-PROC (the operator),
NET-HOST and NET-PORT (where), NET-MESG and NET-ARGS (a format control and
its arguments).  OS failures inside PORT calls are of this type and also
SOCKET:SOCKET-ERROR."))

(setf (documentation 'net-proc 'function) "The operator a NETWORK condition comes from."
      (documentation 'net-host 'function) "The host a NETWORK condition is about (a string)."
      (documentation 'net-port 'function) "The port a NETWORK condition is about."
      (documentation 'net-mesg 'function) "The format control of a NETWORK condition's message."
      (documentation 'net-args 'function) "The format arguments of a NETWORK condition's message.")

(define-condition timeout (network)
  ((time :initarg :time :initform nil :reader timeout-time))
  (:report (lambda (c out)
             (format out "[~S] ~A:~D~@[ ~?~]" (net-proc c) (net-host c) (net-port c)
                     (net-mesg c) (net-args c))
             (when (and (realp (timeout-time c)) (plusp (timeout-time c)))
               (format out " [timeout ~A sec]" (timeout-time c)))))
  (:documentation "A network operation took too long (PORT).  TIMEOUT-TIME (not
exported, as in PORT) gives the limit in seconds when known."))

(define-condition login (network) ()
  (:documentation "Logging in to a network service failed (PORT; for user code to signal)."))

(define-condition net-path (network) ()
  (:documentation "A network path is malformed or unusable (PORT; for user code to signal)."))

(defstruct hostent
  "A host entry, as gethostbyname(3) gives it: the canonical NAME, the
ALIASES it is also known by, the ADDR-LIST (numeric address strings) and
the ADDR-TYPE (2: IPv4, 10: IPv6)."
  (name "" :type simple-string)
  (aliases nil :type list)
  (addr-list nil :type list)
  (addr-type 2 :type fixnum))

(defstruct servent
  "A service entry, as getservbyname(3) gives it: NAME, ALIASES, PORT and
PROTO (\"tcp\", \"udp\" ...)."
  (name "" :type simple-string)
  (aliases nil :type list)
  (port -1 :type fixnum)
  (proto "tcp" :type simple-string))

(defconstant +threads-p+ t
  "True: ECL runs PORT processes as native threads (ECL's MP).")

;;; ------------------------------------------------------------------
;;; Everything else lives in ECLSOCK

(in-package "ECLSOCK")

;;; Structure accessors: ECL's (SETF DOCUMENTATION) does not stick to
;;; them, so their docstrings go on the symbols.
(loop for (name doc) on
      '(port:hostent-name "The canonical name of the host (a string)."
        port:hostent-aliases "Other names of the host (a list of strings)."
        port:hostent-addr-list "The host's addresses, as numeric strings (\"127.0.0.1\")."
        port:hostent-addr-type "The address family of ADDR-LIST: 2 (AF_INET) or 10 (AF_INET6)."
        port:servent-name "The official name of the service."
        port:servent-aliases "Other names of the service (strings)."
        port:servent-port "The port number of the service."
        port:servent-proto "The protocol of the service, e.g. \"tcp\"."
        port:servent-p "True when OBJECT is a SERVENT.")
      by #'cddr
      do (si::set-documentation name 'function doc))

(defun not-implemented (proc reason &rest args)
  "Signal PORT:NOT-IMPLEMENTED for PROC, saying why with REASON and ARGS."
  (error 'port:not-implemented
         :proc proc
         :mesg (concatenate 'string "not possible on ECL: " reason)
         :args args))

;;; OS failures become conditions that are PORT:NETWORK and SOCKET-ERROR
;;; at once.  One class per core class; the report is PORT's "[PROC]"
;;; followed by the core's own report.

(defun report-port-error (c out)
  (format out "[~S] " (port:net-proc c))
  (report-socket-error c out))

(defmacro define-port-errors (&rest pairs)
  `(progn
     ,@(loop for (name parents) in pairs
             collect `(define-condition ,name ,parents ()
                        (:report report-port-error)
                        (:documentation
                         ,(format nil "A ~A raised inside a PORT call: also a PORT:~A."
                                  (second parents) (first parents)))))
     (defparameter *port-error-classes*
       ',(loop for (name parents) in pairs collect (cons (second parents) name)))))

(define-port-errors
  (port-socket-error (port:network socket-error))
  (port-connection-refused-error (port:network connection-refused-error))
  (port-connection-reset-error (port:network connection-reset-error))
  (port-address-in-use-error (port:network address-in-use-error))
  (port-address-not-available-error (port:network address-not-available-error))
  (port-socket-timeout-error (port:timeout socket-timeout-error))
  (port-host-not-found-error (port:network host-not-found-error))
  (port-network-unreachable-error (port:network network-unreachable-error))
  (port-host-unreachable-error (port:network host-unreachable-error)))

(defvar *port-error-lock* (mp:make-lock :name "PORT error classes"))

(defun port-error-class (core-class)
  "The class that is both PORT:NETWORK (PORT:TIMEOUT for timeouts) and
CORE-CLASS.  A SOCKET-ERROR subclass without one yet (a later addition to
the core) gets one made now, so that PORT handlers and handlers for the
exact core class both still catch it."
  (mp:with-lock (*port-error-lock*)
    (or (cdr (assoc core-class *port-error-classes*))
        (let ((name (intern (format nil "PORT-~A" core-class) "ECLSOCK"))
              (port-parent (if (subtypep core-class 'socket-timeout-error)
                               'port:timeout
                               'port:network)))
          (eval `(define-condition ,name (,port-parent ,core-class) ()
                   (:report report-port-error)))
          (push (cons core-class name) *port-error-classes*)
          name))))

(defun port-error (c proc host port)
  "Re-signal socket error C, raised inside PORT operator PROC, as its PORT class."
  (unless (typep c 'port:network)
    (let ((host (or (socket-error-host c) host ""))
          (port (or (socket-error-port c) port 0)))
      (error (port-error-class (class-name (class-of c)))
             :proc proc
             :host (if (stringp host) host (princ-to-string host))
             :port port
             :code (socket-error-code c) :errno (socket-error-errno c)
             :syscall (socket-error-syscall c) :message (socket-error-message c)
             :stream (stream-error-stream c)))))

(defmacro with-port-errors ((proc &optional host port) &body body)
  "Run BODY; a SOCKET-ERROR in it comes out as a PORT:NETWORK too."
  `(handler-bind ((socket-error (lambda (c) (port-error c ',proc ,host ,port))))
     ,@body))

;;; ------------------------------------------------------------------
;;; Addresses

(define-condition dotted-address-error (parse-error simple-error) ()
  (:documentation "A string is not a dotted IPv4 address."))

(defun port:dotted-to-ipaddr (dotted)
  "The 32-bit integer of a dotted IPv4 address: \"127.0.0.1\" -> 2130706433.
Stricter than PORT: anything but four numbers 0-255 (\"1.2.3\",
\"300.1.1.1\", \" 1.2.3.4\", \"01.2.3.4\") signals a PARSE-ERROR."
  (check-type dotted string)
  (multiple-value-bind (ipaddr lax) (parse-ipv4 dotted)
    (or ipaddr
        (error 'dotted-address-error
               :format-control "DOTTED-TO-IPADDR: ~S is not a dotted IPv4 address: ~
                                not four numbers 0-255 joined by dots~@[ (inet_aton ~
                                would read it as ~A)~]."
               :format-arguments (list dotted lax)))))

(defun port:ipaddr-to-dotted (ipaddr)
  "The dotted string of a 32-bit IPv4 address: 2130706433 -> \"127.0.0.1\"."
  (check-type ipaddr (unsigned-byte 32))
  (coerce (dotted ipaddr) 'simple-string))

(defun address-hostent (address family)
  "The hostent for numeric ADDRESS: its name from the reverse lookup (the
address itself when there is none)."
  (port::make-hostent :name (coerce (or (%address-name address) address) 'simple-string)
                      :addr-list (list address)
                      :addr-type (if (eq family :inet6) 10 2)))

(defun name-hostent (name)
  "The hostent for host NAME: canonical name, IPv4 addresses (IPv6 ones
when it has no IPv4 address), and NAME as an alias when it is not canonical."
  (multiple-value-bind (canon addrs families)
      (with-port-errors (port:resolve-host-ipaddr name) (%resolve name))
    (let* ((canon (coerce (or canon name) 'simple-string))
           (v4 (loop for a in addrs for f in families when (eq f :inet) collect a))
           (v6 (loop for a in addrs for f in families when (eq f :inet6) collect a)))
      (port::make-hostent :name canon
                          :aliases (unless (string-equal canon name) (list name))
                          :addr-list (or v4 v6)
                          :addr-type (if v4 2 10)))))

(defun port:resolve-host-ipaddr (host)
  "Look HOST up and return a PORT:HOSTENT.  HOST is a host name, a dotted
IPv4 string, an IPv6 address string or a 32-bit integer; for an address
the entry's name is the host's canonical name when the reverse lookup
knows one.  An unknown host signals PORT:NETWORK (also
SOCKET:HOST-NOT-FOUND-ERROR)."
  (etypecase host
    ((unsigned-byte 32) (address-hostent (dotted host) :inet))
    (string
     (cond ((parse-ipv4 host) (address-hostent host :inet))
           ((find #\: host) (address-hostent host :inet6))
           ((string= host "")
            (error 'port-host-not-found-error :proc 'port:resolve-host-ipaddr
                   :host "" :code :eai-noname :syscall "getaddrinfo"
                   :message "Empty host name"))
           (t (name-hostent host))))))

(defun port:ipaddr-closure (address)
  "Everything reachable from ADDRESS (a name, a dotted string or an
integer) through names, aliases and addresses.  Two values: an EQUALP hash
table from each HOSTENT to the keys that led to it, and one from each key
to its HOSTENT.  Keys that do not resolve are skipped (but ADDRESS itself
must); at most 64 lookups are made."
  (let ((by-hostent (make-hash-table :test 'equalp))
        (by-key (make-hash-table :test 'equalp))
        (seen (make-hash-table :test 'equalp))
        (queue (list address))
        (lookups 0))
    (loop while (and queue (< lookups 64))
          do (let ((key (pop queue)))
               (unless (gethash key seen)
                 (setf (gethash key seen) t)
                 (let ((he (if (zerop lookups)
                               (port:resolve-host-ipaddr key)
                               (handler-case (port:resolve-host-ipaddr key)
                                 (port:network () nil)))))
                   (incf lookups)
                   (when he
                     (setf (gethash key by-key) he)
                     (push key (gethash he by-hostent))
                     (dolist (k (list* (port:hostent-name he)
                                       (append (port:hostent-aliases he)
                                               (port:hostent-addr-list he))))
                       (unless (gethash k seen)
                         (setf queue (append queue (list k))))))))))
    (values by-hostent by-key)))

;;; ------------------------------------------------------------------
;;; Sockets

(deftype port:socket ()
  "What OPEN-SOCKET and SOCKET-ACCEPT return: a socket stream."
  'socket-stream)

(deftype port:socket-server ()
  "What OPEN-SOCKET-SERVER returns: a SOCKET:SOCKET-SERVER."
  'socket-server)

(defun bin-element-type (bin)
  (if bin '(unsigned-byte 8) 'character))

(defun host-string (host)
  (if (stringp host) host (princ-to-string host)))

(defun port:open-socket (host port &optional bin)
  "Connect to HOST (a name, an address string or a 32-bit integer) at PORT
and return a bidirectional socket stream: of CHARACTER, or of
\(UNSIGNED-BYTE 8) when BIN is true.  Failures signal PORT:NETWORK (also
the SOCKET-ERROR subclass, e.g. CONNECTION-REFUSED-ERROR)."
  (check-type host (or string (unsigned-byte 32)))
  (check-port port)
  (let ((h (check-host host)))
    (with-port-errors (port:open-socket h port)
      (%connect h port nil (bin-element-type bin) :default t))))

(defvar *port-server-interface* "0.0.0.0"
  "The address PORT:OPEN-SOCKET-SERVER binds when not told otherwise: all
IPv4 interfaces, as PORT does.  Bind it to \"127.0.0.1\" around unchanged
PORT code to keep its servers on loopback.")

(defun port:open-socket-server (&optional port &key (interface *port-server-interface*)
                                                    (backlog 16))
  "Listen on PORT (NIL or 0: the kernel picks one; SOCKET-SERVER-HOST/PORT
says which) and return a PORT:SOCKET-SERVER.  ecl-sock extensions:
INTERFACE, the local address to bind (default ECLSOCK::*PORT-SERVER-INTERFACE*,
all IPv4 interfaces as in PORT; give \"127.0.0.1\" to stay on loopback), and
BACKLOG (default 16)."
  (check-port (or port 0))
  (with-port-errors (port:open-socket-server (host-string interface) (or port 0))
    (open-server (listen-host interface 'port:open-socket-server) (or port 0) backlog)))

(defun port:socket-accept (serv &key bin wait)
  "Accept a connection on SERV and return a socket stream (of octets when
BIN is true).  WAIT NIL (the default) waits as long as it takes; a number
waits at most that many seconds and then returns NIL."
  (server-fd serv 'port:socket-accept)
  (let ((tm (and wait (normalize-timeout wait))))
    (with-port-errors (port:socket-accept (socket-server-host serv) (socket-server-port serv))
      (server-accept serv 'port:socket-accept tm (bin-element-type bin) :default t))))

(defun port:socket-server-close (server)
  "Close SERVER (a PORT:SOCKET-SERVER).  Closing it again does nothing."
  (close-server server))

(defun port:socket-server-host/port (server)
  "Where SERVER listens: two values, the bound address (\"0.0.0.0\" for all
interfaces) and the port."
  (server-fd server 'port:socket-server-host/port)
  (values (socket-server-host server) (socket-server-port server)))

(defun port:socket-host/port (sock)
  "Both ends of connected socket stream SOCK: four values, the peer's
address and port, then the local address and port (numeric strings)."
  (let ((fd (stream-fd sock 'port:socket-host/port)))
    (with-port-errors (port:socket-host/port)
      (multiple-value-bind (peer-host peer-port) (%peer-address fd)
        (multiple-value-bind (local-host local-port) (%local-address fd)
          (values peer-host peer-port local-host local-port))))))

(defun port:socket-string (sock)
  "A printable description of SOCK: #<SOCKET [local: HOST:PORT] [peer: \"HOST\":PORT]>."
  (multiple-value-bind (peer-host peer-port local-host local-port)
      (port:socket-host/port sock)
    (format nil "#<SOCKET [local: ~A:~D] [peer: ~S:~D]>"
            local-host local-port peer-host peer-port)))

(defun port:set-socket-stream-format (socket format)
  "Switch SOCKET between text and binary: FORMAT is :TEXT, :BINARY, or an
element type as (SETF STREAM-ELEMENT-TYPE) takes it (CHARACTER,
\(UNSIGNED-BYTE 8), (MOD 256), a DEFTYPE'd octet ...).  Returns FORMAT."
  (stream-fd socket 'port:set-socket-stream-format)
  (%set-element-type socket
                     (normalize-element-type
                      (case format
                        (:text 'character)
                        (:binary '(unsigned-byte 8))
                        (t format)))
                     nil)
  format)

;;; Two names CLOCC defines in net.lisp without exporting them, which
;;; PORT code (CLX among it) calls as port::wait-for-stream and
;;; port::open-unix-socket.

(defun port::wait-for-stream (stream &optional timeout)
  "Wait until STREAM has input (or end of file) or TIMEOUT seconds pass.
Returns the status (:INPUT, :EOF ...) or NIL on timeout."
  (stream-fd stream 'port::wait-for-stream)
  (values (%status (cons stream :input) (and timeout (normalize-timeout timeout)))))

(defun port::open-unix-socket (path &key (kind :stream) bin)
  "Connect to the Unix-domain stream socket at PATH; a socket stream of
characters, or of octets when BIN is true.  KIND :DATAGRAM has no stream
to give and signals PORT:NOT-IMPLEMENTED."
  (unless (eq kind :stream)
    (not-implemented 'port::open-unix-socket
                     "a ~S Unix socket is not a stream; only :STREAM is." kind))
  (let ((path (namestring path)))
    (with-port-errors (port::open-unix-socket path)
      (%connect-unix path nil (bin-element-type bin) :default t))))

;;; /etc/services, read as PORT reads it (no getservbyname: it is not
;;; thread-safe, and PORT's contract is the file's contents).

(defparameter *services-file* "/etc/services")

(defun services-line (line)
  "The SERVENT a line of the services file describes, or NIL."
  (let* ((text (subseq line 0 (position #\# line)))
         (words (loop with start = 0 and words = '()
                      for beg = (position-if-not #'blank-p text :start start)
                      while beg
                      do (let ((end (or (position-if #'blank-p text :start beg) (length text))))
                           (push (subseq text beg end) words)
                           (setf start end))
                      finally (return (nreverse words))))
         (slash (and (second words) (position #\/ (second words))))
         (port (and slash (parse-integer (second words) :end slash :junk-allowed t))))
    (when (and port (<= 0 port 65535))
      (port::make-servent :name (coerce (first words) 'simple-string)
                          :aliases (cddr words)
                          :port port
                          :proto (coerce (subseq (second words) (1+ slash)) 'simple-string)))))

(defun blank-p (ch) (member ch '(#\Space #\Tab #\Return)))

(defun port:socket-service-port (&optional service (protocol "tcp"))
  "The PORT:SERVENT of SERVICE (a name or alias, e.g. \"http\", or a port
number) for PROTOCOL (default \"tcp\"; NIL: any), from /etc/services.
With SERVICE NIL, the list of every entry.  An unknown service signals an
error."
  (let ((all '()))
    (with-open-file (in *services-file*)
      (loop for line = (read-line in nil)
            while line
            do (let ((s (services-line line)))
                 (when s
                   (if (null service)
                       (push s all)
                       (when (and (or (null protocol)
                                      (string-equal protocol (port:servent-proto s)))
                                  (if (integerp service)
                                      (= service (port:servent-port s))
                                      (or (string-equal service (port:servent-name s))
                                          (member service (port:servent-aliases s)
                                                  :test #'string-equal))))
                         (return-from port:socket-service-port s)))))))
    (when service
      (error "SOCKET-SERVICE-PORT: no service ~S~@[ for protocol ~S~] in ~A."
             service protocol *services-file*))
    (nreverse all)))

;;; ------------------------------------------------------------------
;;; Processes, on ECL's MP

(defvar *whostates* (make-hash-table :test 'eq :weakness :key :synchronized t)
  "Process -> what it is waiting for (PROCESS-WAIT sets it).")

(defvar *restartable* (make-hash-table :test 'eq :weakness :key :synchronized t)
  "The processes MAKE-PROCESS started, which RESTART-PROCESS can restart.")

(defun port:make-process (name function &rest args)
  "Start a process (a thread) called NAME running (APPLY FUNCTION ARGS);
return it."
  (let ((process (mp:make-process :name name))
        (args (copy-list args)))
    (mp:process-preset process
                       (lambda ()
                         (loop (catch '%restart-process
                                 (return (apply function args))))))
    (setf (gethash process *restartable*) t)
    (mp:process-enable process)))

(defmacro with-whostate ((whostate) &body body)
  (let ((old (gensym)) (me (gensym)))
    `(let* ((,me mp:*current-process*)
            (,old (gethash ,me *whostates*)))
       (setf (gethash ,me *whostates*) ,whostate)
       (unwind-protect (progn ,@body)
         (if ,old
             (setf (gethash ,me *whostates*) ,old)
             (remhash ,me *whostates*))))))

(defun wait-until (deadline predicate args)
  "Poll (APPLY PREDICATE ARGS), backing off to 20 ms, until true (T) or
DEADLINE (internal real time, NIL: none) passes (NIL)."
  (loop with pause = 1/1000
        do (when (apply predicate args) (return t))
           (when (and deadline (>= (get-internal-real-time) deadline)) (return nil))
           (sleep pause)
           (setf pause (min 1/50 (* 2 pause)))))

(defun port:process-wait (whostate predicate &rest args)
  "Wait until (APPLY PREDICATE ARGS) is true; PROCESS-WHOSTATE says
WHOSTATE meanwhile.  Returns T."
  (with-whostate (whostate)
    (wait-until nil predicate args)))

(defun port:process-wait-with-timeout (timeout whostate predicate &rest args)
  "Wait until (APPLY PREDICATE ARGS) is true (T) or TIMEOUT seconds pass
\(NIL).  TIMEOUT NIL waits as long as it takes."
  (with-whostate (whostate)
    (wait-until (and timeout
                     (+ (get-internal-real-time)
                        (ceiling (* (normalize-timeout timeout)
                                    internal-time-units-per-second))))
                predicate args)))

;;; PORT's WITH-TIMEOUT is MP:WITH-TIMEOUT (mp.lisp: one timer thread
;;; interrupts the timed thread, which throws out of its body), after
;;; PORT's own timeout spellings are normalised.
(defmacro port:with-timeout ((seconds &body timeout-forms) &body body)
  "Run BODY; if it takes more than SECONDS, abandon it (the thread is
interrupted, so blocking socket reads are cut short too) and return the
values of TIMEOUT-FORMS instead."
  (let ((s (gensym "SECONDS")))
    `(let ((,s ,seconds))
       (mp:with-timeout ((and ,s (normalize-timeout ,s)) ,@timeout-forms)
         ,@body))))

(defun port:y-or-n-p-timeout (seconds default &rest args)
  "Y-OR-N-P on ARGS, but after SECONDS without an answer say so and return DEFAULT."
  (port:with-timeout (seconds (format *query-io* "[Timed out] ~:[NO~;YES~]~%" default)
                              default)
    (apply #'y-or-n-p args)))

(defun port:maybe-y-or-n-p (val &rest args)
  "T when VAL is T, NIL when it is NIL, otherwise ask Y-OR-N-P with ARGS."
  (cond ((eq val t) t)
        ((null val) nil)
        (t (and (apply #'y-or-n-p args) t))))

(defvar *scheduling-lock* (mp:make-lock :name "without-scheduling" :recursive t))

(defmacro port:without-scheduling (&body body)
  "Run BODY with this thread's interrupts deferred and excluding other
WITHOUT-SCHEDULING bodies.  ECL's threads are native: other threads that
do not use WITHOUT-SCHEDULING keep running (best effort, as PORT's note says)."
  `(mp:with-lock (*scheduling-lock*)
     (mp:without-interrupts ,@body)))

(defun port:process-yield ()
  "Let other threads run."
  (mp:process-yield))

(defun check-process (process)
  "A type error unless PROCESS is a process: ECL's MP functions do not
check, and crash on anything else."
  (unless (typep process 'mp:process)
    (error 'type-error :datum process :expected-type 'mp:process)))

(defun port:kill-process (process)
  "Terminate PROCESS."
  (check-process process)
  (mp:process-kill process))

(defun port:interrupt-process (process function &rest args)
  "Make PROCESS run (APPLY FUNCTION ARGS) where it is, then carry on."
  (check-process process)
  (let ((args (copy-list args)))
    (mp:interrupt-process process (lambda () (apply function args)))))

(defun port:restart-process (process)
  "Throw PROCESS out of what it is doing and start its function afresh with
the same arguments.  Only processes made by MAKE-PROCESS can be restarted:
ECL cannot re-enter another thread's initial function, so those signal
PORT:NOT-IMPLEMENTED."
  (check-process process)
  (unless (gethash process *restartable*)
    (not-implemented 'port:restart-process
                     "~S was not started by PORT:MAKE-PROCESS, so it has no restart point."
                     process))
  (unless (mp:process-active-p process)
    (error "RESTART-PROCESS: ~S has finished." process))
  (mp:interrupt-process process (lambda () (throw '%restart-process nil)))
  process)

(defun port:processp (object)
  "True when OBJECT is a process (an ECL MP:PROCESS)."
  (typep object 'mp:process))

(defun port:process-name (process)
  "The name of PROCESS."
  (check-process process)
  (mp:process-name process))

(defun port:process-active-p (process)
  "True while PROCESS runs."
  (check-process process)
  (and (mp:process-active-p process) t))

(defun port:process-whostate (process)
  "What PROCESS is doing: the whostate of its PROCESS-WAIT, else \"Run\"
while it runs and \"Done\" after."
  (check-process process)
  (or (gethash process *whostates*)
      (if (mp:process-active-p process) "Run" "Done")))

(defun port:current-process ()
  "The process (thread) calling this."
  mp:*current-process*)

(defun port:all-processes ()
  "A list of all processes."
  (mp:all-processes))

(defun port:show-processes (&key (stream *standard-output*))
  "Print a table of all processes: name, whostate and state."
  (let* ((rows (mapcar (lambda (p)
                         (list (princ-to-string (mp:process-name p))
                               (port:process-whostate p)
                               (if (mp:process-active-p p) "Active" "Inactive")))
                       (mp:all-processes)))
         (w1 (+ 2 (reduce #'max rows :key (lambda (r) (length (first r))) :initial-value 4)))
         (w2 (+ w1 2 (reduce #'max rows :key (lambda (r) (length (second r))) :initial-value 8))))
    (format stream "~&Name~VTWhostate~VTState~%" w1 w2)
    (dolist (r rows)
      (format stream "~A~VT~A~VT~A~%" (first r) w1 (second r) w2 (third r)))
    (values)))

(defun port:make-lock (&key name)
  "A new lock called NAME."
  (mp:make-lock :name (or name "PORT lock")))

(defun port:get-lock (lock)
  "Take LOCK, waiting until it is free."
  (mp:get-lock lock))

(defun port:giveup-lock (lock)
  "Release LOCK."
  (mp:giveup-lock lock))

(defmacro port:with-lock ((lock) &rest body)
  "Run BODY holding LOCK; it is released however BODY exits."
  `(mp:with-lock (,lock) ,@body))
