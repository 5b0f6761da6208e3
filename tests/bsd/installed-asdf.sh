#!/bin/sh
# installed-asdf.sh - the ASDF systems from an installed tree, as a user
# loads them: `make install` into a scratch prefix (module directory under
# it too), then a fresh ECL whose ASDF finds PREFIX/share/common-lisp/systems
# through its default source registry (XDG_DATA_DIRS, as for
# /usr/local/share) and nothing of the build tree:
#   (asdf:load-system "ecl-sock-bsd"), then usocket: the face, not ECL's
#   contrib, serves it, over ecl-sock streams;
#   a user's .asd with :depends-on ("ecl-sock-bsd" "usocket") in one plan;
#   :depends-on ("ecl-sock") gives the SOCKET package.
# Prints "N passed, N failed".  Run by `make check` from the build tree.
set -u
top=$(pwd)
srcdir=${srcdir:-.}
scratch=$top/tests/scratch/installed-asdf
prefix=$scratch/prefix
rm -rf "$prefix" "$scratch/user"
mkdir -p "$scratch/user" || exit 99
if [ ! -f /usr/share/common-lisp/source/usocket/usocket.asd ]; then
  echo "SKIP: cl-usocket is not installed (scripts/deps.sh installs it)"; exit 77
fi
(unset MAKEFLAGS MFLAGS; ${MAKE:-make} install prefix="$prefix" \
   eclmoduledir="$prefix/lib/ecl-sock") > "$scratch/install.log" 2>&1 \
  || { tail -30 "$scratch/install.log"; echo "0 passed, 1 failed"; exit 1; }
pass=0 fail=0
ok () { echo "PASS $1"; pass=$((pass+1)); }
ko () { echo "FAIL $1"; fail=$((fail+1)); }
for f in ecl-sock.asd ecl-sock-bsd.asd; do
  if [ -f "$prefix/share/common-lisp/systems/$f" ]; then ok "installed $f"; else ko "installed $f"; fi
done
cat > "$scratch/user/bsd-user-app.asd" <<'ASD'
(defsystem "bsd-user-app" :depends-on ("ecl-sock-bsd" "usocket"))
ASD
cat > "$scratch/user/sock-user-app.asd" <<'ASD'
(defsystem "sock-user-app" :depends-on ("ecl-sock"))
ASD
run () {  # $1: system to load; prints what the image saw
  env -u SOCK_FAS -u SOCK_BSD_FAS XDG_DATA_DIRS="$prefix/share:/usr/local/share:/usr/share" \
    XDG_CACHE_HOME="$scratch/cache" CL_SOURCE_REGISTRY="$scratch/user/:" \
    timeout 600 "${ECL:-ecl}" -norc -eval "(setf *debugger-hook* (lambda (c h) (declare (ignore h)) (format t \"~&error: ~A~%\" c) (ext:quit 1)))" \
    -eval "(require :asdf)" -eval "(progn
  (let ((*compile-verbose* nil) (*load-verbose* nil))
    (handler-bind ((warning (function muffle-warning)))
      (asdf:load-system \"$1\")))
  (format t \"~&face:~A contrib:~A sock:~A~%\"
    (and (find-package \"SB-BSD-SOCKETS\") (find-symbol \"%ECL-SOCK-FACE\" \"SB-BSD-SOCKETS\") t)
    (and (find-package \"SB-BSD-SOCKETS\") (fboundp (find-symbol \"SOCKET-CLOSE-LOW-LEVEL\" \"SB-BSD-SOCKETS\")) t)
    (and (find-package \"SOCKET\") t))
  (when (find-package \"USOCKET\")
    (let* ((l (funcall (find-symbol \"SOCKET-LISTEN\" \"USOCKET\") \"127.0.0.1\" 0))
           (c (funcall (find-symbol \"SOCKET-CONNECT\" \"USOCKET\") \"127.0.0.1\"
                       (funcall (find-symbol \"GET-LOCAL-PORT\" \"USOCKET\") l)))
           (a (funcall (find-symbol \"SOCKET-ACCEPT\" \"USOCKET\") l))
           (cs (funcall (find-symbol \"SOCKET-STREAM\" \"USOCKET\") c))
           (as (funcall (find-symbol \"SOCKET-STREAM\" \"USOCKET\") a)))
      (write-line \"over usocket\" cs) (force-output cs)
      (format t \"~&echo:~A ecl-sock-stream:~A~%\" (read-line as)
              (funcall (find-symbol \"%SOCKET-STREAM-P\" \"ECLSOCK\") as))))
  (ext:quit 0))" 2>&1
}
out=$(run ecl-sock-bsd); echo "$out" | grep -q "face:T contrib:NIL sock:T" \
  && ok "load-system ecl-sock-bsd" || { echo "$out" | tail -5; ko "load-system ecl-sock-bsd"; }
out=$(run bsd-user-app)
echo "$out" | grep -q "face:T contrib:NIL" && ok ":depends-on (\"ecl-sock-bsd\" \"usocket\"): the face, not the contrib" \
  || { echo "$out" | tail -5; ko ":depends-on (\"ecl-sock-bsd\" \"usocket\")"; }
echo "$out" | grep -q "echo:over usocket ecl-sock-stream:T" && ok "usocket over ecl-sock streams" \
  || ko "usocket over ecl-sock streams"
out=$(run sock-user-app); echo "$out" | grep -q "face:NIL contrib:NIL sock:T" \
  && ok ":depends-on (\"ecl-sock\")" || { echo "$out" | tail -5; ko ":depends-on (\"ecl-sock\")"; }
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
