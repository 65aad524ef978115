"""What tests/it/network.rs puts between the binary and the sandbox, on 127.0.0.1 only.

    net.py tls LOG CERT KEY TARGET_PORT   a TLS server (Python's ssl, that is OpenSSL) that
                                          forwards each connection, decrypted, to
                                          127.0.0.1:TARGET_PORT
    net.py proxy LOG [USER:PASSWORD]      an HTTP CONNECT proxy (the kind HTTPS_PROXY names)
                                          that tunnels only to 127.0.0.1 and localhost, and
                                          with USER:PASSWORD only for a request carrying them
                                          (`Proxy-Authorization: Basic`; else 407)

Each prints the port it listens on, alone on a line, then appends a line to LOG for every
connection it accepts (`accepted`, then `handshake failed: ...` when the client refuses the
certificate; `CONNECT host:port` for the proxy), and exits when its stdin closes, so that it
never outlives the test that started it. Standard library only.
"""

import base64
import os
import socket
import ssl
import sys
import threading

LOG_LOCK = threading.Lock()


def log(path, line):
    with LOG_LOCK, open(path, "a") as f:
        f.write(line + "\n")


def relay(a, b):
    """Copies bytes both ways until both sides are done, then closes both."""

    def one_way(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    back = threading.Thread(target=one_way, args=(b, a), daemon=True)
    back.start()
    one_way(a, b)
    back.join()
    a.close()
    b.close()


def tls_handler(context, target, log_path):
    def handle(conn):
        log(log_path, "accepted")
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log(log_path, f"handshake failed: {e}")
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", target))
        relay(tls, upstream)

    return handle


def proxy_handler(log_path, credentials):
    wanted = None
    if credentials:
        wanted = base64.b64encode(credentials.encode()).decode()

    def handle(conn):
        reader = conn.makefile("rb")
        request = reader.readline().decode("latin-1").strip()
        authorization = None
        while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "proxy-authorization":
                authorization = value.strip()
        scheme, _, token = (authorization or "").partition(" ")
        if wanted and (scheme.lower() != "basic" or token.strip() != wanted):
            log(log_path, "407 " + request.rsplit(" ", 1)[0])
            conn.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
            )
            conn.close()
            return
        log(log_path, request.rsplit(" ", 1)[0])
        method, target = (request.split(" ") + ["", ""])[:2]
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or host not in ("127.0.0.1", "localhost"):
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            conn.close()
            return
        try:
            upstream = socket.create_connection((host, int(port)))
        except OSError:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            conn.close()
            return
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        relay(conn, upstream)

    return handle


def serve(handle):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)

    def accept():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()
    os._exit(0)


def main(args):
    if args[:1] == ["tls"] and len(args) == 5:
        _, log_path, cert, key, target = args
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        serve(tls_handler(context, int(target), log_path))
    elif args[:1] == ["proxy"] and len(args) in (2, 3):
        serve(proxy_handler(args[1], args[2] if len(args) == 3 else None))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
