;;;; suite.lisp - run usocket's own RT suite, unchanged, loaded with ASDF.
;;;;
;;;; Owns: one run of usocket-test under MODE "contrib" (ECL's contrib
;;;; sb-bsd-sockets, as usocket.asd asks for it) or "ecl-sock" ((require
;;;; :sock-bsd) first, then the same ASDF load).  Writes "name PASS|FAIL|SKIP
;;;; reason" lines to $OUT.  Tests that name a host outside this machine are
;;;; removed before the run (RT:REM-TEST), with the reason.  In ecl-sock
;;;; mode also checks that usocket's streams are ecl-sock's.
;;;; Must not: patch usocket or its tests.
(setf *debugger-hook*
      (lambda (c h) (declare (ignore h))
        (format *error-output* "~&suite: unhandled ~A: ~A~%" (type-of c) c)
        (ext:quit 2)))
(defvar *mode* (ext:getenv "MODE"))
(when (string= *mode* "ecl-sock")
  (let ((fas (ext:getenv "SOCK_FAS")) (bsd (ext:getenv "SOCK_BSD_FAS")))
    (load fas :verbose nil)
    (load bsd :verbose nil)))
(require :asdf)
(let ((*compile-verbose* nil) (*load-verbose* nil) (*compile-print* nil))
  (handler-bind ((warning #'muffle-warning))
    (asdf:load-system "usocket-test")))
(format t "~&suite: mode ~A, SB-BSD-SOCKETS from ~A~%" *mode*
        (if (find-symbol "%ECL-SOCK-FACE" "SB-BSD-SOCKETS") "ecl-sock" "ECL's contrib"))
(defparameter *skips*
  '((usocket-test::socket-failure.2
     "connects to 1.2.3.4, a host outside this machine")))
(dolist (s *skips*) (rt:rem-test (first s)))
(let ((*standard-output* (make-broadcast-stream)))
  (rt:do-tests))
(with-open-file (out (ext:getenv "OUT") :direction :output :if-exists :supersede)
  (dolist (e (cdr rt::*entries*))
    (format out "~(~A~) ~:[PASS~;FAIL~]~%" (rt::name e) (rt::pend e)))
  (dolist (s *skips*)
    (format out "~(~A~) SKIP ~A~%" (first s) (second s)))
  (when (string= *mode* "ecl-sock")
    ;; the stream under a usocket connection is ecl-sock's, not an fd stream
    (let* ((l (usocket:socket-listen "127.0.0.1" 0))
           (c (usocket:socket-connect "127.0.0.1" (usocket:get-local-port l)))
           (a (usocket:socket-accept l)))
      (format out "ecl-sock-stream-check ~:[FAIL~;PASS~]~%"
              (and (funcall (find-symbol "%SOCKET-STREAM-P" "ECLSOCK") (usocket:socket-stream c))
                   (funcall (find-symbol "%SOCKET-STREAM-P" "ECLSOCK") (usocket:socket-stream a))))
      (usocket:socket-close a) (usocket:socket-close c) (usocket:socket-close l))))
(ext:quit 0)
