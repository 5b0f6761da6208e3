;;;; poller.lisp - the poller, an ecl-sock extension in the SOCKET package.
;;;;
;;;; Owns: the POLLER object (its print form; it is a DESCRIPTOR-OWNER of
;;;; the core, which closes it and finalizes a dropped one), the argument
;;;; checks of MAKE-POLLER, POLLER-ADD, POLLER-MODIFY, POLLER-REMOVE,
;;;; POLLER-WAIT, POLLER-CLOSE and WITH-POLLER, and the conditions they
;;;; signal, and the idle clocks (MAKE-POLLER :IDLE, POLLER-TOUCH): a FIFO
;;;; of deadlines, sorted because one timeout holds for all.  The
;;;; registrations and the wait are C's (src/poller.c): kept in an epoll
;;;; set, so a wait costs by the ready objects, not by the ones held.
;;;; Must not: walk the registrations or the clocks in Lisp (that is the
;;;; O(N) cost the poller exists to avoid); a wait looks only at the
;;;; clocks that ran out.  Know a face's classes: a face's socket object is
;;;; taken as the core's DESCRIPTOR-OWNER it is.

(in-package "ECLSOCK")

(defclass poller (descriptor-owner)
  ((idle :initarg :idle :initform nil :reader poller-idle
         :documentation "Seconds an idle clock runs, or NIL.")
   (clocks :initform (make-hash-table :test 'eq) :reader poller-clocks
           :documentation "Object -> its deadline (internal real time).")
   (head :initform '() :accessor poller-head
         :documentation "(deadline . object) conses, oldest first.")
   (tail :initform '() :accessor poller-tail)
   (lock :initform (mp:make-lock :name "poller clocks") :reader poller-lock))
  (:documentation "A set of sockets kept registered across waits (MAKE-POLLER).
POLLER-WAIT costs by the ready objects, not by how many are held.  Close it
with POLLER-CLOSE (or WITH-POLLER); a dropped one closes when collected.  A
DESCRIPTOR-OWNER of the core whose descriptor slot holds the C handle of its
epoll set."))

(defun poller-p (object)
  "True when OBJECT is a POLLER."
  (typep object 'poller))

(defmethod wake-waiters ((p poller) handle)
  ;; closing the C handle wakes the thread in POLLER-WAIT
  (declare (ignore handle))
  nil)

(defmethod release-descriptor ((p poller) handle)
  (%poller-close handle))

(defun poller-handle (p &optional (who 'poller-wait))
  "The C handle of poller P; the SOCKET-ERROR :EBADF when P is closed."
  (or (owned-fd p)
      (poller-fail who :ebadf p "the poller is closed")))

(defmethod print-object ((p poller) out)
  (print-unreadable-object (p out :identity t)
    (let ((handle (owned-fd p)))
      (multiple-value-bind (n closed) (and handle (%poller-count handle))
        (if (or closed (null handle))
            (write-string "CLOSED POLLER" out)
            (format out "POLLER ~D object~:P" n))))))

(defun poller-fail (who code poller &optional message)
  "Signal the SOCKET-ERROR for CODE (an error keyword) in WHO on POLLER."
  (%raise (string-downcase (string who)) code
          (and message (format nil "~A, in ~S" message poller))
          nil nil nil))

(defun make-poller (&key idle)
  "A new, empty poller.  Add socket streams, servers, Allegro passive and
datagram sockets or raw descriptors with POLLER-ADD, wait with POLLER-WAIT,
close with POLLER-CLOSE (or use WITH-POLLER).  On Linux it is an epoll
instance; elsewhere poll(2) over its registrations.  IDLE (seconds, a
positive real) gives it idle clocks: POLLER-TOUCH starts an object's, and
POLLER-WAIT reports (OBJECT . :IDLE) when IDLE seconds pass without
another touch."
  (check-type idle (or null (real (0))))
  (let ((h (%make-poller)))
    (when (integerp h)
      (%raise "make-poller" (%error-name h) nil nil nil nil))
    (make-instance 'poller :fd h :idle idle)))

(defun poller-close (poller)
  "Close POLLER: every registration ends (the objects stay open) and its
descriptors close.  A thread waiting in it wakes with a SOCKET-ERROR.
Returns T, or NIL when POLLER was closed already."
  (check-type poller poller)
  (mp:with-lock ((poller-lock poller))
    (clrhash (poller-clocks poller))
    (setf (poller-head poller) '() (poller-tail poller) '()))
  (close-owner poller))

(defmacro with-poller ((var &rest options) &body body)
  "Bind VAR to a new poller (MAKE-POLLER with OPTIONS, e.g. :IDLE 10)
around BODY and close it when BODY exits."
  `(let ((,var (make-poller ,@options)))
     (unwind-protect (progn ,@body)
       (poller-close ,var))))

(defun poller-direction (events)
  (case events
    (:input 1) (:output 2) (:io 3)
    (t (error 'type-error :datum events :expected-type '(member :input :output :io)))))

(deftype pollable ()
  "What a poller takes: a socket stream, a server, another object that owns a
socket descriptor (a face's: Allegro's datagram socket ...), a descriptor."
  '(or socket-stream descriptor-owner (integer 0 #x7fffffff)))

(defun poller-object (object)
  "The kind (0 stream, 1 server, 2 descriptor) and descriptor of OBJECT
\(NIL when it is closed)."
  (cond ((socket-stream-p object) (values 0 (%stream-fd object)))
        ((socket-server-p object) (values 1 (socket-server-fd object)))
        ((and (typep object 'descriptor-owner) (not (poller-p object)))
         (values 2 (owned-fd object)))
        ((typep object '(integer 0 #x7fffffff)) (values 2 object))
        (t (error 'type-error :datum object :expected-type 'pollable))))

(defun poller-register (poller object events modify who)
  (check-type poller poller)
  (let ((dir (poller-direction events)))
    (multiple-value-bind (kind fd) (poller-object object)
      (unless fd
        (%raise (string-downcase (string who)) :ebadf
                (format nil "~S is closed" object) nil nil
                (and (streamp object) object)))
      (let ((r (%poller-add (poller-handle poller who) object kind fd dir modify)))
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
passive socket), an Allegro datagram socket, an SB-BSD-SOCKETS socket
\(without a stream of its own) or a raw descriptor.  Adding an
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
  (when (poller-idle poller)
    (mp:with-lock ((poller-lock poller))
      (remhash object (poller-clocks poller))))
  (multiple-value-bind (kind fd) (poller-object object)
    (let ((r (%poller-remove (poller-handle poller 'poller-remove) object kind fd)))
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
the others.  On a poller made with :IDLE, the objects whose idle clock
ran out (POLLER-TOUCH) come last, as (OBJECT . :IDLE), and the wait ends
when the first clock does.  Returns NIL when TIMEOUT passes.  One thread waits at a time (another
gets a SOCKET-ERROR :EALREADY); others may add and remove meanwhile.
Waiting on a closed poller, or having it closed meanwhile, is a
SOCKET-ERROR :EBADF."
  (check-type poller poller)
  (let ((seconds (normalize-timeout timeout)))
    (if (poller-idle poller)
        (poller-wait-idle poller seconds)
        (poller-wait-1 poller seconds))))

(defun poller-wait-1 (poller seconds)
  "One wait in C, at most SECONDS (NIL: until something is ready)."
  (let ((r (%poller-wait (poller-handle poller) seconds)))
    (cond ((listp r) r)
          ((eq r :closed) (poller-fail 'poller-wait :ebadf poller "the poller is closed"))
          ((eq r :busy)
           (poller-fail 'poller-wait :ealready poller "another thread is waiting in it"))
          (t (%raise "epoll_wait" (%error-name r) nil nil nil nil)))))

;;; ------------------------------------------------------------------
;;; Idle clocks: every clock of a poller runs the same IDLE seconds, so
;;; deadlines are made in increasing order and a FIFO keeps them sorted.
;;; A touch queues a new deadline; a popped entry whose deadline is no
;;; longer its object's is stale and skipped.

(defun poller-touch (poller object)
  "Start OBJECT's idle clock on POLLER again (a poller made with :IDLE):
unless touched again, POLLER-WAIT reports (OBJECT . :IDLE) once its IDLE
seconds have passed, and the clock stops.  OBJECT is usually a registered
stream: touch it when it is added and whenever it shows activity.
POLLER-REMOVE, POLLER-CLOSE and closing a stream stop its clock.
Returns OBJECT."
  (check-type poller poller)
  (let ((idle (poller-idle poller)))
    (unless idle
      (error "~S has no idle timeout: make it with (MAKE-POLLER :IDLE seconds)" poller))
    (mp:with-lock ((poller-lock poller))
      (let* ((deadline (+ (get-internal-real-time)
                          (ceiling (* idle internal-time-units-per-second))))
             (cell (list (cons deadline object))))
        (setf (gethash object (poller-clocks poller)) deadline)
        (if (poller-head poller)
            (setf (cdr (poller-tail poller)) cell (poller-tail poller) cell)
            (setf (poller-head poller) cell (poller-tail poller) cell))))
    object))

(defun poller-expired (poller)
  "Pop the idle clocks of POLLER that ran out: a list of (OBJECT . :IDLE),
oldest first; closed streams are left out."
  (let ((now (get-internal-real-time)) (clocks (poller-clocks poller)) (out '()))
    (mp:with-lock ((poller-lock poller))
      (loop for head = (poller-head poller)
            while (and head (<= (car (first head)) now))
            do (destructuring-bind (deadline . object) (first head)
                 (setf (poller-head poller) (rest head))
                 (when (eql deadline (gethash object clocks))
                   (remhash object clocks)
                   (unless (and (streamp object) (not (open-stream-p object)))
                     (push (cons object :idle) out)))))
      (unless (poller-head poller) (setf (poller-tail poller) nil)))
    (nreverse out)))

(defun poller-wait-idle (poller seconds)
  "POLLER-WAIT on a poller with idle clocks: at most SECONDS (NIL: until
something is ready or a clock runs out)."
  (let ((end (and seconds (+ (get-internal-real-time)
                             (ceiling (* seconds internal-time-units-per-second))))))
    (loop
      (let ((expired (poller-expired poller)))
        (let* ((first (mp:with-lock ((poller-lock poller))
                        (car (first (poller-head poller)))))
               (until (if (and first end) (min first end) (or first end)))
               (ready (poller-wait-1
                       poller
                       (cond (expired 0)
                             (until (max 0 (/ (- until (get-internal-real-time))
                                              internal-time-units-per-second)))))))
          (when (or ready expired)
            ;; ready wins: its clock has stopped, the caller touches it again
            (return (nconc ready (remove-if (lambda (e) (assoc (car e) ready)) expired))))
          (when (and end (>= (get-internal-real-time) end))
            (return nil)))))))
