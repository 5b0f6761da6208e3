;;;; allegro-peer.lisp - the other Lisp of test-allegro.lisp's two-process
;;;; exchange.  Allegro style: a passive socket on a kernel-chosen port
;;;; (printed as "PORT n"), one connection, FORMAT + FORCE-OUTPUT and READ
;;;; both ways.  Gives up by itself after 30 seconds.

(require :sock)

(let ((passive (socket:make-socket :connect :passive :local-host "127.0.0.1")))
  (format t "PORT ~D~%" (socket:local-port passive))
  (finish-output)
  (mp:with-timeout (30 (format t "PEER TIMED OUT~%") (ext:quit 3))
    (let ((s (socket:accept-connection passive)))
      (let* ((*read-eval* nil)
             (question (read s)))
        (format s "(:peer-got ~S :sum ~S)~%" question (reduce #'+ (second question)))
        (force-output s)
        (let ((bye (read s)))
          (format t "PEER READ ~S~%" bye)))
      (close s)))
  (close passive)
  (finish-output)
  (ext:quit 0))
