;;;; bsd.lisp - the SB-BSD-SOCKETS face: SBCL's socket API on ecl-sock.
;;;;
;;;; Owns: package SB-BSD-SOCKETS (every symbol ECL 21.2.1's contrib exports
;;;; and SBCL's extras), its CLOS socket classes over descriptors that
;;;; ecl-sock's C core makes (ECLSOCK::%BSD-* primitives, src/bsd.c), its
;;;; condition classes (each also the matching SOCKET:SOCKET-ERROR), name
;;;; lookup (HOST-ENT), and the drop-in registration: *MODULES* and ASDF
;;;; are told that sb-bsd-sockets is here, so neither REQUIRE nor ASDF
;;;; loads ECL's contrib over it.  Loaded by (require :sock-bsd), which
;;;; loads the core module (sock.fas) first.
;;;; Must not: make system calls (C does), keep a descriptor in two owners
;;;; (after SOCKET-MAKE-STREAM the stream owns it), modify ECL's contrib.
;;;; Where ECL's contrib and SBCL differ, SBCL's behaviour is followed
;;;; (see doc/bsd.texi).

;;; lisp/bsd-check.lisp, loaded just before this file, refuses to load over
;;; ECL's contrib.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (unless (find-package "ECLSOCK")
    (require :sock)))

(defpackage "SB-BSD-SOCKETS"
  (:use "CL")
  (:documentation "SBCL's sb-bsd-sockets API on ecl-sock (a drop-in for ECL's contrib).")
  (:export
   ;; classes and readers
   "SOCKET" "INET-SOCKET" "INET6-SOCKET" "LOCAL-SOCKET" "LOCAL-ABSTRACT-SOCKET"
   "SOCKET-FILE-DESCRIPTOR" "SOCKET-FAMILY" "SOCKET-PROTOCOL" "SOCKET-TYPE"
   "MAKE-INET-SOCKET"
   ;; operations
   "SOCKET-BIND" "SOCKET-LISTEN" "SOCKET-ACCEPT" "SOCKET-CONNECT" "SOCKET-NAME"
   "SOCKET-PEERNAME" "SOCKET-RECEIVE" "SOCKET-SEND" "SOCKET-CLOSE"
   "SOCKET-SHUTDOWN" "SOCKET-OPEN-P" "SOCKET-MAKE-STREAM" "NON-BLOCKING-MODE"
   ;; names and addresses
   "GET-HOST-BY-NAME" "GET-HOST-BY-ADDRESS" "HOST-ENT" "HOST-ENT-NAME"
   "HOST-ENT-ALIASES" "HOST-ENT-ADDRESS-TYPE" "HOST-ENT-ADDRESSES"
   "HOST-ENT-ADDRESS" "MAKE-INET-ADDRESS" "MAKE-INET6-ADDRESS"
   "GET-PROTOCOL-BY-NAME"
   ;; options
   "SOCKOPT-TYPE" "SOCKOPT-RECEIVE-BUFFER" "SOCKOPT-SEND-BUFFER"
   "SOCKOPT-RECEIVE-LOW-WATER" "SOCKOPT-SEND-LOW-WATER" "SOCKOPT-REUSE-ADDRESS"
   "SOCKOPT-KEEP-ALIVE" "SOCKOPT-DONT-ROUTE" "SOCKOPT-BROADCAST" "SOCKOPT-DEBUG"
   "SOCKOPT-OOB-INLINE" "SOCKOPT-BIND-TO-DEVICE" "SOCKOPT-PRIORITY"
   "SOCKOPT-PASS-CREDENTIALS" "SOCKOPT-BSD-COMPATIBLE" "SOCKOPT-TCP-NODELAY"
   "SOCKOPT-TCP-KEEPIDLE" "SOCKOPT-TCP-KEEPINTVL" "SOCKOPT-TCP-KEEPCNT"
   "SOCKOPT-LINGER" "SOCKOPT-RECEIVE-TIMEOUT" "SOCKOPT-SEND-TIMEOUT"
   ;; newer SBCLs' (2.5 in Debian 13)
   "SOCKOPT-ERROR" "SOCKOPT-TCP-USER-TIMEOUT"
   ;; conditions
   "SOCKET-ERROR" "NAME-SERVICE-ERROR" "UNKNOWN-PROTOCOL" "UNKNOWN-PROTOCOL-NAME"
   "ADDRESS-IN-USE-ERROR" "INTERRUPTED-ERROR" "BAD-FILE-DESCRIPTOR-ERROR"
   "CONNECTION-REFUSED-ERROR" "OPERATION-TIMEOUT-ERROR" "INVALID-ARGUMENT-ERROR"
   "NO-BUFFERS-ERROR" "OUT-OF-MEMORY-ERROR" "OPERATION-NOT-SUPPORTED-ERROR"
   "OPERATION-NOT-PERMITTED-ERROR" "PROTOCOL-NOT-SUPPORTED-ERROR"
   "SOCKET-TYPE-NOT-SUPPORTED-ERROR" "NETWORK-UNREACHABLE-ERROR"
   "NOT-CONNECTED-ERROR" "ADDRESS-FAMILY-NOT-SUPPORTED" "OPERATION-IN-PROGRESS"
   "HOST-NOT-FOUND-ERROR" "TRY-AGAIN-ERROR" "NO-RECOVERY-ERROR"
   "NETDB-INTERNAL-ERROR" "NETDB-SUCCESS-ERROR"
   ;; ECL's resolver codes
   "EAI_NONAME" "EAI_AGAIN" "EAI_FAIL"))

(in-package "SB-BSD-SOCKETS")

(defvar %ecl-sock-face t
  "Marks this SB-BSD-SOCKETS as ecl-sock's (not ECL's contrib).")

(defconstant eai_noname -2 "getaddrinfo's EAI_NONAME (ECL's contrib exports it).")
(defconstant eai_again -3 "getaddrinfo's EAI_AGAIN.")
(defconstant eai_fail -4 "getaddrinfo's EAI_FAIL.")

(defmacro c-constant (name)
  "The value of the C constant NAME (a string such as \"SO_REUSEADDR\"), or NIL."
  `(load-time-value (eclsock::%bsd-constant ,name)))

;;; ------------------------------------------------------------------
;;; Conditions: each class is SBCL's and also ecl-sock's SOCKET:SOCKET-ERROR
;;; (and its matching subclass), with the same errno.

(define-condition socket-error (socket:socket-error) ()
  (:report (lambda (c s)
             (format s "Socket error in ~S: ~A (~A)"
                     (socket:socket-error-syscall c)
                     (socket:socket-error-code c)
                     (or (eclsock::socket-error-message c) "unknown error"))))
  (:documentation "A socket operation failed (SBCL's SB-BSD-SOCKETS:SOCKET-ERROR).
It is also a SOCKET:SOCKET-ERROR: SOCKET:SOCKET-ERROR-ERRNO gives the errno,
SOCKET:SOCKET-ERROR-CODE its keyword, SOCKET:SOCKET-ERROR-SYSCALL the call."))

(defun socket-error-errno (c)
  "The errno of socket error C (SBCL's internal reader, used by usocket)."
  (socket:socket-error-errno c))

(defun socket-error-symbol (c)
  "The errno name of socket error C, as a symbol in this package (ECONNREFUSED)."
  (intern (string (socket:socket-error-code c)) "SB-BSD-SOCKETS"))

(defun socket-error-syscall (c)
  "The system call socket error C comes from, e.g. \"connect\"."
  (socket:socket-error-syscall c))

(defmacro define-bsd-errors (&rest specs)
  `(progn
     ,@(loop for (name supers codes doc) in specs
             collect `(define-condition ,name (,@supers) ()
                        (:documentation ,doc)))
     (defparameter *bsd-code-classes*
       ',(loop for (name supers codes) in specs
               nconc (loop for c in codes collect (cons c name))))))

(define-condition name-service-error (socket:socket-error) ()
  (:report (lambda (c s)
             (format s "Name service error in ~S: ~A (~A)"
                     (socket:socket-error-syscall c) (socket:socket-error-code c)
                     (or (eclsock::socket-error-message c) "unknown error"))))
  (:documentation "A name lookup failed (an ERROR, as on SBCL; ECL's contrib
made it a mere CONDITION).  Also a SOCKET:SOCKET-ERROR."))

(defun name-service-error-errno (c)
  "The resolver code keyword of name service error C (:EAI-NONAME ...)."
  (socket:socket-error-code c))
(defun name-service-error-symbol (c)
  "The resolver code of C as a symbol (EAI-NONAME)."
  (intern (string (socket:socket-error-code c)) "SB-BSD-SOCKETS"))
(defun name-service-error-syscall (c)
  "The lookup that failed, e.g. \"getaddrinfo\"."
  (socket:socket-error-syscall c))

(define-bsd-errors
  (address-in-use-error (socket-error socket:address-in-use-error) (:eaddrinuse)
   "The local address is in use (EADDRINUSE).")
  (interrupted-error (socket-error) (:eintr :eagain)
   "EINTR or EAGAIN where the operation could not return NIL instead.")
  (bad-file-descriptor-error (socket-error) (:ebadf)
   "The socket is closed or not a socket (EBADF).")
  (connection-refused-error (socket-error socket:connection-refused-error) (:econnrefused)
   "Nobody listens at the address (ECONNREFUSED).")
  (operation-timeout-error (socket-error socket:socket-timeout-error) (:etimedout)
   "The operation timed out (ETIMEDOUT).")
  (invalid-argument-error (socket-error) (:einval)
   "The kernel rejected an argument (EINVAL), e.g. accept on a socket not listening.")
  (no-buffers-error (socket-error) (:enobufs) "No buffer space (ENOBUFS).")
  (out-of-memory-error (socket-error) (:enomem) "Out of memory (ENOMEM).")
  (operation-not-supported-error (socket-error) (:eopnotsupp)
   "Operation not supported on this socket (EOPNOTSUPP).")
  (operation-not-permitted-error (socket-error) (:eperm :eacces)
   "Operation not permitted (EPERM, EACCES).")
  (protocol-not-supported-error (socket-error) (:eprotonosupport)
   "Protocol not supported (EPROTONOSUPPORT).")
  (socket-type-not-supported-error (socket-error) (:esocktnosupport)
   "Socket type not supported (ESOCKTNOSUPPORT).")
  (network-unreachable-error (socket-error socket:network-unreachable-error) (:enetunreach)
   "The network is unreachable (ENETUNREACH).")
  (not-connected-error (socket-error) (:enotconn)
   "The socket is not connected (ENOTCONN).")
  (address-family-not-supported (socket-error) (:eafnosupport)
   "The address family is not supported (EAFNOSUPPORT).")
  (operation-in-progress (socket-error) (:einprogress)
   "A non-blocking connect is in progress (EINPROGRESS).")
  (host-not-found-error (name-service-error socket:host-not-found-error)
                        (:eai-noname :eai-nodata :eai-addrfamily)
   "The host name is unknown (EAI_NONAME).")
  (try-again-error (name-service-error socket:host-not-found-error) (:eai-again)
   "Temporary resolver failure (EAI_AGAIN).")
  (no-recovery-error (name-service-error socket:host-not-found-error) (:eai-fail)
   "Permanent resolver failure (EAI_FAIL).")
  (netdb-internal-error (name-service-error) ()
   "Resolver internal error (exported as on SBCL, never signalled).")
  (netdb-success-error (name-service-error) ()
   "Exported as on SBCL, never signalled."))

(define-condition unknown-protocol (error)
  ((name :initarg :name :reader unknown-protocol-name
         :documentation "The protocol name that was not found."))
  (:report (lambda (c s)
             (format s "Protocol not found: ~S" (unknown-protocol-name c))))
  (:documentation "GET-PROTOCOL-BY-NAME found no protocol of that name."))

(setf (documentation 'unknown-protocol-name 'function)
      "The name that UNKNOWN-PROTOCOL was signalled for.")

(defun bsd-error-class (code)
  "The SB-BSD-SOCKETS condition class for the ecl-sock error keyword CODE."
  (or (cdr (assoc code *bsd-code-classes*))
      (if (and (symbolp code) (eql 0 (search "EAI-" (symbol-name code))))
          'name-service-error
          'socket-error)))

(defmacro with-bsd-errors (&body body)
  "Run BODY so that failures in ecl-sock's C primitives signal this face's classes."
  `(let ((eclsock::*error-class-function* #'bsd-error-class))
     ,@body))

(defun bsd-raise (syscall code &optional message host)
  "Signal this face's condition for error keyword CODE (:EBADF ...) made in
Lisp, through ecl-sock's one path for socket errors (ECLSOCK::%RAISE)."
  (with-bsd-errors (eclsock::%raise syscall code message host nil nil)))

;;; ------------------------------------------------------------------
;;; Sockets

(defclass socket (eclsock::descriptor-owner)
  ((file-descriptor :initarg :descriptor :initform nil :reader socket-file-descriptor
                    :documentation "The descriptor's number (an integer; -1 once
closed without a stream).  Whether the socket still owns it is the core's
DESCRIPTOR-OWNER state: :OPEN, :RELEASED once its stream owns it, :CLOSED.")
   (family :initform (error "No socket family") :reader socket-family
           :documentation "The address family number: 2 inet, 10 inet6, 1 local.")
   (protocol :initarg :protocol :initform 0 :reader socket-protocol
             :documentation "The protocol number (a keyword or name given is looked up).")
   (type :initarg :type :initform :stream :reader socket-type
         :documentation ":STREAM or :DATAGRAM.")
   (stream :initform nil :documentation "The stream SOCKET-MAKE-STREAM made, once."))
  (:documentation "A BSD socket (SBCL's class): make an INET-SOCKET,
INET6-SOCKET, LOCAL-SOCKET or LOCAL-ABSTRACT-SOCKET with MAKE-INSTANCE and
:TYPE (:STREAM, the default, or :DATAGRAM), :PROTOCOL (:TCP, :UDP, a number
or NIL) or :DESCRIPTOR (wrap an existing descriptor)."))

(defclass inet-socket (socket)
  ((family :initform 2))
  (:documentation "An IPv4 socket.  Addresses are vectors of 4 octets and a port."))

(defclass inet6-socket (socket)
  ((family :initform 10))
  (:documentation "An IPv6 socket.  Addresses are vectors of 16 octets and a port."))

(defclass local-socket (socket)
  ((family :initform 1))
  (:documentation "A Unix-domain socket.  Addresses are file names (strings)."))

(defclass local-abstract-socket (local-socket)
  ()
  (:documentation "A Linux abstract Unix-domain socket.  Addresses are strings
or octet vectors, without the leading NUL (added for you)."))

;;; A poller reads the descriptor in the first slot (POLLER-ADD takes these
;;; sockets as the core's descriptor owners they are).
(eval-when (:load-toplevel :execute)
  (dolist (class '(socket inet-socket inet6-socket local-socket local-abstract-socket))
    (eclsock::check-descriptor-slot-first class)))

(eclsock::document-function 'socket-file-descriptor
  "The descriptor of SOCKET (an integer; -1 after SOCKET-CLOSE without a stream).")
(eclsock::document-function 'socket-family
  "The address family number of SOCKET: 2 inet, 10 inet6, 1 local.")
(eclsock::document-function 'socket-protocol
  "The protocol number of SOCKET (6 for :TCP, 17 for :UDP, 0 for the default).")
(eclsock::document-function 'socket-type
  "The type of SOCKET: :STREAM or :DATAGRAM.")

(defparameter *protocols*
  '((:ip 0 "ip" "IP") (:icmp 1 "icmp" "ICMP") (:igmp 2 "igmp" "IGMP")
    (:tcp 6 "tcp" "TCP") (:udp 17 "udp" "UDP") (:ipv6 41 "ipv6" "IPv6")
    (:raw 255 "raw" "RAW"))
  "The protocols GET-PROTOCOL-BY-NAME knows (as SBCL's built-in table).")

(defun get-protocol-by-name (name)
  "The protocol number of NAME (a string or keyword: \"tcp\", :UDP ...),
its name and alias: 3 values.  Signals UNKNOWN-PROTOCOL when unknown."
  (let ((entry (find (string-downcase (string name)) *protocols*
                     :key #'third :test #'string=)))
    (unless entry
      (error 'unknown-protocol :name name))
    (values (second entry) (third entry) (fourth entry))))

(defun protocol-number (protocol)
  (etypecase protocol
    (null 0)
    (keyword (values (get-protocol-by-name protocol)))
    ((integer 0 255) protocol)))

;;; Closing and finalizing are the core's (ECLSOCK::CLOSE-OWNER, one
;;; finalizer for every descriptor owner).  What this face changes: closing
;;; only closes, without the core's shutdown(2), as SBCL does.  So a thread
;;; blocked in SOCKET-ACCEPT or SOCKET-RECEIVE on the socket stays blocked
;;; (programs written for SBCL count on it: Swank closes its listening
;;; socket and then kills the accepting thread, which must not have woken
;;; with an error meanwhile), and a connected socket's peer sees what
;;; close(2) alone sends.
(defmethod eclsock::wake-waiters ((socket socket) fd)
  (declare (ignore fd))
  nil)

(defun socket-closed-p (socket)
  (not (member (eclsock::owner-state socket) '(:open :released))))

(defmacro with-closed-check ((socket who) &body body)
  "Run BODY; a socket error in it, when SOCKET was closed meanwhile (by
another thread), is the BAD-FILE-DESCRIPTOR-ERROR of a closed socket."
  `(handler-bind ((socket:socket-error
                    (lambda (c)
                      (declare (ignore c))
                      (when (socket-closed-p ,socket)
                        (bsd-raise ,who :ebadf "Socket is closed")))))
     ,@body))

(defmethod initialize-instance :after ((socket socket) &key descriptor &allow-other-keys)
  (with-slots (type protocol file-descriptor family) socket
    (unless (member type '(:stream :datagram))
      (error 'type-error :datum type :expected-type '(member :stream :datagram)))
    (setf protocol (protocol-number protocol))
    (cond (descriptor
           (unless (typep descriptor '(integer 0 #x7fffffff))
             (error 'type-error :datum descriptor :expected-type '(integer 0))))
          (t
           (setf file-descriptor
                 (with-bsd-errors
                   (eclsock::%bsd-socket family (if (eq type :stream) 1 2) protocol)))))
    ;; from here the core's descriptor-owner protocol owns it
    (setf (slot-value socket 'eclsock::fd) file-descriptor)))

(defun make-inet-socket (type protocol)
  "Deprecated (SBCL): (make-instance 'inet-socket :type TYPE :protocol PROTOCOL)."
  (make-instance 'inet-socket :type type :protocol protocol))

(defun open-fd (socket who)
  "SOCKET's descriptor; BAD-FILE-DESCRIPTOR-ERROR when it is closed."
  (unless (typep socket 'socket)
    (error 'type-error :datum socket :expected-type 'socket))
  (let ((fd (slot-value socket 'file-descriptor))
        (stream (slot-value socket 'stream)))
    (when (or (not (integerp fd)) (minusp fd)
              (socket-closed-p socket)
              (and stream (not (open-stream-p stream))))
      (bsd-raise who :ebadf "Socket is closed"))
    fd))

(defmethod print-object ((socket socket) out)
  (print-unreadable-object (socket out :type t :identity t)
    (let ((fd (slot-value socket 'file-descriptor)))
      (if (socket-open-p socket)
          (let ((name (ignore-errors (multiple-value-list (socket-name socket))))
                (peer (ignore-errors (multiple-value-list (socket-peername socket)))))
            (flet ((text (a) (format nil "~{~A~^:~}" (mapcar #'address-text a))))
              (format out "~@[~A~]~@[, peer: ~A~], fd: ~D"
                      (and name (text name)) (and peer (text peer)) fd)))
          (format out "closed")))))

(defun address-text (a)
  (typecase a
    ((vector t 4) (format nil "~{~D~^.~}" (coerce a 'list)))
    ((array (unsigned-byte 8) (4)) (format nil "~{~D~^.~}" (coerce a 'list)))
    ((array (unsigned-byte 8) (16)) (eclsock::%format-inet6 (coerce a '(simple-array (unsigned-byte 8) (16))) 0))
    (t (princ-to-string a))))

;;; -- Addresses --------------------------------------------------------

(defun octets (address n who)
  "ADDRESS (any sequence of N integers 0..255) as a simple octet vector."
  (declare (ignorable who))
  (unless (and (typep address 'sequence) (= (length address) n)
               (every (lambda (x) (typep x '(unsigned-byte 8))) address))
    (error 'type-error :datum address
                       :expected-type `(sequence (unsigned-byte 8) ,n)))
  (coerce address '(simple-array (unsigned-byte 8) (*))))

(defgeneric socket-address-args (socket address who)
  (:documentation "The C view of ADDRESS (a list: address and port, or a path)
for SOCKET: (values family address port)."))

(defun ip-address-args (address who class family n)
  "ADDRESS, (octets port) for a socket of CLASS (named in the error), as
\(values FAMILY octet-vector port); the address has N octets."
  (unless (= (length address) 2)
    (error "~A of an ~A takes an address (~D octets) and a port; got ~S"
           who class n address))
  (destructuring-bind (host port) address
    (unless (typep port '(integer 0 65535))
      (error 'type-error :datum port :expected-type '(integer 0 65535)))
    (values family (octets host n who) port)))

(defmethod socket-address-args ((socket inet-socket) address who)
  (ip-address-args address who "INET-SOCKET" 2 4))

(defmethod socket-address-args ((socket inet6-socket) address who)
  (ip-address-args address who "INET6-SOCKET" 10 16))

(defmethod socket-address-args ((socket local-socket) address who)
  (declare (ignorable who))
  (unless (and (= (length address) 1) (stringp (first address)))
    (error 'type-error :datum (first address) :expected-type 'string))
  (values 1 (coerce (first address) 'simple-string) 0))

(defmethod socket-address-args ((socket local-abstract-socket) address who)
  (unless (= (length address) 1)
    (error "~A of a LOCAL-ABSTRACT-SOCKET takes one name; got ~S" who address))
  (let ((name (first address)))
    (values 1 (etypecase name
                (string (encode-string name :utf-8))
                (pathname (encode-string (namestring name) :utf-8))
                ((array (unsigned-byte 8) (*)) (coerce name '(simple-array (unsigned-byte 8) (*)))))
            0)))

(define-condition unknown-keyword-error (program-error simple-condition) ()
  (:report (lambda (c s) (apply #'format s (simple-condition-format-control c)
                                (simple-condition-format-arguments c))))
  (:documentation "A keyword argument the function does not take."))

(defun check-keys (who args allowed)
  "Signal a PROGRAM-ERROR when the keyword arguments ARGS name a key not in
ALLOWED (ECL's generic functions do not check them; SBCL's do)."
  (loop for (k) on args by #'cddr
        unless (member k allowed)
          do (error 'unknown-keyword-error
                    :format-control "~S: unknown keyword argument ~S (allowed: ~{~S~^ ~})"
                    :format-arguments (list who k allowed))))

(defun encode-string (string external-format)
  "The octets of STRING in EXTERNAL-FORMAT (:DEFAULT means UTF-8)."
  (let ((v (make-array (length string) :element-type '(unsigned-byte 8)
                                       :adjustable t :fill-pointer 0)))
    (with-open-stream (s (ext:make-sequence-output-stream
                          v :external-format (if (eq external-format :default)
                                                 :utf-8 external-format)))
      (write-string string s))
    (coerce v '(simple-array (unsigned-byte 8) (*)))))

(defun address-values (family address port)
  "Lisp values for an address the C side returned."
  (case family
    ((2 10) (values address port))
    (t (values address))))

;;; -- Generic functions -----------------------------------------------

(defgeneric socket-bind (socket &rest address)
  (:documentation "Bind SOCKET to ADDRESS: for inet sockets a vector (or
list) of 4 octets and a port (16 octets for inet6), for local sockets a
file name.  Returns NIL."))

(defmethod socket-bind ((socket socket) &rest address)
  (let ((fd (open-fd socket "bind")))
    (multiple-value-bind (family addr port) (socket-address-args socket address "bind")
      (with-bsd-errors (eclsock::%bsd-bind fd family addr port))
      nil)))

(defgeneric socket-listen (socket backlog)
  (:documentation "Listen on SOCKET with queue length BACKLOG.  An unbound inet
socket gets a free port on all addresses.  Returns NIL."))

(defmethod socket-listen ((socket socket) backlog)
  (unless (typep backlog '(integer 0 #x7fffffff))
    (error 'type-error :datum backlog :expected-type '(integer 0)))
  (with-bsd-errors (eclsock::%bsd-listen (open-fd socket "listen") backlog))
  nil)

(defgeneric socket-accept (socket)
  (:documentation "Accept a connection on listening SOCKET: 3 values, a new
socket of the same class, type and protocol, the peer's address and its port.
On a non-blocking SOCKET with nothing pending, returns NIL (as SBCL does)."))

(defmethod socket-accept ((socket socket))
  (let ((fd (with-closed-check (socket "accept")
              (with-bsd-errors (eclsock::%bsd-accept (open-fd socket "accept"))))))
    (when fd
      (let ((new (make-instance (class-of socket) :type (socket-type socket)
                                                  :protocol (socket-protocol socket)
                                                  :descriptor fd)))
        (multiple-value-bind (addr port)
            (ignore-errors (socket-peername new))
          (values new addr port))))))

(defgeneric socket-connect (socket &rest address)
  (:documentation "Connect SOCKET to ADDRESS (as for SOCKET-BIND).  Returns
SOCKET.  On a non-blocking socket signals OPERATION-IN-PROGRESS."))

(defmethod socket-connect ((socket socket) &rest address)
  (let ((fd (open-fd socket "connect")))
    (multiple-value-bind (family addr port) (socket-address-args socket address "connect")
      (with-bsd-errors (eclsock::%bsd-connect fd family addr port))
      socket)))

(defgeneric socket-name (socket)
  (:documentation "SOCKET's local address: address and port (inet), or the file name."))

(defmethod socket-name ((socket socket))
  (multiple-value-bind (family addr port)
      (with-bsd-errors (eclsock::%bsd-address (open-fd socket "getsockname") nil))
    (address-values family addr port)))

(defgeneric socket-peername (socket)
  (:documentation "The address SOCKET is connected to: address and port (inet),
or the file name (NIL for an unnamed peer).  NOT-CONNECTED-ERROR when unconnected."))

(defmethod socket-peername ((socket socket))
  (multiple-value-bind (family addr port)
      (with-bsd-errors (eclsock::%bsd-address (open-fd socket "getpeername") t))
    (address-values family addr port)))

(defgeneric non-blocking-mode (socket)
  (:documentation "True when SOCKET is in non-blocking mode.  SETF-able."))

(defmethod non-blocking-mode ((socket socket))
  (with-bsd-errors (eclsock::%bsd-nonblock (open-fd socket "fcntl"))))

(defgeneric (setf non-blocking-mode) (flag socket)
  (:documentation "Turn non-blocking mode of SOCKET on (FLAG true) or off; returns FLAG."))

(defmethod (setf non-blocking-mode) (flag (socket socket))
  (with-bsd-errors (eclsock::%bsd-set-nonblock (open-fd socket "fcntl") (and flag t)))
  flag)

(defgeneric socket-close (socket &key abort)
  (:documentation "Close SOCKET (its stream, when SOCKET-MAKE-STREAM made one;
with ABORT, without sending buffered output).  Returns T, and NIL when it was
already closed."))

(defmethod socket-close ((socket socket) &rest args &key abort)
  (check-keys 'socket-close args '(:abort))
  (with-slots (file-descriptor stream) socket
    (cond ((eclsock::close-owner socket)
           (setf file-descriptor -1)
           t)
          ((eclsock::end-release socket)  ; its stream owns the descriptor
           (close stream :abort abort)
           t)
          (t nil))))

(defgeneric socket-shutdown (socket &key direction)
  (:documentation "Shut down one or both directions of SOCKET's connection:
DIRECTION :INPUT, :OUTPUT or :IO.  The peer reads end of file after :OUTPUT.
Returns NIL."))

(defmethod socket-shutdown ((socket socket) &rest args &key direction)
  (check-keys 'socket-shutdown args '(:direction))
  (let ((how (ecase direction (:input 0) (:output 1) (:io 2)))
        (stream (slot-value socket 'stream)))
    (with-bsd-errors
      (if (and stream (open-stream-p stream))
          (eclsock::%stream-shutdown stream how)
          (eclsock::%shutdown-fd (open-fd socket "shutdown") how)))
    nil))

(defgeneric socket-open-p (socket)
  (:documentation "True while SOCKET (and its stream, if it has one) is open."))

(defmethod socket-open-p ((socket socket))
  (let ((stream (slot-value socket 'stream)))
    (case (eclsock::owner-state socket)
      (:released (open-stream-p stream))
      (:open t)
      (t nil))))

;;; -- Datagrams and raw I/O ---------------------------------------------

(defun receive-flags (oob peek waitall dontwait datagram)
  (logior (if oob (c-constant "MSG_OOB") 0)
          (if peek (c-constant "MSG_PEEK") 0)
          (if waitall (c-constant "MSG_WAITALL") 0)
          (if dontwait (c-constant "MSG_DONTWAIT") 0)
          (if datagram (c-constant "MSG_TRUNC") 0)))

(defgeneric socket-receive (socket buffer length &key oob peek waitall dontwait element-type)
  (:documentation "Receive up to LENGTH elements into BUFFER (a string or an
integer vector; NIL: a new one of LENGTH and ELEMENT-TYPE, CHARACTER by
default).  Returns BUFFER, the octet count (a datagram's full size even when
longer than LENGTH), the sender's address and port.  NIL when the socket is
non-blocking (or DONTWAIT) and nothing is there."))

(defmethod socket-receive ((socket socket) buffer length
                           &rest args &key oob peek waitall dontwait (element-type 'character))
  (check-keys 'socket-receive args '(:oob :peek :waitall :dontwait :element-type))
  (let* ((fd (open-fd socket "recvfrom"))
         (length (or length (and buffer (length buffer))
                     (error "SOCKET-RECEIVE needs a BUFFER or a LENGTH")))
         (buffer (or buffer (make-array length :element-type element-type))))
    (unless (typep length '(integer 0 #.array-dimension-limit))
      (error 'type-error :datum length :expected-type '(integer 0)))
    (unless (and (arrayp buffer) (<= length (length buffer))
                 (or (stringp buffer)
                     (typep buffer '(array (unsigned-byte 8) (*))) ; no SUBTYPEP: per call
                     (subtypep (array-element-type buffer) 'integer)))
      (error 'type-error :datum buffer
                         :expected-type `(or string (vector integer)) ))
    (let* ((octets (if (typep buffer '(simple-array (unsigned-byte 8) (*)))
                       buffer
                       (make-array length :element-type '(unsigned-byte 8))))
           (flags (receive-flags oob peek waitall dontwait (eq (socket-type socket) :datagram))))
      (multiple-value-bind (count family addr port)
          (with-closed-check (socket "recvfrom")
            (with-bsd-errors (eclsock::%bsd-receive fd octets 0 length flags)))
        (when (socket-closed-p socket)  ; closed by another thread meanwhile
          (bsd-raise "recvfrom" :ebadf "Socket is closed"))
        (when count
          (unless (eq octets buffer)
            (let ((n (min count length)))
              (if (stringp buffer)
                  (dotimes (i n) (setf (char buffer i) (code-char (aref octets i))))
                  (replace buffer octets :end1 n))))
          (multiple-value-bind (a p) (address-values family addr port)
            (values buffer count a p)))))))

(defgeneric socket-send (socket buffer length &key address external-format oob eor
                                dontroute dontwait nosignal confirm more)
  (:documentation "Send LENGTH octets of BUFFER (an octet vector, or a string
encoded with EXTERNAL-FORMAT, UTF-8 by default) on SOCKET; with ADDRESS (a
list of address and port, or a file name list), to that address.  Returns
the octets sent, or NIL when a non-blocking socket cannot take them now."))

(defmethod socket-send ((socket socket) buffer length
                        &rest args &key address (external-format :default) oob eor dontroute
                          dontwait nosignal confirm more)
  (declare (ignore nosignal))           ; always: MSG_NOSIGNAL
  (check-keys 'socket-send args '(:address :external-format :oob :eor :dontroute
                                  :dontwait :nosignal :confirm :more))
  (let* ((fd (open-fd socket "sendto"))
         (octets (etypecase buffer
                   (string (encode-string buffer external-format))
                   ((array (unsigned-byte 8) (*))
                    (if (typep buffer '(simple-array (unsigned-byte 8) (*)))
                        buffer
                        (coerce buffer '(simple-array (unsigned-byte 8) (*)))))))
         (length (or length (length octets)))
         (flags (logior (if oob (c-constant "MSG_OOB") 0)
                        (if eor (c-constant "MSG_EOR") 0)
                        (if dontroute (c-constant "MSG_DONTROUTE") 0)
                        (if dontwait (c-constant "MSG_DONTWAIT") 0)
                        (if confirm (c-constant "MSG_CONFIRM") 0)
                        (if more (c-constant "MSG_MORE") 0))))
    (unless (typep length `(integer 0 ,(length octets)))
      (error 'type-error :datum length :expected-type `(integer 0 ,(length octets))))
    (multiple-value-bind (family addr port)
        (if address
            (socket-address-args socket address "sendto")
            (values 0 nil 0))
      (with-bsd-errors
        (eclsock::%bsd-send fd octets 0 length flags family addr port)))))

;;; -- Streams ------------------------------------------------------------

(defgeneric socket-make-stream (socket &key input output element-type buffering
                                       external-format timeout auto-close serve-events)
  (:documentation "The stream over SOCKET: an ecl-sock buffered socket stream
\(a real ECL stream).  One per socket: later calls return the same stream.
INPUT/OUTPUT say which directions it allows (at least one); ELEMENT-TYPE is
CHARACTER (default), (UNSIGNED-BYTE 8), or :DEFAULT for a bivalent stream;
EXTERNAL-FORMAT is ECL's; BUFFERING :NONE sends each write at once, :LINE and
:FULL buffer; TIMEOUT (seconds) bounds each read, which then signals
SOCKET:SOCKET-TIMEOUT-ERROR (it sets SO_RCVTIMEO).  AUTO-CLOSE and
SERVE-EVENTS are accepted and ignored: the stream always closes the
descriptor when closed or collected.  The stream owns the descriptor from
now on; SOCKET-CLOSE closes the stream."))

(defmethod socket-make-stream ((socket socket)
                               &rest args
                               &key input output (element-type 'character)
                                 (buffering :full) (external-format :default)
                                 timeout auto-close serve-events)
  (declare (ignore auto-close serve-events))
  (check-keys 'socket-make-stream args '(:input :output :element-type :buffering
                                         :external-format :timeout :auto-close
                                         :serve-events))
  (with-slots (stream) socket
    (when stream
      (return-from socket-make-stream stream))
    (unless (or input output)
      (error "SOCKET-MAKE-STREAM: the stream must be opened for input or output (or both)."))
    (unless (member buffering '(:none :line :full))
      (error 'type-error :datum buffering :expected-type '(member :none :line :full)))
    (let* ((fd (open-fd socket "socket-make-stream"))
           (bivalent (eq element-type :default))
           ;; named types such as FLEXI-STREAMS:OCTET resolve there too
           (et (eclsock::normalize-element-type (if bivalent 'character element-type)))
           (ef (eclsock::normalize-external-format external-format)))
      (when timeout
        (unless (typep timeout '(real 0))
          (error 'type-error :datum timeout :expected-type '(or null (real 0))))
        (setf (sockopt-receive-timeout socket) timeout))
      ;; host and port: the peer's, which %WRAP-FD looks up once for the
      ;; stream's name too (T)
      (let ((s (with-bsd-errors
                 (eclsock::%wrap-fd fd et ef (not (eq buffering :none)) t nil))))
        (setf stream s)
        (eclsock::release-owner socket)   ; the stream owns the descriptor now
        (unless (and input output)
          (eclsock::%stream-restrict s (and input t) (and output t)))
        s))))

;;; ------------------------------------------------------------------
;;; Socket options

(defmacro define-sockopt (name level option kind doc &key read-only)
  "Define reader NAME and its SETF for OPTION at LEVEL (C constant names)."
  (let ((k (ecase kind (:int 0) (:bool 1) (:timeval 2) (:linger 3) (:string 4))))
    `(progn
       (defgeneric ,name (socket) (:documentation ,doc))
       (defmethod ,name ((socket socket))
         (with-bsd-errors
           (eclsock::%bsd-getsockopt (open-fd socket "getsockopt")
                                     (c-constant ,level) (c-constant ,option) ,k)))
       ,@(unless read-only
           `((defgeneric (setf ,name) (value socket)
               (:documentation ,(format nil "Set ~A of SOCKET; returns VALUE." option)))
             (defmethod (setf ,name) (value (socket socket))
               (with-bsd-errors
                 (eclsock::%bsd-setsockopt (open-fd socket "setsockopt")
                                           (c-constant ,level) (c-constant ,option) ,k
                                           value))
               value))))))

(define-sockopt sockopt-type "SOL_SOCKET" "SO_TYPE" :int
  "The socket's type as an integer (1 stream, 2 datagram); read only." :read-only t)
(define-sockopt sockopt-receive-buffer "SOL_SOCKET" "SO_RCVBUF" :int
  "SO_RCVBUF: the receive buffer size in octets (Linux reports twice what was set).")
(define-sockopt sockopt-send-buffer "SOL_SOCKET" "SO_SNDBUF" :int
  "SO_SNDBUF: the send buffer size in octets.")
(define-sockopt sockopt-receive-low-water "SOL_SOCKET" "SO_RCVLOWAT" :int
  "SO_RCVLOWAT: octets needed before a read wakes up.")
(define-sockopt sockopt-send-low-water "SOL_SOCKET" "SO_SNDLOWAT" :int
  "SO_SNDLOWAT (Linux does not let it be set).")
(define-sockopt sockopt-reuse-address "SOL_SOCKET" "SO_REUSEADDR" :bool
  "SO_REUSEADDR: bind a local address in TIME_WAIT again.")
(define-sockopt sockopt-keep-alive "SOL_SOCKET" "SO_KEEPALIVE" :bool
  "SO_KEEPALIVE: probe idle connections.")
(define-sockopt sockopt-dont-route "SOL_SOCKET" "SO_DONTROUTE" :bool
  "SO_DONTROUTE: bypass routing.")
(define-sockopt sockopt-broadcast "SOL_SOCKET" "SO_BROADCAST" :bool
  "SO_BROADCAST: allow datagrams to broadcast addresses.")
(define-sockopt sockopt-debug "SOL_SOCKET" "SO_DEBUG" :bool
  "SO_DEBUG (setting it needs privileges).")
(define-sockopt sockopt-oob-inline "SOL_SOCKET" "SO_OOBINLINE" :bool
  "SO_OOBINLINE: out-of-band data in the normal stream.")
(define-sockopt sockopt-bind-to-device "SOL_SOCKET" "SO_BINDTODEVICE" :string
  "SO_BINDTODEVICE: the interface name (a string) the socket is bound to, or \"\".")
(define-sockopt sockopt-priority "SOL_SOCKET" "SO_PRIORITY" :int
  "SO_PRIORITY (Linux): the priority of the socket's packets.")
(define-sockopt sockopt-pass-credentials "SOL_SOCKET" "SO_PASSCRED" :bool
  "SO_PASSCRED (Linux, local sockets): receive the peer's credentials.")
(define-sockopt sockopt-bsd-compatible "SOL_SOCKET" "SO_BSDCOMPAT" :bool
  "SO_BSDCOMPAT (Linux; obsolete, kept for SBCL's list).")
(define-sockopt sockopt-tcp-nodelay "IPPROTO_TCP" "TCP_NODELAY" :bool
  "TCP_NODELAY: send small segments at once (no Nagle delay).")
(define-sockopt sockopt-tcp-keepidle "IPPROTO_TCP" "TCP_KEEPIDLE" :int
  "TCP_KEEPIDLE (Linux): idle seconds before keep-alive probes.")
(define-sockopt sockopt-tcp-keepintvl "IPPROTO_TCP" "TCP_KEEPINTVL" :int
  "TCP_KEEPINTVL (Linux): seconds between keep-alive probes.")
(define-sockopt sockopt-tcp-keepcnt "IPPROTO_TCP" "TCP_KEEPCNT" :int
  "TCP_KEEPCNT (Linux): probes before the connection is dropped.")
(define-sockopt sockopt-tcp-user-timeout "IPPROTO_TCP" "TCP_USER_TIMEOUT" :int
  "TCP_USER_TIMEOUT (Linux): milliseconds sent data may stay unacknowledged
before the connection is dropped; 0 is the system's default.")
(define-sockopt sockopt-error "SOL_SOCKET" "SO_ERROR" :int
  "SO_ERROR: the socket's pending error as an errno (0 when none), which
reading clears; read only." :read-only t)
(define-sockopt sockopt-linger "SOL_SOCKET" "SO_LINGER" :linger
  "SO_LINGER (ECL's contrib): seconds close waits for unsent data, 0 when off.")
(define-sockopt sockopt-receive-timeout "SOL_SOCKET" "SO_RCVTIMEO" :timeval
  "SO_RCVTIMEO (ECL's contrib): seconds a read may wait (a double; 0 = no limit).
Reads on the socket's stream that wait longer signal SOCKET:SOCKET-TIMEOUT-ERROR.")
(define-sockopt sockopt-send-timeout "SOL_SOCKET" "SO_SNDTIMEO" :timeval
  "SO_SNDTIMEO (ECL's contrib): seconds a write may wait (a double; 0 = no limit).")

;;; ------------------------------------------------------------------
;;; Names

(defclass host-ent ()
  ((name :initarg :name :accessor host-ent-name
         :documentation "The name looked up (as SBCL: the string given).")
   (aliases :initarg :aliases :initform nil :accessor host-ent-aliases
            :documentation "Other names (NIL).")
   (address-type :initarg :type :initform 2 :accessor host-ent-address-type
                 :documentation "2 for IPv4, 10 for IPv6.")
   (addresses :initarg :addresses :initform nil :accessor host-ent-addresses
              :documentation "The addresses, octet vectors of 4 or 16."))
  (:documentation "A host's name and addresses, from GET-HOST-BY-NAME or
GET-HOST-BY-ADDRESS."))

(eclsock::document-function 'host-ent-name "The name of a HOST-ENT (for GET-HOST-BY-NAME, the name given).")
(eclsock::document-function 'host-ent-aliases "Other names of a HOST-ENT (a list; NIL).")
(eclsock::document-function 'host-ent-address-type "The address family of a HOST-ENT: 2 (IPv4) or 10 (IPv6).")
(eclsock::document-function 'host-ent-addresses "The addresses of a HOST-ENT: octet vectors of 4 or 16.")

(defmethod print-object ((h host-ent) out)
  (print-unreadable-object (h out :type t)
    (format out "~S ~{~A~^ ~}" (host-ent-name h) (mapcar #'address-text (host-ent-addresses h)))))

(defgeneric host-ent-address (host-ent)
  (:documentation "The first address of HOST-ENT."))

(defmethod host-ent-address ((h host-ent))
  (first (host-ent-addresses h)))

(defun dotted-quad-p (x)
  "True when X is text MAKE-INET-ADDRESS accepts."
  (and (stringp x) (ignore-errors (make-inet-address x)) t))

(deftype dotted-quad ()
  "A string of four numbers 0..255 separated by dots."
  '(satisfies dotted-quad-p))

(defun make-inet-address (dotted-quads)
  "The 4-octet vector of DOTTED-QUADS (\"127.0.0.1\"); an error when it is not
four numbers 0..255 separated by dots."
  (check-type dotted-quads string)
  (let ((parts '()) (start 0))
    (loop for dot = (position #\. dotted-quads :start start)
          do (push (subseq dotted-quads start dot) parts)
             (if dot (setf start (1+ dot)) (return)))
    (setf parts (nreverse parts))
    (let ((nums (mapcar (lambda (p) (and (plusp (length p)) (<= (length p) 3)
                                         (every #'digit-char-p p) (parse-integer p)))
                        parts)))
      (unless (and (= (length nums) 4) (every (lambda (n) (typep n '(unsigned-byte 8))) nums))
        ;; a TYPE-ERROR, as SBCL signals
        (error 'type-error :datum dotted-quads :expected-type 'dotted-quad))
      (coerce nums '(simple-array (unsigned-byte 8) (4))))))

(defun make-inet6-address (colon-separated-integers)
  "The 16-octet vector of an IPv6 address in text form (\"::1\"); an error
when it is not one."
  (check-type colon-separated-integers string)
  (multiple-value-bind (family octets)
      (eclsock::%parse-address colon-separated-integers)
    (unless (eq family :inet6)
      (error "~S is not an IPv6 address" colon-separated-integers))
    (coerce octets '(simple-array (unsigned-byte 8) (16)))))

(defun text-address (text family)
  (if (eq family :inet6)
      (make-inet6-address text)
      (make-inet-address text)))

(defun get-host-by-name (node)
  "Look NODE up: 2 values, always two HOST-ENTs as SBCL 2.2.9 returns them:
one of type 2 with NODE's IPv4 addresses and one of type 10 with its IPv6
addresses, either possibly with none (cl-postgres calls HOST-ENT-ADDRESS on
both).  Signals HOST-NOT-FOUND-ERROR (a NAME-SERVICE-ERROR) when NODE is
unknown."
  (check-type node string)
  (multiple-value-bind (canon addrs families)
      (with-bsd-errors (eclsock::%resolve node))
    (declare (ignore canon))
    (flet ((ent (family type)
             (let ((list (remove-duplicates
                          (loop for a in addrs for f in families
                                when (eq f family) collect (text-address a f))
                          :test #'equalp :from-end t)))
               (make-instance 'host-ent :name node :type type :addresses list))))
      (values (ent :inet 2) (ent :inet6 10)))))

(defun get-host-by-address (address)
  "The HOST-ENT naming ADDRESS (4 or 16 octets, a vector or a list).
Signals HOST-NOT-FOUND-ERROR when the address has no name."
  (let* ((v (octets address (if (= (length address) 16) 16 4) "get-host-by-address"))
         (text (address-text v))
         (name (eclsock::%address-name text)))
    (unless name
      (bsd-raise "getnameinfo" :eai-noname "No name for this address" text))
    (make-instance 'host-ent :name name :type (if (= (length v) 16) 10 2)
                             :addresses (list v))))

;;; ------------------------------------------------------------------
;;; Drop-in: REQUIRE and ASDF must not load ECL's contrib from now on.

(defun register-with-asdf ()
  "Tell ASDF (when loaded) that sb-bsd-sockets (and ECL's sockets) are
here: immutable preloaded systems, so it never loads ECL's contrib."
  (let ((pkg (find-package "ASDF")))
    (when pkg
      (let ((immutable (find-symbol "REGISTER-IMMUTABLE-SYSTEM" pkg))
            (preloaded (find-symbol "REGISTER-PRELOADED-SYSTEM" pkg)))
        (dolist (name '("sb-bsd-sockets" "sockets"))
          (cond ((and immutable (fboundp immutable)) (funcall immutable name))
                ((and preloaded (fboundp preloaded)) (funcall preloaded name))))))))

(pushnew "SB-BSD-SOCKETS" *modules* :test #'string=)
(pushnew "SOCKETS" *modules* :test #'string=)
(eclsock::when-asdf 'register-with-asdf)
(provide "SOCK-BSD")
