;;;; ext.lisp - the CLISP EXT names that CLISP socket code leans on.
;;;;
;;;; EXT:READ-BYTE-SEQUENCE, EXT:WRITE-BYTE-SEQUENCE (with :NO-HANG and
;;;; :INTERACTIVE), EXT:READ-BYTE-NO-HANG, EXT:READ-CHAR-SEQUENCE, EXT:WRITE-CHAR-SEQUENCE,
;;;; (SETF STREAM-ELEMENT-TYPE) for socket streams, and the fourteen socket
;;;; names re-exported from EXT, as CLISP does.

(in-package "ECLSOCK")

(defun sequence-end (sequence start end)
  "END (or SEQUENCE's length) after checking that START and END bound a
part of SEQUENCE, as CL's sequence functions want.  A circular or dotted
list is a type error (LENGTH would never return on a circular one)."
  (unless (or (vectorp sequence) (si::proper-list-p sequence))
    (error 'type-error :datum sequence :expected-type '(or vector list)))
  (let* ((length (length sequence))
         (end (or end length)))
    (unless (typep end `(integer 0 ,length))
      (error 'type-error :datum end :expected-type `(or null (integer 0 ,length))))
    (unless (typep start `(integer 0 ,end))
      (error 'type-error :datum start :expected-type `(integer 0 ,end)))
    end))

(defun ext:read-byte-sequence (sequence stream &key (start 0) end no-hang interactive)
  "Read octets into SEQUENCE from START to END; return the index of the first
element not filled.  NO-HANG: take only what is available now.
INTERACTIVE: wait for the first octet only."
  (let ((end (sequence-end sequence start end)))
    (if (and (socket-stream-p stream)
             (typep sequence '(vector (unsigned-byte 8))))
        (%read-octets stream sequence start end
                      (cond (no-hang 1) (interactive 2) (t 0)))
        (loop for i from start below end
              do (when (and (or no-hang (and interactive (> i start)))
                            (not (listen stream)))
                   (return i))
                 (let ((b (read-byte stream nil nil)))
                   (unless b (return i))
                   (setf (elt sequence i) b))
              finally (return end)))))

(defun ext:write-byte-sequence (sequence stream &key (start 0) end no-hang interactive)
  "Write the octets of SEQUENCE from START to END to STREAM.  Returns
SEQUENCE and the index of the first element not written (all are, here:
socket streams buffer, so NO-HANG and INTERACTIVE never stop a write)."
  (declare (ignore no-hang interactive))
  (let ((end (sequence-end sequence start end)))
    (write-sequence sequence stream :start start :end end)
    (values sequence end)))

(defun ext:read-char-sequence (sequence stream &key (start 0) end)
  "Read characters into SEQUENCE; return the index of the first element not filled."
  (read-sequence sequence stream :start start :end (sequence-end sequence start end)))

(defun ext:write-char-sequence (sequence stream &key (start 0) end)
  "Write the characters of SEQUENCE from START to END; return SEQUENCE."
  (write-sequence sequence stream :start start :end (sequence-end sequence start end))
  sequence)

(defun ext:read-byte-no-hang (stream &optional (eof-error-p t) eof-value)
  "Read one octet from STREAM if one is available now; never wait.  Returns
the octet, NIL when none is available yet, and at end of file signals
END-OF-FILE (EOF-ERROR-P true, the default) or returns EOF-VALUE, as CLISP's
EXT:READ-BYTE-NO-HANG.  On streams other than socket streams, LISTEN decides
whether an octet is available."
  (if (socket-stream-p stream)
      (progn
        (stream-fd stream 'ext:read-byte-no-hang)
        (if (%status (cons stream :input) 0)  ; :INPUT or :EOF: READ-BYTE will not wait
            (read-byte stream eof-error-p eof-value)
            nil))
      (if (listen stream)
          (read-byte stream eof-error-p eof-value)
          nil)))

;;; (setf stream-element-type): COMMON-LISP is locked in ECL, so the
;;; function is installed with the lock lifted for that one moment.
(defun set-stream-element-type (element-type stream)
  "Switch socket STREAM between CHARACTER and (UNSIGNED-BYTE 8), keeping
what is buffered (e.g. read an HTTP header as text, then the body as octets)."
  (unless (socket-stream-p stream)
    (error "Cannot change the element type of ~S: only socket streams can." stream))
  (stream-fd stream "(setf stream-element-type)")
  (%set-element-type stream (normalize-element-type element-type) nil)
  element-type)

(eval-when (:load-toplevel :execute)
  (let ((locked (ext:package-locked-p "COMMON-LISP")))
    (when locked (si::package-lock "COMMON-LISP" nil))
    (unwind-protect
         (setf (fdefinition '(setf stream-element-type)) #'set-stream-element-type)
      (when locked (si::package-lock "COMMON-LISP" t)))))

;;; CLISP's EXT uses SOCKET and re-exports its fourteen names.
(eval-when (:load-toplevel :execute)
  (let ((ext (find-package "EXT")))
    (dolist (name '("SOCKET-ACCEPT" "SOCKET-CONNECT" "SOCKET-OPTIONS" "SOCKET-SERVER"
                    "SOCKET-SERVER-CLOSE" "SOCKET-SERVER-HOST" "SOCKET-SERVER-PORT"
                    "SOCKET-STATUS" "SOCKET-STREAM-HOST" "SOCKET-STREAM-LOCAL"
                    "SOCKET-STREAM-PEER" "SOCKET-STREAM-PORT" "SOCKET-STREAM-SHUTDOWN"
                    "SOCKET-WAIT"))
      (let ((sym (find-symbol name "SOCKET")))
        (import sym ext)
        (export sym ext)))))
