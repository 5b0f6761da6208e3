;;;; core.lisp - what the three API faces share.
;;;;
;;;; Starts the C primitives, and owns: the one timeout parser (every
;;;; :TIMEOUT and seconds/microseconds spelling becomes seconds or NIL),
;;;; element type, external format and :BUFFERED normalisation, argument
;;;; checks (ports, hosts), the one strict parser of dotted IPv4 text
;;;; (PARSE-IPV4, on the C parser), the DESCRIPTOR-OWNER base class with
;;;; its one close protocol and one finalizer (every face's
;;;; descriptor-owning object extends it), the SOCKET-SERVER object, the
;;;; stream notes faces keep about socket streams, which end of a
;;;; connection an object is (SOCKET-CONNECT-ACCESSOR, which faces extend),
;;;; and how socket objects print.  Must not: know any face's classes or names.

(in-package "ECLSOCK")

;;; The C side registers the %primitives into this package.  Only in
;;; compiled code (the build loads the sources to compile the next file,
;;; where there is no C to call).  The one C function is declared here
;;; (as in src/internal.h), so that ECL compiles this file with its own
;;; flags: no include path into our sources.
(eval-when (:load-toplevel)
  (ffi:clines "extern void eclsock_init_primitives(void);")
  (ffi:c-inline () () :void "eclsock_init_primitives()" :one-liner t))

;;; ------------------------------------------------------------------
;;; Docstrings of functions that DEFSTRUCT and DEFINE-CONDITION make

(defun document-function (name doc)
  "Give the function NAME the docstring DOC.  In ECL 21.2.1,
\(SETF (DOCUMENTATION name 'FUNCTION) doc) stores DOC on the function object
while DOCUMENTATION looks under the name, so that DOC is never seen; this
stores it under the name."
  (si::set-documentation name 'function doc))

(document-function 'socket-error-code
                   "The error keyword of a SOCKET-ERROR: :ECONNREFUSED, :ETIMEDOUT, :EAI-NONAME ...")
(document-function 'socket-error-errno
                   "The errno number of a SOCKET-ERROR, or NIL (resolver failures).")
(document-function 'socket-error-syscall
                   "The operation a SOCKET-ERROR comes from, e.g. \"connect\", \"bind\", \"recv\".")
(document-function 'socket-error-host
                   "The host a SOCKET-ERROR is about (as given by the caller), or NIL.")
(document-function 'socket-error-port
                   "The port a SOCKET-ERROR is about, or NIL.")
(document-function '%send-calls
                   "For tests only, not an interface: how many send-family system calls
\(send, sendto; failed ones included) the module has made in this process.")

;;; ------------------------------------------------------------------
;;; Timeouts

(deftype timeout ()
  "What :TIMEOUT accepts: NIL, seconds (a non-negative real), (SEC USEC) or (SEC . USEC)."
  '(or null (real 0) cons))

(defun normalize-timeout (seconds &optional microseconds)
  "SECONDS (and MICROSECONDS) in any of CLISP's forms -> seconds or NIL.
NIL means wait forever."
  (flet ((bad (x) (error 'type-error :datum x :expected-type 'timeout)))
    (cond ((null seconds)
           (when microseconds (bad microseconds))
           nil)
          ((consp seconds)
           (let ((s (car seconds))
                 (u (if (consp (cdr seconds)) (cadr seconds) (cdr seconds))))
             (unless (and (typep s '(real 0)) (typep u '(or null (real 0)))
                          (or (atom (cdr seconds)) (null (cddr seconds))))
               (bad seconds))
             (+ s (/ (or u 0) 1000000))))
          ((typep seconds '(real 0))
           (unless (typep microseconds '(or null (real 0))) (bad microseconds))
           (+ seconds (/ (or microseconds 0) 1000000)))
          (t (bad seconds)))))

;;; ------------------------------------------------------------------
;;; Arguments

(deftype port-number () '(integer 0 65535))

(defun check-port (port)
  (unless (typep port 'port-number)
    (error 'type-error :datum port :expected-type 'port-number))
  port)

(defun dotted (ipaddr)
  (format nil "~D.~D.~D.~D" (ldb (byte 8 24) ipaddr) (ldb (byte 8 16) ipaddr)
          (ldb (byte 8 8) ipaddr) (ldb (byte 8 0) ipaddr)))

(defun string-without-nul-p (object)
  (and (stringp object) (not (find (code-char 0) object))))

(defun parse-ipv4 (text)
  "TEXT as a 32-bit IPv4 address when it is exactly four decimal numbers
0-255 joined by dots (no blanks, signs or leading zeros), else NIL and the
address the C library's laxer reading gives (\"1.2.3\" is 1.2.0.3 there,
as inet_aton reads it), if any.  The text is parsed by C (%PARSE-ADDRESS);
strict means it reads back as itself."
  (when (and (string-without-nul-p text) (every #'standard-char-p text))
    (multiple-value-bind (family value) (%parse-address text)
      (when (eq family :inet)
        (if (string= text (dotted value))
            value
            (values nil (dotted value)))))))

(deftype c-string ()
  "A string C can take: one without a NUL character (a NUL would end the
name early in C, so that the name checked in Lisp is not the name used)."
  '(and string (satisfies string-without-nul-p)))

(defun check-host (host)
  "HOST as a string: a name, a numeric address, or a 32-bit IPv4 integer."
  (typecase host
    (string (coerce host 'simple-string))
    ((unsigned-byte 32) (dotted host))
    (t (error 'type-error :datum host :expected-type '(or string (unsigned-byte 32))))))

(deftype stream-element-type-designator ()
  "What :ELEMENT-TYPE accepts: NIL or :DEFAULT (CHARACTER), a type specifier
for a subtype of CHARACTER, or one for a subtype of INTEGER that fits
\(UNSIGNED-BYTE n) or (SIGNED-BYTE n) with n a multiple of 8 up to 64."
  '(or (member nil :default) symbol cons))

(defun normalize-element-type (element-type)
  "The element type the C side wants for ELEMENT-TYPE, a type specifier
resolved with SUBTYPEP as CLISP does: a subtype of CHARACTER (BASE-CHAR,
\(MEMBER #\\a) ...) gives CHARACTER; a subtype of INTEGER gives the smallest
\(UNSIGNED-BYTE n), else (SIGNED-BYTE n), holding it, so (INTEGER 0 255),
\(MOD 256) and a DEFTYPE'd octet all give (UNSIGNED-BYTE 8).  NIL and :DEFAULT
give CHARACTER.  Anything else, or an n that is not a multiple of 8 up to
64, is a TYPE-ERROR naming what it resolved to."
  (flet ((bad (&optional resolved)
           (error 'simple-type-error
                  :datum element-type :expected-type 'stream-element-type-designator
                  :format-control "~A is not a socket stream element type~@[ (it ~
                                   resolves to ~A, whose size is not a multiple of 8 ~
                                   up to 64)~]: use CHARACTER or (UNSIGNED-BYTE 8)."
                  :format-arguments
                  (list (write-to-string element-type :pretty nil :circle t)
                        (and resolved (write-to-string resolved :pretty nil :circle t)))))
         (sub (a b)
           (handler-case (subtypep a b) (error () (values nil nil)))))
    (cond ((member element-type '(nil :default character base-char)) 'character)
          ;; already in the form the C side takes: no SUBTYPEP (ECL's costs
          ;; microseconds, and this runs for every connection)
          ((and (consp element-type)
                (member (car element-type) '(unsigned-byte signed-byte))
                (consp (cdr element-type)) (null (cddr element-type))
                (member (second element-type) '(8 16 24 32 40 48 56 64)))
           (list (car element-type) (second element-type)))
          ((not (typep element-type '(or symbol cons))) (bad))
          ((and (consp element-type) (not (si::proper-list-p element-type))) (bad))
          ((sub element-type 'character) 'character)
          ((sub element-type 'integer)
           (let ((type (loop for n from 1 to 64
                             thereis (cond ((sub element-type `(unsigned-byte ,n))
                                            `(unsigned-byte ,n))
                                           ((sub element-type `(signed-byte ,n))
                                            `(signed-byte ,n))))))
             (if (and type (zerop (mod (second type) 8)))
                 type
                 (bad type))))
          (t (bad)))))

(defun normalize-external-format (format)
  "ECL's external formats, plus CLISP's line-terminator words :DOS (CRLF),
:UNIX (LF) and :MAC (CR), alone or in a list such as (:LATIN-1 :DOS)."
  (labels ((one (f)
             (case f
               ((nil :default) :default)
               (:dos :crlf)
               (:unix :lf)
               (:mac :cr)
               (t f))))
    (cond ((null format) :default)
          ((and (consp format) (= (length format) 1)) (one (first format)))
          ((consp format)
           (mapcar #'one format))
          ((member format '(:dos :unix :mac)) (list :utf-8 (one format)))
          (t (one format)))))

(defun buffered-p (buffered)
  "CLISP's :BUFFERED: T or :DEFAULT buffer output, NIL sends every write."
  (if buffered t nil))

;;; ------------------------------------------------------------------
;;; Socket streams

(deftype socket-stream ()
  "A stream over a connected socket, made by SOCKET-CONNECT, SOCKET-ACCEPT
and the other faces' constructors."
  '(satisfies socket-stream-p))

(defun flush-mode ()
  "How socket streams tell the flushes ECL makes by itself (after a newline
of TERPRI, WRITE-LINE, FORMAT's ~%, and after PRINT, PRIN1, WRITE) from
explicit ones: :CALL-SITE when ECL's call sites were told apart at load
\(ECL's own flushes are then held, at most 2 ms, and joined with what
follows), :EVERY-FLUSH when they could not be (or ECLSOCK_FLUSH_MODE=every
was set): then every flush sends at once.  Either way an explicit
FORCE-OUTPUT or FINISH-OUTPUT sends at once."
  (%flush-mode))

(defun socket-stream-p (object)
  "True when OBJECT is a socket stream (open or closed)."
  (%socket-stream-p object))

(defun stream-fd (stream &optional (who 'stream-fd))
  "The descriptor under socket stream STREAM; a clear error when closed."
  (unless (socket-stream-p stream)
    (error 'type-error :datum stream :expected-type 'socket-stream))
  (or (%stream-fd stream)
      (%raise (string-downcase (string who)) :ebadf nil nil nil stream)))

(defun print-socket-stream (out stream)
  (print-unreadable-object (stream out)
    (format out "~:[~;CLOSED ~]~:[~;TLS ~]SOCKET-STREAM ~S ~A"
            (null (%stream-fd stream)) (%ssl-stream-p stream)
            (stream-element-type stream)
            (subseq (%stream-name stream) 7))))

;;; Socket streams are ECL built-in streams, which PRINT-OBJECT does not
;;; reach; the pretty printer (on by default in ECL) does.  ECL's
;;; PPRINT-DISPATCH tests a program's entries with TYPEP on every object
;;; the pretty printer prints, in this process, socket or not, so the
;;; entry's type must be cheap to test: named by SOCKET-STREAM, TYPEP
;;; expands the DEFTYPE each time (about 5,000 instructions per printed
;;; object, 5% of a Hunchentoot request); (SATISFIES <a C function>) is
;;; one CASE branch and a call, too little to tell apart from the noise of
;;; a callgrind count of FORMAT.
(eval-when (:load-toplevel)
  (set-pprint-dispatch '(satisfies %socket-stream-p) 'print-socket-stream 1))

;;; ------------------------------------------------------------------
;;; Descriptor owners: the one close protocol
;;;
;;; Every Lisp object of ecl-sock that owns a descriptor (or, for a poller,
;;; a C handle that owns descriptors) is a DESCRIPTOR-OWNER: the core's
;;; servers, and through the generic functions below the faces' Allegro
;;; datagram sockets, SB-BSD-SOCKETS sockets and pollers.  (Socket streams
;;; are not: their C core has states of its own.)  The descriptor is in the
;;; first slot, where C reads it; NIL there means closed.
;;;
;;; States: :OPEN (owns its descriptor), :CLOSING (a closer took it and is
;;; waking the threads that wait on it), :CLOSED, :RELEASED (handed to
;;; another owner, which closes it: an SB-BSD-SOCKETS socket's stream).
;;; CLOSE-OWNER takes the descriptor out of the slot with a compare and
;;; swap, so that of any number of threads closing at once exactly one
;;; closes it and the others return NIL; it wakes the waiting threads
;;; first (WAKE-WAITERS: shutdown(2) wakes a blocked accept, recv or poll,
;;; which close(2) would not), then closes (RELEASE-DESCRIPTOR).  The one
;;; finalizer, FINALIZE-OWNER, closes the descriptor of an object dropped
;;; while open.  It is a global function that is given the object, never
;;; a closure over it (ECL 24 never collects an object whose finalizer
;;; refers back to it), and the GC calls it through %FINALIZE-OWNER (C),
;;; which keeps the values array of the thread it interrupted
;;; (src/eclcompat.c says why).

(defclass descriptor-owner ()
  ((fd :initarg :fd :initform nil
       :documentation "The descriptor (or the poller's C handle); NIL once
closed or released.  Must stay the first slot: C reads it there.")
   (state :initform :open :reader owner-state
          :documentation ":OPEN, :CLOSING, :CLOSED or :RELEASED."))
  (:documentation "An ecl-sock object that owns a descriptor and closes it
once: servers, Allegro passive and datagram sockets, SB-BSD-SOCKETS sockets,
pollers.  A face extends the close protocol through WAKE-WAITERS and
RELEASE-DESCRIPTOR."))

(defun check-descriptor-slot-first (class)
  "Signal an error unless the descriptor slot of CLASS (a DESCRIPTOR-OWNER
class) is its first slot, where C reads it."
  (let ((class (if (symbolp class) (find-class class) class)))
    (unless (clos:class-finalized-p class)
      (clos:finalize-inheritance class))
    (let ((slot (find 'fd (clos:class-slots class) :key #'clos:slot-definition-name)))
      (unless (and slot (eql 0 (clos:slot-definition-location slot)))
        (error "~S: the descriptor is not the first slot, where C reads it."
               (class-name class))))))

(defmethod initialize-instance :after ((owner descriptor-owner) &key)
  ;; %FINALIZE-OWNER (C) calls FINALIZE-OWNER keeping the values array of
  ;; the thread whose allocation the GC interrupted (src/eclcompat.c)
  (ext:set-finalizer owner #'%finalize-owner))

(declaim (inline owned-fd))
(defun owned-fd (owner)
  "The descriptor OWNER holds, or NIL once it is closed or released."
  (slot-value owner 'fd))

(defun owner-open-p (owner)
  "True while OWNER holds its descriptor."
  (and (owned-fd owner) t))

(defgeneric wake-waiters (owner fd)
  (:documentation "Wake the threads blocked on descriptor FD of OWNER, which is
being closed (they then find OWNER closed).  The default shuts the socket
down (shutdown(2) wakes accept, recv and poll; close(2) does not).  Never
signals.")
  (:method ((owner descriptor-owner) fd)
    (ignore-errors (%shutdown-fd fd 2))))

(defgeneric release-descriptor (owner fd)
  (:documentation "Close FD, the descriptor OWNER held (a poller: its C handle).
Called once per descriptor, by CLOSE-OWNER or the finalizer.")
  (:method ((owner descriptor-owner) fd)
    (%close-fd fd)))

(defun take-fd (owner state)
  "Take OWNER's descriptor away from it, once: the descriptor, with OWNER's
state set to STATE, or NIL when another call took it first."
  (loop
    (let ((fd (owned-fd owner)))
      (unless fd
        (return nil))
      (when (eq (mp:compare-and-swap (slot-value owner 'fd) fd nil) fd)
        (setf (slot-value owner 'state) state)
        (return fd)))))

(defun close-owner (owner)
  "Close OWNER's descriptor: T when this call closed it, NIL when it was
closed (or released) already.  Safe from any thread and any number of them
at once: one closes, the others return NIL.  Threads waiting on the
descriptor are woken first."
  (let ((fd (take-fd owner :closing)))
    (when fd
      (unwind-protect (progn (wake-waiters owner fd)
                             (release-descriptor owner fd))
        (setf (slot-value owner 'state) :closed))
      t)))

(defun release-owner (owner)
  "Hand OWNER's descriptor to another owner: return it (NIL when OWNER is
closed or released already); OWNER will not close it."
  (take-fd owner :released))

(defun end-release (owner)
  "Mark OWNER, whose descriptor it released, :CLOSED (its new owner has been
or is being closed): T when this call did it, NIL when OWNER was not
:RELEASED."
  (eq (mp:compare-and-swap (slot-value owner 'state) :released :closed) :released))

(defun finalize-owner (owner)
  "The finalizer of every DESCRIPTOR-OWNER: close the descriptor of one
dropped while open (no thread can wait on it any more)."
  (ignore-errors
   (let ((fd (owned-fd owner)))
     (when (and fd (eq (mp:compare-and-swap (slot-value owner 'fd) fd nil) fd))
       (setf (slot-value owner 'state) :closed)
       (release-descriptor owner fd)))))

;;; ------------------------------------------------------------------
;;; Servers

(defclass socket-server (descriptor-owner)
  ((host :initarg :host :initform "" :type string :reader socket-server-host)
   (port :initarg :port :initform 0 :type fixnum :reader socket-server-port))
  (:documentation "A listening socket (CLISP's SOCKET-SERVER)."))

(eval-when (:load-toplevel :execute)
  (check-descriptor-slot-first 'socket-server))

(defun socket-server-p (object)
  "True when OBJECT is a SOCKET-SERVER."
  (typep object 'socket-server))

(defun socket-server-fd (server)
  "The listening descriptor of SERVER, NIL once closed."
  (owned-fd server))

(defgeneric socket-connect-accessor (socket)
  (:documentation "Which end of a connection SOCKET is: :ACTIVE (a connected socket)
or :PASSIVE (a listener).  Allegro's SOCKET-CONNECT accessor, which shares the
CLISP face's SOCKET-CONNECT name; faces add methods for their own objects.")
  (:method ((s socket-server)) :passive)
  (:method ((s stream))
    (if (socket-stream-p s)
        :active
        (error 'type-error :datum s :expected-type '(or port-number socket-stream))))
  (:method (s) (error 'type-error :datum s :expected-type 'port-number)))

(defmethod print-object ((server socket-server) out)
  (print-unreadable-object (server out)
    (format out "~:[CLOSED ~;~]SOCKET-SERVER ~A:~D"
            (socket-server-fd server) (socket-server-host server)
            (socket-server-port server))))

(defun server-fd (server who)
  "The descriptor of SERVER; a clear error when it is not an open server."
  (unless (socket-server-p server)
    (error 'type-error :datum server :expected-type 'socket-server))
  (or (socket-server-fd server)
      (%raise (string-downcase (string who)) :ebadf
              (format nil "~A on ~S is illegal: the server is closed" who server)
              (socket-server-host server) (socket-server-port server) nil)))

(defun close-server (server)
  "Close SERVER's descriptor once (closing it again is harmless); wakes
threads waiting on it.  Returns NIL."
  (unless (socket-server-p server)
    (error 'type-error :datum server :expected-type 'socket-server))
  (close-owner server)
  nil)

(defun server-accept (server who timeout element-type external-format buffered)
  "Accept a connection on SERVER for WHO (a face's operator): a socket stream
\(SOCKET-STREAM-HOST/-PORT are the server's), or NIL when TIMEOUT seconds
\(NIL: no limit) pass first.  When another thread closes SERVER meanwhile,
the waiting thread wakes with the :EBADF SOCKET-ERROR of a closed server."
  (let ((fd (server-fd server who)))
    (handler-bind ((socket-error
                     (lambda (c)
                       (declare (ignore c))
                       (server-fd server who))))
      (%accept fd timeout element-type external-format buffered
               (socket-server-host server) (socket-server-port server)))))

(defun listen-host (interface who)
  "The local address to listen on for INTERFACE: NIL gives all IPv4
interfaces (\"0.0.0.0\"), a socket stream the address its peer sees (CLISP's
rule), otherwise a host as CHECK-HOST takes it."
  (cond ((null interface) "0.0.0.0")
        ((socket-stream-p interface)
         (values (%local-address (stream-fd interface who))))
        (t (check-host interface))))

(defun make-server (fd)
  "A SOCKET-SERVER owning listening descriptor FD."
  (multiple-value-bind (host port) (%local-address fd)
    (make-instance 'socket-server :fd fd :host host :port port)))

(defun open-server (host port backlog)
  "A SOCKET-SERVER listening on HOST (text) and PORT (0: the kernel picks),
with BACKLOG (for listen(2))."
  (unless (typep backlog '(integer 0 65535))
    (error 'type-error :datum backlog :expected-type '(integer 0 65535)))
  (make-server (%listen host port backlog)))

(eval-when (:load-toplevel)
  (%set-server-class (find-class 'socket-server)))

;;; ------------------------------------------------------------------
;;; Stream notes: what a face remembers about a socket stream
;;;
;;; Socket streams are C objects without room for a face's data.  A face
;;; that remembers something about a stream (Allegro's :FORMAT and the
;;; addresses it answers with once the stream is closed) keeps it here,
;;; under its own key; a module that replaces a stream by another over the
;;; same connection (TLS: MAKE-SSL-CLIENT-STREAM) carries every face's
;;; notes over with MOVE-STREAM-NOTES, knowing none of them.  Weak, so a
;;; note never keeps a stream alive.

(defvar *stream-notes* (make-hash-table :test 'eq :weakness :key :synchronized t)
  "Socket stream -> plist of face key -> that face's note.")

(defun stream-note (stream key)
  "What the face KEY noted about STREAM, or NIL."
  (getf (gethash stream *stream-notes*) key))

(defun (setf stream-note) (value stream key)
  "Note VALUE about STREAM for the face KEY."
  (let ((notes (gethash stream *stream-notes*)))
    (setf (getf notes key) value
          (gethash stream *stream-notes*) notes)
    value))

(defun move-stream-notes (old new)
  "Give stream NEW, which replaces OLD over the same connection, the notes
OLD has.  Returns NEW."
  (let ((notes (gethash old *stream-notes*)))
    (when notes
      (setf (gethash new *stream-notes*) (copy-list notes))))
  new)

;;; ------------------------------------------------------------------
;;; Addresses

(defun address-string (host port do-not-resolve-p)
  "CLISP's text for an address: \"IP (NAME)\", or just the IP."
  (values (let ((name (and (not do-not-resolve-p) (%address-name host))))
            (if name (format nil "~A (~A)" host name) host))
          port))

(defun any-fd (object who)
  "The descriptor behind a socket stream, a server or a raw descriptor."
  (cond ((socket-server-p object) (server-fd object who))
        ((typep object '(integer 0)) object)
        (t (stream-fd object who))))
