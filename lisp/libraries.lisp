;;;; libraries.lisp - what ecl-sock does for the libraries users load beside it.
;;;;
;;;; Owns: LEND-DESCRIPTOR (a socket stream's descriptor for a library that
;;;;   does its own I/O on it: our pending output is sent first, and input
;;;;   already read ahead is a clear error instead of being lost); the method
;;;;   of cl+ssl's STREAM-FD for ecl-sock's socket streams, installed whenever
;;;;   both are loaded, in either order (at this module's load when cl+ssl is
;;;;   there, else right after ASDF loads the cl+ssl system); WHEN-ASDF, the
;;;;   one place that runs code once ASDF is there (now, or when REQUIREd).
;;;; Must not: name cl+ssl's or ASDF's symbols at compile time (neither need
;;;;   be loaded); change how either library works for other streams.

(in-package "ECLSOCK")

(define-condition input-read-ahead-error (stream-error)
  ((borrower :initarg :borrower :reader input-read-ahead-borrower))
  (:report (lambda (c s)
             (format s "~S has input read ahead that ~A would never see: ~
read what the peer sent in clear before handing the connection over"
                     (stream-error-stream c) (input-read-ahead-borrower c))))
  (:documentation "A socket stream's descriptor was asked for by a library
that reads the descriptor itself (cl+ssl), but the stream holds input it has
already read from it."))

(defun lend-descriptor (stream &optional (borrower "another library"))
  "The descriptor of socket STREAM, for BORROWER (a library that does its
own I/O on it, such as cl+ssl).  Sends STREAM's pending output first; signals
INPUT-READ-AHEAD-ERROR when STREAM holds input already read (it would be
lost), a socket error when STREAM is closed.  STREAM keeps owning the
descriptor: closing it closes the descriptor."
  (unless (socket-stream-p stream)
    (error 'type-error :datum stream :expected-type 'socket-stream))
  (when (%ssl-stream-p stream)
    (error "~S is already a TLS stream (ecl-sock's own): ~A cannot use its descriptor."
           stream borrower))
  (let ((fd (stream-fd stream 'lend-descriptor)))
    (finish-output stream)
    (when (%stream-buffered-input stream)
      (error 'input-read-ahead-error :stream stream :borrower borrower))
    fd))

;;; ------------------------------------------------------------------
;;; ASDF's arrival

(defvar *asdf-hooks* '()
  "Functions to call once ASDF is loaded (WHEN-ASDF).")

(defvar *in-asdf-provider* nil)

(defun asdf-provider (module)
  "A module provider: when ASDF is REQUIREd, load it the usual way (the
other providers, as REQUIRE would call them: calling REQUIRE from here is a
circularity for ECL), then run *ASDF-HOOKS*."
  (when (and (string-equal (string module) "ASDF") (not *in-asdf-provider*))
    (let ((*in-asdf-provider* t))
      (when (loop for p in ext:*module-provider-functions*
                  thereis (and (not (eq p 'asdf-provider)) (funcall p module)))
        (mapc #'funcall (reverse *asdf-hooks*))
        t))))

(defun when-asdf (function)
  "Call FUNCTION now when ASDF is loaded, else when it is REQUIREd."
  (if (find-package "ASDF")
      (funcall function)
      (progn
        (pushnew function *asdf-hooks*)
        (pushnew 'asdf-provider ext:*module-provider-functions*))))

;;; ------------------------------------------------------------------
;;; cl+ssl: its STREAM-FD gives OpenSSL the descriptor (else cl+ssl does its
;;; I/O through a Lisp BIO, calling back into Lisp, which crashes ECL
;;; 21.2.1).  On ECL it only knows TWO-WAY-STREAM; ecl-sock's streams are
;;; FILE-STREAMs.

(defun install-cl+ssl-method ()
  "Give cl+ssl's STREAM-FD a method for ecl-sock's socket streams, when
cl+ssl is loaded; true when it did."
  (let* ((pkg (find-package "CL+SSL"))
         (name (and pkg (find-symbol "STREAM-FD" pkg))))
    (when (and name (fboundp name) (typep (fdefinition name) 'generic-function))
      (let ((*compile-verbose* nil) (*compile-print* nil))
        (eval `(defmethod ,name ((stream file-stream))
                 (if (socket-stream-p stream)
                     (lend-descriptor stream "cl+ssl")
                     (call-next-method)))))
      t)))

(defun watch-asdf-for-cl+ssl ()
  "Have ASDF install the cl+ssl method right after it loads cl+ssl."
  (let ((perform (find-symbol "PERFORM" "ASDF"))
        (load-op (find-symbol "LOAD-OP" "ASDF"))
        (system (find-symbol "SYSTEM" "ASDF"))
        (name (find-symbol "COMPONENT-NAME" "ASDF")))
    (when (and perform load-op system name)
      (eval `(defmethod ,perform :after ((o ,load-op) (s ,system))
               (when (string-equal (,name s) "cl+ssl")
                 (install-cl+ssl-method)))))))

(install-cl+ssl-method)
(when-asdf 'watch-asdf-for-cl+ssl)
