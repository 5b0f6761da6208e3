;;;; allegro.lisp - Allegro CL's socket API in the SOCKET package.
;;;;
;;;; MAKE-SOCKET, ACCEPT-CONNECTION, the socket accessors, the address
;;;; helpers, datagrams (SEND-TO, RECEIVE-FROM), Unix-domain sockets by file
;;;; name, SHUTDOWN, SOCKET-CONTROL, and the two MP operators Allegro socket
;;;; code leans on: MP:WITH-TIMEOUT and MP:WAIT-FOR-INPUT-AVAILABLE.
;;;;
;;;; Objects: an active stream socket IS a socket stream (the core's C
;;;; stream, as CLISP's SOCKET-CONNECT makes); a passive one is a
;;;; PASSIVE-SOCKET, a SOCKET-SERVER with a few more slots (so CLISP's
;;;; SOCKET-ACCEPT, SOCKET-STATUS and SOCKET-SERVER-CLOSE take it too); a
;;;; datagram socket is a DATAGRAM-SOCKET, a DESCRIPTOR-OWNER of the core
;;;; (its close protocol and finalizer).  What Allegro's accessors need to
;;;; know about a stream beyond its descriptor (its :FORMAT, its addresses
;;;; once closed) is this face's note in the core's stream notes.  Errors
;;;; are the one SOCKET-ERROR hierarchy; EXCL:SOCKET-ERROR is the same class.
;;;; Must not: read another face's tables or classes; close a descriptor
;;;; other than through the core's CLOSE-OWNER.

(in-package "ECLSOCK")

;;; ------------------------------------------------------------------
;;; Addresses: IPv4 as a 32-bit integer, IPv6 as an IPV6-ADDRESS

(defstruct (ipv6-address (:constructor %make-ipv6-address (octets scope-id))
                         (:copier nil))
  "An IPv6 address, as Allegro's address structures: 16 octets and a scope id."
  (octets nil :type (simple-array (unsigned-byte 8) (16)) :read-only t)
  (scope-id 0 :type (integer 0) :read-only t))

(defun ipv6-address-p (object)
  "True when OBJECT is an IPv6 address structure (from DOTTED-TO-IPADDR,
LOOKUP-HOSTNAME, REMOTE-HOST ... on IPv6 addresses)."
  (typep object 'ipv6-address))

(defmethod print-object ((a ipv6-address) out)
  (if *print-escape*
      (print-unreadable-object (a out :type nil)
        (format out "IPv6 ~A" (ipaddr-to-dotted a)))
      (write-string (ipaddr-to-dotted a) out)))

(defun address-object (text)
  "The address in numeric TEXT: an integer for IPv4 (also for an IPv4-mapped
IPv6 address), an IPV6-ADDRESS otherwise, NIL when TEXT is not numeric."
  (multiple-value-bind (family value scope) (%parse-address text)
    (case family
      (:inet value)
      (:inet6
       (if (and (every #'zerop (subseq value 0 10))
                (= (nth 10 value) 255) (= (nth 11 value) 255))
           (reduce (lambda (a o) (+ (ash a 8) o)) (subseq value 12))
           (%make-ipv6-address
            (make-array 16 :element-type '(unsigned-byte 8) :initial-contents value)
            scope)))
      (t nil))))

(defun host-text (host)
  "HOST (a name, a dotted or colon string, a 32-bit integer or an IPV6-ADDRESS)
as the string the C side resolves."
  (typecase host
    (ipv6-address (ipaddr-to-dotted host))
    (t (check-host host))))

(defun ipaddr-to-dotted (ipaddr &key values)
  "The text form of IPADDR: \"a.b.c.d\" for a 32-bit integer, colon notation
(with %scope) for an IPv6 address.  With VALUES true, an IPv4 address comes
back as its four octets, as four values."
  (etypecase ipaddr
    ((unsigned-byte 32)
     (if values
         (values (ldb (byte 8 24) ipaddr) (ldb (byte 8 16) ipaddr)
                 (ldb (byte 8 8) ipaddr) (ldb (byte 8 0) ipaddr))
         (dotted ipaddr)))
    (ipv6-address
     (%format-inet6 (ipv6-address-octets ipaddr) (ipv6-address-scope-id ipaddr)))))

(defun dotted-to-ipaddr (dotted &key (errorp t))
  "Parse DOTTED: \"a.b.c.d\" gives a 32-bit integer; IPv6 colon notation
\(\"::1\", \"fe80::1%lo\") an IPv6 address; \"::ffff:a.b.c.d\" the IPv4 integer.
Text that is not a numeric address signals an error, or gives NIL when
ERRORP is NIL.  Never consults the resolver."
  (or (and (stringp dotted) (address-object dotted))
      (and errorp
           (error 'simple-type-error
                  :datum dotted :expected-type 'string
                  :format-control "~S is not a numeric IP address."
                  :format-arguments (list dotted)))))

(defun dotted-address-p (object)
  "True when OBJECT is a string holding a numeric IP address."
  (and (stringp object) (address-object object) t))

(defun ipaddr-equalp (a b)
  "True when A and B (integers, IPv6 addresses or numeric strings) are the
same address."
  (let ((a (if (stringp a) (dotted-to-ipaddr a) a))
        (b (if (stringp b) (dotted-to-ipaddr b) b)))
    (cond ((and (integerp a) (integerp b)) (= a b))
          ((and (ipv6-address-p a) (ipv6-address-p b))
           (and (equalp (ipv6-address-octets a) (ipv6-address-octets b))
                (= (ipv6-address-scope-id a) (ipv6-address-scope-id b))))
          (t nil))))

(defun ipaddr-to-hostname (ipaddr &key ignore-cache)
  "The host name the resolver gives for IPADDR (an integer, IPv6 address or
numeric string), or NIL when it knows none.  Nothing is cached, so
IGNORE-CACHE changes nothing."
  (declare (ignore ignore-cache))
  (%address-name (if (stringp ipaddr) ipaddr (ipaddr-to-dotted ipaddr))))

(defun lookup-hostname (host &key ignore-cache (ipv6 t) all)
  "The address of HOST: a 32-bit integer for IPv4, an IPv6 address otherwise.
HOST may be a name, a numeric string or already an address.  IPv4 addresses
come first; with IPV6 NIL only IPv4 ones count.  With ALL, a list of every
address.  An unknown host signals HOST-NOT-FOUND-ERROR (a SOCKET-ERROR)."
  (declare (ignore ignore-cache))
  (let ((addrs
          (typecase host
            ((or (unsigned-byte 32) ipv6-address) (list host))
            (t (let ((numeric (and (stringp host) (address-object host))))
                 (if numeric
                     (list numeric)
                     (multiple-value-bind (canon texts) (%resolve (host-text host))
                       (declare (ignore canon))
                       (mapcar #'address-object texts))))))))
    (unless ipv6
      (setf addrs (remove-if-not #'integerp addrs)))
    (setf addrs (stable-sort (copy-list addrs)
                             (lambda (a b) (and (integerp a) (not (integerp b))))))
    (when (null addrs)
      (%raise "getaddrinfo" :eai-noname "No address of the requested family"
              host nil nil))
    (if all addrs (first addrs))))

(defun lookup-port (port &optional (protocol "tcp"))
  "The number of service PORT: an integer is returned as it is, a name
\(\"http\", :smtp) is looked up in the services database for PROTOCOL
\(\"tcp\" or \"udp\").  An unknown name signals a SOCKET-ERROR."
  (etypecase port
    (integer (check-port port))
    ((or string symbol)
     (%service-port (string-downcase (string port))
                    (string-downcase (string protocol))))))

;;; ------------------------------------------------------------------
;;; What make-socket remembers about socket streams

(defvar *print-hostname-in-stream* t
  "When true, passive and datagram sockets print the host name of the address
they are bound to (looked up once, when printed); when NIL, only numbers.")

;;; What this face remembers about a stream is its note in the core's
;;; stream notes (under :ALLEGRO): a plist (:format :family :local-host
;;; :local-port :remote-host :remote-port :local-filename :remote-filename).
;;; The notes are weak, so they never keep a stream alive, and a TLS stream
;;; made over the stream gets them too (MOVE-STREAM-NOTES).

(defun stream-info (stream key)
  (getf (stream-note stream :allegro) key))

(defun remember-stream (stream format)
  "Record STREAM's format and addresses, so the accessors answer also after
it is closed.  Returns STREAM."
  (let ((fd (stream-fd stream 'make-socket)))
    (multiple-value-bind (lhost lport family) (%local-address fd)
      (multiple-value-bind (rhost rport) (ignore-errors (%peer-address fd))
        (setf (stream-note stream :allegro)
              (if (eq family :unix)
                  (list :format format :family :file
                        :local-filename (if (equal lhost "") nil lhost)
                        :remote-filename (if (equal rhost "") nil rhost))
                  (list :format format :family :internet
                        :local-host (address-object lhost) :local-port lport
                        :remote-host (and rhost (address-object rhost))
                        :remote-port rport))))))
  stream)

(defun live-address (stream which)
  "Addresses of a socket stream nobody remembered (made by the CLISP face)."
  (multiple-value-bind (host port family)
      (funcall (if (eq which :local) #'%local-address #'%peer-address)
               (stream-fd stream which))
    (if (eq family :unix)
        (values nil nil (if (equal host "") nil host))
        (values (address-object host) port nil))))

;;; ------------------------------------------------------------------
;;; Passive and datagram sockets

(defclass passive-socket (socket-server)
  ((family :initarg :family :initform :internet :reader passive-socket-family)
   (format :initarg :format :initform :text :reader passive-socket-format)
   (element-type :initarg :element-type :initform 'character
                 :reader passive-socket-element-type)
   (external-format :initarg :external-format :initform :default
                    :reader passive-socket-external-format)
   (filename :initarg :filename :initform nil :reader passive-socket-filename)
   (keepalive :initarg :keepalive :initform nil :reader passive-socket-keepalive)
   (nodelay :initarg :nodelay :initform :default :reader passive-socket-nodelay))
  (:documentation "A listening socket made by MAKE-SOCKET :CONNECT :PASSIVE.  It
is also a SOCKET-SERVER, so CLISP's SOCKET-ACCEPT and SOCKET-STATUS take it;
it closes through the core's DESCRIPTOR-OWNER protocol."))

(defun %make-passive-socket (fd host port family format element-type external-format
                             filename keepalive nodelay)
  (make-instance 'passive-socket :fd fd :host host :port port :family family
                                 :format format :element-type element-type
                                 :external-format external-format :filename filename
                                 :keepalive keepalive :nodelay nodelay))

(defun passive-socket-p (object)
  (typep object 'passive-socket))

(defclass datagram-socket (descriptor-owner)
  ((family :initarg :family :initform :internet :reader datagram-socket-family)
   (format :initarg :format :initform :binary :reader datagram-socket-format)
   (connect :initarg :connect :initform :active :reader datagram-socket-connect)
   (remote-host :initarg :remote-host :initform nil :reader datagram-socket-remote-host)
   (remote-port :initarg :remote-port :initform nil :reader datagram-socket-remote-port)
   (local-filename :initarg :local-filename :initform nil
                   :reader datagram-socket-local-filename)
   (remote-filename :initarg :remote-filename :initform nil
                    :reader datagram-socket-remote-filename)
   (connected :initform nil :accessor datagram-socket-connected))
  (:documentation "A datagram socket made by MAKE-SOCKET :TYPE :DATAGRAM: use
SEND-TO and RECEIVE-FROM, and CLOSE.  A DESCRIPTOR-OWNER: closing it wakes a
thread in RECEIVE-FROM, and a dropped one is closed by the finalizer."))

(defun %make-datagram-socket (fd family format connect remote-host remote-port
                              local-filename remote-filename)
  (make-instance 'datagram-socket :fd fd :family family :format format :connect connect
                                  :remote-host remote-host :remote-port remote-port
                                  :local-filename local-filename
                                  :remote-filename remote-filename))

(defun datagram-socket-p (object)
  (typep object 'datagram-socket))

(defun datagram-socket-fd (s)
  "The descriptor of datagram socket S, NIL once closed."
  (owned-fd s))

(eval-when (:load-toplevel :execute)
  (check-descriptor-slot-first 'passive-socket)
  (check-descriptor-slot-first 'datagram-socket))

(defun print-host (text)
  (let ((name (and *print-hostname-in-stream*
                   (not (member text '("0.0.0.0" "::" "?") :test #'string=))
                   (ignore-errors (%address-name text)))))
    (or name text)))

(defmethod print-object ((s passive-socket) out)
  (print-unreadable-object (s out)
    (cond ((null (socket-server-fd s))
           (format out "passive ~:[~;file ~]socket (closed)" (eq (passive-socket-family s) :file)))
          ((eq (passive-socket-family s) :file)
           (format out "passive file socket waiting for connection at ~A"
                   (passive-socket-filename s)))
          (t (format out "passive socket waiting for connection at ~A/~D"
                     (print-host (socket-server-host s)) (socket-server-port s))))))

(defmethod print-object ((s datagram-socket) out)
  (print-unreadable-object (s out)
    (let ((fd (datagram-socket-fd s)))
      (cond ((null fd) (write-string "datagram socket (closed)" out))
            ((eq (datagram-socket-family s) :file)
             (format out "datagram file socket at ~A"
                     (or (datagram-socket-local-filename s) "(unnamed)")))
            (t (multiple-value-bind (host port) (ignore-errors (%local-address fd))
                 (format out "datagram socket at ~A/~D" (print-host (or host "?")) port)))))))

(defun delete-socket-file (path)
  "Remove the file a passive :FILE socket was bound to (not when its name
would be read as a wild pathname)."
  (ignore-errors
   (let ((p (pathname path)))
     (unless (wild-pathname-p p)
       (delete-file p)))))

(defmethod gray:close ((s passive-socket) &key abort)
  "Close the listening socket; a :FILE one also removes its file name."
  (declare (ignore abort))
  (let ((closed (close-owner s)))
    (when (and closed (passive-socket-filename s))
      (delete-socket-file (passive-socket-filename s)))
    closed))

(defmethod gray:close ((s datagram-socket) &key abort)
  "Close the datagram socket (a thread in RECEIVE-FROM wakes with an error);
closing it again is harmless."
  (declare (ignore abort))
  (close-owner s))

(defun datagram-fd (s)
  (or (datagram-socket-fd s)
      (%raise "datagram" :ebadf nil nil nil nil)))

;;; ------------------------------------------------------------------
;;; make-socket

(defun check-member (value allowed)
  (unless (member value allowed)
    (error 'type-error :datum value :expected-type (cons 'member allowed)))
  value)

(defun format-element-type (format)
  (if (eq format :binary) '(unsigned-byte 8) 'character))

(defun set-options (fd &key keepalive (nodelay :default) broadcast reuse-address
                            receive-buffer-size send-buffer-size)
  (when keepalive (%setsockopt fd :so-keepalive t))
  ;; TCP_NODELAY is on by default (the stream joins small writes itself);
  ;; :DEFAULT leaves it so, NIL turns it off, true turns it on
  (unless (eq nodelay :default) (%setsockopt fd :tcp-nodelay (and nodelay t)))
  (when broadcast (%setsockopt fd :so-broadcast t))
  (when reuse-address (%setsockopt fd :so-reuseaddr t))
  (when receive-buffer-size (%setsockopt fd :so-rcvbuf receive-buffer-size))
  (when send-buffer-size (%setsockopt fd :so-sndbuf send-buffer-size)))

(defmacro owning-fd ((var form) &body body)
  "Bind VAR to the descriptor FORM makes and run BODY; close it unless BODY
returns normally (when the object BODY made owns it)."
  (let ((ok (gensym "OK")))
    `(let ((,var ,form) (,ok nil))
       (unwind-protect (multiple-value-prog1 (progn ,@body) (setf ,ok t))
         (unless ,ok (ignore-errors (%close-fd ,var)))))))

(defmacro owning-stream ((var form) &body body)
  "As OWNING-FD for a stream: closed unless BODY returns normally."
  (let ((ok (gensym "OK")))
    `(let ((,var ,form) (,ok nil))
       (unwind-protect (multiple-value-prog1 (progn ,@body) (setf ,ok t))
         (unless ,ok (close ,var))))))

(defun make-socket (&key (type :stream) (format :text) (connect :active)
                          (address-family :internet) eol
                          local-host local-port remote-host remote-port
                          reuse-address (backlog 5) keepalive
                          (nodelay :default) broadcast local-filename
                          remote-filename
                          (external-format :default))
  "Make a socket, Allegro's way.
TYPE :STREAM (TCP or a Unix stream) or :DATAGRAM (UDP or Unix datagrams);
FORMAT :TEXT, :BINARY or :BIVALENT (text and bivalent streams take both
characters and octets; binary ones are (UNSIGNED-BYTE 8) streams);
CONNECT :ACTIVE (connect to REMOTE-HOST/REMOTE-PORT, or REMOTE-FILENAME) or
:PASSIVE (listen on LOCAL-HOST/LOCAL-PORT, or LOCAL-FILENAME; no LOCAL-PORT:
the kernel picks one, LOCAL-PORT tells which); an active socket given
LOCAL-HOST or LOCAL-PORT connects from there;
ADDRESS-FAMILY :INTERNET, :INTERNET6 (default local address \"::\"; an
active socket connects to an IPv6 address of REMOTE-HOST) or :FILE.
Ports may be service names.  KEEPALIVE, NODELAY, BROADCAST, REUSE-ADDRESS set
the socket options (TCP_NODELAY is on unless NODELAY is given as NIL: ecl-sock
joins small writes itself); BACKLOG goes to listen(2); EXTERNAL-FORMAT is that of
character streams.  Active stream sockets are
socket streams; passive ones are waited on with ACCEPT-CONNECTION; datagram
sockets use SEND-TO and RECEIVE-FROM; a datagram socket given REMOTE-HOST
and REMOTE-PORT is connected to them (connect(2)): SEND-TO without an
address goes there, RECEIVE-FROM takes only that peer's datagrams, and a
peer port where nobody listens makes the next RECEIVE-FROM signal
CONNECTION-REFUSED-ERROR.  Failures are SOCKET-ERRORs
\(EXCL:SOCKET-ERROR) with an identifier such as :CONNECTION-REFUSED."
  (declare (ignore eol))
  (check-member type '(:stream :datagram))
  (check-member format '(:text :binary :bivalent))
  (check-member connect '(:active :passive))
  (check-member address-family '(:internet :internet6 :file))
  (unless (typep backlog '(integer 0 65535))
    (error 'type-error :datum backlog :expected-type '(integer 0 65535)))
  (let ((et (format-element-type format))
        (ef (normalize-external-format external-format))
        (file (eq address-family :file)))
    (cond
      ((eq type :datagram)
       (make-datagram-socket file address-family format connect local-host local-port
                             remote-host remote-port local-filename remote-filename
                             reuse-address broadcast))
      ((and (eq connect :active) file)
       (unless (stringp remote-filename)
         (error "MAKE-SOCKET :ADDRESS-FAMILY :FILE :CONNECT :ACTIVE needs a :REMOTE-FILENAME string."))
       (owning-stream (s (%connect-unix (namestring-of remote-filename) nil et ef t))
         (remember-stream s format)))
      ((eq connect :active)
       (unless remote-host
         (error "MAKE-SOCKET :CONNECT :ACTIVE needs a :REMOTE-HOST."))
       (unless remote-port
         (error "MAKE-SOCKET :CONNECT :ACTIVE needs a :REMOTE-PORT."))
       (let ((host (if (eq address-family :internet6)
                       (ipv6-host-text remote-host)
                       (host-text remote-host)))
             (port (lookup-port remote-port "tcp")))
         (owning-stream (s (if (or local-host local-port)
                               (%connect-from host port (and local-host (host-text local-host))
                                              (if local-port (lookup-port local-port "tcp") 0)
                                              nil et ef t)
                               (%connect host port nil et ef t)))
           (let ((fd (stream-fd s 'make-socket)))
             (set-options fd :keepalive keepalive :nodelay nodelay))
           (remember-stream s format))))
      (file
       (unless (stringp local-filename)
         (error "MAKE-SOCKET :ADDRESS-FAMILY :FILE :CONNECT :PASSIVE needs a :LOCAL-FILENAME string."))
       (let ((path (namestring-of local-filename)))
         (owning-fd (fd (%listen-unix path backlog))
           (%make-passive-socket fd path 0 :file format et ef path nil nil))))
      (t
       (let ((host (cond (local-host (host-text local-host))
                         ((eq address-family :internet6) "::")
                         (t "0.0.0.0")))
             (port (if local-port (lookup-port local-port "tcp") 0)))
         (owning-fd (fd (%listen host port backlog))
           (set-options fd :keepalive keepalive :nodelay nodelay)
           (multiple-value-bind (lhost lport) (%local-address fd)
             (%make-passive-socket fd lhost lport :internet format et ef
                                   nil keepalive nodelay))))))))

(defun ipv6-host-text (host)
  "The first IPv6 address of HOST, as text; HOST-NOT-FOUND-ERROR when none."
  (let ((v6 (remove-if-not #'ipv6-address-p (lookup-hostname host :all t))))
    (if v6
        (ipaddr-to-dotted (first v6))
        (%raise "getaddrinfo" :eai-noname "The host has no IPv6 address"
                host nil nil))))

(defun namestring-of (file)
  (if (pathnamep file) (namestring file) file))

(defun make-datagram-socket (file address-family format connect local-host local-port
                             remote-host remote-port local-filename remote-filename
                             reuse-address broadcast)
  (if file
      (owning-fd (fd (%datagram-unix (and local-filename (namestring-of local-filename))))
        (%make-datagram-socket fd :file format connect nil nil
                               (and local-filename (namestring-of local-filename))
                               (and remote-filename (namestring-of remote-filename))))
      (let* ((remote (and remote-host (lookup-hostname remote-host)))
             (family (cond (local-host nil)
                           ((or (eq address-family :internet6) (ipv6-address-p remote))
                            :inet6)
                           (t :inet)))
             (host (cond (local-host (host-text local-host))
                         ((eq family :inet6) "::")
                         (t "0.0.0.0")))
             (port (if local-port (lookup-port local-port "udp") 0)))
        (owning-fd (fd (%datagram host port family reuse-address broadcast))
          (let* ((rport (and remote-port (lookup-port remote-port "udp")))
                 (s (%make-datagram-socket fd :internet format connect remote rport
                                           nil nil)))
            ;; Allegro's datagram socket with a remote address is connected
            (when (and remote rport (eq connect :active))
              (%datagram-connect fd (host-text remote) rport)
              (setf (datagram-socket-connected s) t))
            s)))))

;;; ------------------------------------------------------------------
;;; accept-connection, shutdown, options

(defgeneric accept-connection (socket &key wait)
  (:documentation "Accept a connection on passive SOCKET and return the connected
socket stream.  WAIT true (the default) blocks until one comes; WAIT NIL
returns NIL at once when none is pending."))

(defmethod accept-connection ((sock socket-server) &key (wait t))
  (let* ((passive (passive-socket-p sock))
         (s (server-accept sock 'accept-connection (if wait nil 0)
                           (if passive (passive-socket-element-type sock) 'character)
                           (if passive (passive-socket-external-format sock) :default)
                           t)))
    (when s
      (owning-stream (s s)
        (when (and passive (not (eq (passive-socket-family sock) :file)))
          (set-options (stream-fd s 'accept-connection)
                       :keepalive (passive-socket-keepalive sock)
                       :nodelay (passive-socket-nodelay sock)))
        (remember-stream s (if passive (passive-socket-format sock) :text))))))

(defgeneric shutdown (socket &key direction)
  (:documentation "Half-close the connection of socket stream SOCKET: DIRECTION
:OUTPUT sends end of file to the peer (pending output goes first), :INPUT
stops reading.  Once both directions are shut down the stream is closed."))

(defmethod shutdown ((s stream) &key direction)
  (let ((how (case direction (:input 0) (:output 1)
               (t (error 'type-error :datum direction
                                     :expected-type '(member :input :output))))))
    (stream-fd s 'shutdown)
    (%stream-shutdown s how)
    (unless (or (input-stream-p s) (output-stream-p s))
      (close s))
    nil))

(defun apply-socket-options (fd output-chunking output-chunking-eof input-chunking
                             options)
  (when (or output-chunking output-chunking-eof input-chunking)
    (error "HTTP chunking (SOCKET-CONTROL :OUTPUT-CHUNKING, :INPUT-CHUNKING) is not supported."))
  (loop for (key value) on options by #'cddr
        do (ecase key
             (:keepalive (%setsockopt fd :so-keepalive value))
             (:nodelay (%setsockopt fd :tcp-nodelay value))
             (:broadcast (%setsockopt fd :so-broadcast value))
             (:reuse-address (%setsockopt fd :so-reuseaddr value))
             (:oob-inline (%setsockopt fd :so-oobinline value))
             (:receive-buffer-size (%setsockopt fd :so-rcvbuf value))
             (:send-buffer-size (%setsockopt fd :so-sndbuf value))
             (:tcp-keepalive-idle-time (%setsockopt fd :tcp-keepidle value))
             (:tcp-keepalive-probe-interval (%setsockopt fd :tcp-keepintvl value))
             (:tcp-keepalive-max-probes (%setsockopt fd :tcp-keepcnt value))))
  nil)

(defun option-plist (&rest plist)
  "PLIST without its NIL-supplied (unsupplied) entries."
  (loop for (key value supplied) on plist by #'cdddr
        when supplied nconc (list key value)))

(defun socket-control (socket &key output-chunking output-chunking-eof input-chunking
                                   (keepalive nil keepalive-p) (nodelay nil nodelay-p)
                                   (broadcast nil broadcast-p))
  "Change options of SOCKET: KEEPALIVE (SO_KEEPALIVE), NODELAY (TCP_NODELAY),
BROADCAST (SO_BROADCAST); options not given are left alone.  Allegro's HTTP
chunking options are not supported (a true value signals an error)."
  (apply-socket-options (socket-os-fd* socket) output-chunking output-chunking-eof
                        input-chunking
                        (option-plist :keepalive keepalive keepalive-p
                                      :nodelay nodelay nodelay-p
                                      :broadcast broadcast broadcast-p)))

(defun set-socket-options (socket &key (reuse-address nil reuse-address-p)
                                       (broadcast nil broadcast-p)
                                       (keepalive nil keepalive-p)
                                       (nodelay nil nodelay-p)
                                       (oob-inline nil oob-inline-p)
                                       (receive-buffer-size nil rcvbuf-p)
                                       (send-buffer-size nil sndbuf-p)
                                       (tcp-keepalive-idle-time nil idle-p)
                                       (tcp-keepalive-probe-interval nil interval-p)
                                       (tcp-keepalive-max-probes nil probes-p))
  "Set socket options of SOCKET (setsockopt); options not given are left alone.
TCP-KEEPALIVE-IDLE-TIME, -PROBE-INTERVAL (seconds) and -MAX-PROBES tune
keepalive (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT)."
  (apply-socket-options (socket-os-fd* socket) nil nil nil
                        (option-plist :reuse-address reuse-address reuse-address-p
                                      :broadcast broadcast broadcast-p
                                      :keepalive keepalive keepalive-p
                                      :nodelay nodelay nodelay-p
                                      :oob-inline oob-inline oob-inline-p
                                      :receive-buffer-size receive-buffer-size rcvbuf-p
                                      :send-buffer-size send-buffer-size sndbuf-p
                                      :tcp-keepalive-idle-time tcp-keepalive-idle-time idle-p
                                      :tcp-keepalive-probe-interval
                                      tcp-keepalive-probe-interval interval-p
                                      :tcp-keepalive-max-probes tcp-keepalive-max-probes
                                      probes-p)))

(defun set-socket-format (socket format)
  "Switch socket stream SOCKET between :TEXT/:BIVALENT (character) and :BINARY
\((UNSIGNED-BYTE 8)) elements, keeping what is buffered."
  (check-member format '(:text :binary :bivalent))
  (when (socket-stream-p socket)
    (stream-fd socket 'set-socket-format)
    (%set-element-type socket (format-element-type format) nil)
    (let ((info (stream-note socket :allegro)))
      (when info
        (setf (getf info :format) format
              (stream-note socket :allegro) info))))
  format)

(defmacro with-pending-connect (&body body)
  "Allegro wraps MAKE-SOCKET in this when MP:WITH-TIMEOUT may interrupt the
connect.  Here every connect already closes its descriptor when it is
unwound, so BODY simply runs; the macro is kept so that such code reads."
  `(progn ,@body))

;;; ------------------------------------------------------------------
;;; Accessors

(defun socket-os-fd* (socket)
  (or (socket-os-fd socket)
      (%raise "socket-os-fd" :ebadf nil nil nil nil)))

(defgeneric socket-os-fd (socket)
  (:documentation "The operating system's descriptor of SOCKET, NIL once closed.")
  (:method ((s stream)) (and (socket-stream-p s) (%stream-fd s)))
  (:method ((s socket-server)) (socket-server-fd s))
  (:method ((s datagram-socket)) (datagram-socket-fd s)))

(defgeneric remote-host (socket)
  (:documentation "The peer's address of SOCKET: a 32-bit integer (IPv4) or an
IPv6 address; a datagram socket gives its default destination, a passive
socket NIL.  IPADDR-TO-DOTTED and IPADDR-TO-HOSTNAME make it readable.")
  (:method ((s stream))
    (or (stream-info s :remote-host)
        (and (not (stream-info s :family)) (nth-value 0 (live-address s :remote)))))
  (:method ((s socket-server)) nil)
  (:method ((s datagram-socket)) (datagram-socket-remote-host s)))

(defgeneric remote-port (socket)
  (:documentation "The peer's port of SOCKET (see REMOTE-HOST).")
  (:method ((s stream))
    (or (stream-info s :remote-port)
        (and (not (stream-info s :family)) (nth-value 1 (live-address s :remote)))))
  (:method ((s socket-server)) nil)
  (:method ((s datagram-socket)) (datagram-socket-remote-port s)))

(defgeneric local-host (socket)
  (:documentation "The local address SOCKET is bound to (an integer or IPv6
address; 0 for the wildcard address of a passive socket).")
  (:method ((s stream))
    (or (stream-info s :local-host)
        (and (not (stream-info s :family)) (nth-value 0 (live-address s :local)))))
  (:method ((s socket-server))
    (unless (and (passive-socket-p s) (eq (passive-socket-family s) :file))
      (address-object (socket-server-host s))))
  (:method ((s datagram-socket))
    (unless (eq (datagram-socket-family s) :file)
      (address-object (%local-address (datagram-fd s))))))

(defgeneric local-port (socket)
  (:documentation "The local port of SOCKET; for a passive socket the port it
listens on (the kernel's choice when none was asked for).")
  (:method ((s stream))
    (or (stream-info s :local-port)
        (and (not (stream-info s :family)) (nth-value 1 (live-address s :local)))))
  (:method ((s socket-server))
    (unless (and (passive-socket-p s) (eq (passive-socket-family s) :file))
      (socket-server-port s)))
  (:method ((s datagram-socket))
    (unless (eq (datagram-socket-family s) :file)
      (nth-value 1 (%local-address (datagram-fd s))))))

(defgeneric local-filename (socket)
  (:documentation "The file name a :FILE socket is bound to, or NIL.")
  (:method ((s stream))
    (if (stream-info s :family)
        (stream-info s :local-filename)
        (nth-value 2 (live-address s :local))))
  (:method ((s socket-server)) (and (passive-socket-p s) (passive-socket-filename s)))
  (:method ((s datagram-socket)) (datagram-socket-local-filename s)))

(defgeneric remote-filename (socket)
  (:documentation "The file name of the peer of a :FILE socket, or NIL.")
  (:method ((s stream))
    (if (stream-info s :family)
        (stream-info s :remote-filename)
        (nth-value 2 (live-address s :remote))))
  (:method ((s socket-server)) nil)
  (:method ((s datagram-socket)) (datagram-socket-remote-filename s)))

(defgeneric socket-type (socket)
  (:documentation ":STREAM or :DATAGRAM.")
  (:method ((s stream))
    (unless (socket-stream-p s)
      (error 'type-error :datum s :expected-type 'socket-stream))
    :stream)
  (:method ((s socket-server)) :stream)
  (:method ((s datagram-socket)) :datagram))

(defgeneric socket-format (socket)
  (:documentation ":TEXT, :BINARY or :BIVALENT, as given to MAKE-SOCKET (a
stream made otherwise: from its element type).")
  (:method ((s stream))
    (or (stream-info s :format)
        (let ((type (stream-element-type s)))
          (if (or (eq type 'character) (subtypep type 'character)) :text :binary))))
  (:method ((s socket-server)) (if (passive-socket-p s) (passive-socket-format s) :text))
  (:method ((s datagram-socket)) (datagram-socket-format s)))

(defgeneric socket-address-family (socket)
  (:documentation ":INTERNET (IPv4 or IPv6) or :FILE (Unix-domain).")
  (:method ((s stream))
    (or (stream-info s :family)
        (if (eq (nth-value 2 (%local-address (stream-fd s 'socket-address-family))) :unix)
            :file
            :internet)))
  (:method ((s socket-server))
    (if (passive-socket-p s) (passive-socket-family s) :internet))
  (:method ((s datagram-socket)) (datagram-socket-family s)))

(defmethod socket-connect-accessor ((s datagram-socket))
  (datagram-socket-connect s))

;;; ------------------------------------------------------------------
;;; Datagrams

(defun octets-of (buffer size who)
  "BUFFER's first SIZE elements as octets (strings are encoded as UTF-8)."
  (unless (typep size '(integer 0))
    (error 'type-error :datum size :expected-type '(integer 0)))
  (when (> size (length buffer))
    (error "~A: size ~D is larger than the buffer (~D)." who size (length buffer)))
  (if (stringp buffer)
      (utf-8-octets buffer size)
      (values buffer)))

(defun utf-8-octets (string end)
  "The UTF-8 encoding of STRING below END, as a fresh octet vector."
  (let ((out (make-array (* 4 end) :element-type '(unsigned-byte 8) :fill-pointer 0)))
    (flet ((put (o) (vector-push o out)))
      (loop for i below end
            for c = (char-code (char string i))
            do (cond ((< c #x80) (put c))
                     ((< c #x800) (put (logior #xc0 (ash c -6)))
                      (put (logior #x80 (ldb (byte 6 0) c))))
                     ((< c #x10000) (put (logior #xe0 (ash c -12)))
                      (put (logior #x80 (ldb (byte 6 6) c)))
                      (put (logior #x80 (ldb (byte 6 0) c))))
                     (t (put (logior #xf0 (ash c -18)))
                        (put (logior #x80 (ldb (byte 6 12) c)))
                        (put (logior #x80 (ldb (byte 6 6) c)))
                        (put (logior #x80 (ldb (byte 6 0) c)))))))
    (coerce out '(simple-array (unsigned-byte 8) (*)))))

(defgeneric send-to (socket buffer size &key remote-host remote-port remote-filename
                                             ipv6 scope-id)
  (:documentation "Send the first SIZE elements of BUFFER (octets, or a string
sent as UTF-8) as one datagram to REMOTE-HOST/REMOTE-PORT (or REMOTE-FILENAME
for :FILE sockets); without them, to the defaults given to MAKE-SOCKET.
Returns the number of octets sent.  IPV6 is accepted and changes nothing
\(the socket's family decides); SCOPE-ID is not supported: a true value
signals an error (write the scope in the address, \"fe80::1%eth0\")."))

(defmethod send-to ((s datagram-socket) buffer size
                    &key remote-host remote-port remote-filename ipv6 scope-id)
  (declare (ignore ipv6))
  (when scope-id
    (error "SEND-TO :SCOPE-ID is not supported here: give the scope in the ~
            address text, e.g. \"fe80::1%eth0\"."))
  (let ((octets (octets-of buffer size 'send-to)))
    (if (eq (datagram-socket-family s) :file)
        (let ((path (or remote-filename (datagram-socket-remote-filename s))))
          (unless path
            (error "SEND-TO: no :REMOTE-FILENAME and no default destination."))
          (%send-to (datagram-fd s) octets 0 (if (stringp buffer) (length octets) size)
                    (namestring-of path) nil))
        (let ((host (or remote-host (datagram-socket-remote-host s)))
              (port (or remote-port (datagram-socket-remote-port s))))
          (unless (and host port)
            (error "SEND-TO: no :REMOTE-HOST/:REMOTE-PORT and no default destination."))
          (if (and (datagram-socket-connected s) (null remote-host) (null remote-port))
              (%send-to (datagram-fd s) octets 0 (if (stringp buffer) (length octets) size)
                        nil nil)        ; to the connected peer
              (%send-to (datagram-fd s) octets 0 (if (stringp buffer) (length octets) size)
                        (host-text host) (lookup-port port "udp")))))))

(defgeneric receive-from (socket size &key buffer extract)
  (:documentation "Wait for one datagram and read at most SIZE octets of it (the
rest is dropped) into BUFFER (an octet vector or string of at least SIZE
elements; by default a fresh octet vector).  Returns the buffer (with
EXTRACT, a fresh vector of just the octets received), the count, and the
sender: host (integer or IPv6 address) and port, or for :FILE sockets its
file name (\"\" when unnamed).  A socket connected by MAKE-SOCKET's
REMOTE-HOST/REMOTE-PORT takes only its peer's datagrams, and signals
CONNECTION-REFUSED-ERROR when an earlier datagram found no listener there."))

(defmethod receive-from ((s datagram-socket) size &key buffer extract)
  (unless (typep size '(integer 0))
    (error 'type-error :datum size :expected-type '(integer 0)))
  (unless (typep buffer '(or null string (vector (unsigned-byte 8))))
    (error 'type-error :datum buffer :expected-type '(or null string (vector (unsigned-byte 8)))))
  (when (and buffer (< (length buffer) size))
    (error "RECEIVE-FROM: the buffer (~D) is smaller than size ~D." (length buffer) size))
  (let ((octets (if (and buffer (typep buffer '(vector (unsigned-byte 8))))
                    buffer
                    (make-array size :element-type '(unsigned-byte 8)))))
    (multiple-value-bind (count host port) (%receive-from (datagram-fd s) octets 0 size)
      (unless (datagram-socket-fd s)      ; closed by another thread meanwhile
        (datagram-fd s))
      (let ((result (cond ((stringp buffer)
                           (dotimes (i count buffer)
                             (setf (char buffer i) (code-char (aref octets i)))))
                          (t octets))))
        (when extract
          (setf result (subseq result 0 count)))
        (if (eq (datagram-socket-family s) :file)
            (values result count host)
            (values result count (address-object host) port))))))

;;; ------------------------------------------------------------------
;;; MP:WAIT-FOR-INPUT-AVAILABLE on datagram sockets (the function itself,
;;; and MP:WITH-TIMEOUT, are in mp.lisp)

(defmethod input-ready-p ((item datagram-socket))
  ;; a closed socket counts as ready: reading it fails at once
  (or (null (datagram-socket-fd item))
      (and (member (%status (cons (datagram-socket-fd item) :input) 0)
                   '(:input :eof :error))
           t)))

(defmethod wait-entry ((item datagram-socket))
  (and (datagram-socket-fd item) (list* (datagram-socket-fd item) :input nil)))
