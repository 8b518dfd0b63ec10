#!/usr/bin/python3
"""corepeer: a small network-core peer for the station-link end-to-end test (core_link_e2e.sh).

A real ZeroMQ ROUTER socket, CURVE server, with a ZAP handler that accepts exactly one
station public key (User-Id "station-A") and refuses every other one; it speaks the core
side of the protocol in docs/ns.md "Wire protocol": acks batches, answers pings, logs every
message it gets as a JSON line {"user_id":..., "msg": {...}}. Not a core: no dedup, no
storage.

  corepeer.py keygen                      prints "PUBLIC SECRET"
  corepeer.py serve --secret S --allow PUB --port-file F --log F [--port N]
              [--no-ack] [--exit-after-batches N] [--seconds S]
              [--keys FILE --answer EPID=PAYLOAD ...]
With --answer, the first BF=1 frame of each (ep_id, mc) gets a `downlink`: the listed
devices their payload with DL-AUTH (spec §4.3, AES-128 through the openssl command, the
key from --keys), every other device payload null (decline).
Licence: MIT.
"""
import argparse
import json
import subprocess
import sys
import threading
import time

import zmq
import zmq.utils.z85


def zap_handler(zap, allowed, stop):
    while not stop.is_set():
        if not zap.poll(50):
            continue
        parts = zap.recv_multipart()
        version, request_id, mechanism = parts[0], parts[1], parts[5]
        key = zmq.utils.z85.encode(parts[6]).decode() if len(parts) > 6 else ""
        ok = mechanism == b"CURVE" and key == allowed
        if not ok:
            print(f"corepeer: refused station key {key}", file=sys.stderr, flush=True)
        zap.send_multipart([version, request_id, b"200" if ok else b"400",
                            b"OK" if ok else b"unknown key",
                            b"station-A" if ok else b"", b""])
    zap.close()


def dl_auth(key_hex, ep_id, mc, payload_hex):
    """DL-AUTH (§4.3): first 2 bytes of AES-128(key, ID LSByte first | MC LE | payload |
    ID[0..1])."""
    ep = int(ep_id, 16).to_bytes(4, "little")
    data = ep + mc.to_bytes(2, "little") + bytes.fromhex(payload_hex)
    block = (data + data)[:16]
    out = subprocess.run(["openssl", "enc", "-aes-128-ecb", "-nopad", "-K", key_hex],
                         input=block, capture_output=True, check=True).stdout
    return out[:2].hex().upper()


def load_keys(path):
    keys = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and not line.startswith("#"):
                keys[parts[0].upper()] = parts[1]
    return keys


def serve(args):
    keys = load_keys(args.keys) if args.keys else {}
    answers = dict(a.upper().split("=", 1) for a in args.answer)
    answered = set()
    ctx = zmq.Context()
    stop = threading.Event()
    # The handler is bound before the ROUTER exists: no handshake can come before it.
    zap = ctx.socket(zmq.REP)
    zap.linger = 0
    zap.bind("inproc://zeromq.zap.01")
    zt = threading.Thread(target=zap_handler, args=(zap, args.allow, stop), daemon=True)
    zt.start()
    router = ctx.socket(zmq.ROUTER)
    router.linger = 0
    router.curve_server = True
    router.curve_secretkey = args.secret.encode()
    router.zap_domain = b"sigfox"
    if args.port:
        for _ in range(100):
            try:
                router.bind(f"tcp://127.0.0.1:{args.port}")
                break
            except zmq.ZMQError:
                time.sleep(0.05)
        else:
            sys.exit(f"corepeer: cannot bind port {args.port}")
        port = args.port
    else:
        port = router.bind_to_random_port("tcp://127.0.0.1")
    with open(args.port_file, "w") as f:
        f.write(f"{port}\n")
    log = open(args.log, "a")
    batches = 0
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        if not router.poll(100):
            continue
        frames = router.recv_multipart(copy=False)
        rid, body = frames[0].bytes, frames[-1]
        user = body.get("User-Id")
        try:
            msg = json.loads(body.bytes)
        except ValueError:
            router.send_multipart([rid, b'{"type":"error","error":"not JSON"}'])
            continue
        log.write(json.dumps({"user_id": user, "parts": len(frames), "msg": msg}) + "\n")
        log.flush()
        kind = msg.get("type")
        if kind == "batch":
            batches += 1
            if args.exit_after_batches and batches >= args.exit_after_batches:
                break
            if not args.no_ack:
                router.send_multipart([rid, json.dumps({"type": "ack", "seq": msg["seq"]}).encode()])
            for fr in msg["frames"] if args.answer else []:
                ep, mc = fr.get("ep_id"), fr.get("mc")
                if not fr.get("bf") or fr.get("kind") != "app" or (ep, mc) in answered:
                    continue
                answered.add((ep, mc))
                dl = {"type": "downlink", "ep_id": ep, "mc": mc, "payload": None}
                if ep in answers:
                    dl["payload"] = answers[ep]
                    dl["dl_auth"] = dl_auth(keys[ep], ep, mc, answers[ep])
                router.send_multipart([rid, json.dumps(dl).encode()])
                log.write(json.dumps({"sent": dl}) + "\n")
                log.flush()
        elif kind == "ping":
            router.send_multipart([rid, b'{"type":"pong"}'])
    stop.set()
    router.close()
    zt.join()
    ctx.term()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("keygen")
    s = sub.add_parser("serve")
    s.add_argument("--secret", required=True)
    s.add_argument("--allow", required=True)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--port-file", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--no-ack", action="store_true")
    s.add_argument("--exit-after-batches", type=int, default=0)
    s.add_argument("--seconds", type=float, default=120)
    s.add_argument("--keys")
    s.add_argument("--answer", action="append", default=[])
    args = p.parse_args()
    if args.cmd == "keygen":
        pub, sec = zmq.curve_keypair()
        print(pub.decode(), sec.decode())
    else:
        serve(args)


if __name__ == "__main__":
    main()
