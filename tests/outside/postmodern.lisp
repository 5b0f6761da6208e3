;;;; postmodern.lisp - Postmodern, unchanged (Debian's cl-postmodern through
;;;; ASDF), on ecl-sock's SB-BSD-SOCKETS face against the throwaway
;;;; PostgreSQL cluster tests/outside/postgres.sh starts (scram-sha-256).
;;;;
;;;; Owns: what a Postmodern user does: connect (IPv4, IPv6 ::1, Unix
;;;;   socket), select, 10,000 prepared inserts in a transaction, a
;;;;   10,000-row fetch, a 4 MiB bytea round trip, a SQL error that leaves the
;;;;   connection usable, rollback, four threads with their own connections;
;;;;   bad input: a wrong password, a refused port, the server ending a
;;;;   backend mid-query: cl-postgres's own conditions, no descriptor leaked.
;;;; Must not: start or stop the server (postgres.sh does), patch Postmodern.

(eval-when (:compile-toplevel :load-toplevel :execute)
  (outside:load-systems :bsd "postmodern"))

(defpackage "TEST-POSTGRES" (:use "CL" "HARNESS"))
(in-package "TEST-POSTGRES")

(defparameter *port* (parse-integer (ext:getenv "PGTEST_PORT")))
(defparameter *refused-port* (parse-integer (ext:getenv "PGTEST_REFUSED_PORT")))
(defparameter *socket-dir* (ext:getenv "PGTEST_SOCKET_DIR"))
(defparameter *password* "ecl-sock-pg-pw")

(defun connect (&key (host "127.0.0.1") (password *password*) (port *port*))
  (postmodern:connect "ecltest" "ecltest" password host :port port))

(defmacro with-db ((&rest args) &body body)
  `(let ((postmodern:*database* (connect ,@args)))
     (unwind-protect (progn ,@body)
       (postmodern:disconnect postmodern:*database*))))

(defun socket-of (conn) (cl-postgres::connection-socket conn))

(defun quiet-fd-count ()
  "Descriptors open once unreachable sockets were collected."
  (si:gc t) (si:gc t)
  (open-fd-count))

(deftest connect-and-select ()
  (with-db ()
    (is (eclsock::%socket-stream-p (socket-of postmodern:*database*))
        "cl-postgres's socket is an ecl-sock stream")
    (is (equal '((2 "λ ok")) (postmodern:query "select 1 + 1, $1::text" "λ ok")))
    ;; the server the test started (15 on Debian 12, 17 on Debian 13)
    (is (eql 0 (search "PostgreSQL " (postmodern:query "select version()" :single))))
    (is (equal "127.0.0.1" (postmodern:query "select host(inet_client_addr())" :single)))))

(deftest inserts-and-fetch (:timeout 300)
  (with-db ()
    (postmodern:query "create temporary table items (i integer primary key, s text not null)")
    ;; cl-postgres's prepared statements (POSTMODERN:PREPARE's function
    ;; drops its statement on first use, which inside a transaction aborts it)
    (cl-postgres:prepare-query postmodern:*database* "ins" "insert into items values ($1, $2)")
    (postmodern:with-transaction ()
      (dotimes (i 10000)
        (cl-postgres:exec-prepared postmodern:*database* "ins" (list i (format nil "row ~D" i)))))
    (is (= 10000 (postmodern:query "select count(*) from items" :single)))
    (let ((rows (postmodern:query "select i, s from items order by i")))
      (is (= 10000 (length rows)) "10,000 rows fetched")
      (is (loop for (i s) in rows for n from 0
                always (and (= i n) (string= s (format nil "row ~D" n))))
          "every row as inserted"))
    ;; a SQL error leaves the connection usable
    (let ((e (signals cl-postgres:database-error
               (postmodern:query "select * from no_such_table"))))
      (is (typep e 'cl-postgres-error:undefined-table))
      (is (equal "42P01" (cl-postgres:database-error-code e))))
    (is (= 1 (postmodern:query "select 1" :single)) "usable after the error")
    (signals cl-postgres-error:unique-violation
      (postmodern:query "insert into items values (5, 'again')"))
    ;; rollback: an error inside the transaction undoes its inserts
    (ignore-errors
     (postmodern:with-transaction ()
       (postmodern:query "insert into items values (-1, 'gone')")
       (postmodern:query "insert into items values (-2, 'gone')")
       (error "roll it back")))
    (is (= 10000 (postmodern:query "select count(*) from items" :single)) "rolled back")
    (postmodern:with-transaction (tx)
      (postmodern:query "insert into items values (-3, 'gone')")
      (postmodern:abort-transaction tx))
    (is (null (postmodern:query "select s from items where i = -3" :single)) "aborted")))

(deftest bytea-4-mib (:timeout 300)
  (with-db ()
    (let* ((data (random-octets (* 4 1024 1024)))
           (back (postmodern:query "select $1::bytea" data :single)))
      (is (= (length data) (length back)))
      (is (equalp data back) "4 MiB bytea round trip")
      (is (= (* 4 1024 1024) (postmodern:query "select length($1::bytea)" data :single))))))

(deftest ipv6-and-unix-socket ()
  (with-db (:host "::1")
    (is (typep (cl-postgres::get-host-address "::1") 'sb-bsd-sockets:host-ent))
    (is (equal "::1" (postmodern:query "select host(inet_client_addr())" :single))
        "connected over IPv6"))
  (with-db (:host "localhost")
    (is (= 3 (postmodern:query "select 3" :single)) "by name"))
  (with-db (:host *socket-dir*)
    (is (eq :null (postmodern:query "select inet_client_addr()" :single)) "over the Unix socket")
    (is (= 4 (postmodern:query "select 4" :single)))))

(deftest four-threads (:timeout 300)
  (let ((threads
          (loop for k below 4
                collect (let ((k k))
                          (spawn (format nil "pg ~D" k)
                                 (lambda ()
                                   (with-db ()
                                     (loop for j below 200
                                           always (= (+ (* k 1000) j)
                                                     (postmodern:query "select $1::integer + $2::integer"
                                                                       (* k 1000) j :single))))))))))
    (is (equal '((t) (t) (t) (t)) (mapcar #'join threads)) "each thread's 200 answers right")))

(deftest bad-input ()
  (let ((before (quiet-fd-count)))
    ;; wrong password: the server's own error, 28P01
    (let ((e (signals cl-postgres:database-error (connect :password "wrong"))))
      (is (equal "28P01" (and e (cl-postgres:database-error-code e))) "invalid_password")
      (is (search "password authentication failed" (princ-to-string e))))
    ;; nobody listens: cl-postgres's socket error, caused by the face's
    (let ((e (signals cl-postgres:database-socket-error (connect :port *refused-port*))))
      (is (typep (and e (cl-postgres::database-error-cause e))
                 'sb-bsd-sockets:connection-refused-error)))
    (signals cl-postgres:database-socket-error (connect :host "no-such-host.invalid"))
    ;; the server ends the backend in the middle of a query
    (with-db ()
      (let* ((victim (connect))
             (pid (let ((postmodern:*database* victim)) (postmodern:query "select pg_backend_pid()" :single)))
             (worker (spawn "sleeper"
                            (lambda ()
                              (handler-case
                                  (let ((postmodern:*database* victim))
                                    (postmodern:query "select pg_sleep(60)"))
                                (error (e) e))))))
        (loop repeat 100
              until (postmodern:query (format nil "select 1 from pg_stat_activity where pid = ~D and query like '%pg_sleep(60)%'" pid) :single)
              do (sleep 0.05))
        (is (postmodern:query (format nil "select pg_terminate_backend(~D)" pid) :single))
        (let ((e (first (join worker))))
          (is (typep e 'cl-postgres:database-error) "a cl-postgres condition")
          (is (typep e 'cl-postgres-error:admin-shutdown) (format nil "admin-shutdown, got ~S" (type-of e))))
        (signals cl-postgres:database-error
          (let ((postmodern:*database* victim)) (postmodern:query "select 1")))
        (postmodern:disconnect victim)
        (is (= 1 (postmodern:query "select 1" :single)) "other connections unaffected")))
    (is (= before (quiet-fd-count)) "no descriptor leaked")))
