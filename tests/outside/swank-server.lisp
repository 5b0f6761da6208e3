;;;; swank-server.lisp - Swank (Debian's cl-swank, unchanged) on ecl-sock's
;;;; SB-BSD-SOCKETS face, for tests/outside/slime.sh: writes its port to the
;;;; file $SWANK_PORT_FILE, serves until $SWANK_STOP_FILE appears (at most
;;;; five minutes), then prints how many descriptors it had open at start and
;;;; at the end.
;;;; Owns: starting and stopping that server.  Must not: patch Swank.
(require :sock-bsd)
(require :asdf)
;; where swank-loader puts its compiled files (SLIME's documented way)
(defpackage "SWANK-LOADER" (:use "CL"))
(defparameter swank-loader::*fasl-directory*
  (format nil "~Aswank/" (outside:cache-directory :bsd)))
(outside:load-systems :bsd "swank")
(setf (symbol-value (find-symbol "*LOG-EVENTS*" "SWANK")) nil)
(defun fd-count () (length (directory "/proc/self/fd/*" :resolve-symlinks nil)))
(let* ((start-fds (fd-count))
       (port (funcall (find-symbol "CREATE-SERVER" "SWANK") :port 0 :dont-close t :style :spawn))
       (port-file (ext:getenv "SWANK_PORT_FILE"))
       (stop-file (ext:getenv "SWANK_STOP_FILE")))
  (format t "~&swank: socket class ~A~%"
          (class-name (class-of (make-instance 'sb-bsd-sockets:inet-socket :type :stream :protocol :tcp))))
  (with-open-file (o port-file :direction :output :if-exists :supersede)
    (format o "~D~%" port))
  (loop repeat 3000 until (probe-file stop-file) do (sleep 0.1))
  (funcall (find-symbol "STOP-SERVER" "SWANK") port)
  (sleep 1) (si:gc t) (si:gc t)
  (format t "~&swank: descriptors at start ~D, at the end ~D~%" start-fds (fd-count))
  (finish-output)
  (ext:quit 0))
