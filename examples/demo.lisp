;;;; demo.lisp - ecl-sock in a few lines: a server thread and a client
;;;; talking over loopback.  Run: ecl -norc -shell examples/demo.lisp

(require :sock)

(let* ((server (socket:socket-server 0 :interface "127.0.0.1"))
       (port (socket:socket-server-port server))
       (thread
         (mp:process-run-function
          "echo server"
          (lambda ()
            (with-open-stream (s (socket:socket-accept server))
              (format t "server: connection from ~A~%"
                      (socket:socket-stream-peer s t))
              (loop for line = (read-line s nil)
                    while line
                    do (format t "server: got ~S~%" line)
                       (format s "echo: ~A~%" (string-upcase line))
                       (force-output s)))))))
  (format t "listening on ~A~%" server)
  (with-open-stream (c (socket:socket-connect port "127.0.0.1"))
    (dolist (line '("hello" "ecl-sock speaks CLISP's socket API" "bye"))
      (write-line line c)
      (force-output c)
      (format t "client: ~A~%" (read-line c))))
  (mp:process-join thread)
  (socket:socket-server-close server)
  (format t "closed ~A~%" server))
