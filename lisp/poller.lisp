;;;; poller.lisp - the poller, an ecl-sock extension in the SOCKET package.
;;;;
;;;; Owns: the POLLER object (its print form and finalizer), the argument
;;;; checks of MAKE-POLLER, POLLER-ADD, POLLER-MODIFY, POLLER-REMOVE,
;;;; POLLER-WAIT, POLLER-CLOSE and WITH-POLLER, and the conditions they
;;;; signal.  The registrations and the wait are C's (src/poller.c): kept
;;;; in an epoll set, so a wait costs by the ready objects, not by the
;;;; ones held.  Must not: walk the registrations in Lisp (that is the
;;;; O(N) cost the poller exists to avoid).

(in-package "ECLSOCK")

(defstruct (poller (:constructor %make-poller-object (handle))
                   (:copier nil)
                   (:predicate poller-p))
  "A set of sockets kept registered across waits (MAKE-POLLER).  POLLER-WAIT
costs by the ready objects, not by how many are held.  Close it with
POLLER-CLOSE (or WITH-POLLER); a dropped one closes when collected."
  (handle nil))

(document-function 'poller-p "True when OBJECT is a POLLER.")

(defmethod print-object ((p poller) out)
  (print-unreadable-object (p out :identity t)
    (multiple-value-bind (n closed) (%poller-count (poller-handle p))
      (if closed
          (write-string "CLOSED POLLER" out)
          (format out "POLLER ~D object~:P" n)))))

(defun poller-fail (who code poller &optional message)
  "Signal the SOCKET-ERROR for CODE (an error keyword) in WHO on POLLER."
  (%raise (string-downcase (string who)) code
          (and message (format nil "~A, in ~S" message poller))
          nil nil nil))

(defun finalize-poller (p)
  (ignore-errors (%poller-close (poller-handle p))))

(defun make-poller ()
  "A new, empty poller.  Add socket streams, servers, Allegro passive and
datagram sockets or raw descriptors with POLLER-ADD, wait with POLLER-WAIT,
close with POLLER-CLOSE (or use WITH-POLLER).  On Linux it is an epoll
instance; elsewhere poll(2) over its registrations."
  (let ((h (%make-poller)))
    (when (integerp h)
      (%raise "make-poller" (%error-name h) nil nil nil nil))
    (let ((p (%make-poller-object h)))
      (ext:set-finalizer p #'finalize-poller)
      p)))

(defun poller-close (poller)
  "Close POLLER: every registration ends (the objects stay open) and its
descriptors close.  A thread waiting in it wakes with a SOCKET-ERROR.
Returns T, or NIL when POLLER was closed already."
  (check-type poller poller)
  (%poller-close (poller-handle poller)))

(defmacro with-poller ((var) &body body)
  "Bind VAR to a new poller around BODY and close it when BODY exits."
  `(let ((,var (make-poller)))
     (unwind-protect (progn ,@body)
       (poller-close ,var))))

(defun poller-direction (events)
  (case events
    (:input 1) (:output 2) (:io 3)
    (t (error 'type-error :datum events :expected-type '(member :input :output :io)))))

(defun poller-object (object)
  "The kind (0 stream, 1 server, 2 descriptor) and descriptor of OBJECT
\(NIL when it is closed)."
  (cond ((socket-stream-p object) (values 0 (%stream-fd object)))
        ((socket-server-p object) (values 1 (socket-server-fd object)))
        ((datagram-socket-p object) (values 2 (datagram-socket-fd object)))
        ((typep object '(integer 0 #x7fffffff)) (values 2 object))
        (t (error 'type-error :datum object
                              :expected-type '(or socket-stream socket-server
                                               datagram-socket (integer 0 #x7fffffff))))))

(defun poller-register (poller object events modify who)
  (check-type poller poller)
  (let ((dir (poller-direction events)))
    (multiple-value-bind (kind fd) (poller-object object)
      (unless fd
        (%raise (string-downcase (string who)) :ebadf
                (format nil "~S is closed" object) nil nil
                (and (streamp object) object)))
      (let ((r (%poller-add (poller-handle poller) object kind fd dir modify)))
        (cond ((eq r t) object)
              ((integerp r)             ; epoll_ctl's errno
               (%raise (string-downcase (string who)) (%error-name r) nil nil nil
                       (and (streamp object) object)))
              ((eq r :closed) (poller-fail who :ebadf poller "the poller is closed"))
              ((eq r :duplicate)
               (poller-fail who :eexist poller
                            (format nil "~S is in the poller already (POLLER-MODIFY changes its events)"
                                    object)))
              ((eq r :other-poller)
               (poller-fail who :eexist poller
                            (format nil "~S is registered with another poller" object)))
              ((eq r :not-registered)
               (poller-fail who :enoent poller
                            (format nil "~S is not in the poller" object)))
              ((consp r)
               (poller-fail who :eexist poller
                            (format nil "descriptor ~D of ~S is registered already, as ~S"
                                    fd object (cdr r))))
              (t (error "~A: unexpected ~S" who r)))))))

(defun poller-add (poller object &optional (events :input))
  "Register OBJECT with POLLER for EVENTS (:INPUT, :OUTPUT or :IO) and
return OBJECT.  OBJECT is a socket stream, a socket server (or Allegro
passive socket), an Allegro datagram socket or a raw descriptor.  Adding an
object that is in POLLER already, or a stream held by another poller, is a
SOCKET-ERROR (:EEXIST); a descriptor epoll refuses (a regular file) gives
epoll's error (:EPERM).  A registered stream that is closed leaves by
itself; remove other objects before closing them."
  (poller-register poller object events nil 'poller-add))

(defun poller-modify (poller object events)
  "Change the EVENTS (:INPUT, :OUTPUT or :IO) POLLER waits for on OBJECT,
which must be registered (a SOCKET-ERROR :ENOENT otherwise).  Returns OBJECT."
  (poller-register poller object events t 'poller-modify))

(defun poller-remove (poller object)
  "Take OBJECT out of POLLER.  Returns T, or NIL when it was not registered
\(a closed stream has left by itself).  OBJECT stays open."
  (check-type poller poller)
  (multiple-value-bind (kind fd) (poller-object object)
    (let ((r (%poller-remove (poller-handle poller) object kind fd)))
      (when (eq r :closed)
        (poller-fail 'poller-remove :ebadf poller "the poller is closed"))
      r)))

(defun poller-wait (poller &optional timeout)
  "Wait until some object registered with POLLER is ready, at most TIMEOUT
\(seconds, (SEC USEC) or (SEC . USEC); NIL: until one is).  Returns a
fresh list of (OBJECT . STATUS) for the ready objects only, STATUS being
what SOCKET-STATUS gives: :INPUT :OUTPUT :IO :EOF :APPEND :ERROR for
streams and descriptors, T for a server with a connection waiting.  Input
already buffered inside a stream counts as ready, and pending output of
registered streams is sent first (as much as the socket takes at once).
At most 256 objects per call: when more are ready, the next calls return
the others.  Returns NIL when TIMEOUT passes.  One thread waits at a time (another
gets a SOCKET-ERROR :EALREADY); others may add and remove meanwhile.
Waiting on a closed poller, or having it closed meanwhile, is a
SOCKET-ERROR :EBADF."
  (check-type poller poller)
  (let ((r (%poller-wait (poller-handle poller) (normalize-timeout timeout))))
    (cond ((listp r) r)
          ((eq r :closed) (poller-fail 'poller-wait :ebadf poller "the poller is closed"))
          ((eq r :busy)
           (poller-fail 'poller-wait :ealready poller "another thread is waiting in it"))
          (t (%raise "epoll_wait" (%error-name r) nil nil nil nil)))))
