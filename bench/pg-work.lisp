;;;; pg-work.lisp - the timed workloads of `make bench-pg`, compiled and
;;;; loaded by bench/pg-client.lisp once Postmodern is loaded.
;;;;
;;;; Owns: one connection to 127.0.0.1:$PG_PORT (role ecltest, the cluster
;;;;   of bench/run-pg-bench), one untimed warm-up round, then PG_REPEAT
;;;;   rounds (default 3) of:
;;;;   rt      PG_ROUNDTRIPS (2,000) executions of a prepared
;;;;           `select $1::int`, each answer checked: executions per second
;;;;   insert  PG_ROWS (10,000) prepared inserts in one transaction: seconds
;;;;   fetch   a select of those PG_ROWS rows, the last one checked: seconds
;;;;   and prints the median of each as "rt N", "insert S", "fetch S"; and
;;;;   the client's own CPU time (process run time, so less shaken by the
;;;;   other programs on the machine than wall-clock time) in microseconds
;;;;   per round trip, per insert, per fetched row: "rt-cpu", "insert-cpu",
;;;;   "fetch-cpu".
;;;; Must not: set socket options (pg-client.lisp's mode does), assert a time.
(defpackage "PG-WORK" (:use "CL") (:export "MAIN"))
(in-package "PG-WORK")

(defun getenv (name)
  #+ecl (ext:getenv name) #+sbcl (sb-ext:posix-getenv name))

(defun env-int (name default)
  (let ((v (getenv name)))
    (if (and v (plusp (length v))) (parse-integer v) default)))

(defun seconds-of (thunk)
  "The wall-clock seconds THUNK took, and the process's CPU seconds in them."
  (let ((start (get-internal-real-time)) (cpu (get-internal-run-time)))
    (funcall thunk)
    (values (/ (float (- (get-internal-real-time) start) 1d0) internal-time-units-per-second)
            (/ (float (- (get-internal-run-time) cpu) 1d0) internal-time-units-per-second))))

(defun median (list)
  (let* ((v (sort (copy-list list) #'<)) (n (length v)))
    (if (oddp n)
        (nth (floor n 2) v)
        (/ (+ (nth (1- (floor n 2)) v) (nth (floor n 2) v)) 2))))

(defun check (ok what)
  (unless ok (error "pg-work: wrong answer from ~A" what)))

(defun roundtrips (db n)
  (dotimes (i n)
    (let ((rows (cl-postgres:exec-prepared db "rt" (list i) 'cl-postgres:list-row-reader)))
      (check (equal rows (list (list i))) "select $1::int"))))

(defun inserts (db n)
  (let ((postmodern:*database* db))
    (postmodern:execute "truncate items")
    (postmodern:with-transaction ()
      (dotimes (i n)
        (cl-postgres:exec-prepared db "ins" (list i (format nil "row ~D" i)))))))

(defun fetch (db n)
  (let ((rows (let ((postmodern:*database* db))
                (postmodern:query "select i, s from items order by i"))))
    (check (and (= n (length rows))
                (equal (car (last rows)) (list (1- n) (format nil "row ~D" (1- n)))))
           "the select of the rows inserted")))

(defun main ()
  (let ((n-rt (env-int "PG_ROUNDTRIPS" 2000))
        (n-rows (env-int "PG_ROWS" 10000))
        (repeat (env-int "PG_REPEAT" 3))
        (db (postmodern:connect "ecltest" "ecltest" "ecl-sock-pg-pw" "127.0.0.1"
                                :port (env-int "PG_PORT" 0)))
        (rt '()) (ins '()) (fe '()) (rt-cpu '()) (ins-cpu '()) (fe-cpu '()))
    (let ((postmodern:*database* db))
      (postmodern:execute "create temporary table items (i integer primary key, s text not null)"))
    (cl-postgres:prepare-query db "rt" "select $1::int")
    (cl-postgres:prepare-query db "ins" "insert into items values ($1, $2)")
    ;; warm-up, untimed
    (roundtrips db (min 200 n-rt))
    (inserts db (min 1000 n-rows))
    (fetch db (min 1000 n-rows))
    (dotimes (r repeat)
      (multiple-value-bind (wall cpu) (seconds-of (lambda () (roundtrips db n-rt)))
        (push (/ n-rt wall) rt) (push (/ (* 1d6 cpu) n-rt) rt-cpu))
      (multiple-value-bind (wall cpu) (seconds-of (lambda () (inserts db n-rows)))
        (push wall ins) (push (/ (* 1d6 cpu) n-rows) ins-cpu))
      (multiple-value-bind (wall cpu) (seconds-of (lambda () (fetch db n-rows)))
        (push wall fe) (push (/ (* 1d6 cpu) n-rows) fe-cpu)))
    (postmodern:disconnect db)
    (format t "~&rt ~,1F~%insert ~,4F~%fetch ~,4F~%" (median rt) (median ins) (median fe))
    (format t "rt-cpu ~,2F~%insert-cpu ~,2F~%fetch-cpu ~,3F~%"
            (median rt-cpu) (median ins-cpu) (median fe-cpu))
    (finish-output)))
