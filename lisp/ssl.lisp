;;;; ssl.lisp - Allegro's SSL API on the module's TLS transport (OpenSSL).
;;;;
;;;; Owns: MAKE-SSL-CLIENT-STREAM, MAKE-SSL-SERVER-STREAM, the contexts
;;;; (MAKE-SSL-CLIENT-CONTEXT, MAKE-SSL-SERVER-CONTEXT), SSL-DO-HANDSHAKE,
;;;; GET-SSL-PEER-CERTIFICATE, GET-SSL-VERIFY-RESULT and the
;;;; X509-CERTIFICATE readers, with Allegro's lambda lists.  The keywords are
;;;; checked and turned into numbers here; src/tls.c does the TLS.
;;;; A TLS stream is one of our socket streams whose transport is a TLS
;;;; session (no Gray stream, no second buffer): READ-LINE, FORMAT,
;;;; READ-SEQUENCE, SOCKET-STATUS and bivalence work as on plain streams.
;;;; Differences to Allegro (doc/ssl.texi): a client verifies the server's
;;;; certificate and name unless :VERIFY NIL; TLS 1.2 is the minimum; the
;;;; handshake runs in the constructor (bounded by *SSL-HANDSHAKE-TIMEOUT*).
;;;; Must not: touch OpenSSL (only the %SSL- primitives do); read another
;;;; face's tables or classes (what faces noted about a stream moves to its
;;;; TLS stream through the core's MOVE-STREAM-NOTES).

(in-package "ECLSOCK")

(defvar *ssl-features* '(:sni :verify-by-default :tls1.3)
  "What this SSL implementation supports (Allegro 10.1's variable): :SNI means
a client sends :SERVER-NAME (or the host it connected to) as SNI.")

(defvar *ssl-handshake-timeout* 60
  "Seconds MAKE-SSL-CLIENT-STREAM and MAKE-SSL-SERVER-STREAM wait for the TLS
handshake to finish (NIL: no limit).  A peer that stops in the middle of the
handshake then gives an SSL-HANDSHAKE-ERROR instead of a hang.")

(defun ssl-stream-p (object)
  "True when OBJECT is an open socket stream whose transport is TLS (made by
MAKE-SSL-CLIENT-STREAM or MAKE-SSL-SERVER-STREAM)."
  (and (%ssl-stream-p object) t))

(deftype ssl-socket-stream ()
  "A socket stream with a TLS session under its buffers."
  '(satisfies ssl-stream-p))

;;; ------------------------------------------------------------------
;;; Contexts

(defstruct (ssl-context (:constructor %make-ssl-context (pointer server description))
                        (:copier nil))
  "TLS settings shared by many connections (an OpenSSL SSL_CTX): made by
MAKE-SSL-CLIENT-CONTEXT or MAKE-SSL-SERVER-CONTEXT, given as :CONTEXT."
  (pointer nil :read-only t)
  (server nil :read-only t)
  (description nil :read-only t))

(defmethod print-object ((c ssl-context) out)
  (print-unreadable-object (c out :type t :identity t)
    (format out "~:[client~;server~]~{ ~S~}" (ssl-context-server c)
            (ssl-context-description c))))

(defparameter *method-versions*
  '((:tlsv1 #x301 #x301) (:tlsv1.1 #x302 #x302) (:tlsv1.2 #x303 #x303)
    (:tlsv1.3 #x304 #x304) (:tlsv1+ nil nil) (:sslv23 nil nil)
    (:tlsv1.1+ nil nil) (:tlsv1.2+ #x303 nil) (:tlsv1.3+ #x304 nil))
  "Allegro's :METHOD values and the (minimum maximum) TLS versions they mean.
NIL is OpenSSL's choice above our TLS 1.2 floor: :TLSV1+ and :SSLV23 do not
lower it (Debian's OpenSSL refuses TLS 1.0 and 1.1 at its default level).")

(defun method-versions (method)
  "The minimum and maximum protocol versions for METHOD (NIL: defaults)."
  (if (null method)
      (values nil nil)
      (let ((entry (assoc method *method-versions*)))
        (unless entry
          (error 'ssl-configuration-error
                 :code :tls-config :syscall "SSL_CTX_new"
                 :message (format nil "unsupported TLS method ~S (use one of ~{~S~^ ~})"
                                  method (mapcar #'first *method-versions*))))
        (values (second entry) (third entry)))))

(defun verify-level (verify)
  "0 none, 1 optional, 2 required: Allegro's :VERIFY values."
  (case verify
    ((nil) 0)
    (:optional 1)
    ((:required t) 2)
    (t (error 'type-error :datum verify :expected-type '(member nil :optional :required t)))))

(defun crl-level (crl-check)
  (case crl-check
    ((nil) 0)
    ((:peer t) 1)
    (:all 2)
    (t (error 'type-error :datum crl-check :expected-type '(member nil t :peer :all)))))

(defun file-arg (file)
  (and file (namestring (if (pathnamep file) (translate-logical-pathname file) file))))

(defun string-arg (x name)
  (cond ((null x) nil)
        ((stringp x) x)
        (t (error 'type-error :datum x :expected-type `(or null string)
                              :context name))))

(defvar *context-cache* (make-hash-table :test 'equal :synchronized t)
  "Contexts made for connections that gave no :CONTEXT, keyed by their
settings and the files' write dates (a changed file makes a new context).")

(defun build-context (server method certificate key certificate-password verify
                      max-depth ca-file ca-directory ciphers ciphersuites crl-check
                      crl-file prefer-server-cipher-order)
  (multiple-value-bind (min max) (method-versions method)
    (when max-depth (check-type max-depth (integer 0 100)))
    (let* ((settings (list :min-version min :max-version max
                           :verify (verify-level verify) :max-depth max-depth
                           :crl-check (crl-level crl-check)
                           :prefer-server-order (and prefer-server-cipher-order t)
                           :certificate (file-arg certificate) :key (file-arg key)
                           :password (string-arg certificate-password :certificate-password)
                           :ca-file (file-arg ca-file) :ca-directory (file-arg ca-directory)
                           :ciphers (string-arg ciphers :ciphers)
                           :ciphersuites (string-arg ciphersuites :ciphersuites)
                           :crl-file (file-arg crl-file))))
      (%make-ssl-context (%ssl-make-context server settings) server
                         (remove nil (list (or method :tlsv1.2+)
                                           (case (getf settings :verify)
                                             (0 :verify-none) (1 :verify-optional)
                                             (2 :verify-required))
                                           (and certificate (file-arg certificate))))))))

(defun cached-context (server &rest args)
  "A context for ARGS (BUILD-CONTEXT's), made once per set of settings."
  (let ((key (list* server
                    (mapcar (lambda (f) (and f (probe-file f) (file-write-date f)))
                            (list (nth 1 args) (nth 2 args) (nth 6 args) (nth 11 args)))
                    args)))
    (or (gethash key *context-cache*)
        (setf (gethash key *context-cache*) (apply #'build-context server args)))))

(defun make-ssl-client-context (&key method certificate key certificate-password
                                  (verify :required) max-depth ca-file ca-directory
                                  ciphers ciphersuites crl-check crl-file
                                  prefer-server-cipher-order)
  "Make an SSL-CONTEXT for clients (Allegro's lambda list).  METHOD limits the
protocol versions (:TLSV1.2, :TLSV1.3, :TLSV1.2+ ...; default TLS 1.2 and
newer).  CERTIFICATE and KEY are PEM files of a client certificate (KEY may be
omitted when the certificate file holds it), CERTIFICATE-PASSWORD decrypts
the key.  VERIFY is :REQUIRED by default (ecl-sock is secure by default,
unlike Allegro): the server's chain is checked against the system CA store
plus CA-FILE/CA-DIRECTORY, and its name by the stream; NIL turns checking
off.  MAX-DEPTH bounds the chain, CIPHERS (TLS 1.2) and CIPHERSUITES (TLS 1.3)
are OpenSSL cipher strings, CRL-CHECK (T/:PEER or :ALL) with CRL-FILE checks
revocation.  Signals SSL-CONFIGURATION-ERROR for a setting OpenSSL refuses."
  (build-context nil method certificate key certificate-password verify max-depth
                 ca-file ca-directory ciphers ciphersuites crl-check crl-file
                 prefer-server-cipher-order))

(defun make-ssl-server-context (&key method certificate key certificate-password
                                  verify max-depth ca-file ca-directory ciphers
                                  ciphersuites crl-check crl-file
                                  (prefer-server-cipher-order t) server-name)
  "Make an SSL-CONTEXT for servers (Allegro's lambda list).  CERTIFICATE (PEM,
with the chain) and KEY are the server's; CERTIFICATE-PASSWORD decrypts the
key.  VERIFY asks clients for certificates: NIL (default) none, :OPTIONAL
checks one if sent, :REQUIRED (or T) refuses clients without a valid one,
checked against CA-FILE/CA-DIRECTORY.  The other keywords are as for
MAKE-SSL-CLIENT-CONTEXT; SERVER-NAME is accepted and ignored (as Allegro's
documentation leaves it)."
  (declare (ignore server-name))
  (unless certificate
    (error 'ssl-configuration-error :code :tls-config :syscall "SSL_CTX_new"
                                    :message "a server context needs :CERTIFICATE"))
  (build-context t method certificate key certificate-password verify max-depth
                 ca-file ca-directory ciphers ciphersuites crl-check crl-file
                 prefer-server-cipher-order))

;;; ------------------------------------------------------------------
;;; Streams

(defun check-context (context server)
  (unless (ssl-context-p context)
    (error 'type-error :datum context :expected-type 'ssl-context))
  (unless (eq (and (ssl-context-server context) t) (and server t))
    (error "~S is a ~:[client~;server~] context; this needs a ~:[client~;server~] one."
           context (ssl-context-server context) server))
  (ssl-context-pointer context))

(defun no-file-keywords-with-context (alist)
  (loop for (name . value) in alist
        when value
          do (error "~S cannot be given together with :CONTEXT (Allegro's rule: the ~
context already holds it)." name)))

(defun connected-host (socket)
  "The host SOCKET was connected to, as text (for the name check and SNI):
the host it was made with, else its peer's IPv4 address."
  (let ((host (ignore-errors (%stream-host socket))))
    (typecase host
      (string host)
      ((unsigned-byte 32) (dotted host))
      (t (multiple-value-bind (peer port family)
             (ignore-errors (%peer-address (stream-fd socket 'connected-host)))
           (declare (ignore port))
           (and (eq family :inet) peer))))))

(defun switch-stream (socket context server host verify max-depth method ciphers
                      ciphersuites)
  (unless (socket-stream-p socket)
    (error 'type-error :datum socket :expected-type 'socket-stream))
  (multiple-value-bind (min max) (method-versions method)
    ;; what the faces noted about SOCKET (now closed) goes to the new stream
    (move-stream-notes socket
                       (%ssl-wrap socket context server host
                                  (if (eq verify :default) nil (verify-level verify))
                                  max-depth min max
                                  (string-arg ciphers :ciphers)
                                  (string-arg ciphersuites :ciphersuites)
                                  *ssl-handshake-timeout*))))

(defun start-tls (socket server context method certificate key certificate-password
                  verify verify-p max-depth ca-file ca-directory ciphers ciphersuites
                  crl-check crl-file server-name)
  "MAKE-SSL-CLIENT-STREAM (SERVER NIL) and MAKE-SSL-SERVER-STREAM (SERVER T)
with their keywords; VERIFY-P says whether :VERIFY was given.  The TLS context
is CONTEXT (then the file keywords are an error) or a cached one made from
the keywords; with CONTEXT, the per-connection keywords apply on top of it."
  (let* ((ctx (if context
                  (progn
                    (no-file-keywords-with-context
                     `((:certificate . ,certificate) (:key . ,key)
                       (:certificate-password . ,certificate-password)
                       (:ca-file . ,ca-file) (:ca-directory . ,ca-directory)
                       (:crl-check . ,crl-check) (:crl-file . ,crl-file)))
                    (check-context context server))
                  (progn
                    (when (and server (not certificate))
                      (error 'ssl-configuration-error
                             :code :tls-config :syscall "SSL_CTX_new"
                             :message "MAKE-SSL-SERVER-STREAM needs :CERTIFICATE (or :CONTEXT)"))
                    (ssl-context-pointer
                     (cached-context server method certificate key certificate-password
                                     verify max-depth ca-file ca-directory ciphers
                                     ciphersuites crl-check crl-file server)))))
         (host (and (not server)
                    (or (string-arg server-name :server-name) (connected-host socket)))))
    (switch-stream socket ctx server host (if (and context verify-p) verify :default)
                   (and context max-depth) (and context method)
                   (and context ciphers) (and context ciphersuites))))

(defun make-ssl-client-stream (socket &key context method certificate key
                                        certificate-password (verify :required verify-p)
                                        max-depth ca-file ca-directory ciphers
                                        ciphersuites crl-check crl-file server-name)
  "Start TLS as a client on SOCKET, a connected socket stream of any face, and
return a NEW stream for the encrypted connection (Allegro's way: SOCKET is
closed without closing the connection and must not be used any more; close
the new stream when done).  The handshake runs here and signals
SSL-HANDSHAKE-ERROR, or SSL-VERIFY-ERROR when the server's certificate is
refused (by default it must chain to the system CA store or CA-FILE /
CA-DIRECTORY and name SERVER-NAME, else the host SOCKET connected to; an IP
address is checked against the certificate's IP entries).  SERVER-NAME (or
that host, when it is a name) is sent as SNI.  VERIFY NIL accepts any
certificate (Allegro's default; ecl-sock verifies unless told not to).
CONTEXT is an SSL-CONTEXT from MAKE-SSL-CLIENT-CONTEXT; with it, METHOD,
VERIFY, MAX-DEPTH, CIPHERS and CIPHERSUITES still apply to this connection,
and the file keywords are an error.  Without it, the other keywords are those
of MAKE-SSL-CLIENT-CONTEXT."
  (start-tls socket nil context method certificate key certificate-password
             verify verify-p max-depth ca-file ca-directory ciphers ciphersuites
             crl-check crl-file server-name))

(defun make-ssl-server-stream (socket &key context certificate key certificate-password
                                        method (verify nil verify-p) max-depth ca-file
                                        ca-directory ciphers ciphersuites crl-check
                                        crl-file)
  "Start TLS as a server on SOCKET, an accepted socket stream of any face, and
return a NEW stream for the encrypted connection (SOCKET is closed without
closing the connection and must not be used any more).  CERTIFICATE (PEM,
with its chain) and KEY are the server's; CERTIFICATE-PASSWORD decrypts the
key.  VERIFY asks the client for a certificate: NIL (default) none,
:OPTIONAL checks one if sent, :REQUIRED (or T) refuses a client without a
valid one; CA-FILE/CA-DIRECTORY are the CAs trusted for client certificates.
The handshake runs here (bounded by *SSL-HANDSHAKE-TIMEOUT*) and signals
SSL-HANDSHAKE-ERROR or SSL-VERIFY-ERROR.  CONTEXT, from
MAKE-SSL-SERVER-CONTEXT, replaces the file keywords; METHOD, VERIFY,
MAX-DEPTH, CIPHERS and CIPHERSUITES still apply to this connection."
  (start-tls socket t context method certificate key certificate-password
             verify verify-p max-depth ca-file ca-directory ciphers ciphersuites
             crl-check crl-file nil))

(defun check-ssl-stream (stream who)
  (unless (ssl-stream-p stream)
    (error 'type-error :datum stream :expected-type 'ssl-socket-stream
                       :context who))
  stream)

(defgeneric ssl-do-handshake (stream)
  (:documentation "Finish the TLS handshake of STREAM and return T (Allegro's
function).  ecl-sock's constructors have already done it, so this only checks
that STREAM is an open TLS stream.")
  (:method ((stream t))
    (check-ssl-stream stream 'ssl-do-handshake)
    t))

(defgeneric get-ssl-verify-result (stream)
  (:documentation "OpenSSL's verify result for the peer's certificate on TLS
STREAM: 0 (X509_V_OK) when it verified, or when no check was asked for and
none failed; otherwise the X509 code (10 expired, 18 self-signed, 20 unknown
issuer, 62 host name mismatch ...).  0 also when the peer sent no
certificate: see GET-SSL-PEER-CERTIFICATE.")
  (:method ((stream t))
    (%ssl-verify-result (check-ssl-stream stream 'get-ssl-verify-result))))

;;; ------------------------------------------------------------------
;;; Certificates

(defstruct (x509-certificate (:constructor %make-x509-certificate
                                 (version serial-number subject issuer not-before
                                  not-after subject-alt-name pem))
                             (:copier nil))
  "A peer's X.509 certificate, as GET-SSL-PEER-CERTIFICATE returns it.  The
readers are Allegro's: X509-CERTIFICATE-VERSION (:V1 :V2 :V3),
-SERIAL-NUMBER (integer), -SUBJECT and -ISSUER (lists of (\"CN\" . \"name\")
conses), -NOT-BEFORE and -NOT-AFTER (universal times), -SUBJECT-ALT-NAME
(list of (\"DNS\" . name) and (\"IP Address\" . text))."
  version serial-number subject issuer not-before not-after subject-alt-name pem)

(loop for (name doc) on
      '(x509-certificate-version "The certificate's version: :V1, :V2 or :V3."
        x509-certificate-serial-number "The certificate's serial number (an integer)."
        x509-certificate-subject
        "Who the certificate names: a list of (\"CN\" . \"localhost\") conses, in
the order of the certificate (\"C\" \"ST\" \"O\" \"OU\" \"CN\" ...)."
        x509-certificate-issuer "Who signed the certificate, as X509-CERTIFICATE-SUBJECT."
        x509-certificate-not-before "When the certificate becomes valid, as a universal time."
        x509-certificate-not-after "When the certificate expires, as a universal time."
        x509-certificate-subject-alt-name
        "The certificate's alternative names: (\"DNS\" . \"localhost\") and
(\"IP Address\" . \"127.0.0.1\") conses."
        x509-certificate-p "True when the object is an X509-CERTIFICATE."
        ssl-context-p "True when the object is an SSL-CONTEXT."
        ssl-verify-error-result
        "OpenSSL's X509 verify code of an SSL-VERIFY-ERROR (10 expired, 18 self-signed,
20 unknown issuer, 62 host name mismatch ...)."
        ssl-truncated-eof-stream "The TLS stream an SSL-TRUNCATED-EOF is about.")
      by #'cddr
      do (document-function name doc))

(defmethod print-object ((c x509-certificate) out)
  (flet ((cn (alist) (or (cdr (assoc "CN" alist :test #'string=)) "?")))
    (print-unreadable-object (c out :type t :identity t)
      (format out "CN=~A issuer CN=~A" (cn (x509-certificate-subject c))
              (cn (x509-certificate-issuer c))))))

(defun %utf8-decode (octets)
  "Called from C: the string UTF-8 OCTETS encode."
  (let ((in (ext:make-sequence-input-stream octets :external-format :utf-8))
        (out (make-string-output-stream)))
    (loop for c = (read-char in nil) while c do (write-char c out))
    (get-output-stream-string out)))

(defun universal-time (fields)
  (and fields
       (destructuring-bind (sec min hour day month year) fields
         (encode-universal-time sec min hour day month year 0))))

(defvar *peer-certificates* (make-hash-table :test 'eq :weakness :key :synchronized t)
  "TLS stream -> its peer's X509-CERTIFICATE (made once, as Allegro does).")

(defgeneric get-ssl-peer-certificate (stream)
  (:documentation "The peer's certificate on TLS STREAM as an X509-CERTIFICATE,
or NIL when the peer sent none (Allegro's function; the same object on every
call).")
  (:method ((stream t))
    (check-ssl-stream stream 'get-ssl-peer-certificate)
    (multiple-value-bind (cert found) (gethash stream *peer-certificates*)
      (if found
          cert
          (setf (gethash stream *peer-certificates*)
                (let ((info (%ssl-peer-certificate stream)))
                  (and info
                       (destructuring-bind (version serial subject issuer before after
                                            alt pem)
                           info
                         (%make-x509-certificate
                          (case version (1 :v1) (2 :v2) (3 :v3) (t version))
                          (and serial (parse-integer serial :radix 16))
                          subject issuer (universal-time before)
                          (universal-time after) alt pem)))))))))

(defun ssl-counts ()
  "Live OpenSSL sessions and contexts made by ecl-sock, and whether TLS is
built in (for leak tests)."
  (%ssl-counts))
