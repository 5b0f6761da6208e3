#!/usr/bin/env python3
"""peer.py - a TLS peer on Python's ssl module for ecl-sock's TLS tests.

Owns: one loopback connection per run, as a server (prints "PORT n" first,
then accepts one connection) or as a client.  Modes:
  server echo      echo every octet back until EOF, then close_notify
  server lines     answer each line with "you said: LINE"; "bye" ends
  server peercert  send the client's certificate subject CN (or "none")
  client lines     send "hello", print the answer line; then "bye"
Handshake failures print "HANDSHAKE-FAILED reason" and exit 0, so the Lisp
test reads the verdict.  Must not: talk to anything but 127.0.0.1, or run
longer than its --timeout (default 60 s).
"""
import argparse, socket, ssl, sys

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["server", "client"])
    ap.add_argument("mode")
    ap.add_argument("--cert"); ap.add_argument("--key"); ap.add_argument("--ca")
    ap.add_argument("--verify", default="none", choices=["none", "optional", "required"])
    ap.add_argument("--port", type=int)
    ap.add_argument("--server-name", default="localhost")
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    if a.role == "server":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        if a.ca:
            ctx.load_verify_locations(a.ca)
        ctx.verify_mode = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
                           "required": ssl.CERT_REQUIRED}[a.verify]
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0)); ls.listen(1)
        ls.settimeout(a.timeout)
        print("PORT", ls.getsockname()[1], flush=True)
        raw, _ = ls.accept(); ls.close()
        raw.settimeout(a.timeout)
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            print("HANDSHAKE-FAILED", getattr(e, "reason", None) or e, flush=True)
            return 0
        serve(conn, a.mode)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if a.ca:
            ctx.load_verify_locations(a.ca)
        if a.cert:
            ctx.load_cert_chain(a.cert, a.key)
        raw = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
        try:
            conn = ctx.wrap_socket(raw, server_hostname=a.server_name)
            conn.sendall(b"hello\n")
            f = conn.makefile("rb")
            line = f.readline()
        except (ssl.SSLError, OSError) as e:
            print("HANDSHAKE-FAILED", getattr(e, "reason", None) or e, flush=True)
            return 0
        print("GOT", line.decode().rstrip("\n"), flush=True)
        conn.sendall(b"bye\n")
        try:
            rest = f.read()
            print("EOF", len(rest), flush=True)
            conn.unwrap()
        except (ssl.SSLError, OSError) as e:
            print("CLOSE", e, flush=True)
        conn.close()
    return 0

def serve(conn, mode):
    if mode == "echo":
        while True:
            data = conn.recv(1 << 16)
            if not data:
                break
            conn.sendall(data)
    elif mode == "lines":
        f = conn.makefile("rb")
        for line in f:
            text = line.decode("utf-8").rstrip("\r\n")
            if text == "bye":
                break
            conn.sendall(("you said: " + text + "\n").encode("utf-8"))
    elif mode == "peercert":
        cert = conn.getpeercert()
        cn = "none"
        if cert:
            for rdn in cert["subject"]:
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
        conn.sendall(("CN=" + cn + "\n").encode())
    try:
        conn.unwrap()
    except (ssl.SSLError, OSError):
        pass
    conn.close()

if __name__ == "__main__":
    sys.exit(main())
