;;;; conditions.lisp - the one condition hierarchy of ecl-sock.
;;;;
;;;; C reports every failure through %SIGNAL-SOCKET-ERROR with the error's
;;;; keyword (:ECONNREFUSED, :ETIMEDOUT, :EAI-NONAME ...); the table below
;;;; picks the class.  SOCKET-ERROR is a STREAM-ERROR (as Allegro's is) and
;;;; an EXT:OS-STREAM-ERROR, so an EXT:OS-ERROR (as CLISP's socket errors
;;;; are), so handlers written for either Lisp catch it; its report has
;;;; CLISP's shape "... (ECONNREFUSED): Connection refused".  Allegro's identifier keywords are computed
;;;; from the same code.

(in-package "ECLSOCK")

(define-condition ext:os-error (error) ()
  (:documentation "An error reported by the operating system (CLISP's name).
Socket failures are of this type; EXT:OS-ERROR-CODE returns the errno keyword."))

(define-condition ext:os-stream-error (ext:os-error stream-error) ()
  (:documentation "An operating system error on a stream (CLISP's name): both an
EXT:OS-ERROR and a STREAM-ERROR.  Every SOCKET-ERROR is one, so CLISP code
that handles EXT:OS-STREAM-ERROR (usocket's CLISP backend, for one) catches
socket failures."))

(define-condition socket-error (ext:os-stream-error)
  ((code :initarg :code :initform :unknown :reader socket-error-code
         :documentation "The error keyword, e.g. :ECONNREFUSED or :EAI-NONAME.")
   (errno :initarg :errno :initform nil :reader socket-error-errno
          :documentation "The errno number, or NIL for resolver failures.")
   (syscall :initarg :syscall :initform nil :reader socket-error-syscall
            :documentation "The failing operation, e.g. \"connect\".")
   (host :initarg :host :initform nil :reader socket-error-host)
   (port :initarg :port :initform nil :reader socket-error-port)
   (message :initarg :message :initform nil :reader socket-error-message))
  (:default-initargs :stream nil)
  (:report report-socket-error)
  (:documentation "A socket operation failed.  Readers: SOCKET-ERROR-CODE (errno
keyword), SOCKET-ERROR-ERRNO, SOCKET-ERROR-SYSCALL, SOCKET-ERROR-HOST,
SOCKET-ERROR-PORT, SOCKET-ERROR-IDENTIFIER (Allegro's keyword) and
STREAM-ERROR-STREAM (the socket stream, or NIL)."))

(defun report-socket-error (c s)
  ;; CLISP's shape: "... (ECONNREFUSED): Connection refused"
  (let ((host (socket-error-host c)) (port (socket-error-port c))
        (syscall (socket-error-syscall c)))
    (format s "~@[~A~]~:[~*~; ~A~]~@[:~A~]~:[~; ~](~A): ~A"
            syscall host host port (or syscall host)
            (socket-error-code c)
            (or (socket-error-message c) "socket error"))
    (when (stream-error-stream c)
      (format s " on ~A" (stream-name-string (stream-error-stream c))))))

(defun stream-name-string (stream)
  (if (socket-stream-p stream) (%stream-name stream) (princ-to-string stream)))

(defmacro define-socket-errors (&rest specs)
  `(progn
     ,@(loop for (name codes doc) in specs
             collect `(define-condition ,name (socket-error) ()
                        (:documentation ,doc)))
     (defparameter *code-classes*
       ',(loop for (name codes) in specs
               nconc (loop for c in codes collect (cons c name))))))

(define-socket-errors
  (connection-refused-error (:econnrefused)
   "Nobody listens at the address connected to (ECONNREFUSED).")
  (connection-reset-error (:econnreset :epipe :econnaborted :enetreset)
   "The peer went away: reset, aborted, or a write after it closed.")
  (address-in-use-error (:eaddrinuse)
   "The local address is already bound (EADDRINUSE).")
  (address-not-available-error (:eaddrnotavail)
   "The local address does not belong to this host (EADDRNOTAVAIL).")
  (socket-timeout-error (:etimedout)
   "A :TIMEOUT passed, or the kernel gave up on the connection (ETIMEDOUT).")
  (host-not-found-error (:eai-noname :eai-nodata :eai-addrfamily :eai-fail :eai-again)
   "The host name could not be resolved.")
  (network-unreachable-error (:enetunreach :enetdown)
   "No route to the network.")
  (host-unreachable-error (:ehostunreach :ehostdown)
   "No route to the host.")
  (ssl-error (:tls-error)
   "A TLS operation failed: a protocol error on an established TLS stream (the
message gives OpenSSL's reason).  The superclass of every TLS condition."))

;;; The TLS conditions below SSL-ERROR (lisp/ssl.lisp documents them).
(define-condition ssl-handshake-error (ssl-error) ()
  (:documentation "The TLS handshake failed: no common protocol or cipher, an
alert from the peer, a peer that is not speaking TLS or that closed the
connection during the handshake, or a handshake that timed out."))

(define-condition ssl-verify-error (ssl-handshake-error)
  ((verify-result :initarg :detail :initform nil :reader ssl-verify-error-result
                  :documentation "OpenSSL's X509 verify result (an integer)."))
  (:documentation "The peer's certificate was refused.  SSL-VERIFY-ERROR-REASON
says why (:EXPIRED, :HOSTNAME-MISMATCH, :UNKNOWN-CA, :SELF-SIGNED ...),
SSL-VERIFY-ERROR-RESULT gives OpenSSL's X509 verify code, and the message
OpenSSL's text for it."))

(define-condition ssl-handshake-timeout-error (ssl-handshake-error socket-timeout-error) ()
  (:documentation "The TLS handshake did not finish within *SSL-HANDSHAKE-TIMEOUT*
seconds: the peer stopped answering in the middle of it."))

(define-condition ssl-configuration-error (ssl-error) ()
  (:documentation "A TLS setting was refused before any connection: a
certificate, key or CA file that cannot be loaded, a key that does not match
its certificate, a cipher list with nothing usable, an unsupported method."))

(define-condition ssl-unavailable-error (ssl-error) ()
  (:documentation "ecl-sock was built without OpenSSL (configure
--without-openssl), so TLS streams cannot be made."))

(setf *code-classes*
      (append *code-classes*
              '((:tls-handshake . ssl-handshake-error) (:tls-verify . ssl-verify-error)
                (:tls-handshake-timeout . ssl-handshake-timeout-error)
                (:tls-config . ssl-configuration-error)
                (:tls-unavailable . ssl-unavailable-error))))

(defparameter *verify-reasons*
  '((2 . :unknown-ca) (20 . :unknown-ca) (21 . :unknown-ca) (19 . :unknown-ca)
    (10 . :expired) (9 . :not-yet-valid) (18 . :self-signed)
    (62 . :hostname-mismatch) (64 . :hostname-mismatch) (63 . :hostname-mismatch)
    (22 . :chain-too-long) (23 . :revoked) (7 . :bad-signature)
    (26 . :invalid-purpose) (3 . :no-crl) (12 . :crl-expired))
  "OpenSSL X509 verify codes and the keywords SSL-VERIFY-ERROR-REASON returns.")

(defun ssl-verify-error-reason (condition)
  "Why the peer's certificate was refused, as a keyword: :EXPIRED,
:NOT-YET-VALID, :HOSTNAME-MISMATCH (also for an IP address not in the
certificate), :UNKNOWN-CA (no trusted issuer), :SELF-SIGNED, :CHAIN-TOO-LONG,
:REVOKED, :BAD-SIGNATURE, :INVALID-PURPOSE ... or :OTHER."
  (or (cdr (assoc (ssl-verify-error-result condition) *verify-reasons*)) :other))

(define-condition ssl-truncated-eof (warning)
  ((stream :initarg :stream :initform nil :reader ssl-truncated-eof-stream))
  (:report (lambda (c s)
             (format s "The TLS peer of ~A closed the connection without close_notify: ~
the data may be truncated."
                     (let ((st (ssl-truncated-eof-stream c)))
                       (if st (stream-name-string st) "a stream")))))
  (:documentation "Signalled (with SIGNAL: a warning nobody has to handle)
when a TLS stream reaches end of file because the peer closed the connection
without TLS's close_notify.  The read then returns end of file as usual; a
program that must tell a complete message from a cut one handles this
condition (HANDLER-BIND, or HANDLER-CASE to treat it as an error)."))

(defun %signal-truncation (stream)
  "Called from C (stream.c) when a TLS stream ends without close_notify."
  (signal 'ssl-truncated-eof :stream stream)
  nil)

(defparameter *code-identifiers*
  '((:econnrefused . :connection-refused) (:eaddrinuse . :address-in-use)
    (:eaddrnotavail . :address-not-available) (:ehostunreach . :host-unreachable)
    (:enetunreach . :network-unreachable) (:enetdown . :network-down)
    (:enetreset . :network-reset) (:econnaborted . :connection-aborted)
    (:econnreset . :connection-reset) (:etimedout . :connection-timed-out)
    (:enobufs . :no-buffer-space) (:eshutdown . :shutdown) (:ehostdown . :host-down)
    (:epipe . :broken-pipe))
  "Errno keywords and the identifiers Allegro's socket errors carry.")

(defgeneric socket-error-identifier (condition)
  (:documentation "Allegro's identifier for CONDITION: :CONNECTION-REFUSED,
:ADDRESS-IN-USE, :CONNECTION-RESET, :CONNECTION-TIMED-OUT ... or :UNKNOWN.")
  (:method ((c socket-error))
    (or (cdr (assoc (socket-error-code c) *code-identifiers*)) :unknown)))

(defun ext:os-error-code (condition)
  "The errno keyword of an OS-ERROR, as CLISP's EXT:OS-ERROR-CODE."
  (if (typep condition 'socket-error) (socket-error-code condition) :unknown))

(defvar *error-class-function* nil
  "NIL, or a function of an error keyword that returns the condition class to
signal for it.  A face with its own condition classes (the SB-BSD-SOCKETS
face) binds it around its calls into C; its classes are SOCKET-ERRORs too.")

(defun %signal-socket-error (syscall code errno message host port stream
                            &optional detail)
  "Called from C (errors.c) for every failure: signal the condition for CODE.
DETAIL is the X509 verify result for :TLS-VERIFY."
  (let ((class (or (and *error-class-function* (funcall *error-class-function* code))
                   (cdr (assoc code *code-classes*))
                   'socket-error)))
    (if (eq class 'ssl-verify-error)
        (error class :syscall syscall :code code :errno errno :message message
                     :host host :port port :stream stream :detail detail)
        (error class :syscall syscall :code code :errno errno :message message
                     :host host :port port :stream stream))))

;;; Allegro's readers of EXCL:SOCKET-ERROR (the same class as SOCKET-ERROR;
;;; EXCL is made in packages.lisp).  Other stream errors answer too, as
;;; Allegro's do: :UNKNOWN and NIL.
(defgeneric excl:stream-error-identifier (condition)
  (:documentation "Allegro's keyword for what went wrong: :CONNECTION-REFUSED,
:ADDRESS-IN-USE, :CONNECTION-RESET, :BROKEN-PIPE, :CONNECTION-TIMED-OUT ... or
:UNKNOWN (the same as SOCKET-ERROR-IDENTIFIER).")
  (:method ((c socket-error)) (socket-error-identifier c))
  (:method ((c stream-error)) :unknown))

(defgeneric excl:stream-error-code (condition)
  (:documentation "The errno number behind CONDITION (Allegro's reader), or NIL
when there is none (resolver failures, non-socket stream errors).")
  (:method ((c socket-error)) (socket-error-errno c))
  (:method ((c stream-error)) nil))

(defgeneric excl:stream-error-action (condition)
  (:documentation "What was being attempted when CONDITION happened (Allegro's
reader): the failing operation, e.g. \"connect\", \"bind\", \"recv\"; NIL when
unknown.")
  (:method ((c socket-error)) (socket-error-syscall c))
  (:method ((c stream-error)) nil))
