;;;; mp.lisp - Allegro's MP extensions that socket code uses and ECL's MP
;;;; lacks: MP:WITH-TIMEOUT and MP:WAIT-FOR-INPUT-AVAILABLE.
;;;;
;;;; Owns: the one timer thread behind every MP:WITH-TIMEOUT (PORT's
;;;; WITH-TIMEOUT is this one too), and waiting for input on many streams,
;;;; servers and descriptors through the core's socket-status.  Faces with
;;;; socket objects of their own (Allegro's datagram sockets) add methods to
;;;; INPUT-READY-P and WAIT-ENTRY.  Must not: depend on any face; change
;;;; anything of ECL's own MP (these are new symbols, exported from MP in
;;;; packages.lisp).

(in-package "ECLSOCK")

;;; ------------------------------------------------------------------
;;; MP:WITH-TIMEOUT
;;;
;;; One timer thread serves every WITH-TIMEOUT in the image: it keeps the
;;; deadlines in order and, when one passes, interrupts the waiting thread
;;; (MP:INTERRUPT-PROCESS) with a function that throws to that
;;; WITH-TIMEOUT's catch frame.  The throw happens in the thread itself, at
;;; a point where ECL runs interrupts: socket calls defer interrupts inside
;;; the system call only, so they unwind cleanly and their UNWIND-PROTECTs
;;; close half-made descriptors.  A timeout whose body already finished is
;;; marked done first, so a late interrupt does nothing.  The thread exits
;;; when it has had nothing to do for two seconds.

(defstruct (mp-timer (:constructor make-mp-timer (process deadline)) (:copier nil))
  process deadline (state :running))

(defvar *mp-timer-lock* (mp:make-lock :name "mp:with-timeout"))
(defvar *mp-timers* '() "Pending timers, earliest deadline first.")
(defvar *mp-timer-process* nil)

(defun mp-timer-loop ()
  (let ((idle-since nil))
    (loop
      (let ((due '()) (wait 0.05))
        (mp:with-lock (*mp-timer-lock*)
          (let ((now (get-internal-real-time)))
            (loop while (and *mp-timers* (<= (mp-timer-deadline (first *mp-timers*)) now))
                  do (push (pop *mp-timers*) due))
            (cond (*mp-timers*
                   (setf idle-since nil
                         wait (min 0.05 (/ (- (mp-timer-deadline (first *mp-timers*)) now)
                                           internal-time-units-per-second))))
                  (due (setf idle-since nil))
                  ((null idle-since) (setf idle-since now))
                  ((> (- now idle-since) (* 2 internal-time-units-per-second))
                   (setf *mp-timer-process* nil)
                   (return)))))
        (dolist (timer due)
          (when (eq (mp-timer-state timer) :running)
            (ignore-errors
             (mp:interrupt-process (mp-timer-process timer)
                                   (lambda () (mp-timer-expired timer))))))
        (sleep (max wait 0.001))))))

(defun mp-timer-expired (timer)
  "Runs in the timed thread: leave the WITH-TIMEOUT if it is still running."
  (when (eq (mp-timer-state timer) :running)
    (setf (mp-timer-state timer) :fired)
    (throw timer timer)))

(defun schedule-mp-timer (timer)
  (mp:with-lock (*mp-timer-lock*)
    (setf *mp-timers* (merge 'list (list timer) *mp-timers* #'< :key #'mp-timer-deadline))
    (unless *mp-timer-process*
      (setf *mp-timer-process*
            (mp:process-run-function "mp:with-timeout timer" #'mp-timer-loop)))))

(defun unschedule-mp-timer (timer)
  (mp:with-lock (*mp-timer-lock*)
    (setf *mp-timers* (delete timer *mp-timers*))))

(defun mp-call-with-timeout (seconds body timeout)
  "The function behind MP:WITH-TIMEOUT."
  (unless (typep seconds '(or null real))
    (error 'type-error :datum seconds :expected-type '(or null real)))
  (if (null seconds)
      (funcall body)
      (let ((timer (make-mp-timer mp:*current-process*
                               (+ (get-internal-real-time)
                                  (round (* (max seconds 0) internal-time-units-per-second))))))
        (block done
          (catch timer
            (unwind-protect
                 (progn (schedule-mp-timer timer)
                        (return-from done (funcall body)))
              (when (eq (mp-timer-state timer) :running)
                (setf (mp-timer-state timer) :done))
              (unschedule-mp-timer timer)))
          (funcall timeout)))))

(defmacro mp:with-timeout ((seconds &body timeout-forms) &body body)
  "Run BODY; if it takes longer than SECONDS, abandon it (unwinding, so its
UNWIND-PROTECTs run and socket calls close what they opened) and return the
values of TIMEOUT-FORMS instead.  Otherwise return BODY's values.  SECONDS
NIL means no limit.  Allegro's macro; works around any blocking socket call."
  `(mp-call-with-timeout ,seconds
                      (lambda () ,@body)
                      (lambda () ,@timeout-forms)))

;;; ------------------------------------------------------------------
;;; MP:WAIT-FOR-INPUT-AVAILABLE

(defgeneric input-ready-p (item)
  (:documentation "True when reading ITEM (a stream, socket or descriptor) would
not block.  A face with socket objects of its own adds a method.")
  (:method (item)
    (flet ((readable (x) (and (member (%status (cons x :input) 0) '(:input :eof :error)) t)))
      ;; a closed socket counts as ready: reading it fails at once
      (cond ((socket-stream-p item) (or (null (%stream-fd item)) (readable item)))
            ((typep item '(integer 0)) (readable item))
            ((socket-server-p item) (or (null (socket-server-fd item)) (and (%status item 0) t)))
            ((streamp item)
             (or (not (open-stream-p item)) (listen item)))
            (t (error 'type-error :datum item
                                  :expected-type '(or stream (integer 0) socket-server)))))))

(defgeneric wait-entry (item)
  (:documentation "The SOCKET-STATUS element to wait for input on ITEM, or NIL.
A face with socket objects of its own adds a method.")
  (:method (item) (core-wait-entry item)))

(defun core-wait-entry (item)
  (cond ((socket-stream-p item) (and (%stream-fd item) (list* item :input nil)))
        ((socket-server-p item) (and (socket-server-fd item) (cons item nil)))
        ((typep item '(integer 0)) (list* item :input nil))
        ((typep item 'file-stream)
         (let ((fd (ignore-errors (ext:file-stream-fd item))))
           (and fd (list* fd :input nil))))
        ((typep item 'two-way-stream) (wait-entry (two-way-stream-input-stream item)))
        ((typep item 'synonym-stream) (wait-entry (symbol-value (synonym-stream-symbol item))))
        (t nil)))

(defun mp:wait-for-input-available (streams &key wait-function whostate timeout)
  "Wait until input is available on any of STREAMS (one or a list of streams,
sockets or descriptors): a read would not block (it may find end of file).
Returns the list of those that are ready, or NIL when TIMEOUT seconds pass
first (NIL: wait as long as it takes).  WAIT-FUNCTION, when given, decides
readiness of each item instead.  WHOSTATE is accepted and ignored.
Allegro's function, added to ECL's MP."
  (declare (ignore whostate))
  (when (and (listp streams) (not (si::proper-list-p streams)))
    (error 'type-error :datum streams :expected-type 'list))
  (let* ((items (if (listp streams) streams (list streams)))
         (ready-p (or wait-function #'input-ready-p))
         (deadline (and timeout
                        (+ (get-internal-real-time)
                           (round (* (normalize-timeout timeout)
                                     internal-time-units-per-second))))))
    (when items
      (loop
        (let ((ready (remove-if-not ready-p items)))
          (when ready (return ready)))
        (let ((left (and deadline (/ (- deadline (get-internal-real-time))
                                     internal-time-units-per-second)))
              (entries (remove nil (mapcar #'wait-entry items))))
          (when (and left (<= left 0))
            (return nil))
          (if (and entries (null wait-function))
              (%status entries left)
              (sleep (if left (min left 0.01) 0.01))))))))
