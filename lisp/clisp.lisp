;;;; clisp.lisp - CLISP's socket API (impnotes "Socket Streams").
;;;;
;;;; SOCKET-SERVER, SOCKET-ACCEPT, SOCKET-CONNECT, SOCKET-WAIT,
;;;; SOCKET-STATUS, SOCKET-STREAM-HOST/PORT/PEER/LOCAL,
;;;; SOCKET-STREAM-SHUTDOWN, SOCKET-OPTIONS and EXT:STREAM-HANDLES, with
;;;; CLISP's lambda lists, defaults and values.  Errors are SOCKET-ERRORs
;;;; (also EXT:OS-ERRORs); a :TIMEOUT that passes is a SOCKET-TIMEOUT-ERROR
;;;; with code :ETIMEDOUT, as CLISP's OS-ERROR ETIMEDOUT.

(in-package "ECLSOCK")

(defun socket-server (&optional port &key (backlog 1) interface)
  "Listen on PORT (0 or NIL: the kernel picks one; SOCKET-SERVER-PORT says
which).  INTERFACE is the local address to bind (a string such as
\"127.0.0.1\" or \"::1\"; default all IPv4 interfaces, \"0.0.0.0\"), or a
socket stream, to bind the address that stream's peer sees.  BACKLOG goes
to listen(2); CLISP's default is 1 (also for NIL).  Returns a SOCKET-SERVER."
  (when (socket-stream-p port)           ; CLISP's old (socket-server stream)
    (warn "(SOCKET-SERVER stream) is deprecated: use (SOCKET-SERVER 0 :INTERFACE stream).")
    (setf interface port port 0))
  (check-port (or port 0))
  (open-server (listen-host interface 'socket-server) (or port 0)
               (or backlog 1)))         ; CLISP takes NIL: the default

(defun socket-server-close (server)
  "Close SERVER.  Closing it again is harmless.  Returns NIL."
  (close-server server))

(document-function 'socket-server-host
                   "The address SERVER is bound to, e.g. \"0.0.0.0\" or \"127.0.0.1\".
Still readable after SOCKET-SERVER-CLOSE.")
(document-function 'socket-server-port
                   "The port SERVER listens on (the real one, also after port 0).")

(defun socket-wait (server &optional seconds microseconds)
  "Wait until SERVER has a connection to accept: T, or NIL when SECONDS
(plus MICROSECONDS; or a (SEC USEC) list) pass first.  No timeout: wait.
Closing SERVER in another thread ends the wait with an error."
  (server-fd server 'socket-wait)
  (let ((ready (%status server (normalize-timeout seconds microseconds))))
    (server-fd server 'socket-wait)     ; closed while we waited
    (and ready t)))

(defun socket-accept (server &key (element-type 'character) (external-format :default)
                                  (buffered :default) timeout)
  "Accept a connection on SERVER and return a socket stream.  With TIMEOUT
\(seconds, (SEC USEC) or (SEC . USEC)), signal SOCKET-TIMEOUT-ERROR when no
connection comes in time.  SOCKET-STREAM-HOST/-PORT of the stream are the
server's."
  (server-fd server 'socket-accept)
  (or (server-accept server 'socket-accept (normalize-timeout timeout)
                     (normalize-element-type element-type)
                     (normalize-external-format external-format)
                     (buffered-p buffered))
      (%raise "accept" :etimedout nil
              (socket-server-host server) (socket-server-port server) nil)))

(defun socket-connect (port &optional (host "localhost")
                       &key (element-type 'character) (external-format :default)
                            (buffered :default) timeout)
  "Connect to HOST (default, also for NIL, \"localhost\") at PORT and return a socket
stream.  Every address HOST resolves to (IPv4 and IPv6) is tried in turn;
TIMEOUT bounds the whole attempt.  ELEMENT-TYPE is CHARACTER (the stream
also takes octets) or (UNSIGNED-BYTE 8); EXTERNAL-FORMAT is any ECL format
or :DOS/:UNIX/:MAC; BUFFERED NIL sends every write at once.

Allegro's accessor of the same name: given a socket object, return
:ACTIVE or :PASSIVE."
  (typecase port
    (integer
     (check-port port)
     (let ((h (check-host (or host "localhost"))))  ; CLISP takes NIL too
       (%connect h port (normalize-timeout timeout)
                 (normalize-element-type element-type)
                 (normalize-external-format external-format)
                 (buffered-p buffered))))
    (t (socket-connect-accessor port))))

(defun socket-status (object &optional seconds microseconds)
  "Readiness of socket streams and servers.  OBJECT is a socket stream, a
server, (STREAM . DIRECTION) with DIRECTION :INPUT, :OUTPUT or :IO, or a
list of those; in a list, (STREAM DIRECTION . X) and (SERVER . X) elements
get their status stored in X and the same list is returned.  Stream
statuses: :INPUT, :OUTPUT, :IO, :EOF, :APPEND, :ERROR or NIL; servers: T
or NIL.  Waits up to SECONDS (+ MICROSECONDS; NIL: until something is
ready).  Input already buffered in a stream counts as ready.  Second value:
how many objects are ready."
  (%status object (normalize-timeout seconds microseconds)))

(defun socket-stream-host (stream)
  "The host STREAM was made with (for accepted streams, the server's)."
  (stream-fd stream 'socket-stream-host)
  (%stream-host stream))

(defun socket-stream-port (stream)
  "The port STREAM was made with (for accepted streams, the server's)."
  (stream-fd stream 'socket-stream-port)
  (%stream-port stream))

(defun socket-stream-peer (stream &optional do-not-resolve-p)
  "The peer's address and port (getpeername): \"IP (NAME)\", or just \"IP\"
with DO-NOT-RESOLVE-P.  STREAM may also be a raw socket descriptor."
  (multiple-value-bind (host port) (%peer-address (any-fd stream 'socket-stream-peer))
    (address-string host port do-not-resolve-p)))

(defun socket-stream-local (stream &optional do-not-resolve-p)
  "The local address and port (getsockname), as SOCKET-STREAM-PEER."
  (multiple-value-bind (host port) (%local-address (any-fd stream 'socket-stream-local))
    (address-string host port do-not-resolve-p)))

(defun socket-stream-shutdown (stream direction)
  "Shut down DIRECTION (:INPUT, :OUTPUT or :IO) of STREAM's connection.
Pending output is sent first; after :OUTPUT the peer reads end of file and
STREAM is no longer an output stream.  CLOSE is still needed.  Returns NIL."
  (let ((how (case direction (:input 0) (:output 1) (:io 2)
               (t (error 'type-error :datum direction
                                     :expected-type '(member :input :output :io))))))
    (if (typep stream '(integer 0))
        (%shutdown-fd stream how)
        (progn (stream-fd stream 'socket-stream-shutdown)
               (%stream-shutdown stream how)))
    nil))

(defun socket-options (socket &rest options)
  "Read and set socket options: each keyword (:SO-KEEPALIVE, :SO-RCVBUF,
:SO-LINGER, :SO-RCVTIMEO ... :TCP-NODELAY) may be followed by a new value.
Returns one value per keyword: the old value when a new one was given,
else the current one.  Timeouts take any :TIMEOUT form and read back as
seconds; :SO-LINGER is NIL or seconds."
  (let ((fd (any-fd socket 'socket-options))
        (results '()))
    (loop while options
          do (let ((option (pop options)))
               (if (and options (not (keywordp (first options))))
                   (let ((old (%getsockopt fd option))
                         (new (pop options)))
                     (%setsockopt fd option
                                  (if (member option '(:so-rcvtimeo :so-sndtimeo))
                                      (or (normalize-timeout new) 0)
                                      new))
                     (push old results))
                   (push (%getsockopt fd option) results))))
    (values-list (nreverse results))))

(defun ext:stream-handles (stream)
  "The descriptors under STREAM: input and output (a server gives its
descriptor and NIL)."
  (cond ((socket-server-p stream)
         (values (socket-server-fd stream) nil))
        ((socket-stream-p stream)
         (let ((fd (%stream-fd stream))) (values fd fd)))
        ((typep stream 'two-way-stream)
         (values (nth-value 0 (ext:stream-handles (two-way-stream-input-stream stream)))
                 (nth-value 1 (ext:stream-handles (two-way-stream-output-stream stream)))))
        ((typep stream 'file-stream)
         (let ((fd (ext:file-stream-fd stream))) (values fd fd)))
        (t (error 'type-error :datum stream :expected-type '(or stream socket-server)))))
